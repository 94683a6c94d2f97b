"""The checks of the tenant's own policy objects: ResourceQuotas and LimitRanges in place and protected,
and a default-deny NetworkPolicy that admits no other tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcluster_mgr import naming
from vcluster_mgr.verify import (
    analysis,
    catalogue,
    judging,
    runners,
    session,
)


@runners.runs("block-modification-of-resource-quotas")
def _block_quota_modification(s: session.Session) -> runners.Outcome:
    tried = (
        f"dry-run patch and delete of every ResourceQuota, LimitRange and blueprint NetworkPolicy in "
        f"{runners.namespaces_text(s)}, and dry-run create of a ResourceQuota"
    )
    patch = {"metadata": {"annotations": {f"{catalogue.PROBE_PREFIX}.vcluster-mgr.dev/probe": "modified"}}}
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        targets: list[tuple[str, list[dict[str, Any]], Callable[..., Any], Callable[..., Any]]] = [
            (
                "ResourceQuota",
                s.quotas[ns],
                s.core_o.patch_namespaced_resource_quota,
                s.core_o.delete_namespaced_resource_quota,
            ),
            (
                "LimitRange",
                s.limit_ranges[ns],
                s.core_o.patch_namespaced_limit_range,
                s.core_o.delete_namespaced_limit_range,
            ),
            (
                "NetworkPolicy",
                s.blueprint("NetworkPolicies", s.net_a.list_namespaced_network_policy, ns),
                s.net_o.patch_namespaced_network_policy,
                s.net_o.delete_namespaced_network_policy,
            ),
        ]
        for kind, objects, patcher, deleter in targets:
            for obj in objects:
                name = obj["metadata"]["name"]
                verdicts.append(
                    judging.must_refuse(
                        s.attempt(
                            f"patch {kind} {ns}/{name}",
                            patcher,
                            name,
                            ns,
                            patch,
                            dry_run="All",
                        )
                    )
                )
                verdicts.append(
                    judging.must_refuse(
                        s.attempt(
                            f"delete {kind} {ns}/{name}",
                            deleter,
                            name,
                            ns,
                            dry_run="All",
                        )
                    )
                )
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": f"{catalogue.PROBE_PREFIX}-probe"},
            "spec": {"hard": {"pods": "1000"}},
        }
        verdicts.append(
            judging.must_refuse(
                s.attempt(
                    f"create ResourceQuota in {ns}",
                    s.core_o.create_namespaced_resource_quota,
                    ns,
                    quota,
                    dry_run="All",
                )
            )
        )
    refused = [t for r, t in verdicts if r == "pass"]
    by_layer: dict[str, int] = {}
    for t in refused:
        layer = t.split(": refused by ", 1)[1].split(" (", 1)[0]
        by_layer[layer] = by_layer.get(layer, 0) + 1
    layers = ", ".join(f"{n} by {layer}" for layer, n in sorted(by_layer.items()))
    return tried, judging.combine(verdicts, f"all {len(refused)} dry-run changes refused ({layers})")


@runners.runs("configure-namespace-resource-quotas")
def _configure_quotas(s: session.Session) -> runners.Outcome:
    tried = f"as admin, read the ResourceQuotas of {runners.namespaces_text(s)}"
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        hard = analysis.quota_hard(s.quotas[ns])
        missing = analysis.missing_resource_quota(hard)
        if not s.quotas[ns]:
            verdicts.append(("fail", f"{ns}: no ResourceQuota"))
        elif missing:
            verdicts.append(("fail", f"{ns}: no quota on {', '.join(missing)}"))
        else:
            shown = ", ".join(
                f"{k}={hard[k]}"
                for k in (
                    *analysis.CPU_KEYS,
                    "limits.cpu",
                    *analysis.MEMORY_KEYS,
                    "limits.memory",
                    *analysis.STORAGE_KEYS,
                )
                if k in hard
            )
            verdicts.append(("pass", f"{ns}: {shown}"))
    return tried, judging.combine(verdicts)


@runners.runs("configure-namespace-object-limits")
def _configure_object_limits(s: session.Session) -> runners.Outcome:
    tried = f"as admin, read the LimitRanges and ResourceQuotas of {runners.namespaces_text(s)}"
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        hard = analysis.quota_hard(s.quotas[ns])
        missing = analysis.missing_object_limits(hard, s.limit_ranges[ns])
        if missing:
            verdicts.append(("fail", f"{ns}: missing {', '.join(missing)}"))
            continue
        counts = ", ".join(f"{k}={hard[k]}" for k in hard if "." not in k or k.startswith(("count/", "services.")))
        uncapped = [k for k in analysis.UNCAPPED_HINTS if analysis.count_key(hard, k) is None]
        note = f" (not capped: {', '.join(uncapped)})" if uncapped else ""
        lr = ", ".join(lr["metadata"]["name"] for lr in s.limit_ranges[ns])
        verdicts.append(("pass", f"{ns}: LimitRange {lr}; counts {counts}{note}"))
    return tried, judging.combine(verdicts)


@runners.runs("block-network-access-across-tenants")
def _block_network_access(s: session.Session) -> runners.Outcome:
    tried = (
        f"as admin, read the blueprint's NetworkPolicies in {runners.namespaces_text(s)}: one must select every pod "
        "(podSelector {}) for Ingress and Egress and allow nothing, and none may admit other tenants' namespaces"
    )
    others = {ns for o in s.others for ns in o.namespaces}
    labels = {}
    for ns in sorted(others):
        obj = s.read(
            f"Namespace {ns}",
            s.core_a.read_namespace,
            ns,
        )
        labels[ns] = dict(obj.metadata.labels or {})
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        policies = s.blueprint("NetworkPolicies", s.net_a.list_namespaced_network_policy, ns)
        deny = [p["metadata"]["name"] for p in policies if analysis.is_default_deny(p)]
        if deny:
            verdicts.append(("pass", f"{ns}: default deny {', '.join(deny)}"))
        else:
            verdicts.append(
                (
                    "fail",
                    f"{ns}: no blueprint NetworkPolicy denies all Ingress and Egress "
                    f"(found: {', '.join(p['metadata']['name'] for p in policies) or 'none'})",
                )
            )
        for policy in policies:
            for _other_ns, why in analysis.admitted_namespaces(policy, labels).items():
                verdicts.append(("fail", f"{ns}: {why} of another tenant"))
    return tried, judging.combine(
        verdicts,
        "; ".join(t for _, t in verdicts) + f"; no blueprint policy admits the {len(others)} other tenant namespaces",
    )


@runners.runs("tenant-api-fairness")
def _api_fairness(s: session.Session) -> runners.Outcome:
    name = naming.flow_schema_name(s.tenant.name)
    tried = f"as owner, GET /version, read its X-Kubernetes-PF-FlowSchema-UID header; as admin, read FlowSchema {name}"
    flow = s.admin.flowcontrol
    found = s.read_optional(f"FlowSchema {name}", flow.read_flow_schema, name)
    if found is None:
        return tried, ("fail", f"no FlowSchema {name}: the policy's apiFairness is off or not applied")
    schema = s.admin.plain(found)
    _, _, headers = s.owner_request("GET /version as owner", s.owner.version.get_code_with_http_info)
    got = headers.get("X-Kubernetes-PF-FlowSchema-UID")
    if not got:
        return tried, ("fail", "the API server classifies no request (API Priority and Fairness is off)")
    level = schema["spec"]["priorityLevelConfiguration"]["name"]
    if got == schema["metadata"]["uid"]:
        return tried, ("pass", f"the owner's requests are in FlowSchema {name}, priority level {level}")
    listed = s.read("FlowSchemas", flow.list_flow_schema).items
    others = {f["metadata"]["uid"]: f["metadata"]["name"] for f in (s.admin.plain(i) for i in listed)}
    return tried, ("fail", f"the owner's requests land in FlowSchema {others.get(got, got)}, not {name}")
