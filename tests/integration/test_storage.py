"""A whole Kubernetes on the local node: dynamic storage, and the controllers of the default set.

On the session's cluster with a node (``node_cluster``; one per machine):

- the default StorageClass is ``local-path`` (rancher's local-path-provisioner, a process of the cluster): a claim
  binds when its pod is scheduled, the pod writes and reads the volume, whose directory is under the cluster's own
  folder; deleting the claim deletes the PersistentVolume and the directory. Twin: with the provisioner stopped the
  claim stays Pending (and binds once it runs again);
- a DaemonSet puts a pod on the node and a CronJob runs a Job, two controllers the hand-picked list of old lacked.
  Twin: kube-controller-manager restarted with that old list makes no pod for a DaemonSet (and the default set,
  restored, makes it).

``vcm delete`` of a tenant whose REAL control plane keeps its data on a claim completes, the volume and its directory
going with it (the ``kubernetes.io/pvc-protection`` finalizer lifted by its controller): ``test_vcluster_node.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from vcluster_mgr import localcluster
from vcluster_mgr.localnode import storage

#: kube-controller-manager's hand-picked list before it ran the default set (with a node)
OLD_CONTROLLERS = tuple(f"{c}-controller" for c in (
    "namespace", "garbage-collector", "serviceaccount", "serviceaccount-token", "resourcequota", "deployment",
    "replicaset", "statefulset", "endpointslice", "root-ca-certificate-publisher", "ttl-after-finished", "job",
    "clusterrole-aggregation", "validatingadmissionpolicy-status", "certificatesigningrequest-signing",
    "node-ipam", "node-lifecycle"))


class Api:
    def __init__(self, cluster: localcluster.Cluster) -> None:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.batch, self.storage = client.BatchV1Api(api), client.StorageV1Api(api)
        self.cluster = cluster
        self.probe = str(cluster.node["images"]["probe"])  # type: ignore[index]


@pytest.fixture(scope="module")
def api(node_cluster: localcluster.Cluster) -> Api:
    return Api(node_cluster)


@pytest.fixture()
def ns(api: Api, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"st-{request.node.name[5:30].replace('_', '-').strip('-')}-{os.getpid() % 10000}"
    api.core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        api.core.delete_namespace(name)


def wait(probe: Callable[[], bool], seconds: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f}s: {what or probe}")
        time.sleep(0.5)


def holds_for(probe: Callable[[], bool], seconds: float) -> bool:
    """True if ``probe`` holds every time it is asked during ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not probe():
            return False
        time.sleep(0.5)
    return True


def claim(name: str, size: str = "64Mi") -> dict[str, Any]:
    # no storageClassName: the default class is asked for
    return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                  "resources": {"requests": {"storage": size}}}}


def pod_with_claim(name: str, image: str, claim_name: str, script: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0, "restartPolicy": "Never",
                 "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "command": ["/bin/sh", "-c", script],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]},
    }


def phase(api: Api, ns: str, pvc: str) -> str:
    return str(api.core.read_namespaced_persistent_volume_claim(pvc, ns).status.phase)


def pv_exists(api: Api, name: str) -> bool:
    try:
        api.core.read_persistent_volume(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_local_path_is_the_only_default_storage_class(api: Api) -> None:
    default = [sc for sc in api.storage.list_storage_class().items
               if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert [(sc.metadata.name, sc.provisioner, sc.reclaim_policy, sc.volume_binding_mode) for sc in default] == [
        (storage.STORAGE_CLASS, storage.PROVISIONER, "Delete", "WaitForFirstConsumer")]


def test_a_claim_binds_a_pod_writes_and_reads_and_deleting_it_frees_the_volume(api: Api, ns: str) -> None:
    api.core.create_namespaced_persistent_volume_claim(ns, claim("data"))
    api.core.create_namespaced_pod(ns, pod_with_claim(
        "writer", api.probe, "data", "echo written-here > /data/f && cat /data/f"))
    wait(lambda: phase(api, ns, "data") == "Bound", what="the claim bound")
    wait(lambda: api.core.read_namespaced_pod("writer", ns).status.phase == "Succeeded", what="the writer finished")
    assert api.core.read_namespaced_pod_log("writer", ns).strip() == "written-here"
    pvc = api.core.read_namespaced_persistent_volume_claim("data", ns)
    pv = api.core.read_persistent_volume(pvc.spec.volume_name)
    assert pvc.spec.storage_class_name == storage.STORAGE_CLASS
    # the volume is a directory under the cluster's own folder, on the node the pod ran on
    path = Path(pv.spec.host_path.path)
    assert path.parent == storage.volumes_dir(api.cluster.dir), path
    assert (path / "f").read_text() == "written-here\n"
    # a second pod reads what the first wrote
    api.core.create_namespaced_pod(ns, pod_with_claim("reader", api.probe, "data", "cat /data/f"))
    wait(lambda: api.core.read_namespaced_pod("reader", ns).status.phase == "Succeeded", what="the reader finished")
    assert api.core.read_namespaced_pod_log("reader", ns).strip() == "written-here"

    for pod in ("writer", "reader"):
        api.core.delete_namespaced_pod(pod, ns, grace_period_seconds=0)
    api.core.delete_namespaced_persistent_volume_claim("data", ns)
    wait(lambda: not pv_exists(api, pv.metadata.name), what=f"PersistentVolume {pv.metadata.name} deleted")
    wait(lambda: not path.exists(), 30, what=f"{path} removed")


def test_twin_with_the_provisioner_stopped_a_claim_stays_pending(api: Api, ns: str) -> None:
    name = api.cluster.name
    localcluster.stop_process(name, "local-path-provisioner")
    try:
        api.core.create_namespaced_persistent_volume_claim(ns, claim("data"))
        api.core.create_namespaced_pod(ns, pod_with_claim("writer", api.probe, "data", "echo x > /data/f"))
        # the scheduler picks the node and asks for a volume; nobody makes one
        wait(lambda: (api.core.read_namespaced_persistent_volume_claim("data", ns).metadata.annotations or {}).get(
            "volume.kubernetes.io/selected-node") is not None, what="the scheduler selected the node")
        assert holds_for(lambda: phase(api, ns, "data") == "Pending", 15)
        assert api.core.read_namespaced_pod("writer", ns).status.phase == "Pending"
    finally:
        localcluster.start_process(name, "local-path-provisioner")
    # the same claim binds once the provisioner runs again: the claim itself was fine
    wait(lambda: phase(api, ns, "data") == "Bound", what="the claim bound after the provisioner restarted")
    wait(lambda: api.core.read_namespaced_pod("writer", ns).status.phase == "Succeeded", what="the writer finished")
    api.core.delete_namespaced_pod("writer", ns, grace_period_seconds=0)
    pv_name = api.core.read_namespaced_persistent_volume_claim("data", ns).spec.volume_name
    api.core.delete_namespaced_persistent_volume_claim("data", ns)
    wait(lambda: not pv_exists(api, pv_name), what=f"PersistentVolume {pv_name} deleted")


def daemonset(image: str) -> dict[str, Any]:
    labels = {"app": "everywhere"}
    return {"metadata": {"name": "everywhere"},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "c", "image": image,
                                                           "imagePullPolicy": "IfNotPresent"}]}}}}


def daemonset_pods(api: Api, ns: str) -> list[Any]:
    return list(api.core.list_namespaced_pod(ns, label_selector="app=everywhere").items)


def test_a_daemonset_and_a_cronjob_run(api: Api, ns: str) -> None:
    api.apps.create_namespaced_daemon_set(ns, daemonset(api.probe))
    api.batch.create_namespaced_cron_job(ns, {
        "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": api.probe, "imagePullPolicy": "IfNotPresent",
                            "command": ["/bin/sh", "-c", "echo tick"]}]}}}}}})

    def ds_ready() -> bool:
        st = api.apps.read_namespaced_daemon_set_status("everywhere", ns).status
        return bool(st.desired_number_scheduled == 1 and st.number_ready == 1)

    wait(ds_ready, what="the DaemonSet's pod Ready on the node")
    assert [p.spec.node_name for p in daemonset_pods(api, ns)] == [api.cluster.node["name"]]

    def job_succeeded() -> bool:
        return any(j.status.succeeded == 1 and [o.name for o in j.metadata.owner_references or []] == ["tick"]
                   for j in api.batch.list_namespaced_job(ns).items)

    # the schedule fires at the next minute boundary
    wait(job_succeeded, 100, what="a Job of the CronJob succeeded")
    assert api.batch.read_namespaced_cron_job("tick", ns).status.last_successful_time is not None


def test_twin_with_the_old_controller_list_a_daemonset_makes_no_pods(api: Api, ns: str) -> None:
    name = api.cluster.name
    original = localcluster.load(name).commands["kube-controller-manager"]
    old = [f"--controllers={','.join(OLD_CONTROLLERS)}" if a.startswith("--controllers=") else a for a in original]
    assert old != original
    localcluster.stop_process(name, "kube-controller-manager")
    try:
        localcluster.start_process(name, "kube-controller-manager", args=old)
        api.apps.create_namespaced_daemon_set(ns, daemonset(api.probe))
        assert holds_for(lambda: daemonset_pods(api, ns) == [], 20)
    finally:
        localcluster.stop_process(name, "kube-controller-manager")
        localcluster.start_process(name, "kube-controller-manager", args=original)
    # the default set, back, makes the pod of the same DaemonSet
    wait(lambda: len(daemonset_pods(api, ns)) == 1, what="the DaemonSet's pod after the default set is back")

