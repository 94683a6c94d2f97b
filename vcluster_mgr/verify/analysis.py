"""Pure readings of live objects: label selectors, what a NetworkPolicy admits, what a ResourceQuota caps,
what RBAC rules grant, which resources are cluster-scoped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vcluster_mgr import kube

# ---------------------------------------------------------------------------------------------
# Label selectors, NetworkPolicies and quotas (pure)
# ---------------------------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects an object with ``labels``; ``{}`` selects all."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def is_default_deny(policy: Mapping[str, Any]) -> bool:
    """A NetworkPolicy selecting every pod (``podSelector: {}``) for Ingress AND Egress, allowing nothing."""
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    selects_all = not selector.get("matchLabels") and not selector.get("matchExpressions")
    types = set(spec.get("policyTypes") or [])
    return selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress")


def admitted_namespaces(policy: Mapping[str, Any], namespaces: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Which of ``namespaces`` (name -> labels) ``policy`` lets traffic come from or go to, and why.

    A rule without peers admits everything; a peer with a namespaceSelector admits the namespaces it
    selects; a peer with only a podSelector stays in the policy's own namespace. ipBlock peers are not
    evaluated (pod addresses are not known here).
    """
    spec = policy.get("spec") or {}
    name = (policy.get("metadata") or {}).get("name", "?")
    types = set(spec.get("policyTypes") or ["Ingress"])
    found: dict[str, str] = {}
    for direction, rules_key, peers_key in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
        if direction not in types:
            continue
        for i, rule in enumerate(spec.get(rules_key) or []):
            peers = rule.get(peers_key) or []
            where = f"{name} {rules_key}[{i}]"
            if not peers:
                for ns in namespaces:
                    found.setdefault(ns, f"{where} has no {peers_key}: it admits every namespace")
                continue
            for peer in peers:
                selector = peer.get("namespaceSelector")
                if selector is None:
                    continue
                for ns, labels in namespaces.items():
                    if selector_matches(selector, labels):
                        found.setdefault(ns, f"{where} selects namespace {ns} ({json.dumps(selector, sort_keys=True)})")
    return found


CPU_KEYS = ("requests.cpu", "cpu")
MEMORY_KEYS = ("requests.memory", "memory")
STORAGE_KEYS = ("requests.storage",)
COUNT_KEYS = ("pods", "services")
UNCAPPED_HINTS = ("persistentvolumeclaims", "configmaps", "secrets", "services.loadbalancers")


def quota_hard(quotas: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The union of ``spec.hard`` of a namespace's ResourceQuotas (the smallest value where several cap one key)."""
    out: dict[str, str] = {}
    for q in quotas:
        for key, value in ((q.get("spec") or {}).get("hard") or {}).items():
            if key not in out:
                out[key] = str(value)
            else:
                try:
                    if kube.parse_quantity(str(value)).value < kube.parse_quantity(out[key]).value:
                        out[key] = str(value)
                except ValueError:
                    pass
    return out


def missing_resource_quota(hard: Mapping[str, str]) -> list[str]:
    """Which of CPU, memory and storage a namespace's quotas leave uncapped."""
    wanted = {"requests.cpu": CPU_KEYS, "requests.memory": MEMORY_KEYS, "requests.storage": STORAGE_KEYS}
    return [name for name, keys in wanted.items() if not any(k in hard for k in keys)]


def count_key(hard: Mapping[str, str], key: str) -> str | None:
    for k in (key, f"count/{key}"):
        if k in hard:
            return k
    return None


def missing_object_limits(hard: Mapping[str, str], limit_ranges: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a namespace lacks of "object limits": a Container LimitRange max for cpu and memory, and
    quota counts for pods and services."""
    maxima: set[str] = set()
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                maxima |= set((item.get("max") or {}).keys())
    missing = [f"LimitRange Container max {r}" for r in ("cpu", "memory") if r not in maxima]
    missing += [f"ResourceQuota count of {k}" for k in COUNT_KEYS if count_key(hard, k) is None]
    return missing


# ---------------------------------------------------------------------------------------------
# Access reviews (pure)
# ---------------------------------------------------------------------------------------------

_SELF_REVIEWS = {
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
}


def granted_rules(
    rules: Sequence[Mapping[str, Any]], cluster_scoped: frozenset[tuple[str, str]] = frozenset()
) -> list[str]:
    """Resource rules of a SelfSubjectRulesReview that give access to namespaced objects.

    A rules review in a namespace also lists the subject's cluster-wide rules; rules only about the
    self-reviews every authenticated user may create, or only about ``cluster_scoped`` resources
    ((group, resource) pairs; subresources count as their resource), are left out.
    """
    out = []
    for rule in rules:
        groups, resources, verbs = rule.get("apiGroups") or [""], rule.get("resources") or [], rule.get("verbs") or []
        pairs = {(g, r) for g in groups for r in resources}
        if pairs and pairs <= _SELF_REVIEWS and set(verbs) <= {"create"}:
            continue
        if pairs and all((g, r.split("/", 1)[0]) in cluster_scoped for g, r in pairs):
            continue
        names = f" named {', '.join(rule['resourceNames'])}" if rule.get("resourceNames") else ""
        shown = ", ".join(f"{r}.{g}" if g else r for g, r in sorted(pairs))
        out.append(f"{'/'.join(verbs)} {shown}{names}")
    return out


AGGREGATED_DISCOVERY = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
)


def cluster_scoped_resources(documents: Iterable[Mapping[str, Any]]) -> frozenset[tuple[str, str]]:
    """The (group, resource) pairs an aggregated discovery document (``APIGroupDiscoveryList``) calls
    cluster-scoped; the core group is ``""``."""
    found = set()
    for doc in documents:
        for group in doc.get("items") or []:
            name = (group.get("metadata") or {}).get("name") or ""
            for version in group.get("versions") or []:
                for resource in version.get("resources") or []:
                    if resource.get("scope") == "Cluster":
                        found.add((name, str(resource.get("resource"))))
    return frozenset(found)


# Cluster resources a tenant must not see or touch (block-cluster-resources), and cluster-scoped kinds it
# must not write (block-multitenant-resources): (API group, resource).
CLUSTER_RESOURCES = (
    ("", "nodes"),
    ("", "namespaces"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("storage.k8s.io", "storageclasses"),
    ("", "persistentvolumes"),
)
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
MULTITENANT_RESOURCES = (
    ("", "namespaces"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
    ("scheduling.k8s.io", "priorityclasses"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
)


def resource_text(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource
