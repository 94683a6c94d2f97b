"""The catalogue of isolation checks: each check's id, benchmark id, level, title and remedy.

The checks are those of the Kubernetes multi-tenancy working group's benchmark (kubectl-mtb, now retired; its
remedies relied on PodSecurityPolicy, which Kubernetes removed), re-stated for what this project builds.
``docs/verify.md`` lists every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal

from vcluster_mgr import errors

Result = Literal["pass", "fail", "error", "skip"]
SCOPE = "host-namespaces"
"""What the checks cover: the tenant's namespaces on the host cluster (also for tenants with a virtual
control plane, whose own API is not checked here)."""

PROBE_PREFIX = "vcm-verify"
"""Name (prefix) of every object a check sends in dry-run, and the user impersonated for Group owners."""

MAX_DETAIL_LINES = 12
"""Lines of a check's detail the table shows before summarising the rest as "... and N more" (JSON keeps all)."""


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One benchmark check: a stable id, its benchmark id (None for draft or own checks) and a remedy."""

    id: str
    title: str
    level: int
    benchmark: str | None
    remedy: str
    #: run only when named (``vcm verify --check ID``): it checks something the policy may leave off
    opt_in: bool = False
    #: sends traffic between real pods (``traffic_checks``): ``skip`` on a cluster that cannot run them
    needs_node: bool = False


_PSA_REMEDY = (
    "Enforce Pod Security {level} on every tenant namespace: spec.podSecurity: {level}, then `vcm apply`; "
    "each namespace must carry pod-security.kubernetes.io/enforce={level}."
)

CHECKS: tuple[Check, ...] = (
    Check(
        "block-cluster-resources",
        "Block access to cluster resources",
        1,
        "MTB-PL1-CC-CPI-1",
        "Grant owners access only through RoleBindings in their namespaces; remove ClusterRoleBindings "
        "that give them access to nodes, namespaces, cluster roles, CRDs, storage classes or persistent volumes.",
    ),
    Check(
        "block-multitenant-resources",
        "Block modification of multi-tenancy resources",
        1,
        "MTB-PL1-BC-CPI-2",
        "Remove grants that let owners write cluster-scoped objects or update their namespaces, and keep "
        "the vcm-protect-blueprint ValidatingAdmissionPolicy and its binding (`vcm platform apply`).",
    ),
    Check(
        "block-add-capabilities",
        "Block add capabilities",
        1,
        "MTB-PL1-BC-CPI-3",
        _PSA_REMEDY.format(level="restricted (or at least baseline)"),
    ),
    Check(
        "require-run-as-non-root",
        "Require run as non-root user",
        1,
        "MTB-PL1-BC-CPI-4",
        _PSA_REMEDY.format(level="restricted"),
    ),
    Check(
        "block-privileged-containers",
        "Block privileged containers",
        1,
        "MTB-PL1-BC-CPI-5",
        _PSA_REMEDY.format(level="restricted (or at least baseline)"),
    ),
    Check(
        "block-privilege-escalation",
        "Block privilege escalation",
        1,
        "MTB-PL1-BC-CPI-6",
        _PSA_REMEDY.format(level="restricted"),
    ),
    Check(
        "block-modification-of-resource-quotas",
        "Block modification of resource quotas",
        1,
        "MTB-PL1-CC-TI-1",
        "Owners must not hold write access to resourcequotas, limitranges or the blueprint's NetworkPolicies, "
        "and the vcm-protect-blueprint policy binding must exist (`vcm platform apply`).",
    ),
    Check(
        "block-other-tenant-resources",
        "Block access to other tenant resources",
        1,
        "MTB-PL1-CC-TI-2",
        "Remove the RoleBindings or ClusterRoleBindings that give this owner access to other tenants' namespaces.",
    ),
    Check(
        "configure-namespace-resource-quotas",
        "Configure namespace resource quotas",
        1,
        "MTB-PL1-CC-FNS-1",
        "Re-apply the tenant (`vcm apply`) to restore ResourceQuota vcm-quota (requests.cpu, requests.memory, "
        "requests.storage) in every namespace.",
    ),
    Check(
        "configure-namespace-object-limits",
        "Configure namespace object limits",
        1,
        "MTB-PL1-CC-FNS-2",
        "Re-apply the tenant (`vcm apply`) to restore LimitRange vcm-limits (container max cpu and memory) and "
        "the pods and services counts of vcm-quota in every namespace.",
    ),
    Check(
        "require-always-image-pull",
        "Require always imagePullPolicy",
        1,
        "MTB-PL1-CC-DI-1",
        "Restore the vcm-image-pull-always ValidatingAdmissionPolicy and its binding (`vcm platform apply`).",
    ),
    Check(
        "block-host-path-volumes",
        "Block use of host path volumes",
        1,
        "MTB-PL1-BC-HI-1",
        _PSA_REMEDY.format(level="restricted (or at least baseline)"),
    ),
    Check(
        "block-nodeport-services",
        "Block use of NodePort services",
        1,
        "MTB-PL1-BC-HI-1",
        "Cap services.nodeports at 0 in every namespace's ResourceQuota (policy allowNodePorts: false), then "
        "`vcm apply`.",
    ),
    Check(
        "block-host-networking-and-ports",
        "Block use of host networking and ports",
        1,
        "MTB-PL1-BC-HI-3",
        _PSA_REMEDY.format(level="restricted (or at least baseline)"),
    ),
    Check(
        "block-host-pid",
        "Block use of host PID",
        1,
        "MTB-PL1-BC-HI-4",
        _PSA_REMEDY.format(level="restricted (or at least baseline)"),
    ),
    Check(
        "block-host-ipc",
        "Block use of host IPC",
        1,
        "MTB-PL1-BC-HI-5",
        _PSA_REMEDY.format(level="restricted (or at least baseline)"),
    ),
    Check(
        "require-pvc-for-storage",
        "Require PersistentVolumeClaims for storage",
        1,
        None,
        "Owners must not create PersistentVolumes (remove the grant) and must be able to create "
        "PersistentVolumeClaims within the quota (requests.storage, persistentvolumeclaims).",
    ),
    Check(
        "block-existing-persistent-volumes",
        "Block use of existing PersistentVolumes",
        1,
        None,
        "Remove grants that let owners get, list or watch PersistentVolumes.",
    ),
    Check(
        "block-network-access-across-tenants",
        "Block network access across tenant namespaces",
        1,
        None,
        "Use spec.network.isolation: strict so every namespace has vcm-default-deny for Ingress and Egress "
        "(`vcm apply`), and let no blueprint NetworkPolicy admit other tenants' namespaces.",
    ),
    Check(
        "traffic-blocked-across-tenants",
        "No traffic between pods of different tenants (sent, not read)",
        1,
        None,
        "Use spec.network.isolation strict or namespace (`vcm apply`), keep the blueprint's NetworkPolicies, "
        "and run a NetworkPolicy enforcer on every node (a CNI that implements NetworkPolicy).",
        needs_node=True,
    ),
    Check(
        "tenant-policy-ports-declared",
        "Tenant NetworkPolicies name only ports some container declares",
        1,
        None,
        "Name a port in a NetworkPolicy only if the pods it means declare it (containers[].ports[].name, same "
        "protocol), or use the port number: the node's enforcer (kube-router) opens every port to the rule's peers "
        "when a named port resolves to nothing.",
    ),
    Check(
        "traffic-matches-policy-engine",
        "Traffic between the tenant's pods and another tenant's matches cyclonus's policy engine, cell for cell",
        1,
        None,
        "A cell where the probe and the engine differ means the node's enforcer does not do what the "
        "NetworkPolicies say: see the README's isolation section for kube-router's known deviations, and run "
        "`vcm toolchain ensure --conformance` if the engine is missing.",
        opt_in=True,
        needs_node=True,
    ),
    Check(
        "tenant-can-run-compliant-pod",
        "Tenant can run a compliant pod (control for the pod checks)",
        1,
        None,
        "The owner cannot create an ordinary compliant pod: check the owner's RoleBinding, the quota (pods, "
        "cpu, memory) and the vcm-placement ConfigMap. Until this passes, the pod checks cannot be judged.",
    ),
    Check(
        "tenant-can-create-rolebindings",
        "Tenant can create RoleBindings (not beyond its own rights)",
        2,
        "MTB-PL2-BC-OPS-3",
        "Give the owner the admin role to let it delegate; never grant owners bind or escalate on cluster-admin "
        "or other ClusterRoles.",
    ),
    Check(
        "tenant-can-create-networkpolicies",
        "Tenant can create NetworkPolicies",
        2,
        "MTB-PL2-BC-OPS-4",
        "Give the owner the admin or edit role, and do not cap count/networkpolicies.networking.k8s.io at the "
        "blueprint's own number.",
    ),
    Check(
        "tenant-can-create-roles",
        "Tenant can create Roles (not beyond its own rights)",
        2,
        None,
        "Give the owner the admin role; never grant owners escalate on roles.",
    ),
    Check(
        "tenant-api-fairness",
        "Tenant's API requests have a fair share of their own (API Priority and Fairness)",
        2,
        None,
        "Set the policy's apiFairness.enabled: true, then `vcm platform apply` and `vcm apply` the tenant; the API "
        "server must run with API Priority and Fairness (the default; not --enable-priority-and-fairness=false).",
        opt_in=True,
    ),
)
"""Every check, in report order."""

CHECKS_BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}
LEVELS = (1, 2)


def select_checks(wanted: Iterable[str] | None = None, *, level: int = 2) -> list[Check]:
    """The checks to run: those named in ``wanted`` (ids or benchmark ids), else all up to ``level``.

    Levels are cumulative, as in the benchmark: level 2 includes level 1. Opt-in checks run only when named.
    A benchmark id the benchmark reused (MTB-PL1-BC-HI-1) selects every check mapped to it. Raises
    ``errors.UsageError`` naming the valid ids for anything unknown, and for a level outside 1..2.
    """
    if level not in LEVELS:
        raise errors.UsageError(f"level {level} is not one of {', '.join(map(str, LEVELS))}")
    names = list(wanted or [])
    if not names:
        return [c for c in CHECKS if c.level <= level and not c.opt_in]
    chosen: set[str] = set()
    unknown = []
    for name in names:
        key = name.strip()
        hits = [c.id for c in CHECKS if key == c.id or (c.benchmark and key.upper() == c.benchmark)]
        if not hits:
            unknown.append(name)
        chosen.update(hits)
    if unknown:
        raise errors.UsageError(
            f"unknown check {', '.join(map(repr, unknown))}; valid ids: " + ", ".join(c.id for c in CHECKS)
        )
    selected = [c for c in CHECKS if c.id in chosen and c.level <= level]
    if not selected:
        raise errors.UsageError(f"the checks named are all above level {level}; raise --level")
    return selected
