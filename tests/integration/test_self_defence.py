"""Self-defence of tenants on a real API server: no spoofed peers, object-count quotas.

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
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import localcluster, platformconfig, spec, workspace

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
}


def _tenant(name: str, policy: spec.Policy) -> spec.Tenant:
    data = {"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", **yaml.safe_load(SPECS[name])}
    return spec.parse_spec(data, source=f"{name}.yaml", policy=policy)


@pytest.fixture(scope="module")
def applied(host_cluster: localcluster.Cluster, engine_settings: workspace.Settings) -> Iterator[client.ApiClient]:
    policy = spec.parse_policy({"defaultQuota": {"objects": {"configmaps": 10, "secrets": 10}}})
    cfg = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig))
    target = cfg.target(None)
    blueprint = platformconfig.Blueprint(policy=policy)
    workspace.platform_apply(engine_settings, target, blueprint)
    jobs = [workspace.Job(_tenant(name, policy), target, blueprint) for name in SPECS]
    outcomes = workspace.run_jobs(engine_settings, jobs, "apply", parallel=1)
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
    try:
        _fill(sam, hard - used + 1)  # one past the count the blueprint sets
    finally:
        restore = {"spec": {"hard": {"count/configmaps": str(hard)}}}
        core.patch_namespaced_resource_quota("vcm-quota", "shop-web", restore)
