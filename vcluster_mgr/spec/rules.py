"""Pass 2 of checking a tenant: the rules that span fields or need the policy.

They run on every part of a document that passed pass 1 on its own (``Parts``), so a file's errors are
all reported at once; ``resolve`` fills in what the spec left out. The control plane's rules are in
``control_plane_rules``.

It stays one module above 400 lines because every rule reads the same ``Parts`` through the same private
helpers (``_valid``, ``_valid_items``), and the policy's own check at the end is a few dozen lines.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import (
    TypeAdapter,
    ValidationError,
)

from vcluster_mgr import errors, kube, naming
from vcluster_mgr.spec import (
    control_plane_rules,
    field_types,
    messages,
    policy_model,
    tenant_model,
)

# ---------------------------------------------------------------------------------------------
# Pass 2: what spans fields or needs the policy
# ---------------------------------------------------------------------------------------------


_INVALID: Any = object()
"""Marks a part of a raw document that failed pass 1 (its errors are already reported)."""


@dataclass(frozen=True)
class _Parts:
    """The parts of a tenant for pass 2; ``_INVALID`` where a part failed pass 1.

    ``namespaces`` and ``owners`` hold (index, value) for the list items that are valid on their own,
    so their paths stay right; ``namespaces_complete`` is False if some namespace entry was invalid.
    """

    name: Any
    namespaces: list[tuple[int, str]]
    namespaces_complete: bool
    owners: list[tuple[int, tenant_model.Owner]]
    quota: Any
    limits: Any
    network: Any
    placement: Any
    pod_security: Any
    control_plane: Any
    ttl: Any


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "name": TypeAdapter(field_types.DnsLabel),
    "namespace": TypeAdapter(field_types.DnsLabel),
    "owner": TypeAdapter(tenant_model.Owner),
    "quota": TypeAdapter(tenant_model.Quota | None),
    "limits": TypeAdapter(tenant_model.Limits | None),
    "network": TypeAdapter(tenant_model.Network),
    "placement": TypeAdapter(tenant_model.Placement),
    "podSecurity": TypeAdapter(field_types.PodSecurityLevel),
    "controlPlane": TypeAdapter(tenant_model.ControlPlane),
    "ttl": TypeAdapter(field_types.Duration | None),
}


def _valid(key: str, mapping: dict[Any, Any], field: str, default: Any = _INVALID) -> Any:
    """``mapping[field]`` checked with the adapter ``key``; ``default`` if absent, ``_INVALID`` if bad."""
    if field not in mapping:
        return default
    try:
        return _ADAPTERS[key].validate_python(mapping[field])
    except ValidationError:
        return _INVALID


def _valid_items(key: str, raw: Any) -> tuple[list[tuple[int, Any]], bool]:
    """The items of a raw list that are valid on their own, with their index; and whether all were."""
    if not isinstance(raw, list):
        return [], False
    items = [(i, _valid(key, {"item": item}, "item")) for i, item in enumerate(raw)]
    valid = [(i, value) for i, value in items if value is not _INVALID]
    return valid, len(valid) == len(raw)


def _pruned(data: Any, locs: Iterable[tuple[str | int, ...]]) -> Any:
    """A copy of ``data`` without the mapping keys where pass 1 failed.

    Each failed location is cut at its first list index (``spec.owners[1].role`` drops
    ``spec.owners``; lists are checked item by item anyway), so the sections around a bad field
    still validate and pass 2 can check them.
    """

    def cut(node: Any, path: tuple[str | int, ...]) -> Any:
        if not isinstance(node, dict) or not path or path[0] not in node:
            return node
        copy = dict(node)
        if len(path) == 1 or not isinstance(path[1], str):
            del copy[path[0]]
        else:
            copy[path[0]] = cut(node[path[0]], path[1:])
        return copy

    for loc in locs:
        data = cut(data, loc)
    return data


def parts_of_raw(data: Any, failed: Iterable[tuple[str | int, ...]]) -> _Parts:
    """Validate each part of a raw document on its own, so pass 2 can check whatever is valid.

    ``failed`` are the locations pass 1 reported; sections are checked without them, the
    namespaces and owners lists item by item.
    """

    def section(doc: Any, key: str) -> dict[Any, Any]:
        found = doc.get(key) if isinstance(doc, dict) else None
        return found if isinstance(found, dict) else {}

    whole = section(data, "spec")
    namespaces, complete = _valid_items("namespace", whole.get("namespaces"))
    owners, _ = _valid_items("owner", whole.get("owners"))
    data = _pruned(data, failed)
    meta, spec = section(data, "metadata"), section(data, "spec")
    quota = _valid("quota", spec, "quota", None)
    limits = _valid("limits", spec, "limits", None)
    return _Parts(
        name=_valid("name", meta, "name"),
        namespaces=namespaces,
        namespaces_complete=complete,
        owners=owners,
        quota=tenant_model.Quota() if quota is None else quota,
        limits=tenant_model.Limits() if limits is None else limits,
        network=_valid("network", spec, "network", tenant_model.Network()),
        placement=_valid("placement", spec, "placement", tenant_model.Placement()),
        pod_security=_valid("podSecurity", spec, "podSecurity", "restricted"),
        control_plane=_valid("controlPlane", spec, "controlPlane", tenant_model.ControlPlane()),
        ttl=_valid("ttl", spec, "ttl", None),
    )


def parts_of(tenant: tenant_model.Tenant) -> _Parts:
    s = tenant.spec
    return _Parts(
        name=tenant.name,
        namespaces=list(enumerate(s.namespaces)),
        namespaces_complete=True,
        owners=list(enumerate(s.owners)),
        quota=s.quota or tenant_model.Quota(),
        limits=s.limits or tenant_model.Limits(),
        network=s.network,
        placement=s.placement,
        pod_security=s.pod_security,
        control_plane=s.control_plane,
        ttl=s.ttl,
    )


def semantic_errors(p: _Parts, policy: policy_model.Policy) -> list[tuple[str, str]]:
    """Every cross-field and policy problem of the valid parts, as (dotted path, message)."""
    out: list[tuple[str, str]] = []
    if p.name is not _INVALID:
        reason = naming.reserved_reason(p.name)
        if reason:
            out.append(("metadata.name", f"{messages.show(p.name)} is reserved: {reason}"))
    out += _namespace_errors(p.name, p.namespaces)
    own = None
    if p.name is not _INVALID and p.namespaces_complete:
        own = [naming.namespace_name(p.name, suffix) for _, suffix in p.namespaces]
    out += _owner_errors(p.owners, own)
    if p.quota is not _INVALID:
        out += _quota_errors(policy_model.resolve_quota(p.quota, policy), p.quota, policy)
        if p.quota.shares is not None and p.namespaces_complete:
            out += _share_errors(p.quota.shares, [suffix for _, suffix in p.namespaces])
    if p.limits is not _INVALID:
        out += _limits_errors(policy_model.resolve_limits(p.limits, policy))
    if p.network is not _INVALID:
        out += _network_errors(p.network, policy)
    if p.placement is not _INVALID:
        tolerable = policy.gpu_placement.tolerations
        for i, toleration in enumerate(p.placement.gpu.tolerations):
            if toleration not in tolerable:
                keys = ", ".join(sorted({t.key for t in tolerable})) or "none"
                message = f"is not one of the policy's gpuPlacement.tolerations (taint keys allowed: {keys})"
                out.append((f"spec.placement.gpu.tolerations[{i}]", message))
    if p.pod_security is not _INVALID and p.pod_security not in policy.pod_security_levels:
        allowed = ", ".join(policy.pod_security_levels)
        out.append(
            ("spec.podSecurity", f"{messages.show(p.pod_security)} is not allowed by the policy; allowed: {allowed}")
        )
    if p.control_plane is not _INVALID:
        limits = None if p.limits is _INVALID else policy_model.resolve_limits(p.limits, policy)
        out += control_plane_rules.control_plane_errors(p.control_plane, limits, policy)
    if p.ttl is not _INVALID:
        out += _ttl_errors(p.ttl, policy)
    return out


def _namespace_errors(name: Any, suffixes: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """Duplicate entries, and derived names (``<tenant>-<suffix>``) too long or reserved."""
    out = []
    seen: set[str] = set()
    for i, suffix in suffixes:
        path = f"spec.namespaces[{i}]"
        if suffix in seen:
            out.append((path, f"{messages.show(suffix)} is listed twice"))
        seen.add(suffix)
        if name is _INVALID:
            continue
        full = naming.namespace_name(name, suffix)
        if len(full) > kube.DNS1123_LABEL_MAX:
            limit = kube.DNS1123_LABEL_MAX
            message = (
                f"{messages.show(suffix)} makes namespace {messages.show(full)} of {len(full)} "
                "characters; namespace names have"
            )
            out.append((path, f"{message} at most {limit} (shorten the tenant name or this entry)"))
        reason = naming.reserved_reason(full)
        if reason:
            out.append(
                (path, f"{messages.show(suffix)} makes namespace {messages.show(full)}, which is reserved: {reason}")
            )
    return out


def _owner_errors(owners: list[tuple[int, tenant_model.Owner]], own: list[str] | None) -> list[tuple[str, str]]:
    """Duplicates, and ServiceAccount owners: a DNS name, in one of the tenant's own namespaces (if known)."""
    out = []
    seen: set[tuple[str, str, str | None]] = set()
    where = ", ".join(dict.fromkeys(own)) if own else "the tenant's namespaces"
    for i, owner in owners:
        path = f"spec.owners[{i}]"
        key = (owner.kind, owner.name, owner.namespace)
        if key in seen:
            out.append((path, f"{owner.kind} {messages.show(owner.name)} is listed twice"))
        seen.add(key)
        if owner.kind != "ServiceAccount":
            if owner.namespace is not None:
                message = (
                    f"{messages.show(owner.namespace)} is only for ServiceAccount owners; remove it for a {owner.kind}"
                )
                out.append((f"{path}.namespace", message))
            continue
        try:
            kube.check_dns_subdomain(owner.name)
        except ValueError as exc:
            out.append((f"{path}.name", f"{messages.show(owner.name)} {exc}"))
        if owner.namespace is None:
            out.append((f"{path}.namespace", f"is required for a ServiceAccount owner: one of {where}"))
        elif own is not None and owner.namespace not in own:
            message = f"{messages.show(owner.namespace)} is not one of the tenant's namespaces ({where})"
            out.append((f"{path}.namespace", message + "; a ServiceAccount owner must live in one of them"))
    return out


def _share_errors(shares: dict[str, int], namespaces: list[str]) -> list[tuple[str, str]]:
    """quota.shares names every namespace of the tenant and nothing else, and not all weights are 0."""
    out = []
    listed = ", ".join(namespaces)
    for key in shares:
        if key not in namespaces:
            out.append((f"spec.quota.shares.{key}", f"is not one of spec.namespaces ({listed})"))
    missing = [ns for ns in namespaces if ns not in shares]
    if missing:
        out.append(("spec.quota.shares", f"gives no share to {', '.join(missing)}; name every namespace ({listed})"))
    if shares and not any(shares.values()):
        out.append(("spec.quota.shares", "are all 0; at least one namespace needs a share"))
    return out


def _quota_errors(
    q: tenant_model.Quota, given: tenant_model.Quota, policy: policy_model.Policy
) -> list[tuple[str, str]]:
    """Limits below requests (on the resolved quota ``q``), and ceilings (on the values ``given``)."""
    out = []
    for requests, limits, alias in (("cpu", "limits_cpu", "limitsCpu"), ("memory", "limits_memory", "limitsMemory")):
        low, high = getattr(q, requests), getattr(q, limits)
        if policy_model.as_quantity(high).value < policy_model.as_quantity(low).value:
            out.append((f"spec.quota.{alias}", f"{high} is less than {requests} ({low}); limits must be >= requests"))
    limits_cpu = ("maxLimitsCpu", policy.max_limits_cpu) if policy.max_limits_cpu else ("maxCpu", policy.max_cpu)
    limits_memory = (
        ("maxLimitsMemory", policy.max_limits_memory) if policy.max_limits_memory else ("maxMemory", policy.max_memory)
    )
    checks: list[tuple[str, str, tuple[str, str | int]]] = [
        ("cpu", "cpu", ("maxCpu", policy.max_cpu)),
        ("limits_cpu", "limitsCpu", limits_cpu),
        ("memory", "memory", ("maxMemory", policy.max_memory)),
        ("limits_memory", "limitsMemory", limits_memory),
        ("storage", "storage", ("maxStorage", policy.max_storage)),
        ("pods", "pods", ("maxPods", policy.max_pods)),
        ("services", "services", ("maxServices", policy.max_services)),
        ("gpu", "gpu", ("maxGpu", policy.max_gpu)),
    ]
    for field, alias, (setting, ceiling) in checks:
        value = getattr(given, field)
        problem = None if value is None else policy_model.over_ceiling(f"spec.quota.{alias}", value, ceiling, setting)
        if problem:
            out.append(problem)
    named = sorted(set(policy.default_quota.objects) | set(policy.max_objects))
    for resource, count in sorted(given.objects.items()):
        path = f"spec.quota.objects.{resource}"
        top = policy_model.object_ceiling(policy, resource)
        if top is None:
            allowed = ", ".join(named) or "none"
            out.append((path, f"{messages.show(resource)} is not a resource the policy counts; allowed: {allowed}"))
        elif count > top:
            out.append((path, f"{count} exceeds the policy ceiling maxObjects.{resource}={top}"))
    for field, alias, ceilings in (
        ("extended_resources", "extendedResources", policy.extended_resources),
        ("device_classes", "deviceClasses", policy.device_classes),
    ):
        for name, count in sorted(getattr(given, field).items()):
            path = f"spec.quota.{alias}.{name}"
            if name == "nvidia.com/gpu":
                out.append((path, "is set with quota.gpu (within the policy's maxGpu); remove it here"))
            elif name not in ceilings:
                names = ", ".join(sorted(ceilings)) or "none"
                out.append((path, f"{messages.show(name)} is not allowed by the policy's {alias}; allowed: {names}"))
            elif count > ceilings[name]:
                out.append((path, f"{count} exceeds the policy ceiling {alias}.{name}={ceilings[name]}"))
    return out


def _limits_errors(limits: tenant_model.Limits, prefix: str = "spec.limits") -> list[tuple[str, str]]:
    """defaultRequest <= default <= max, for cpu and memory, on resolved limits."""
    out = []
    order = (("default_request", "defaultRequest"), ("default", "default"), ("max", "max"))
    for resource in ("cpu", "memory"):
        for (low_field, low_alias), (high_field, high_alias) in itertools.pairwise(order):
            low = getattr(getattr(limits, low_field), resource)
            high = getattr(getattr(limits, high_field), resource)
            if policy_model.as_quantity(low).value > policy_model.as_quantity(high).value:
                message = f"{low} is more than {high_alias}.{resource} ({high}); defaultRequest <= default <= max"
                out.append((f"{prefix}.{low_alias}.{resource}", message))
    return out


def _network_errors(network: tenant_model.Network, policy: policy_model.Policy) -> list[tuple[str, str]]:
    """Isolation allowed by the policy, allow-lists that mean something, egress inside the policy's CIDRs."""
    out = []
    if network.isolation not in policy.isolation_levels:
        allowed = ", ".join(policy.isolation_levels)
        out.append(
            (
                "spec.network.isolation",
                f"{messages.show(network.isolation)} is not allowed by the policy; allowed: {allowed}",
            )
        )
    if network.isolation == "none" and network.allow_ingress_from:
        out.append(
            (
                "spec.network.allowIngressFrom",
                "has no effect with isolation none (all traffic is open); remove it or choose strict or namespace",
            )
        )
    if network.isolation != "strict" and network.allow_egress_to:
        out.append(
            (
                "spec.network.allowEgressTo",
                f"has no effect with isolation {network.isolation} (egress is open); remove it or choose strict",
            )
        )
    allowed_networks = policy.cidr_networks()
    for i, rule in enumerate(network.allow_egress_to):
        net = ipaddress.ip_network(rule.cidr)
        if not any(net.version == a.version and net.subnet_of(a) for a in allowed_networks):  # type: ignore[arg-type]
            inside = ", ".join(policy.egress_cidrs) or "none allowed"
            out.append(
                (f"spec.network.allowEgressTo[{i}].cidr", f"{rule.cidr} is outside the policy's egressCidrs ({inside})")
            )
        if len(set(rule.ports)) != len(rule.ports):
            out.append((f"spec.network.allowEgressTo[{i}].ports", f"{messages.show(rule.ports)} lists a port twice"))
    return out


def _ttl_errors(ttl: str | None, policy: policy_model.Policy) -> list[tuple[str, str]]:
    """A TTL when the policy requires one, and no longer than maxTtl."""
    if ttl is None:
        if policy.allow_no_ttl:
            return []
        hint = f" (at most maxTtl={policy.max_ttl})" if policy.max_ttl else ""
        return [("spec.ttl", f"is required: the policy has allowNoTtl=false{hint}")]
    if policy.max_ttl and kube.parse_duration(ttl) > kube.parse_duration(policy.max_ttl):
        return [("spec.ttl", f"{ttl} exceeds the policy ceiling maxTtl={policy.max_ttl}")]
    return []


def check_control_plane(tenant: tenant_model.Tenant, *, policy: policy_model.Policy | None = None) -> None:
    """Raise ``SpecError`` if the policy forbids ``tenant``'s control plane as specified, even when disabled.

    ``parse_spec`` applies these rules only to enabled control planes; values generation applies them
    always, so generated values never hold what the policy forbids.
    """
    policy = policy or policy_model.DEFAULT_POLICY
    limits = policy_model.resolve_limits(tenant.spec.limits or tenant_model.Limits(), policy)
    problems = control_plane_rules.control_plane_errors(tenant.spec.control_plane, limits, policy, as_enabled=True)
    if problems:
        raise errors.SpecError([errors.FieldError(path, message, tenant.source) for path, message in problems])


def resolve(tenant: tenant_model.Tenant, *, policy: policy_model.Policy | None = None) -> tenant_model.Tenant:
    """``tenant`` with every quota and limits value the spec left out filled from ``policy``.

    Idempotent; ``parse_spec`` already returns resolved tenants, so this matters only for tenants
    built in code (``render`` calls it to be sure).
    """
    policy = policy or policy_model.DEFAULT_POLICY
    spec = tenant.spec.model_copy(
        update={
            "quota": policy_model.resolve_quota(tenant.spec.quota or tenant_model.Quota(), policy),
            "limits": policy_model.resolve_limits(tenant.spec.limits or tenant_model.Limits(), policy),
            "protect": policy.protect_tenants if tenant.spec.protect is None else tenant.spec.protect,
        }
    )
    return tenant.model_copy(update={"spec": spec})


# ---------------------------------------------------------------------------------------------
# The policy's own consistency
# ---------------------------------------------------------------------------------------------


def policy_errors(policy: policy_model.Policy) -> list[tuple[str, str]]:
    """A policy that contradicts itself: no levels allowed, defaults above its own ceilings."""
    out = []
    if not policy.pod_security_levels:
        out.append(("podSecurityLevels", "must allow at least one level"))
    if not policy.isolation_levels:
        out.append(("isolationLevels", "must allow at least one level"))
    if policy.allow_control_planes and not policy.allowed_control_plane_exposures:
        message = "must allow at least one exposure while allowControlPlanes is true (ClusterIP is the safe one)"
        out.append(("allowedControlPlaneExposures", message))
    if policy.allow_control_planes and not policy.allowed_chart_sources:
        example = naming.CONTROL_PLANE_CHART_REPOSITORY
        message = f"must allow at least one chart source while allowControlPlanes is true, such as {example}"
        out.append(("allowedChartSources", message))
    for setting, low, high in (
        ("maxLimitsCpu", policy.max_cpu, policy.max_limits_cpu),
        ("maxLimitsMemory", policy.max_memory, policy.max_limits_memory),
    ):
        if high is not None and policy_model.as_quantity(high).value < policy_model.as_quantity(low).value:
            out.append((setting, f"{high} is less than the requests ceiling ({low}); limits must be >= requests"))
    d = policy.default_quota
    checks: list[tuple[str, str | int, str | int, str]] = [
        ("cpu", d.cpu, policy.max_cpu, "maxCpu"),
        ("memory", d.memory, policy.max_memory, "maxMemory"),
        ("storage", d.storage, policy.max_storage, "maxStorage"),
        ("pods", d.pods, policy.max_pods, "maxPods"),
        ("services", d.services, policy.max_services, "maxServices"),
        ("gpu", d.gpu, policy.max_gpu, "maxGpu"),
    ]
    for field, value, ceiling, setting in checks:
        problem = policy_model.over_ceiling(f"defaultQuota.{field}", value, ceiling, setting)
        if problem:
            out.append(problem)
    if "nvidia.com/gpu" in policy.extended_resources:
        out.append(("extendedResources.nvidia.com/gpu", "is capped by maxGpu and defaultQuota.gpu; remove it here"))
    for resource, count in sorted(d.objects.items()):
        top = policy.max_objects.get(resource)
        if top is not None and count > top:
            out.append(
                (f"defaultQuota.objects.{resource}", f"{count} exceeds the policy ceiling maxObjects.{resource}={top}")
            )
    limits = tenant_model.Limits.model_validate(policy.default_limits.model_dump())
    return out + _limits_errors(limits, prefix="defaultLimits")
