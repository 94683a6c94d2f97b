"""The built-in local host cluster: a real API server on loopback, RBAC on, clean shutdown."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, localcluster


def _kubectl(bin_dir: Path, kubeconfig: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_kubectl_get_ns_with_admin_kubeconfig(bin_dir: Path, host_cluster: localcluster.Cluster) -> None:
    proc = _kubectl(bin_dir, host_cluster.kubeconfig, "get", "ns", "-o", "name")
    assert proc.returncode == 0, proc.stderr
    assert "namespace/kube-system" in proc.stdout.split()


def test_every_listener_is_on_loopback(host_cluster: localcluster.Cluster) -> None:
    sockets = localcluster.listening_sockets(list(host_cluster.pids.values()))
    assert {pid for pid, _, _ in sockets} >= {host_cluster.pids["etcd"], host_cluster.pids["kube-apiserver"]}
    assert all(addr == "127.0.0.1" for _, addr, _ in sockets), sockets
    assert (host_cluster.pids["kube-apiserver"], "127.0.0.1", host_cluster.apiserver_port) in sockets


def test_client_certificate_user_is_subject_to_rbac(bin_dir: Path, host_cluster: localcluster.Cluster,
                                                    tmp_path: Path) -> None:
    kc = tmp_path / "mallory.kubeconfig"
    kc.write_text(localcluster.user_kubeconfig(host_cluster.name, "mallory", ("some-team",)))
    who = _kubectl(bin_dir, kc, "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == "mallory" and "some-team" in info["groups"]
    denied = _kubectl(bin_dir, kc, "get", "namespaces")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


def test_admission_plugins_and_controllers(bin_dir: Path, host_cluster: localcluster.Cluster) -> None:
    kc = host_cluster.kubeconfig
    assert _kubectl(bin_dir, kc, "create", "namespace", "lc-probe").returncode == 0
    try:
        # the serviceaccount controller fills every namespace with its default service account
        wait = _kubectl(bin_dir, kc, "wait", "-n", "lc-probe", "--for=create", "serviceaccount/default",
                        "--timeout=30s")
        assert wait.returncode == 0, wait.stderr
        # PodSecurity admission is on
        label = _kubectl(bin_dir, kc, "label", "ns", "lc-probe", "pod-security.kubernetes.io/enforce=restricted")
        assert label.returncode == 0, label.stderr
        pod = _kubectl(bin_dir, kc, "run", "p", "-n", "lc-probe", "--image=busybox",
                       "--overrides", '{"spec":{"hostNetwork":true}}')
        assert pod.returncode != 0 and "violates PodSecurity" in pod.stderr, pod.stderr
    finally:
        _kubectl(bin_dir, kc, "delete", "namespace", "lc-probe", "--wait=true", "--timeout=60s")
    # the namespace controller finalized it
    gone = _kubectl(bin_dir, kc, "get", "namespace", "lc-probe")
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_second_cluster_runs_beside_and_down_leaves_nothing(bin_dir: Path,
                                                            host_cluster: localcluster.Cluster) -> None:
    name = f"second-{os.getpid()}"
    runner = CliRunner()
    res = runner.invoke(cli.app, ["local", "up", "--name", name, "--nodes", "0"])
    assert res.exit_code == 0, res.output
    try:
        c = localcluster.load(name)
        assert c.apiserver_port != host_cluster.apiserver_port
        assert f"export KUBECONFIG={c.kubeconfig}" in res.stdout
        with pytest.raises(errors.LocalClusterError, match="already running"):
            localcluster.up(name)
        status = runner.invoke(cli.app, ["local", "status", "-o", "json"])
        rows = {r["name"]: r for r in json.loads(status.stdout)}
        assert all(p["running"] for p in rows[name]["processes"].values())
        assert rows[name]["nodes"] == []
        pids = list(c.pids.values())
    finally:
        down = runner.invoke(cli.app, ["local", "down", "--name", name])
    assert down.exit_code == 0
    assert not any(localcluster.processes.alive(pid, c.dir) for pid in pids)
    # no process of it is left anywhere (asked of every process by its command line, which names the
    # cluster's folder: on a busy machine its old pids and ports may already belong to unrelated processes)
    assert _processes_naming(c.dir) == []
    assert not c.dir.exists()
    # the session's cluster is untouched
    assert _kubectl(bin_dir, host_cluster.kubeconfig, "get", "ns").returncode == 0


def _processes_naming(folder: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every running process whose command line names ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append((int(entry.name), cmdline))
    return found
