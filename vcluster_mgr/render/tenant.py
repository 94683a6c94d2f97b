"""A tenant's manifests: namespaces, quota split across them, limits, network policies, owner bindings,
placement. Pure: spec in, plain dicts out.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from vcluster_mgr import errors, kube, naming, spec
from vcluster_mgr.render import templating

TENANT_TEMPLATES = (
    "tenant/namespace.yaml.j2",
    "tenant/resourcequota.yaml.j2",
    "tenant/limitrange.yaml.j2",
    "tenant/networkpolicies.yaml.j2",
    "tenant/rolebindings.yaml.j2",
    "tenant/placement.yaml.j2",
    "tenant/flowschema.yaml.j2",
)

TENANT_KINDS: dict[str, str] = {
    "Namespace": "v1",
    "ResourceQuota": "v1",
    "LimitRange": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ServiceAccount": "v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "FlowSchema": "flowcontrol.apiserver.k8s.io/v1",
}
"""Kinds a tenant blueprint may produce, in output order, with their apiVersion.

Only Namespace and FlowSchema are cluster-scoped (and only the tenant's own); the rest are namespaced kinds an
admin's templates may add (ServiceAccount, Role, Secret) beside the built-in ones.
"""

CLUSTER_DNS = {"namespace": "kube-system", "podLabels": {"k8s-app": "kube-dns"}}
"""Where strict isolation lets pods resolve names: the cluster DNS pods (CoreDNS keeps the kube-dns label)."""

CPU_RESOLUTION = Decimal("0.001")
BYTE_RESOLUTION = Decimal(1)


# ---------------------------------------------------------------------------------------------
# Tenant
# ---------------------------------------------------------------------------------------------


def tenant_labels(tenant: spec.Tenant) -> dict[str, str]:
    """Labels on every object of a tenant: the spec's own, managed-by, and the tenant's name."""
    return {**tenant.labels, naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE, naming.TENANT_LABEL: tenant.name}


def cost_labels(tenant: spec.Tenant) -> dict[str, str]:
    """Labels for cost tools on a tenant's namespaces, after the OpenCost/Kubecost label-mapping defaults:
    ``team`` (the tenant) and ``department`` (its ``cost-center`` label). A label the spec sets itself wins."""
    found = {"team": tenant.name}
    if tenant.labels.get(naming.COST_CENTER_LABEL):
        found["department"] = tenant.labels[naming.COST_CENTER_LABEL]
    return {k: v for k, v in found.items() if k not in tenant.labels}


def _share(total: int, parts: int, weight: int = 1) -> int:
    """``weight / parts`` of a count, floor-divided, at least 1 unless the total or the weight is 0."""
    return max(1, total * weight // parts) if total > 0 and weight > 0 else 0


def quota_weights(tenant: spec.Tenant) -> dict[str, int]:
    """Each namespace's weight in the split of the tenant's quota (full names, in spec order).

    ``spec.quota.shares`` when given; otherwise 1 each, except for a tenant with a control plane: everything the
    virtual cluster runs or syncs lands in its first namespace, so that one gets all of it and the others 0.
    """
    names = tenant.namespace_names()
    shares = tenant.spec.quota.shares if tenant.spec.quota else None
    if shares is not None:
        return {full: shares.get(short, 0) for short, full in zip(tenant.spec.namespaces, names, strict=True)}
    if tenant.spec.control_plane.enabled:
        return {full: int(i == 0) for i, full in enumerate(names)}
    return dict.fromkeys(names, 1)


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` whole units shared out by ``weights`` so that the shares add up to ``total`` exactly.

    Each share is first ``total * weight // sum(weights)``; the units that floor division leaves over go one
    each to the largest remainders (the earlier entry on a tie), so 61 pods over two namespaces are 31 + 30,
    not 30 + 30, and 5000m over three are 1667m + 1667m + 1666m. A weight of 0 gets 0.
    """
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: -remainders[i])[:left]:
        shares[i] += 1
    return shares


def _quantities(quota: spec.Quota) -> dict[str, tuple[str, Decimal]]:
    """The quota's quantities by template key, each with the resolution a share is rounded to."""
    values = {
        "requestsCpu": (quota.cpu, CPU_RESOLUTION),
        "limitsCpu": (quota.limits_cpu or quota.cpu, CPU_RESOLUTION),
        "requestsMemory": (quota.memory, BYTE_RESOLUTION),
        "limitsMemory": (quota.limits_memory or quota.memory, BYTE_RESOLUTION),
        "requestsStorage": (quota.storage, BYTE_RESOLUTION),
    }
    found = {}
    for key, (text, resolution) in values.items():
        if text is None:
            raise errors.RenderError(f"quota.{key} is unset; resolve the tenant with a policy first")
        found[key] = (text, resolution)
    return found


def _counts(quota: spec.Quota) -> dict[str, int]:
    found = {}
    for key in ("pods", "services", "gpu"):
        count = getattr(quota, key)
        if count is None:
            raise errors.RenderError(f"quota.{key} is unset; resolve the tenant with a policy first")
        found[key] = int(count)
    return found


def _at_least_one(shares: list[int], total: int, weights: Sequence[int]) -> list[int]:
    """A namespace with a share of the tenant keeps room for one (a count of 0 would refuse everything)."""
    return [max(share, 1) if total > 0 and w > 0 else share for share, w in zip(shares, weights, strict=True)]


def split_quota(quota: spec.Quota, parts: int, weight: int = 1) -> dict[str, str]:
    """One namespace's floor share of a resolved tenant quota (``weight / parts`` of every total), for the
    ``quota`` context of admin templates written before shares; the blueprint uses ``split_quota_by_weight``.

    Quantities are divided exactly and rounded down (to 1m for CPU, 1 byte for memory and storage); counts
    are floor-divided but stay at least 1 unless the total or the weight is 0.
    """
    out = {key: str(kube.parse_quantity(text).portion(weight, parts, resolution))
           for key, (text, resolution) in _quantities(quota).items()}
    out |= {key: str(_share(count, parts, weight)) for key, count in _counts(quota).items()}
    return out


def split_quota_by_weight(quota: spec.Quota, weights: Mapping[str, int]) -> dict[str, dict[str, str]]:
    """Each namespace's share of a resolved tenant quota (namespace -> canonical quantity strings), by weight.

    The shares keep the total: quantities are counted in whole units of their resolution (1m of CPU, 1 byte
    of memory and storage) and shared out with ``apportion``, so the namespaces add up to the tenant's total
    (to that resolution) and never more. Counts (pods, services, GPUs) are shared the same way, but a
    namespace with a weight keeps at least 1 unless the total is 0.
    """
    names = list(weights)
    w = [weights[n] for n in names]
    out: dict[str, dict[str, str]] = {n: {} for n in names}
    for key, (text, resolution) in _quantities(quota).items():
        parsed = kube.parse_quantity(text)
        units = int((parsed.value / resolution).to_integral_value(rounding=ROUND_DOWN))
        for name, share in zip(names, apportion(units, w), strict=True):
            out[name][key] = str(kube.Quantity(share * resolution, parsed.format))
    for key, count in _counts(quota).items():
        for name, share in zip(names, _at_least_one(apportion(count, w), count, w), strict=True):
            out[name][key] = str(share)
    return out


BLUEPRINT_OBJECTS = {"configmaps": 2, "serviceaccounts": 1}
"""Objects every tenant namespace holds whatever its share: the kube-root-ca.crt and vcm-placement ConfigMaps, the
default ServiceAccount. A namespace's count quota never goes below these (unless the tenant's total is 0), or
the blueprint's own apply would be refused in a namespace with a small or zero share."""


def split_objects(quota: spec.Quota, parts: int, weight: int = 1) -> dict[str, str]:
    """One namespace's share of the resolved counts as ResourceQuota keys: objects (``count/configmaps``),
    extended resources (``requests.nvidia.com/mig-1g.10gb``) and DRA devices (``<class>.deviceclass.../devices``)."""
    counts = {
        f"count/{resource}": max(_share(count, parts, weight), min(count, BLUEPRINT_OBJECTS.get(resource, 0)))
        for resource, count in quota.objects.items()
    }
    counts |= {f"requests.{name}": _share(count, parts, weight) for name, count in quota.extended_resources.items()}
    counts |= {
        f"{name}.deviceclass.resource.k8s.io/devices": _share(count, parts, weight)
        for name, count in quota.device_classes.items()
    }
    return {key: str(value) for key, value in sorted(counts.items())}


def split_objects_by_weight(quota: spec.Quota, weights: Mapping[str, int]) -> dict[str, dict[str, str]]:
    """Each namespace's share of the resolved counts as ResourceQuota keys (as ``split_objects``), shared out
    with ``apportion`` so that they keep the total; the blueprint's own objects (``BLUEPRINT_OBJECTS``) and a
    weighted namespace's 1 are the only shares that may take a namespace above its part."""
    names = list(weights)
    w = [weights[n] for n in names]
    out: dict[str, dict[str, str]] = {n: {} for n in names}

    def share(key: str, count: int, floor: int = 0) -> None:
        for name, part in zip(names, _at_least_one(apportion(count, w), count, w), strict=True):
            out[name][key] = str(max(part, min(count, floor)))

    for resource, count in quota.objects.items():
        share(f"count/{resource}", count, BLUEPRINT_OBJECTS.get(resource, 0))
    for name, count in quota.extended_resources.items():
        share(f"requests.{name}", count)
    for name, count in quota.device_classes.items():
        share(f"{name}.deviceclass.resource.k8s.io/devices", count)
    return {name: dict(sorted(counts.items())) for name, counts in out.items()}


def placement_data(placement: spec.Placement, policy: spec.Policy) -> dict[str, str]:
    """The vcm-placement ConfigMap's data: ``selector-N`` (every pod), ``gpu-selector-N`` (GPU pods) as
    ``key=value``, and ``gpu-toleration-N``, the GPU taint keys the tenant's GPU pods may tolerate.
    ConfigMap keys cannot hold a "/" (label keys can): one entry per pair, the pair in the value."""
    gpu = placement.gpu.node_selector or policy.gpu_placement.node_selector
    tolerations = placement.gpu.tolerations or policy.gpu_placement.tolerations
    data = {f"selector-{i}": f"{k}={v}" for i, (k, v) in enumerate(sorted(placement.node_selector.items()))}
    data |= {f"gpu-selector-{i}": f"{k}={v}" for i, (k, v) in enumerate(sorted(gpu.items()))}
    data |= {f"gpu-toleration-{i}": key for i, key in enumerate(sorted({t.key for t in tolerations}))}
    return data


def _subject(owner: spec.Owner) -> dict[str, str]:
    if owner.kind == "ServiceAccount":
        return {"kind": "ServiceAccount", "name": owner.name, "namespace": owner.namespace or ""}
    return {"kind": owner.kind, "apiGroup": "rbac.authorization.k8s.io", "name": owner.name}


def host_api_rules(host_api: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The host API server's addresses (``{"ip", "port"}``: its Service and the endpoints it is NATed to) as
    egress rules ``{"cidr", "port"}``, one host each, sorted and without repeats."""
    rules = set()
    for address in host_api:
        ip = ipaddress.ip_address(str(address["ip"]))
        rules.add((f"{ip}/{ip.max_prefixlen}", int(address["port"])))
    return [{"cidr": cidr, "port": port} for cidr, port in sorted(rules)]


def control_plane_network(tenant: spec.Tenant, policy: spec.Policy,
                          host_api: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the NetworkPolicies of a tenant's control plane need (see ``templates/tenant/networkpolicies``)."""
    release = naming.control_plane_release(tenant.name)
    return {
        "enabled": tenant.spec.control_plane.enabled,
        "namespace": tenant.namespace_names()[0],
        "podLabels": {naming.CONTROL_PLANE_APP_LABEL: naming.CONTROL_PLANE_APP,
                      naming.CONTROL_PLANE_POD_LABEL: release},
        "dnsPodLabels": {naming.SYNCED_BY_LABEL: release, naming.SYNCED_NAMESPACE_LABEL: "kube-system"},
        "hostApi": host_api_rules(host_api),
        "dnsUpstreams": list(policy.control_plane_dns_upstreams),
    }


def tenant_context(tenant: spec.Tenant, policy: spec.Policy,
                   host_api: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Everything the tenant templates see, as plain JSON-able data (documented in each template)."""
    tenant = spec.resolve(tenant, policy=policy)
    namespaces = tenant.namespace_names()
    s = tenant.spec
    assert s.quota is not None and s.limits is not None  # resolve() fills both
    weights = quota_weights(tenant)
    return {
        "tenant": {"name": tenant.name, "namespaces": namespaces},
        "namespaces": namespaces,
        "labels": tenant_labels(tenant),
        "namespaceLabels": {**cost_labels(tenant), **tenant_labels(tenant)},
        "pod_security": s.pod_security,
        "quota": split_quota(s.quota, len(namespaces)),
        "objectCounts": split_objects(s.quota, len(namespaces)),
        "namespaceQuota": split_quota_by_weight(s.quota, weights),
        "namespaceObjectCounts": split_objects_by_weight(s.quota, weights),
        "limits": s.limits.model_dump(mode="json"),
        "network": {
            "isolation": s.network.isolation,
            "tenantNamespaces": sorted(namespaces),
            "ingressFrom": sorted({peer.namespace for peer in s.network.allow_ingress_from}),
            "trustedPeers": sorted(set(policy.trusted_peer_tenants)),
            "egressTo": [
                {"cidr": rule.cidr, "ports": [{"protocol": rule.protocol, "port": port} for port in rule.ports]}
                for rule in s.network.allow_egress_to
            ],
        },
        "dns": CLUSTER_DNS,
        "controlPlane": control_plane_network(tenant, policy, host_api),
        "namespaceNameLabel": naming.NAMESPACE_NAME_LABEL,
        "tenantLabel": naming.TENANT_LABEL,
        "owners": [
            {
                "bindingName": naming.owner_binding_name(owner.role, owner.kind, owner.name, owner.namespace),
                "role": owner.role,
                "subject": _subject(owner),
            }
            for owner in s.owners
        ],
        "placement": {"nodeSelector": dict(s.placement.node_selector)},
        "placementData": placement_data(s.placement, policy),
        "placementConfigMap": naming.PLACEMENT_CONFIGMAP,
        "apiFairness": {
            "enabled": policy.api_fairness.enabled,
            "flowSchema": naming.flow_schema_name(tenant.name),
            "priorityLevel": naming.TENANT_PRIORITY_LEVEL,
            "matchingPrecedence": policy.api_fairness.matching_precedence,
            "subjects": fairness_subjects(tenant),
        },
        "policy": policy.model_dump(mode="json"),
    }


def fairness_subjects(tenant: spec.Tenant) -> list[dict[str, Any]]:
    """FlowSchema subjects of a tenant: its owners and every ServiceAccount of its namespaces."""
    out: list[dict[str, Any]] = []
    for owner in tenant.spec.owners:
        if owner.kind == "User":
            out.append({"kind": "User", "user": {"name": owner.name}})
        elif owner.kind == "Group":
            out.append({"kind": "Group", "group": {"name": owner.name}})
        else:
            out.append({"kind": "ServiceAccount", "serviceAccount": {"namespace": owner.namespace, "name": owner.name}})
    out += [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": ns, "name": "*"}} for ns in tenant.namespace_names()
    ]
    return sorted(out, key=lambda s: json.dumps(s, sort_keys=True))


def render_tenant(
    tenant: spec.Tenant, *, policy: spec.Policy | None = None, templates_dir: str | Path | None = None,
    host_api: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The manifests of one tenant: its Namespaces first, then the rest by kind, namespace and name.

    ``host_api`` is where the host cluster's API server is reached (``{"ip", "port"}`` each: the
    ``default/kubernetes`` Service and its endpoints), looked up by the caller at apply time; a strict tenant's
    control plane gets egress to exactly those. Left empty (offline), that one rule is left out.

    Deterministic for a given tenant, policy and templates. Raises ``RenderError`` if a template
    fails or renders an object outside the tenant's namespaces, of an undeclared kind, or without
    the blueprint's labels.
    """
    policy = policy or spec.DEFAULT_POLICY
    context = tenant_context(tenant, policy, host_api)
    namespaces = context["namespaces"]
    return templating.render_checked(
        TENANT_TEMPLATES,
        context,
        templates_dir,
        kinds=TENANT_KINDS,
        namespaces=namespaces,
        cluster_names={"Namespace": namespaces, "FlowSchema": [naming.flow_schema_name(tenant.name)]},
        labels=context["labels"],
    )
