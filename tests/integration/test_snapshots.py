"""The snapshot drill on the local node, with the REAL vcluster 0.36.1: what a tenant made inside its virtual
cluster survives the tenant's deletion through ``vcm snapshot`` / ``vcm delete --snapshot-to`` and ``vcm restore``.

On the session's cluster with a node (``node_cluster``; run under ``flock /work/locks/node.lock``), one tenant
``vsnap`` with a control plane (the chart from vcluster's Go module, the node's images, the embedded SQLite store
through kine, persistence on the node's ``local-path`` storage), and an S3-compatible store on loopback
(SeaweedFS, ``objectstore.py``) whose keys reach ``vcm`` only through its environment:

1. inside the virtual cluster: a namespace, a ConfigMap, a Secret and a Deployment whose pod runs on the host;
2. ``vcm snapshot --to s3://.../`` (the object is in the bucket) and ``vcm delete --snapshot-to DIR/`` (a file);
3. the tenant re-created with ``vcm apply`` is EMPTY inside (the twin: without a restore nothing comes back);
4. ``vcm restore --from s3://...``: the namespace, ConfigMap and Secret are back with their data, and the
   Deployment's pod runs again on the host; the restore pod is gone; the S3 secret key is in no output and in
   no file of the state;
5. a ``--from`` key that is not in the store is refused (exit 2) before the cluster is touched.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from vcluster_mgr import localcluster, render, snapshot_archive, toolchain
from vcluster_mgr.localnode import images
from vcluster_mgr.localnode import node as localnode

from .objectstore import ObjectStore, listening_addresses, object_store_binary

NAME = "vsnap"
NS = f"{NAME}-cp"
BUCKET = "backups"


class Drill:
    """``vcm`` and ``kubectl`` against the node cluster, a private state, the object store's keys in the env."""

    def __init__(self, cluster: localcluster.Cluster, folder: Path, store: ObjectStore) -> None:
        node = cluster.node
        assert node is not None
        self.folder, self.store = folder, store
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "VCM_STATE_DIR": str(folder / "state"),
                    **store.credentials_env(), "AWS_ENDPOINT_URL_S3": store.endpoint}
        self.core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        self.chart = toolchain.chart_dir()
        self.policy = folder / "policy.yaml"
        self.policy.write_text(yaml.safe_dump({
            "allowedChartSources": [str(self.chart)],
            "controlPlaneCorednsImage": node["images"]["coredns"],
            "controlPlaneDnsUpstreams": [f"{localnode.BRIDGE_IP}/32"],
        }))
        self.spec = folder / f"{NAME}.yaml"
        self.spec.write_text(yaml.safe_dump({
            "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": NAME},
            "spec": {
                "owners": [{"kind": "Group", "name": f"{NAME}-devs", "role": "admin"}],
                "namespaces": ["cp", "apps"],
                "quota": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "pods": 20, "services": 10},
                "limits": {"max": {"cpu": "1", "memory": "1Gi"}},
                "network": {"isolation": "strict"},
                "podSecurity": "restricted",
                "controlPlane": {"enabled": True, "chart": {"path": str(self.chart)}, "persistence": {"size": "1Gi"},
                                 "values": render.merge_values(images.chart_values(str(node["registry"])), {})},
            },
        }))
        self.probe_image = str(node["images"]["probe"])
        self.kubeconfig = folder / f"{NAME}.kubeconfig"
        self.applies = 0
        self.outputs: list[str] = []
        #: (command, seconds) of every vcm run: the drill prints them (``-rP``), the README's figures come from it
        self.timings: list[tuple[str, float]] = []

    def vcm(self, *args: str) -> tuple[int, str, str]:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=self.env, capture_output=True,
                              text=True, timeout=900, check=False)
        self.outputs += [proc.stdout, proc.stderr]
        self.timings.append((" ".join(args[:2]), time.monotonic() - started))
        return proc.returncode, proc.stdout, proc.stderr

    def apply(self) -> None:
        code, out, err = self.vcm("apply", str(self.spec), "--yes", "--policy", str(self.policy), "--timeout", "400")
        assert code == 0, out + err
        self.applies += 1  # a kubeconfig of its own per apply: a re-created tenant has new credentials
        self.kubeconfig = self.folder / f"{NAME}-{self.applies}.kubeconfig"
        code, out, err = self.vcm("kubeconfig", NAME, "--output-file", str(self.kubeconfig))
        assert code == 0, out + err

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``kubectl`` inside the virtual cluster."""
        return subprocess.run([str(toolchain.bin_dir() / "kubectl"), "--kubeconfig", str(self.kubeconfig),
                               "--request-timeout=20s", *args], input=stdin, capture_output=True, text=True,
                              timeout=60, check=False)

    def inside(self, *args: str) -> Any:
        proc = self.kubectl(*args, "-o", "json")
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def host_pods(self, selector: str) -> list[Any]:
        return [p for p in self.core.list_namespaced_pod(NS, label_selector=selector).items
                if not p.metadata.deletion_timestamp]


def _eventually(probe: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(2.0)
    raise AssertionError(f"never held within {seconds:.0f}s: {what}")


def _running(pod: Any) -> bool:
    st = pod.status
    return bool(st and st.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                    for c in st.conditions or []))


def workload(image: str) -> str:
    """What the tenant makes inside: restricted, pulled Always (the host's rules hold for what it syncs)."""
    return yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "menu", "namespace": "shop"},
         "data": {"dish": "soup"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "till", "namespace": "shop"},
         "stringData": {"code": "1234"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                          "seccompProfile": {"type": "RuntimeDefault"}},
                      "containers": [{"name": "web", "image": image, "imagePullPolicy": "Always",
                                      "command": ["sleep", "100000"],
                                      "securityContext": {"allowPrivilegeEscalation": False,
                                                          "capabilities": {"drop": ["ALL"]}}}]}}}},
    ])


WEB = "vcluster.loft.sh/managed-by=" + NAME + ",app=web"


@pytest.fixture(scope="module")
def drill(node_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    store = ObjectStore(object_store_binary(), tmp_path_factory.mktemp("snapshot-store"))
    store.start()
    d = Drill(node_cluster, tmp_path_factory.mktemp("snapshots"), store)
    try:
        assert store.proc is not None
        assert all(a.startswith("127.0.0.1:") for a in listening_addresses(store.proc.pid))
        store.create_bucket(BUCKET)
        code, out, err = d.vcm("platform", "apply", "--yes")
        assert code == 0, out + err
        d.apply()
        yield d
    finally:
        d.vcm("delete", NAME, "--yes")
        store.stop()


def test_snapshot_delete_recreate_restore(drill: Drill) -> None:
    d = drill
    # 1. objects inside, the Deployment's pod running on the host
    made = d.kubectl("apply", "-f", "-", stdin=workload(d.probe_image))
    assert made.returncode == 0, made.stderr
    _eventually(lambda: any(_running(p) for p in d.host_pods(WEB)), 180, "the Deployment's pod runs on the host")

    # 2. a snapshot into the S3 store, then the delete keeps a last one in a folder
    code, out, err = d.vcm("snapshot", NAME, "--to", f"s3://{BUCKET}/{NAME}/", "-o", "json")
    assert code == 0, out + err
    taken = json.loads(out)
    key = taken["location"].removeprefix(f"s3://{BUCKET}/")
    assert key.startswith(f"{NAME}/{NAME}-") and d.store.keys(BUCKET) == [key]
    assert taken["kind"] == "key-value" and taken["resources"]["configmaps"] >= 1
    assert taken["resources"]["secrets"] >= 1 and taken["resources"]["deployments"] >= 1
    folder = d.folder / "last"
    code, out, err = d.vcm("delete", NAME, "--yes", "--snapshot-to", f"{folder}/")
    assert code == 0, out + err
    (last,) = folder.iterdir()
    summary = snapshot_archive.summarize(last.read_bytes(), source=str(last))
    assert summary.resources["configmaps"] >= 1 and "vcm restore" in err
    assert not [n for n in d.core.list_namespace().items if n.metadata.name.startswith(f"{NAME}-")
                and not n.metadata.deletion_timestamp]

    # 3. the twin: re-created, the virtual cluster is empty inside (no restore, nothing comes back)
    d.apply()
    assert d.inside("get", "namespace", "shop") is None
    assert not d.host_pods(WEB)

    # 4. the restore from the store: everything back, the workload running
    code, out, err = d.vcm("restore", NAME, "--from", taken["location"], "--yes", "-o", "json")
    assert code == 0, out + err
    restored = json.loads(out)
    assert restored["ready"] is True and restored["keys"] == taken["keys"]
    assert d.inside("get", "namespace", "shop") is not None
    assert d.inside("get", "configmap", "menu", "-n", "shop")["data"] == {"dish": "soup"}
    till = d.inside("get", "secret", "till", "-n", "shop")
    assert base64.b64decode(till["data"]["code"]) == b"1234"
    _eventually(lambda: any(_running(p) for p in d.host_pods(WEB)), 180, "the restored Deployment's pod runs")
    assert not d.host_pods("app=vcluster-restore"), "the restore pod was left behind"

    # the store's secret key never shows: not in what vcm printed, not in the state
    secret = d.store.secret_key
    assert not [o for o in d.outputs if secret in o]
    state = d.folder / "state"
    assert not [p for p in state.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    print(f"snapshot: {taken['keys']} keys, {taken['bytes']} bytes; restore reported {restored['seconds']} s")
    for command, seconds in d.timings:
        print(f"vcm {command}: {seconds:.1f} s")


def test_a_key_not_in_the_store_is_refused_before_the_cluster(drill: Drill) -> None:
    pods_before = {p.metadata.name for p in drill.host_pods(f"release={NAME}")}
    code, out, err = drill.vcm("restore", NAME, "--from", f"s3://{BUCKET}/{NAME}/no-such.tar.gz", "--yes")
    assert code == 2, out + err
    assert "no such snapshot in the store" in err and "Traceback" not in err
    assert {p.metadata.name for p in drill.host_pods(f"release={NAME}")} == pods_before
