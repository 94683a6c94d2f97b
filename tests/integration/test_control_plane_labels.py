"""Unspoofable control-plane rules on a real API server: the labels the control plane's egress rules select
(``release=<tenant>`` for ``vcm-allow-control-plane``, ``vcluster.loft.sh/managed-by=<tenant>`` for
``vcm-allow-control-plane-dns``) cannot be worn by an owner's pods (admission policy
``vcm-control-plane-labels``).

A tenant of this module (owner olga, role admin, namespace ``cpl-app``) is applied with the real engine after
the platform. As olga: a pod wearing either label is refused, so are a Deployment, a StatefulSet and a CronJob
whose pod template wears one, and so is relabelling a pod she already has; a ``release`` label of another value
is hers to use. The control plane's own ways are open: a cluster admin's StatefulSet wearing ``release=cpl``
gets its pod from the StatefulSet controller, and the control plane's ServiceAccount ``vc-cpl`` (the syncer)
may make pods wearing ``vcluster.loft.sh/managed-by=cpl`` but not ``release=cpl``. The twin switches the
policy's binding to audit only and olga's pod is admitted. Creations are server-side dry runs (admission runs
in full, nothing is stored) except where an object must exist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import localcluster, operations, platformconfig, spec, workspace

NS = "cpl-app"
RELEASE = {"release": "cpl"}
SYNCED = {"vcluster.loft.sh/managed-by": "cpl", "vcluster.loft.sh/namespace": "kube-system"}
POLICY = "vcm-control-plane-labels"


@pytest.fixture(scope="module")
def admin(host_cluster: localcluster.Cluster, engine_settings: workspace.Settings) -> Iterator[client.ApiClient]:
    cfg = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig))
    target = cfg.target(None)
    operations.platform_apply(engine_settings, target, cfg.blueprint)
    tenant = spec.parse_spec({"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "cpl"},
                              "spec": {"owners": [{"kind": "User", "name": "olga@example.com", "role": "admin"}],
                                       "namespaces": ["app"], "network": {"isolation": "strict"}}})
    outcomes = operations.run_jobs(engine_settings, [operations.Job(tenant, target, cfg.blueprint)], "apply")
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    api = config.new_client_from_config(str(host_cluster.kubeconfig))
    try:
        yield api
    finally:
        operations.delete_tenant(engine_settings, target, "cpl")


def _as(cluster: localcluster.Cluster, user: str, groups: tuple[str, ...] = ()) -> client.ApiClient:
    return config.new_client_from_config_dict(yaml.safe_load(localcluster.user_kubeconfig(cluster.name, user, groups)))


@pytest.fixture(scope="module")
def olga(admin: client.ApiClient, host_cluster: localcluster.Cluster) -> client.ApiClient:
    return _as(host_cluster, "olga@example.com")


@pytest.fixture(scope="module")
def syncer(admin: client.ApiClient, host_cluster: localcluster.Cluster) -> client.ApiClient:
    """The control plane's ServiceAccount vc-cpl, with the rights the chart gives it in its namespace."""
    client.CoreV1Api(admin).create_namespaced_service_account(NS, {"metadata": {"name": "vc-cpl"}})
    client.RbacAuthorizationV1Api(admin).create_namespaced_role_binding(NS, {
        "metadata": {"name": "vc-cpl-test"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "vc-cpl", "namespace": NS}]})
    return _as(host_cluster, f"system:serviceaccount:{NS}:vc-cpl", ("system:serviceaccounts",))


def _pod_spec() -> dict[str, Any]:
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": "registry.example/app:1.0", "imagePullPolicy": "Always",
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }],
    }


def _pod(labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{uuid.uuid4().hex[:6]}", "labels": {"test": "cpl", **labels}}, "spec": _pod_spec()}


def _workload(kind: str, labels: dict[str, str]) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "x", **labels}}, "spec": _pod_spec()}
    name = f"w-{uuid.uuid4().hex[:6]}"
    if kind == "CronJob":
        job = {"template": {**template, "spec": {**_pod_spec(), "restartPolicy": "Never"}}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": {"name": name},
                "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": job}}}
    body = {"selector": {"matchLabels": {"app": "x"}}, "template": template}
    if kind == "StatefulSet":
        body["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": body}


def _create(api: client.ApiClient, obj: dict[str, Any], *, dry_run: bool = True) -> tuple[int, str]:
    """(HTTP status, message) of creating ``obj`` in the tenant's namespace."""
    resource = dynamic.DynamicClient(api).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        resource.create(body=obj, namespace=NS, **({"dry_run": "All"} if dry_run else {}))
    except ApiException as exc:
        return int(exc.status), str(exc.body)
    return 201, ""


def _refused(result: tuple[int, str]) -> bool:
    return result[0] == 403 and POLICY in result[1]


def test_an_owner_s_pod_cannot_wear_the_control_plane_s_labels(olga: client.ApiClient) -> None:
    status, message = _create(olga, _pod(RELEASE))
    assert status == 403 and POLICY in message, message
    assert "the label release=cpl marks the pods of the tenant's control plane" in message
    assert _refused(_create(olga, _pod(SYNCED)))
    # the same owner's pod without them, or with a release label of another value, is admitted
    assert _create(olga, _pod({})) == (201, "")
    assert _create(olga, _pod({"release": "shop-frontend"})) == (201, "")


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "CronJob"])
def test_nor_through_a_workload_s_pod_template(olga: client.ApiClient, kind: str) -> None:
    assert _refused(_create(olga, _workload(kind, RELEASE)))
    assert _refused(_create(olga, _workload(kind, SYNCED)))
    assert _create(olga, _workload(kind, {})) == (201, "")


def test_nor_by_relabelling_a_pod_she_has(olga: client.ApiClient, admin: client.ApiClient) -> None:
    pod = _pod({})
    assert _create(olga, pod, dry_run=False) == (201, "")
    try:
        with pytest.raises(ApiException) as caught:
            client.CoreV1Api(olga).patch_namespaced_pod(pod["metadata"]["name"], NS, {"metadata": {"labels": RELEASE}})
        assert caught.value.status == 403 and POLICY in str(caught.value.body)
    finally:
        client.CoreV1Api(admin).delete_namespaced_pod(pod["metadata"]["name"], NS, grace_period_seconds=0)


def test_the_control_plane_s_own_ways_stay_open(admin: client.ApiClient, syncer: client.ApiClient) -> None:
    """A cluster admin's StatefulSet (the Helm release's) wearing release=cpl gets its pod from the
    StatefulSet controller; the syncer may make pods wearing the DNS rule's labels, not release=cpl."""
    sts = _workload("StatefulSet", RELEASE)
    assert _create(admin, sts, dry_run=False) == (201, "")
    core = client.CoreV1Api(admin)
    try:
        deadline = time.monotonic() + 60
        while not core.list_namespaced_pod(NS, label_selector="release=cpl").items:
            assert time.monotonic() < deadline, "the StatefulSet controller made no pod wearing release=cpl"
            time.sleep(0.3)
    finally:
        client.AppsV1Api(admin).delete_namespaced_stateful_set(sts["metadata"]["name"], NS)
        core.delete_collection_namespaced_pod(NS, label_selector="release=cpl", grace_period_seconds=0)
    assert _create(syncer, _pod(SYNCED)) == (201, "")
    assert _refused(_create(syncer, _pod(RELEASE)))


def test_twin_with_the_policy_only_auditing_the_owner_s_pod_is_admitted(olga: client.ApiClient,
                                                                         admin: client.ApiClient) -> None:
    bindings = client.AdmissionregistrationV1Api(admin)

    def actions(value: list[str]) -> None:
        bindings.patch_validating_admission_policy_binding(POLICY, {"spec": {"validationActions": value}})

    def wait_for(admitted: bool) -> None:
        deadline = time.monotonic() + 30  # the API server picks up a changed binding within a few seconds
        while (_create(olga, _pod(RELEASE))[0] == 201) != admitted:
            assert time.monotonic() < deadline, f"the owner's pod was {'never' if admitted else 'still'} admitted"
            time.sleep(0.3)

    actions(["Audit"])
    try:
        wait_for(admitted=True)
    finally:
        actions(["Deny"])
    wait_for(admitted=False)
