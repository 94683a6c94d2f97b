"""The blueprint (vcluster_mgr.render and templates/).

Covers: golden files for the three example tenants and the platform (regenerate them with
``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff); deterministic order; every
object labelled and confined to its tenant's namespaces; the even quota split; the NetworkPolicies
of each isolation level; RoleBindings and placement; the admission policies; an admin's own
templates folder, and the checks that turn a bad template into a RenderError.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcluster_mgr import errors, kube, naming, render, spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "tenants"
GOLDEN = Path(__file__).resolve().parent / "golden"
PAYMENTS = EXAMPLES / "payments.yaml"


def golden_check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"{path} is missing; run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(), f"{path} differs from the render; review, then UPDATE_GOLDEN=1 to accept"


def payments_data() -> dict[str, Any]:
    return yaml.safe_load(PAYMENTS.read_text())


def by_kind(objects: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (namespace is None or o["metadata"]["namespace"] == namespace)]


def names(objects: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


# ---------------------------------------------------------------------------------------------
# Golden files and determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_golden_tenant(path: Path) -> None:
    tenant = spec.load_spec(path)
    golden_check(path.stem, render.dump_manifests(render.render_tenant(tenant)))


def test_golden_platform() -> None:
    golden_check("platform", render.dump_manifests(render.render_platform()))


def test_golden_files_cover_exactly_the_examples() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(
        [p.stem for p in EXAMPLES.glob("*.yaml")] + ["platform"]
    )


def test_render_is_deterministic_and_independent_of_key_order() -> None:
    data = payments_data()
    first = render.dump_manifests(render.render_tenant(spec.parse_spec(data)))
    shuffled = {key: data[key] for key in reversed(list(data))}
    shuffled["spec"] = {key: data["spec"][key] for key in reversed(list(data["spec"]))}
    shuffled["spec"]["namespaces"] = list(reversed(data["spec"]["namespaces"]))
    second = render.dump_manifests(render.render_tenant(spec.parse_spec(shuffled)))
    assert first == second


def test_order_is_namespaces_first_then_kind_namespace_name() -> None:
    objects = render.render_tenant(spec.load_spec(EXAMPLES / "search.yaml"))
    kinds = [o["kind"] for o in objects]
    assert kinds[:3] == ["Namespace"] * 3
    order = list(render.TENANT_KINDS)
    keys = [(order.index(o["kind"]), o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects]
    assert keys == sorted(keys)
    assert list(dict.fromkeys(kinds)) == [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "RoleBinding",
        "ConfigMap",
        "FlowSchema",
    ]


def test_dump_round_trips() -> None:
    objects = render.render_tenant(spec.load_spec(PAYMENTS)) + render.render_platform()
    text = render.dump_manifests(objects)
    assert text.startswith("---\n")
    assert list(yaml.safe_load_all(text)) == objects


# ---------------------------------------------------------------------------------------------
# Labels and confinement
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_object_is_labelled_and_confined(path: Path) -> None:
    tenant = spec.load_spec(path)
    objects = render.render_tenant(tenant)
    own = tenant.namespace_names()
    assert names(by_kind(objects, "Namespace")) == sorted(own)
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels[naming.MANAGED_BY_KEY] == "vcluster-mgr"
        assert labels[naming.TENANT_LABEL] == tenant.name
        assert tenant.labels.items() <= labels.items()
        if obj["kind"] == "Namespace":
            assert "namespace" not in obj["metadata"]
        elif obj["kind"] == "FlowSchema":  # the one cluster-scoped object besides namespaces (API fairness)
            assert obj["metadata"]["name"] == f"vcm-tenant-{tenant.name}" and "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] in own
    per_namespace = {kind: len(by_kind(objects, kind)) for kind in ("ResourceQuota", "LimitRange", "ConfigMap")}
    assert per_namespace == {"ResourceQuota": len(own), "LimitRange": len(own), "ConfigMap": len(own)}


def test_namespace_pod_security_labels() -> None:
    data = yaml.safe_load((EXAMPLES / "search.yaml").read_text())
    data["spec"]["podSecurity"] = "baseline"
    tenant = spec.parse_spec(data)
    for namespace in by_kind(render.render_tenant(tenant), "Namespace"):
        labels = namespace["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "baseline"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest"


# ---------------------------------------------------------------------------------------------
# Quota split
# ---------------------------------------------------------------------------------------------


def test_quota_is_split_evenly_across_namespaces() -> None:
    data = payments_data()
    data["spec"]["namespaces"] = ["app", "ci", "web"]
    data["spec"]["quota"] = {
        "cpu": "5",
        "limitsCpu": "10",
        "memory": "16Gi",
        "storage": "100Gi",
        "pods": 2,
        "services": 0,
        "gpu": 4,
        "objects": {"configmaps": 30, "jobs.batch": 0},
    }
    tenant = spec.parse_spec(data)
    quotas = by_kind(render.render_tenant(tenant), "ResourceQuota")
    assert len(quotas) == 3
    hards = [q["spec"]["hard"] for q in quotas]
    assert hards[0] == {
        "requests.cpu": "1667m",  # 5 / 3 is 1666.67m: the 2m left over go to the first two namespaces
        "limits.cpu": "3334m",
        "requests.memory": "5726623062",  # 16Gi / 3 to a byte, the leftover byte to the first
        "limits.memory": "5726623062",  # limitsMemory defaults to memory
        "requests.storage": "35791394134",
        "pods": "1",  # 2 over 3: 1 + 1 + 0, and the third keeps room for one
        "services": "0",  # a zero total stays zero
        "requests.nvidia.com/gpu": "2",  # 4 over 3: 2 + 1 + 1
        "count/configmaps": "10",  # the spec's own count, split
        "count/jobs.batch": "0",
        "count/cronjobs.batch": "7",  # the policy's default of 20, split: 7 + 7 + 6
        "count/persistentvolumeclaims": "7",
        "count/secrets": "34",
        "count/serviceaccounts": "17",
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    assert [h["requests.cpu"] for h in hards] == ["1667m", "1667m", "1666m"]
    assert [h["pods"] for h in hards] == ["1", "1", "1"]
    for key in ("requests.cpu", "limits.cpu", "requests.memory", "limits.memory", "requests.storage"):
        total = sum(kube.parse_quantity(h[key]).value for h in hards)
        given = {"requests.cpu": "5", "limits.cpu": "10", "requests.memory": "16Gi", "limits.memory": "16Gi",
                 "requests.storage": "100Gi"}[key]
        assert total == kube.parse_quantity(given).value, key  # the split keeps the total, to the unit
    for key in ("requests.nvidia.com/gpu", "count/cronjobs.batch", "count/secrets", "count/configmaps"):
        assert sum(int(h[key]) for h in hards) == {"requests.nvidia.com/gpu": 4, "count/cronjobs.batch": 20,
                                                   "count/secrets": 100, "count/configmaps": 30}[key], key


def test_a_split_keeps_the_total_of_counts_and_quantities() -> None:
    """61 pods over two namespaces are 31 + 30 (not 30 + 30, which lost one and made 60 -> 61 no change);
    cpu 5 over three is 5000m in all (not 4998m)."""
    data = payments_data()
    data["spec"]["namespaces"] = ["app", "ci"]
    data["spec"]["quota"] = {"cpu": "5", "memory": "1Gi", "pods": 61, "services": 3}
    hard = {q["metadata"]["namespace"]: q["spec"]["hard"]
            for q in by_kind(render.render_tenant(spec.parse_spec(data)), "ResourceQuota")}
    assert (hard["payments-app"]["pods"], hard["payments-ci"]["pods"]) == ("31", "30")
    assert (hard["payments-app"]["services"], hard["payments-ci"]["services"]) == ("2", "1")
    assert (hard["payments-app"]["requests.cpu"], hard["payments-ci"]["requests.cpu"]) == ("2500m", "2500m")
    before = render.render_tenant(spec.parse_spec(payments_data() | {"spec": {**data["spec"], "quota": {
        **data["spec"]["quota"], "pods": 60}}}))
    assert {q["spec"]["hard"]["pods"] for q in by_kind(before, "ResourceQuota")} == {"30"}


def test_apportion_shares_out_the_remainder_by_largest_remainder() -> None:
    assert render.apportion(61, [1, 1]) == [31, 30]
    assert render.apportion(5000, [1, 1, 1]) == [1667, 1667, 1666]
    assert render.apportion(10, [3, 1]) == [8, 2]  # 7.5 + 2.5: the tie goes to the first
    assert render.apportion(10, [1, 3]) == [3, 7]
    assert render.apportion(11, [1, 3]) == [3, 8]  # 2.75 + 8.25: the larger remainder first
    assert render.apportion(7, [2, 0, 1]) == [5, 0, 2]  # a weight of 0 never gets a leftover unit
    assert render.apportion(0, [1, 1]) == [0, 0]
    assert render.apportion(5, [0, 0]) == [0, 0]
    for total in range(0, 50):
        for weights in ([1], [1, 1, 1], [3, 1], [5, 2, 0, 1]):
            assert sum(render.apportion(total, weights)) == total


def test_quota_shares_weight_the_split() -> None:
    data = payments_data()
    data["spec"]["namespaces"] = ["app", "ci"]
    data["spec"]["quota"] = {"cpu": "4", "memory": "8Gi", "pods": 10, "services": 4, "shares": {"app": 3, "ci": 1},
                             "objects": {"configmaps": 40}}
    quotas = {q["metadata"]["namespace"]: q["spec"]["hard"]
              for q in by_kind(render.render_tenant(spec.parse_spec(data)), "ResourceQuota")}
    assert (quotas["payments-app"]["requests.cpu"], quotas["payments-ci"]["requests.cpu"]) == ("3", "1")
    assert (quotas["payments-app"]["requests.memory"], quotas["payments-ci"]["requests.memory"]) == ("6Gi", "2Gi")
    assert (quotas["payments-app"]["pods"], quotas["payments-ci"]["pods"]) == ("8", "2")  # 7.5 + 2.5: 10 in all
    assert (quotas["payments-app"]["count/configmaps"], quotas["payments-ci"]["count/configmaps"]) == ("30", "10")


def test_a_zero_share_gets_zero_but_keeps_room_for_the_blueprints_own_objects() -> None:
    data = payments_data()
    data["spec"]["namespaces"] = ["app", "ci"]
    data["spec"]["quota"] = {"cpu": "4", "memory": "8Gi", "pods": 10, "shares": {"app": 1, "ci": 0}}
    quotas = {q["metadata"]["namespace"]: q["spec"]["hard"]
              for q in by_kind(render.render_tenant(spec.parse_spec(data)), "ResourceQuota")}
    ci = quotas["payments-ci"]
    assert (ci["requests.cpu"], ci["requests.memory"], ci["pods"], ci["count/secrets"]) == ("0", "0", "0", "0")
    assert (ci["count/configmaps"], ci["count/serviceaccounts"]) == ("2", "1")  # kube-root-ca, vcm-placement, default
    assert quotas["payments-app"]["requests.cpu"] == "4"


def test_a_control_plane_tenant_gets_its_whole_quota_in_the_first_namespace() -> None:
    tenant = spec.load_spec(REPO / "examples" / "controlplane" / "vteam.yaml")
    data = tenant.model_dump(mode="json", by_alias=True, exclude_none=True)
    del data["spec"]["quota"]["shares"]
    quotas = {q["metadata"]["namespace"]: q["spec"]["hard"]
              for q in by_kind(render.render_tenant(spec.parse_spec(data)), "ResourceQuota")}
    assert (quotas["vteam-cp"]["pods"], quotas["vteam-apps"]["pods"]) == ("40", "0")
    shared = {q["metadata"]["namespace"]: q["spec"]["hard"] for q in by_kind(render.render_tenant(tenant),
                                                                              "ResourceQuota")}
    assert (shared["vteam-cp"]["pods"], shared["vteam-apps"]["pods"]) == ("30", "10")  # the example's 3:1


def test_quota_shares_must_name_every_namespace() -> None:
    data = payments_data()
    data["spec"]["namespaces"] = ["app", "ci"]
    data["spec"]["quota"] = {"shares": {"app": 1, "web": 2}}
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec(data)
    found = {e.path: e.message for e in caught.value.errors}
    assert "is not one of spec.namespaces" in found["spec.quota.shares.web"]
    assert "gives no share to ci" in found["spec.quota.shares"]
    data["spec"]["quota"] = {"shares": {"app": 0, "ci": 0}}
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec(data)
    assert "all 0" in caught.value.errors[0].message


def _cp_policies(host_api: list[dict[str, Any]], isolation: str = "strict") -> dict[str, dict[str, Any]]:
    tenant = spec.load_spec(REPO / "examples" / "controlplane" / "vteam.yaml")
    data = tenant.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["spec"]["network"] = {"isolation": isolation}
    objects = render.render_tenant(spec.parse_spec(data), host_api=host_api)
    return {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in by_kind(objects, "NetworkPolicy")}


def test_a_strict_control_plane_gets_egress_to_the_host_api_and_its_dns_upstream() -> None:
    found = _cp_policies([{"ip": "10.96.0.1", "port": 443}, {"ip": "10.244.0.1", "port": 6443},
                          {"ip": "10.96.0.1", "port": 443}])
    api = found["vteam-cp/vcm-allow-control-plane"]["spec"]
    assert api["podSelector"] == {"matchLabels": {"app": "vcluster", "release": "vteam"}}
    assert api["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.244.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]},
        {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    ]
    dns = found["vteam-cp/vcm-allow-control-plane-dns"]["spec"]
    assert dns["podSelector"] == {"matchLabels": {"vcluster.loft.sh/managed-by": "vteam",
                                                  "vcluster.loft.sh/namespace": "kube-system"}}
    assert dns["egress"][0]["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    # only in the control plane's namespace, and only under strict isolation
    assert not [k for k in found if k.startswith("vteam-apps/vcm-allow-control-plane")]
    assert not [k for k in _cp_policies([{"ip": "10.96.0.1", "port": 443}], "namespace")
                if "control-plane" in k]


def test_offline_render_leaves_out_the_host_api_rule_it_cannot_know() -> None:
    found = _cp_policies([])
    assert "vteam-cp/vcm-allow-control-plane" not in found
    assert "vteam-cp/vcm-allow-control-plane-dns" in found


def test_quota_of_the_example() -> None:
    hard = by_kind(render.render_tenant(spec.load_spec(PAYMENTS)), "ResourceQuota")[0]["spec"]["hard"]
    assert (hard["requests.cpu"], hard["requests.memory"], hard["requests.storage"], hard["pods"]) == (
        "4",
        "8Gi",
        "50Gi",
        "30",
    )


def test_policy_can_allow_node_ports_and_load_balancers() -> None:
    tenant = spec.load_spec(PAYMENTS)
    policy = spec.parse_policy({"allowNodePorts": True, "allowLoadBalancers": True})
    hard = by_kind(render.render_tenant(tenant, policy=policy), "ResourceQuota")[0]["spec"]["hard"]
    assert "services.nodeports" not in hard and "services.loadbalancers" not in hard


def test_limit_range() -> None:
    (limit_range, _) = by_kind(render.render_tenant(spec.load_spec(PAYMENTS)), "LimitRange")
    assert limit_range["spec"]["limits"] == [
        {
            "type": "Container",
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            "default": {"cpu": "500m", "memory": "512Mi"},
            "max": {"cpu": "4", "memory": "8Gi"},
        }
    ]


def test_policy_defaults_reach_the_manifests() -> None:
    analytics = spec.load_spec(EXAMPLES / "analytics.yaml")
    objects = render.render_tenant(analytics)
    assert by_kind(objects, "ResourceQuota")[0]["spec"]["hard"]["requests.cpu"] == "1"  # default 2 over 2 namespaces
    assert by_kind(objects, "LimitRange")[0]["spec"]["limits"][0]["max"] == {"cpu": "2", "memory": "4Gi"}


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------


def _policies(isolation: str, **network: Any) -> dict[str, dict[str, Any]]:
    data = payments_data()
    data["spec"]["network"] = {"isolation": isolation, **network}
    policy = spec.parse_policy({"isolationLevels": ["strict", "namespace", "none"]})
    objects = render.render_tenant(spec.parse_spec(data, policy=policy), policy=policy)
    return {o["metadata"]["name"]: o["spec"] for o in by_kind(objects, "NetworkPolicy", "payments-app")}


TENANT_PEER = {
    "namespaceSelector": {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["payments-app", "payments-ci"]}
        ]
    }
}


def test_strict_isolation() -> None:
    policies = _policies(
        "strict",
        allowIngressFrom=[{"namespace": "ingress-nginx"}],
        allowEgressTo=[{"cidr": "10.20.0.0/16", "ports": [5432]}, {"cidr": "10.30.0.0/16"}],
    )
    assert sorted(policies) == [
        "vcm-allow-dns",
        "vcm-allow-egress-to",
        "vcm-allow-ingress-from",
        "vcm-allow-tenant",
        "vcm-default-deny",
    ]
    assert policies["vcm-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["vcm-allow-dns"]
    assert dns["policyTypes"] == ["Egress"] and "ingress" not in dns
    assert dns["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    tenant = policies["vcm-allow-tenant"]
    assert tenant["ingress"] == [{"from": [TENANT_PEER]}] and tenant["egress"] == [{"to": [TENANT_PEER]}]
    assert policies["vcm-allow-ingress-from"]["ingress"][0]["from"] == [UNTENANTED_PEER]
    assert policies["vcm-allow-egress-to"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 5432, "protocol": "TCP"}]},
        {"to": [{"ipBlock": {"cidr": "10.30.0.0/16"}}]},
    ]


UNTENANTED_PEER = {
    "namespaceSelector": {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ingress-nginx"]},
            {"key": "vcluster-mgr.dev/tenant", "operator": "DoesNotExist"},
        ]
    }
}


def test_ingress_peers_never_match_a_tenant_namespace_unless_trusted() -> None:
    data = payments_data()
    data["spec"]["network"] = {"isolation": "strict", "allowIngressFrom": [{"namespace": "ingress-nginx"}]}
    for trusted, peers in (([], [UNTENANTED_PEER]), (["ingress", "edge"], [UNTENANTED_PEER, None])):
        policy = spec.parse_policy({"trustedPeerTenants": trusted})
        objects = render.render_tenant(spec.parse_spec(data, policy=policy), policy=policy)
        policies = by_kind(objects, "NetworkPolicy", "payments-app")
        (allow,) = [o for o in policies if o["metadata"]["name"] == "vcm-allow-ingress-from"]
        got = allow["spec"]["ingress"][0]["from"]
        assert got[0] == peers[0] and len(got) == len(peers)
    assert got[1]["namespaceSelector"]["matchExpressions"][1] == {
        "key": "vcluster-mgr.dev/tenant", "operator": "In", "values": ["edge", "ingress"]
    }


def test_strict_isolation_without_allow_lists() -> None:
    assert sorted(_policies("strict")) == ["vcm-allow-dns", "vcm-allow-tenant", "vcm-default-deny"]


def test_namespace_isolation_denies_ingress_only() -> None:
    policies = _policies("namespace", allowIngressFrom=[{"namespace": "monitoring"}])
    assert sorted(policies) == ["vcm-allow-ingress-from", "vcm-allow-tenant", "vcm-default-deny"]
    assert policies["vcm-default-deny"]["policyTypes"] == ["Ingress"]
    assert policies["vcm-allow-tenant"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [TENANT_PEER]}],
    }
    assert all("egress" not in p for p in policies.values())


def test_no_isolation_has_no_network_policies() -> None:
    assert _policies("none") == {}


# ---------------------------------------------------------------------------------------------
# Owners and placement
# ---------------------------------------------------------------------------------------------


def test_role_bindings_per_owner_per_namespace() -> None:
    objects = render.render_tenant(spec.load_spec(PAYMENTS))
    bindings = by_kind(objects, "RoleBinding")
    assert len(bindings) == 3 * 2
    in_app = {
        b["roleRef"]["name"] + "/" + b["subjects"][0]["kind"]: b
        for b in by_kind(objects, "RoleBinding", "payments-app")
    }
    assert sorted(in_app) == ["admin/User", "edit/Group", "edit/ServiceAccount"]
    assert in_app["admin/User"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"}
    ]
    assert in_app["edit/ServiceAccount"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "payments-ci"}
    ]
    for binding in bindings:
        assert (
            binding["roleRef"]["kind"] == "ClusterRole"
            and binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
        )
        assert re.fullmatch(
            r"vcm-owner-(admin|edit|view)-(user|group|serviceaccount)-[0-9a-f]{10}", binding["metadata"]["name"]
        )


def test_hostile_owner_names_stay_data() -> None:
    data = payments_data()
    hostile = [
        'x", "kind": "ClusterRole',
        "{{ 7 * 7 }}",
        "---",
        "a: b",
        "'; DROP",
        "<script>&amp;",
        "ünï©ødé 🚀",
        "\u00a0",
    ]
    data["spec"]["owners"] = [{"kind": "User", "name": name, "role": "view"} for name in hostile]
    objects = render.render_tenant(spec.parse_spec(data))
    subjects = [b["subjects"][0]["name"] for b in by_kind(objects, "RoleBinding", "payments-app")]
    assert sorted(subjects) == sorted(hostile)
    assert {o["kind"] for o in objects} == {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "RoleBinding",
        "ConfigMap",
        "FlowSchema",
    }


def test_placement_config_map() -> None:
    objects = render.render_tenant(spec.load_spec(EXAMPLES / "analytics.yaml"))
    maps = by_kind(objects, "ConfigMap")
    assert names(maps) == ["vcm-placement", "vcm-placement"]
    # ConfigMap keys cannot contain "/", so each pair is one "key=value" value under a plain key
    wanted = {"selector-0": "node.kubernetes.io/instance-type=m5.2xlarge", "selector-1": "pool=batch"}
    assert [m["data"] for m in maps] == [wanted] * 2


# ---------------------------------------------------------------------------------------------
# Platform
# ---------------------------------------------------------------------------------------------


def test_platform_objects() -> None:
    objects = render.render_platform()
    found = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert found == [
        ("Namespace", "vcluster-mgr-system"),
        ("ClusterRole", "vcm-blueprint-manager"),
        ("PriorityLevelConfiguration", "vcm-tenants"),
        ("ValidatingAdmissionPolicy", "vcm-control-plane-labels"),
        ("ValidatingAdmissionPolicy", "vcm-image-pull-always"),
        ("ValidatingAdmissionPolicy", "vcm-placement"),
        ("ValidatingAdmissionPolicy", "vcm-protect-blueprint"),
        ("ValidatingAdmissionPolicyBinding", "vcm-control-plane-labels"),
        ("ValidatingAdmissionPolicyBinding", "vcm-image-pull-always"),
        ("ValidatingAdmissionPolicyBinding", "vcm-placement"),
        ("ValidatingAdmissionPolicyBinding", "vcm-protect-blueprint"),
    ]
    for obj in objects:
        assert obj["metadata"]["labels"][naming.MANAGED_BY_KEY] == "vcluster-mgr"
        assert "namespace" not in obj["metadata"]
    for binding in by_kind(objects, "ValidatingAdmissionPolicyBinding"):
        assert binding["apiVersion"] == "admissionregistration.k8s.io/v1"
        assert binding["spec"]["policyName"] == binding["metadata"]["name"]
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {
            "matchExpressions": [{"key": "vcluster-mgr.dev/tenant", "operator": "Exists"}]
        }
    placement = {o["kind"]: o for o in objects if o["metadata"]["name"] == "vcm-placement"}
    assert placement["ValidatingAdmissionPolicyBinding"]["spec"]["paramRef"] == {
        "name": "vcm-placement",
        "parameterNotFoundAction": "Allow",
    }
    assert placement["ValidatingAdmissionPolicy"]["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}


def _expressions(policy: dict[str, Any]) -> list[str]:
    spec_ = policy["spec"]
    found = [v["expression"] for v in spec_.get("variables", [])]
    for validation in spec_["validations"]:
        found += [validation["expression"]] + (
            [validation["messageExpression"]] if "messageExpression" in validation else []
        )
    return found


def _balanced(expression: str) -> bool:
    """Quotes paired and brackets balanced outside string literals: a cheap guard against template typos."""
    depth, quote = [], None
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in expression:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth and quote is None


def test_admission_policy_expressions() -> None:
    policies = {o["metadata"]["name"]: o for o in by_kind(render.render_platform(), "ValidatingAdmissionPolicy")}
    for policy in policies.values():
        assert policy["spec"]["failurePolicy"] == "Fail"
        for expression in _expressions(policy):
            assert _balanced(expression), expression
            assert "{{" not in expression and "\n" not in expression
    pulls = policies["vcm-image-pull-always"]
    assert pulls["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE", "UPDATE"]
    texts = " ".join(_expressions(pulls))
    for field in ("object.spec.containers", "object.spec.initContainers", "object.spec.ephemeralContainers"):
        assert field in texts
    assert "has(object.spec.initContainers)" in texts and "has(object.spec.ephemeralContainers)" in texts
    protect = " ".join(_expressions(policies["vcm-protect-blueprint"]))
    for needle in (
        f"'{naming.MANAGED_BY_KEY}'",
        f"'{naming.MANAGED_BY_VALUE}'",
        "'system:masters' in request.userInfo.groups",
        "startsWith('system:serviceaccount:kube-system:')",
        "== 'system:kube-controller-manager'",
        "authorizer.group('vcluster-mgr.dev').resource('blueprints').check('manage').allowed()",
        "has(oldObject.metadata.labels)",
        "has(object.metadata.labels)",
    ):
        assert needle in protect, needle
    rules = policies["vcm-protect-blueprint"]["spec"]["matchConstraints"]["resourceRules"]
    assert sorted(r for rule in rules for r in rule["resources"]) == [
        "configmaps",
        "limitranges",
        "networkpolicies",
        "resourcequotas",
        "rolebindings",
    ]
    assert all(rule["operations"] == ["CREATE", "UPDATE", "DELETE"] for rule in rules)


def test_blueprint_kinds_are_protected() -> None:
    """Every namespaced kind the tenant blueprint renders is covered by vcm-protect-blueprint (the FlowSchema is
    cluster-scoped: owners hold no right on it at all)."""
    protect = next(o for o in render.render_platform() if o["metadata"]["name"] == "vcm-protect-blueprint")
    covered = {r for rule in protect["spec"]["matchConstraints"]["resourceRules"] for r in rule["resources"]}
    rendered = {o["kind"] for o in render.render_tenant(spec.load_spec(PAYMENTS))} - {"Namespace", "FlowSchema"}
    resources = {
        "ResourceQuota": "resourcequotas",
        "LimitRange": "limitranges",
        "NetworkPolicy": "networkpolicies",
        "RoleBinding": "rolebindings",
        "ConfigMap": "configmaps",
    }
    assert {resources[kind] for kind in rendered} == covered


# ---------------------------------------------------------------------------------------------
# An admin's own templates, and the checks on what templates render
# ---------------------------------------------------------------------------------------------


def _override(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return tmp_path


LIMITRANGE = (REPO / "templates" / "tenant" / "limitrange.yaml.j2").read_text()


def test_the_blueprint_is_the_top_level_templates_folder() -> None:
    """In a checkout and an editable install the package reaches ``templates/`` through its link (the wheel
    carries the files themselves: tests/test_wheel.py)."""
    assert render.BUILTIN_TEMPLATES == REPO / "templates"
    link = REPO / "vcluster_mgr" / "templates"
    assert link.is_symlink() and os.readlink(link) == "../templates"


def test_an_admin_template_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "tenant").mkdir()
    os.mkfifo(tmp_path / "tenant" / "limitrange.yaml.j2")
    with pytest.raises(errors.SpecError, match="is a FIFO"):
        render.render_tenant(spec.load_spec(PAYMENTS), templates_dir=tmp_path)


def test_admin_templates_override_and_fall_back(tmp_path: Path) -> None:
    folder = _override(tmp_path, "tenant/limitrange.yaml.j2", LIMITRANGE.replace("type: Container", "type: Pod"))
    objects = render.render_tenant(spec.load_spec(PAYMENTS), templates_dir=folder)
    assert {lr["spec"]["limits"][0]["type"] for lr in by_kind(objects, "LimitRange")} == {"Pod"}
    assert len(by_kind(objects, "NetworkPolicy")) == 10, "the other templates fall back to the built-in ones"


def test_admin_templates_may_add_namespaced_kinds(tmp_path: Path) -> None:
    extra = (
        "{% for namespace in namespaces %}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n"
        "  name: robot\n  namespace: {{ namespace | tojson }}\n  labels: {{ labels | tojson }}\n{% endfor %}\n"
    )
    folder = _override(tmp_path, "tenant/placement.yaml.j2", extra)
    objects = render.render_tenant(spec.load_spec(PAYMENTS), templates_dir=folder)
    assert names(by_kind(objects, "ServiceAccount")) == ["robot", "robot"]
    assert by_kind(objects, "ConfigMap") == []


LABELS = "  labels: {{ labels | tojson }}\n"
BAD_TEMPLATES = {
    "other namespace": (
        "---\napiVersion: v1\nkind: LimitRange\nmetadata:\n  name: x\n  namespace: kube-system\n" + LABELS,
        'in namespace "kube-system"',
    ),
    "no namespace": ("---\napiVersion: v1\nkind: LimitRange\nmetadata:\n  name: x\n" + LABELS, "in namespace null"),
    "cluster-scoped kind": (
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: x\n" + LABELS,
        'kind "ClusterRole" is not one of',
    ),
    "foreign namespace object": (
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-system\n" + LABELS,
        "Namespace kube-system is not one of payments-app, payments-ci",
    ),
    "wrong apiVersion": (
        "---\napiVersion: v2\nkind: LimitRange\nmetadata:\n  name: x\n  namespace: payments-app\n" + LABELS,
        "expected v1",
    ),
    "missing labels": (
        "---\napiVersion: v1\nkind: LimitRange\nmetadata: {name: x, namespace: payments-app}\n",
        "lacks the labels cost-center=cc-1042, app.kubernetes.io/managed-by=vcluster-mgr",
    ),
    "missing name": (
        "---\napiVersion: v1\nkind: LimitRange\nmetadata: {namespace: payments-app}\n",
        "has no metadata.name",
    ),
    "not a mapping": ("--- [1, 2]\n", "expected a mapping"),
    "undefined variable": ("{{ nope }}", "'nope' is undefined"),
    "syntax error": ("{% for %}", "line 1"),
    "invalid yaml": ("a: [\n", "invalid YAML"),
    "duplicate": (LIMITRANGE + LIMITRANGE, "twice"),
}


@pytest.mark.parametrize(("text", "fragment"), list(BAD_TEMPLATES.values()), ids=list(BAD_TEMPLATES))
def test_bad_templates_are_render_errors(tmp_path: Path, text: str, fragment: str) -> None:
    folder = _override(tmp_path, "tenant/limitrange.yaml.j2", text)
    with pytest.raises(render.RenderError) as caught:
        render.render_tenant(spec.load_spec(PAYMENTS), templates_dir=folder)
    assert fragment in str(caught.value)
    assert "tenant/limitrange.yaml.j2" in str(caught.value)
    assert isinstance(caught.value, errors.VcmError)


def test_platform_templates_are_checked_too(tmp_path: Path) -> None:
    text = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: tenant-x\n" + LABELS
    folder = _override(tmp_path, "platform/namespace.yaml.j2", text)
    with pytest.raises(render.RenderError, match="Namespace tenant-x is not one of vcluster-mgr-system"):
        render.render_platform(templates_dir=folder)
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: default\n" + LABELS
    folder = _override(tmp_path, "platform/namespace.yaml.j2", text)
    with pytest.raises(render.RenderError, match='kind "ConfigMap" is not one of'):
        render.render_platform(templates_dir=folder)


def test_missing_templates_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(render.RenderError, match="does not exist"):
        render.render_tenant(spec.load_spec(PAYMENTS), templates_dir=tmp_path / "nope")


# ---------------------------------------------------------------------------------------------
# Starter spec
# ---------------------------------------------------------------------------------------------


def test_starter_spec_validates_and_renders() -> None:
    text = render.starter_spec("orders", owner="owner@example.com")
    tenant = spec.parse_spec_text(text)
    assert tenant.name == "orders" and tenant.namespace_names() == ["orders-app"]
    assert tenant.spec.owners[0].name == "owner@example.com"
    assert "# " in text, "the starter spec is commented"
    assert render.render_tenant(tenant)


@pytest.mark.parametrize("name", ["Orders", "default", "kube-x", "o" * 64, 'x"\ny'])
def test_starter_spec_refuses_bad_names(name: str) -> None:
    with pytest.raises(errors.SpecError):
        render.starter_spec(name)


@pytest.mark.parametrize("text", ["😀 astral", "a\x85b", "line\u2028sep", "\ufeffbom", "<&'>", "{{ x }}", "---\n..."])
def test_tojson_values_read_back_unchanged(text: str) -> None:
    """What a template writes with ``| tojson`` is YAML that reads back as exactly the same value."""
    dumped = render.templating._json_dumps({"v": [text]}, sort_keys=True)
    assert yaml.safe_load(dumped) == {"v": [text]}
    assert "\n" not in dumped
