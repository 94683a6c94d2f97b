"""The local cluster's node: it comes up Ready with everything it needs, and ``down`` leaves the host as it was.

This module brings up a cluster of its own with ``vcm local up --nodes 1`` (one node cluster per machine at
a time, so it must not overlap the session's ``node_cluster``: its tests ask for ``node_slot`` without
``node_cluster``, so ``tests/conftest.py`` runs them first in the node group, before any test that starts that
one; its twin changes the host's forwarding, which a running node relies on). It records the host with
``hoststate.take`` first and compares after ``vcm local down``: sysctls, network devices, nftables tables
(iptables-nft's included), ipsets, mounts, cgroups, the directories the kubelet and containerd write
outside the cluster folder, and then processes and listeners of the cluster; a volume of the default
StorageClass, written by a pod, is there while it runs (under the cluster folder) and goes with it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vcluster_mgr import cli, localcluster
from vcluster_mgr.localnode import hoststate, node, storage

pytestmark = pytest.mark.usefixtures("node_slot")


def _kubectl(bin_dir: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run([str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _ours(d: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(d) in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_up_brings_a_ready_node_and_down_restores_the_host(bin_dir: Path) -> None:
    name = f"lifecycle-{os.getpid()}"
    before = hoststate.take()
    runner = CliRunner()
    res = runner.invoke(cli.app, ["local", "up", "--name", name, "--nodes", "1"])
    assert res.exit_code == 0, res.output
    c = localcluster.load(name)
    try:
        node_name = str(c.node["name"])
        nodes = json.loads(_kubectl(bin_dir, c.kubeconfig, "get", "nodes", "-o", "json"))["items"]
        assert [n["metadata"]["name"] for n in nodes] == [node_name]
        ready = {x["type"]: x["status"] for x in nodes[0]["status"]["conditions"]}
        assert ready["Ready"] == "True"
        assert nodes[0]["metadata"]["labels"]["pool"] == "tenants"
        # CoreDNS runs on the node: images came from the loopback registry through containerd
        pods = json.loads(_kubectl(bin_dir, c.kubeconfig, "-n", "kube-system", "get", "pods", "-o", "json"))["items"]
        assert [p["status"]["phase"] for p in pods if p["metadata"]["labels"].get("k8s-app") == "kube-dns"] == [
            "Running"]
        # every listener of ours is on loopback or the node's bridge
        sockets = localcluster.listening_sockets(_ours(c.dir))
        assert sockets and all(addr in ("127.0.0.1", node.BRIDGE_IP) for _, addr, _ in sockets), sockets
        assert (c.pids["kube-apiserver"], node.BRIDGE_IP, c.apiserver_port) in sockets
        status = runner.invoke(cli.app, ["local", "status", "-o", "json"])
        rows = {r["name"]: r for r in json.loads(status.stdout)}
        assert rows[name]["nodes"] == [node_name]
        assert {"containerd", "kubelet", "kube-scheduler", "kube-proxy", "kube-router", "registry",
                "local-path-provisioner"} <= set(
            rows[name]["processes"])
        # a volume of the default StorageClass, written by a pod: down must take it, and its mounts, too
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "data", "namespace": "default"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}}
        writer = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer", "namespace": "default"},
                  "spec": {"restartPolicy": "Never", "containers": [{
                      "name": "c", "image": str(c.node["images"]["probe"]),  # type: ignore[index]
                      "command": ["/bin/sh", "-c", "echo kept > /data/f && exec sleep 3600"],
                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                      "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}
        _kubectl(bin_dir, c.kubeconfig, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                            "items": [claim, writer]}))
        _kubectl(bin_dir, c.kubeconfig, "-n", "default", "wait", "pod/writer", "--for=condition=Ready", "--timeout=90s")
        volumes = storage.volumes_dir(c.dir)
        assert [(v / "f").read_text() for v in volumes.iterdir()] == ["kept\n"]
        during = hoststate.take()
        assert hoststate.diff(before, during), "the node changed nothing on the host?"
    finally:
        down = runner.invoke(cli.app, ["local", "down", "--name", name])
    assert down.exit_code == 0, down.output
    assert _ours(c.dir) == []
    assert not c.dir.exists()
    assert hoststate.diff(before, hoststate.take()) == []


def test_twin_a_change_left_behind_is_seen_and_restore_undoes_it() -> None:
    before = hoststate.take()
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    old = forward.read_text().strip()
    subprocess.run(["ip", "link", "add", "vcm-twin0", "type", "bridge"], check=True)
    forward.write_text("0\n" if old == "1" else "1\n")
    try:
        seen = hoststate.diff(before, hoststate.take())
        # ip_forward also flips conf/*/forwarding and the redirect settings: the kernel ties them together
        assert {f"sysctl net/ipv4/ip_forward: {old!r} -> {'0' if old == '1' else '1'!r}",
                "device added: vcm-twin0"} <= set(seen), seen
        assert hoststate.restore(before) == []
    finally:
        subprocess.run(["ip", "link", "delete", "vcm-twin0"], capture_output=True, check=False)
        forward.write_text(old + "\n")
    assert not Path("/sys/class/net/vcm-twin0").exists()
