"""Isolation of the example tenants, proven by acting as their owners.

After a real ``pulumi up`` of the platform and examples/tenants (fixture ``examples_applied``), each
test authenticates with a client certificate issued by the local cluster's CA for the owner's user
name (``alice@example.com``, admin of tenant payments) and tries what a tenant may and may not do. The
API server's RBAC, Pod Security admission, ResourceQuota, LimitRanger and our ValidatingAdmissionPolicies
decide. Everything a test creates, it deletes again (other tests share the cluster).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import localcluster

from .conftest import Applied

APP = "payments-app"
OTHER = "search-web"


def _client(kubeconfig_text: str) -> client.ApiClient:
    return config.new_client_from_config_dict(yaml.safe_load(kubeconfig_text))


@pytest.fixture(scope="module")
def alice(examples_applied: Applied) -> client.ApiClient:
    return _client(localcluster.user_kubeconfig(examples_applied.cluster.name, "alice@example.com"))


@pytest.fixture(scope="module")
def admin(examples_applied: Applied) -> client.ApiClient:
    return config.new_client_from_config(str(examples_applied.cluster.kubeconfig))


def _status(call: Any, *args: Any, **kwargs: Any) -> int:
    """HTTP status of an API call: 200/201 on success, the error's status otherwise."""
    try:
        call(*args, **kwargs)
    except ApiException as exc:
        return int(exc.status)
    return 200


def _refusal(call: Any, *args: Any, **kwargs: Any) -> str:
    """The API server's message for a call that must be refused (fails the test if it was accepted)."""
    try:
        call(*args, **kwargs)
    except ApiException as exc:
        assert exc.status in (403, 422), f"unexpected status {exc.status}: {exc.body}"
        return str(exc.body)
    raise AssertionError("the call was accepted but must be refused")


def compliant_pod(name: str) -> dict[str, Any]:
    """A pod that satisfies everything the payments blueprint asks: restricted PSS, placement, pull policy."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"pool": "tenants"},
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": "registry.example/app:1.0", "imagePullPolicy": "Always",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def _with(pod: dict[str, Any], change: Any) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    change(pod)
    return pod


@pytest.fixture()
def cleanup(admin: client.ApiClient) -> Iterator[list[tuple[str, str, str, str]]]:
    """Objects to delete after the test: (apiVersion, kind, namespace, name)."""
    created: list[tuple[str, str, str, str]] = []
    yield created
    dyn = dynamic.DynamicClient(admin)
    for api_version, kind, ns, name in created:
        try:
            dyn.resources.get(api_version=api_version, kind=kind).delete(name=name, namespace=ns,
                                                                          grace_period_seconds=0)
        except ApiException:
            pass


def test_owner_can_work_in_own_namespaces(alice: client.ApiClient, cleanup: list[Any]) -> None:
    suffix = uuid.uuid4().hex[:6]
    apps, core, rbac = client.AppsV1Api(alice), client.CoreV1Api(alice), client.RbacAuthorizationV1Api(alice)
    pod = compliant_pod("x")
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"web-{suffix}"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]}}}
    apps.create_namespaced_deployment(APP, deploy)
    cleanup.append(("apps/v1", "Deployment", APP, f"web-{suffix}"))
    core.create_namespaced_config_map(APP, {"metadata": {"name": f"cfg-{suffix}"}, "data": {"k": "v"}})
    cleanup.append(("v1", "ConfigMap", APP, f"cfg-{suffix}"))
    rbac.create_namespaced_role(APP, {"metadata": {"name": f"reader-{suffix}"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    cleanup.append(("rbac.authorization.k8s.io/v1", "Role", APP, f"reader-{suffix}"))
    rbac.create_namespaced_role_binding(APP, {
        "metadata": {"name": f"reader-{suffix}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"reader-{suffix}"},
        "subjects": [{"kind": "User", "name": "bob@example.com", "apiGroup": "rbac.authorization.k8s.io"}]})
    cleanup.append(("rbac.authorization.k8s.io/v1", "RoleBinding", APP, f"reader-{suffix}"))
    assert core.read_namespaced_config_map(f"cfg-{suffix}", APP).data == {"k": "v"}


def test_owner_cannot_touch_another_tenant(alice: client.ApiClient) -> None:
    core = client.CoreV1Api(alice)
    assert _status(core.list_namespaced_config_map, OTHER) == 403
    assert _status(core.list_namespaced_pod, OTHER) == 403
    assert _status(core.create_namespaced_config_map, OTHER, {"metadata": {"name": "intruder"}}) == 403
    assert _status(core.delete_namespaced_resource_quota, "vcm-quota", OTHER) == 403


def test_owner_cannot_reach_cluster_scoped_resources(alice: client.ApiClient) -> None:
    core, rbac = client.CoreV1Api(alice), client.RbacAuthorizationV1Api(alice)
    ext = client.ApiextensionsV1Api(alice)
    assert _status(core.list_node) == 403
    assert _status(core.list_namespace) == 403
    assert _status(core.create_namespace, {"metadata": {"name": f"rogue-{uuid.uuid4().hex[:6]}"}}) == 403
    assert _status(core.patch_namespace, APP, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce":
                                                                       "privileged"}}}) == 403
    assert _status(rbac.list_cluster_role) == 403
    assert _status(rbac.create_cluster_role, {"metadata": {"name": "rogue"}, "rules": []}) == 403
    assert _status(ext.list_custom_resource_definition) == 403


def _blueprint_objects(admin: client.ApiClient, kind: str) -> list[str]:
    core, net = client.CoreV1Api(admin), client.NetworkingV1Api(admin)
    items = {"ResourceQuota": core.list_namespaced_resource_quota,
             "LimitRange": core.list_namespaced_limit_range,
             "NetworkPolicy": net.list_namespaced_network_policy}[kind](APP).items
    return [i.metadata.name for i in items if (i.metadata.labels or {}).get("app.kubernetes.io/managed-by")
            == "vcluster-mgr"]


def test_owner_cannot_change_the_blueprint(alice: client.ApiClient, admin: client.ApiClient) -> None:
    core, net = client.CoreV1Api(alice), client.NetworkingV1Api(alice)
    quotas = _blueprint_objects(admin, "ResourceQuota")
    limits = _blueprint_objects(admin, "LimitRange")
    policies = _blueprint_objects(admin, "NetworkPolicy")
    assert quotas and limits and "vcm-default-deny" in policies
    raise_pods = {"spec": {"hard": {"pods": "1000"}}}
    for name in quotas:
        _refusal(core.patch_namespaced_resource_quota, name, APP, raise_pods)
        _refusal(core.delete_namespaced_resource_quota, name, APP)
    for name in limits:
        _refusal(core.delete_namespaced_limit_range, name, APP)
    # the built-in admin role may edit NetworkPolicies: the vcm-protect-blueprint policy closes that gap
    for name in policies:
        msg = _refusal(net.delete_namespaced_network_policy, name, APP)
        assert "vcm-protect-blueprint" in msg or "forbidden" in msg.lower()
        _refusal(net.patch_namespaced_network_policy, name, APP, {"spec": {"policyTypes": ["Ingress"]}})
    _refusal(core.delete_namespaced_config_map, "vcm-placement", APP)
    # and still all there
    assert _blueprint_objects(admin, "NetworkPolicy") == policies


def test_owner_cannot_escalate_to_cluster_admin(alice: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(alice)
    msg = _refusal(rbac.create_namespaced_role_binding, APP, {
        "metadata": {"name": "grab-cluster-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"}]})
    assert "attempting to grant RBAC permissions not currently held" in msg


@pytest.mark.parametrize("name,change", [
    # privileged needs allowPrivilegeEscalation too, or the API's own validation refuses it before admission
    ("privileged", lambda p: p["spec"]["containers"][0]["securityContext"].update(
        privileged=True, allowPrivilegeEscalation=True)),
    ("hostpath", lambda p: p["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}])),
    ("hostnetwork", lambda p: p["spec"].update(hostNetwork=True)),
    ("hostpid", lambda p: p["spec"].update(hostPID=True)),
    ("hostipc", lambda p: p["spec"].update(hostIPC=True)),
    ("addcap", lambda p: p["spec"]["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
    ("root", lambda p: p["spec"]["securityContext"].update(runAsNonRoot=False)),
])
def test_unsafe_pods_are_refused_by_pod_security(alice: client.ApiClient, name: str, change: Any) -> None:
    msg = _refusal(client.CoreV1Api(alice).create_namespaced_pod, APP, _with(compliant_pod(f"bad-{name}"), change),
                   dry_run="All")
    assert "PodSecurity" in msg


def test_compliant_pod_is_accepted_and_gets_limitrange_defaults(alice: client.ApiClient,
                                                                cleanup: list[Any]) -> None:
    core = client.CoreV1Api(alice)
    name = f"ok-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(APP, compliant_pod(name))
    cleanup.append(("v1", "Pod", APP, name))
    resources = core.read_namespaced_pod(name, APP).spec.containers[0].resources
    # payments.yaml: defaultRequest {cpu: 100m, memory: 128Mi}, default {cpu: 500m, memory: 512Mi}
    assert resources.requests == {"cpu": "100m", "memory": "128Mi"}
    assert resources.limits == {"cpu": "500m", "memory": "512Mi"}


def test_image_pull_policy_must_be_always(alice: client.ApiClient) -> None:
    pod = _with(compliant_pod("pull"), lambda p: p["spec"]["containers"][0].update(imagePullPolicy="IfNotPresent"))
    msg = _refusal(client.CoreV1Api(alice).create_namespaced_pod, APP, pod, dry_run="All")
    assert "vcm-image-pull-always" in msg


def test_placement_node_selector_is_enforced(alice: client.ApiClient) -> None:
    core = client.CoreV1Api(alice)
    for selector in ({}, {"pool": "other"}):
        pod = _with(compliant_pod("placed"), lambda p, s=selector: p["spec"].update(nodeSelector=s))
        msg = _refusal(core.create_namespaced_pod, APP, pod, dry_run="All")
        assert "vcm-placement" in msg and "pool=tenants" in msg


def test_node_port_and_load_balancer_services_are_refused(alice: client.ApiClient) -> None:
    core = client.CoreV1Api(alice)
    for svc_type in ("NodePort", "LoadBalancer"):
        svc = {"metadata": {"name": svc_type.lower()},
               "spec": {"type": svc_type, "ports": [{"port": 80}], "selector": {"app": "x"}}}
        msg = _refusal(core.create_namespaced_service, APP, svc)
        assert "exceeded quota" in msg and "services." in msg
    # a ClusterIP service is fine (dry run: nothing left behind)
    core.create_namespaced_service(APP, {"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 80}]}},
                                   dry_run="All")


def test_pod_count_quota_is_enforced(alice: client.ApiClient, admin: client.ApiClient,
                                     cleanup: list[Any]) -> None:
    core = client.CoreV1Api(alice)
    quota = client.CoreV1Api(admin).read_namespaced_resource_quota("vcm-quota", APP)
    hard = int(quota.spec.hard["pods"])
    assert hard == 30  # 60 pods over two namespaces
    used = int((quota.status.used or {}).get("pods", "0"))
    prefix = f"fill-{uuid.uuid4().hex[:4]}"
    # tiny pods, so the cpu and memory quotas are not what stops them
    tiny = {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "10m", "memory": "16Mi"}}
    for i in range(hard - used):
        core.create_namespaced_pod(APP, _with(compliant_pod(f"{prefix}-{i}"),
                                              lambda p: p["spec"]["containers"][0].update(resources=tiny)))
        cleanup.append(("v1", "Pod", APP, f"{prefix}-{i}"))
    msg = _refusal(core.create_namespaced_pod, APP, _with(compliant_pod(f"{prefix}-over"),
                                                          lambda p: p["spec"]["containers"][0].update(resources=tiny)))
    assert "exceeded quota" in msg and "requested: pods=1" in msg


def test_network_policies_content(admin: client.ApiClient, examples_applied: Applied) -> None:
    """No CNI runs here, so NetworkPolicies are checked for content, not enforcement."""
    net = client.NetworkingV1Api(admin)
    for ns in examples_applied.tenants["payments"].namespace_names():
        pols = {p.metadata.name: p.spec for p in net.list_namespaced_network_policy(ns).items}
        deny = pols["vcm-default-deny"]
        assert deny.pod_selector.match_labels is None and deny.pod_selector.match_expressions is None
        assert sorted(deny.policy_types) == ["Egress", "Ingress"]
        assert not deny.ingress and not deny.egress
        dns = pols["vcm-allow-dns"].egress[0]
        assert {(p.protocol, p.port) for p in dns.ports} == {("UDP", 53), ("TCP", 53)}
        tenant = pols["vcm-allow-tenant"]
        peers = tenant.ingress[0]._from[0].namespace_selector.match_expressions[0]
        assert peers.key == "kubernetes.io/metadata.name" and sorted(peers.values) == ["payments-app", "payments-ci"]
        ingress_from = pols["vcm-allow-ingress-from"].ingress[0]._from[0].namespace_selector.match_expressions[0]
        assert ingress_from.values == ["ingress-nginx"]
        egress = pols["vcm-allow-egress-to"].egress[0]
        assert egress.to[0].ip_block.cidr == "10.20.0.0/16" and egress.ports[0].port == 5432
