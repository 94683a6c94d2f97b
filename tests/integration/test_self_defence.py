"""Self-defence of tenants on a real API server: no spoofed peers, object-count quotas, deletion protection.

Two tenants of this module are applied with the real engine: ``ingress`` with a namespace ``nginx`` (so it
owns a namespace named ``ingress-nginx``, the issue's spoofing case) and ``shop``, which lets in
``ingress-nginx`` and an admin namespace ``ops-proxy``. No CNI runs here, so a peer's namespace selector
is judged by the API server itself: the namespaces it selects are listed with that selector. Each
property has a twin that weakens it and sees the property fail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from vcluster_mgr import cli, localcluster, operations, platformconfig, spec, workspace

SPECS = {
    "ingress": """
metadata: {name: ingress}
spec:
  owners: [{kind: User, name: mallory@example.com, role: admin}]
  namespaces: [nginx]
""",
    "shop": """
metadata: {name: shop}
spec:
  owners: [{kind: User, name: sam@example.com, role: admin}]
  namespaces: [web]
  quota:
    objects: {configmaps: 4}
  network:
    isolation: strict
    allowIngressFrom: [{namespace: ingress-nginx}, {namespace: ops-proxy}]
""",
    "gpus": """
metadata: {name: gpus}
spec:
  owners: [{kind: User, name: gia@example.com, role: admin}]
  namespaces: [train]
  quota:
    gpu: 1
    extendedResources: {nvidia.com/mig-1g.10gb: 1}
    deviceClasses: {gpu.example.com: 1}
""",
}


def _tenant(name: str, policy: spec.Policy) -> spec.Tenant:
    data = {"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", **yaml.safe_load(SPECS[name])}
    return spec.parse_spec(data, source=f"{name}.yaml", policy=policy)


@pytest.fixture(scope="module")
def applied(host_cluster: localcluster.Cluster, engine_settings: workspace.Settings) -> Iterator[client.ApiClient]:
    policy = spec.parse_policy({"defaultQuota": {"objects": {"configmaps": 10, "secrets": 10}},
                                "extendedResources": {"nvidia.com/mig-1g.10gb": 2, "nvidia.com/mig-3g.40gb": 1},
                                "deviceClasses": {"gpu.example.com": 2},
                                "gpuPlacement": {"nodeSelector": {"pool": "gpu"}, "tolerations": [
                                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}})
    cfg = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig))
    target = cfg.target(None)
    blueprint = platformconfig.Blueprint(policy=policy)
    operations.platform_apply(engine_settings, target, blueprint)
    jobs = [operations.Job(_tenant(name, policy), target, blueprint) for name in SPECS]
    outcomes = operations.run_jobs(engine_settings, jobs, "apply", parallel=1)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    admin = config.new_client_from_config(str(host_cluster.kubeconfig))
    core = client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": "ops-proxy"}})
    try:
        yield admin
    finally:
        core.delete_namespace("ops-proxy")


def _selector(peer: Any) -> str:
    """A NetworkPolicy peer's namespaceSelector as a label selector string the API server evaluates."""
    parts = [f"{k}={v}" for k, v in (peer.namespace_selector.match_labels or {}).items()]
    for e in peer.namespace_selector.match_expressions or []:
        if e.operator == "In":
            parts.append(f"{e.key} in ({','.join(e.values)})")
        elif e.operator == "NotIn":
            parts.append(f"{e.key} notin ({','.join(e.values)})")
        elif e.operator == "Exists":
            parts.append(e.key)
        else:
            parts.append(f"!{e.key}")
    return ",".join(parts)


def _admitted(core: client.CoreV1Api, peers: list[Any]) -> set[str]:
    """Namespaces any of ``peers`` selects, as the API server evaluates their selectors."""
    return {ns.metadata.name for p in peers for ns in core.list_namespace(label_selector=_selector(p)).items}


def _ingress_peers(admin: client.ApiClient) -> list[Any]:
    policy = client.NetworkingV1Api(admin).read_namespaced_network_policy("vcm-allow-ingress-from", "shop-web")
    return list(policy.spec.ingress[0]._from)


def test_a_tenant_named_like_the_ingress_controller_is_not_a_peer(applied: client.ApiClient) -> None:
    core = client.CoreV1Api(applied)
    assert core.read_namespace("ingress-nginx").metadata.labels["vcluster-mgr.dev/tenant"] == "ingress"
    assert _admitted(core, _ingress_peers(applied)) == {"ops-proxy"}


def test_twin_without_the_tenant_label_requirement_the_spoofer_gets_in(applied: client.ApiClient) -> None:
    core = client.CoreV1Api(applied)
    weakened = []
    for peer in _ingress_peers(applied):
        peer.namespace_selector.match_expressions = [
            e for e in peer.namespace_selector.match_expressions if e.key != "vcluster-mgr.dev/tenant"
        ]
        weakened.append(peer)
    assert _admitted(core, weakened) == {"ops-proxy", "ingress-nginx"}


def test_a_trusted_peer_tenant_is_let_in(applied: client.ApiClient) -> None:
    from vcluster_mgr import render

    policy = spec.parse_policy({"trustedPeerTenants": ["ingress"]})
    (allow,) = [o for o in render.render_tenant(_tenant("shop", policy), policy=policy)
                if o["metadata"]["name"] == "vcm-allow-ingress-from" and o["metadata"]["namespace"] == "shop-web"]
    peers = [client.V1NetworkPolicyPeer(namespace_selector=client.V1LabelSelector(match_expressions=[
        client.V1LabelSelectorRequirement(key=e["key"], operator=e["operator"], values=e.get("values"))
        for e in p["namespaceSelector"]["matchExpressions"]])) for p in allow["spec"]["ingress"][0]["from"]]
    assert _admitted(client.CoreV1Api(applied), peers) == {"ops-proxy", "ingress-nginx"}


def test_the_spoofing_owner_cannot_drop_the_tenant_label(applied: client.ApiClient,
                                                          host_cluster: localcluster.Cluster) -> None:
    mallory = config.new_client_from_config_dict(
        yaml.safe_load(localcluster.user_kubeconfig(host_cluster.name, "mallory@example.com")))
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(mallory).patch_namespace(
            "ingress-nginx", {"metadata": {"labels": {"vcluster-mgr.dev/tenant": None}}})
    assert caught.value.status == 403


# ---------------------------------------------------------------------------------------------
# Object-count quotas
# ---------------------------------------------------------------------------------------------


def _quota(core: client.CoreV1Api, key: str) -> tuple[int, int]:
    """(hard, used) of ``key`` in shop-web's vcm-quota, once the quota controller has counted it."""
    deadline = time.monotonic() + 60
    while True:
        q = core.read_namespaced_resource_quota("vcm-quota", "shop-web")
        used = (q.status.used or {}) if q.status else {}
        if key in used or time.monotonic() > deadline:
            return int(q.spec.hard[key]), int(used.get(key, "0"))
        time.sleep(0.5)


@pytest.fixture()
def sam(applied: client.ApiClient, host_cluster: localcluster.Cluster) -> Iterator[client.CoreV1Api]:
    core = client.CoreV1Api(config.new_client_from_config_dict(
        yaml.safe_load(localcluster.user_kubeconfig(host_cluster.name, "sam@example.com"))))
    yield core
    admin = client.CoreV1Api(applied)
    for cm in admin.list_namespaced_config_map("shop-web", label_selector="test=self-defence").items:
        admin.delete_namespaced_config_map(cm.metadata.name, "shop-web")


def _fill(core: client.CoreV1Api, count: int) -> None:
    for _ in range(count):
        core.create_namespaced_config_map("shop-web", {
            "metadata": {"name": f"fill-{uuid.uuid4().hex[:6]}", "labels": {"test": "self-defence"}}})


def test_one_configmap_past_the_count_is_refused(sam: client.CoreV1Api, applied: client.ApiClient) -> None:
    core = client.CoreV1Api(applied)
    hard, used = _quota(core, "count/configmaps")
    assert hard == 4
    assert int(core.read_namespaced_resource_quota("vcm-quota", "shop-web").spec.hard["count/secrets"]) == 10
    _fill(sam, hard - used)
    with pytest.raises(ApiException) as caught:
        _fill(sam, 1)
    assert caught.value.status == 403 and "exceeded quota" in str(caught.value.body)
    assert "count/configmaps" in str(caught.value.body)


def test_twin_without_the_count_the_same_configmap_is_admitted(sam: client.CoreV1Api,
                                                                applied: client.ApiClient) -> None:
    core = client.CoreV1Api(applied)
    hard, used = _quota(core, "count/configmaps")
    # the weakened blueprint: the same quota without the object count (null removes the key)
    core.patch_namespaced_resource_quota("vcm-quota", "shop-web", {"spec": {"hard": {"count/configmaps": None}}})
    _quota_ready(core, "shop-web", "count/configmaps", present=False)
    try:
        _fill(sam, hard - used + 1)  # one past the count the blueprint sets
    finally:
        restore = {"spec": {"hard": {"count/configmaps": str(hard)}}}
        core.patch_namespaced_resource_quota("vcm-quota", "shop-web", restore)
        _quota_ready(core, "shop-web", "count/configmaps")


# ---------------------------------------------------------------------------------------------
# GPUs and DRA devices
# ---------------------------------------------------------------------------------------------

GPU_NS = "gpus-train"


def _gpu_pod(resources: dict[str, str], *, pool: bool = True, tolerate: bool = True) -> dict[str, Any]:
    """A pod of the GPU tenant asking for ``resources``, on the GPU pool and tolerating its taint by default."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"gpu-{uuid.uuid4().hex[:6]}", "labels": {"test": "gpu"}},
        "spec": {
            **({"nodeSelector": {"pool": "gpu"}} if pool else {}),
            **({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
               if tolerate else {}),
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "train", "image": "registry.example/train:1.0", "imagePullPolicy": "Always",
                "resources": {"limits": {"cpu": "100m", "memory": "64Mi", **resources}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def _claim(count: int, device_class: str = "gpu.example.com") -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
        "metadata": {"name": f"claim-{uuid.uuid4().hex[:6]}", "labels": {"test": "gpu"}},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
            "deviceClassName": device_class, "allocationMode": "ExactCount", "count": count}}]}},
    }


@pytest.fixture()
def gia(applied: client.ApiClient, host_cluster: localcluster.Cluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config_dict(
        yaml.safe_load(localcluster.user_kubeconfig(host_cluster.name, "gia@example.com")))
    _quota_ready(client.CoreV1Api(applied), GPU_NS, "gpu.example.com.deviceclass.resource.k8s.io/devices")
    yield api
    admin = dynamic.DynamicClient(applied)
    for api_version, kind in (("v1", "Pod"), ("resource.k8s.io/v1", "ResourceClaim")):
        resource = admin.resources.get(api_version=api_version, kind=kind)
        resource.delete(namespace=GPU_NS, label_selector="test=gpu")
        deadline = time.monotonic() + 30  # quota usage is released once the objects are gone
        while resource.get(namespace=GPU_NS, label_selector="test=gpu").items and time.monotonic() < deadline:
            time.sleep(0.3)


def _quota_ready(core: client.CoreV1Api, namespace: str, key: str, present: bool = True) -> None:
    """Wait until the quota controller has synced ``key`` into the quota's status (admission enforces that)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        q = core.read_namespaced_resource_quota("vcm-quota", namespace)
        if bool(q.status and key in (q.status.hard or {})) == present:
            return
        time.sleep(0.3)
    raise AssertionError(f"quota {namespace}/vcm-quota never synced {key}")


def _create(api: client.ApiClient, obj: dict[str, Any]) -> int:
    """HTTP status of creating ``obj`` in the GPU tenant's namespace (201, or the refusal's status)."""
    resource = dynamic.DynamicClient(api).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        resource.create(body=obj, namespace=GPU_NS)
    except ApiException as exc:
        return int(exc.status) if exc.status != 403 else (403 if "exceeded quota" in str(exc.body) else 4030)
    return 201


PLACEMENT_REFUSED = 4030
"""``_create``'s answer for a 403 from an admission policy rather than from the quota."""


def test_gpu_pods_past_the_quota_are_refused_within_it_admitted(gia: client.ApiClient) -> None:
    assert _create(gia, _gpu_pod({"nvidia.com/gpu": "2"})) == 403
    assert _create(gia, _gpu_pod({"nvidia.com/mig-1g.10gb": "2"})) == 403
    # a profile the policy lists but the tenant did not ask for is 0, not unlimited
    assert _create(gia, _gpu_pod({"nvidia.com/mig-3g.40gb": "1"})) == 403
    assert _create(gia, _gpu_pod({"nvidia.com/gpu": "1", "nvidia.com/mig-1g.10gb": "1"})) == 201


def test_resource_claims_past_the_device_class_quota_are_refused(gia: client.ApiClient) -> None:
    assert _create(gia, _claim(2)) == 403
    assert _create(gia, _claim(1)) == 201
    assert _create(gia, _claim(1)) == 403  # the tenant's one device is claimed


def test_twin_without_the_gpu_and_device_quota_both_are_admitted(gia: client.ApiClient,
                                                                  applied: client.ApiClient) -> None:
    core = client.CoreV1Api(applied)
    keys = ("requests.nvidia.com/gpu", "gpu.example.com.deviceclass.resource.k8s.io/devices")
    hard = core.read_namespaced_resource_quota("vcm-quota", GPU_NS).spec.hard
    core.patch_namespaced_resource_quota("vcm-quota", GPU_NS, {"spec": {"hard": dict.fromkeys(keys)}})
    for key in keys:
        _quota_ready(core, GPU_NS, key, present=False)
    try:
        assert _create(gia, _gpu_pod({"nvidia.com/gpu": "2"})) == 201
        assert _create(gia, _claim(2)) == 201
    finally:
        core.patch_namespaced_resource_quota("vcm-quota", GPU_NS, {"spec": {"hard": {k: hard[k] for k in keys}}})
        for key in keys:
            _quota_ready(core, GPU_NS, key)


def test_gpu_pods_must_run_on_the_gpu_pool(gia: client.ApiClient) -> None:
    assert _create(gia, _gpu_pod({"nvidia.com/gpu": "1"}, pool=False)) == PLACEMENT_REFUSED
    assert _create(gia, _gpu_pod({"nvidia.com/mig-1g.10gb": "1"}, pool=False)) == PLACEMENT_REFUSED
    # a pod without a GPU may not tolerate the GPU taint (it would take a GPU node's place)
    assert _create(gia, _gpu_pod({}, pool=False)) == PLACEMENT_REFUSED
    assert _create(gia, _gpu_pod({}, pool=False, tolerate=False)) == 201
    assert _create(gia, _gpu_pod({"nvidia.com/gpu": "1"})) == 201


def test_twin_without_the_gpu_pool_in_the_placement_a_stray_gpu_pod_is_admitted(
    gia: client.ApiClient, applied: client.ApiClient
) -> None:
    core = client.CoreV1Api(applied)
    data = core.read_namespaced_config_map("vcm-placement", GPU_NS).data
    core.patch_namespaced_config_map("vcm-placement", GPU_NS, {"data": {"gpu-selector-0": None}})
    try:
        deadline = time.monotonic() + 20  # admission reads its parameter from an informer
        while (status := _create(gia, _gpu_pod({"nvidia.com/gpu": "1"}, pool=False))) != 201:
            assert status == PLACEMENT_REFUSED and time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        core.patch_namespaced_config_map("vcm-placement", GPU_NS, {"data": data})


# ---------------------------------------------------------------------------------------------
# Deletion protection
# ---------------------------------------------------------------------------------------------

PROTECTED = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {name: vault}
spec:
  owners: [{kind: User, name: vic@example.com, role: admin}]
  namespaces: [data]
  ttl: 1h
  protect: true
"""


def test_a_protected_tenant_is_kept_by_delete_gc_and_the_engine(
    host_cluster: localcluster.Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(host_cluster.kubeconfig))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()

    def vcm(*args: str) -> tuple[int, str]:
        res = runner.invoke(cli.app, list(args))
        return res.exit_code, res.stdout + res.stderr

    path = tmp_path / "vault.yaml"
    path.write_text(PROTECTED)
    code, text = vcm("apply", str(path), "--yes")
    assert code == 0, text
    core = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))

    def alive() -> bool:
        try:
            return core.read_namespace("vault-data").metadata.deletion_timestamp is None
        except ApiException as exc:
            assert exc.status == 404
            return False

    code, text = vcm("delete", "vault", "--yes")
    assert code == 1 and "deletion protection" in text and "--unprotect" in text and "spec.protect: false" in text
    later = "2100-01-01T00:00:00Z"  # past the ttl: gc would delete it
    code, text = vcm("gc", "--now", later)
    assert code == 1 and "deletion protection" in text
    # a GitOps removal is a plain destroy: Pulumi's own protect refuses it
    settings = workspace.settings(state_dir=tmp_path / "state")
    target = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig)).target(None)
    job = operations.Job(spec.load_spec(path), target, platformconfig.Blueprint())
    (outcome,) = operations.run_jobs(settings, [job], "delete")
    assert not outcome.ok and "cannot be deleted" in (outcome.error or ""), outcome.error
    assert alive()
    # ... and it stays whole: its quota is still there
    assert core.read_namespaced_resource_quota("vcm-quota", "vault-data").spec.hard
    # the twin: with the override, gc deletes it
    code, text = vcm("gc", "--now", later, "--unprotect")
    assert code == 0, text
    assert not alive()
