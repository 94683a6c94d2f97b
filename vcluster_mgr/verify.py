"""``vcm verify``: show, against the live cluster, that a tenant's isolation holds.

The checks are those of the Kubernetes multi-tenancy working group's benchmark (kubectl-mtb, now
retired; its remedies relied on PodSecurityPolicy, which Kubernetes removed), re-stated for what this
project builds: Pod Security admission, RBAC, ResourceQuota/LimitRange, NetworkPolicies and the
platform's ValidatingAdmissionPolicies. ``docs/verify.md`` lists every check, its benchmark id and the
JSON output.

Every behavioural check acts AS THE TENANT'S OWNER: the admin's credentials impersonate the owner
(``Impersonate-User`` / ``Impersonate-Group``), and whatever a check must try to create, change or
delete is sent with server-side dry-run (``dryRun=All``), so nothing is left behind. A probe that must
be refused differs from an accepted control in exactly one property, so a refusal is attributable to
that property; when the control itself is refused the check says ``error`` (it cannot be judged)
rather than ``pass``.

Layers, top to bottom:

* ``verify_live`` - glue for the CLI: stack outputs + a host cluster target -> ``Report``;
* ``verify_tenant`` - runs the selected checks for explicit inputs (namespaces, owners, other
  tenants, an ApiClient factory), so tests can drive it with any cluster;
* pure helpers - the check catalogue and its selection, identity choice, probe objects, refusal
  classification, label-selector and NetworkPolicy evaluation, table and JSON shaping.

Nothing here prints or exits; problems that stop a whole run raise ``VerifyError``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors, hostcluster, naming, program

Result = Literal["pass", "fail", "error", "skip"]
SCOPE = "host-namespaces"
"""What the checks cover: the tenant's namespaces on the host cluster (also for tenants with a virtual
control plane, whose own API is not checked here)."""

PROBE_PREFIX = "vcm-verify"
"""Name (prefix) of every object a check sends in dry-run, and the user impersonated for Group owners."""

REQUEST_TIMEOUT = 15.0
"""Seconds each API call may take."""

MAX_DETAIL_LINES = 12
"""Lines of a check's detail the table shows before summarising the rest as "... and N more" (JSON keeps all)."""


class VerifyError(errors.VcmError):
    """A verification could not run at all (cluster unreachable, no owner to act as, no impersonation)."""


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
    #: sends traffic between real pods (``verify_traffic``): ``skip`` on a cluster that cannot run them
    needs_node: bool = False


_PSA_REMEDY = (
    "Enforce Pod Security {level} on every tenant namespace: spec.podSecurity: {level}, then `vcm apply`; "
    "each namespace must carry pod-security.kubernetes.io/enforce={level}."
)

CHECKS: tuple[Check, ...] = (
    Check("block-cluster-resources", "Block access to cluster resources", 1, "MTB-PL1-CC-CPI-1",
          "Grant owners access only through RoleBindings in their namespaces; remove ClusterRoleBindings "
          "that give them access to nodes, namespaces, cluster roles, CRDs, storage classes or persistent volumes."),
    Check("block-multitenant-resources", "Block modification of multi-tenancy resources", 1, "MTB-PL1-BC-CPI-2",
          "Remove grants that let owners write cluster-scoped objects or update their namespaces, and keep "
          "the vcm-protect-blueprint ValidatingAdmissionPolicy and its binding (`vcm platform apply`)."),
    Check("block-add-capabilities", "Block add capabilities", 1, "MTB-PL1-BC-CPI-3",
          _PSA_REMEDY.format(level="restricted (or at least baseline)")),
    Check("require-run-as-non-root", "Require run as non-root user", 1, "MTB-PL1-BC-CPI-4",
          _PSA_REMEDY.format(level="restricted")),
    Check("block-privileged-containers", "Block privileged containers", 1, "MTB-PL1-BC-CPI-5",
          _PSA_REMEDY.format(level="restricted (or at least baseline)")),
    Check("block-privilege-escalation", "Block privilege escalation", 1, "MTB-PL1-BC-CPI-6",
          _PSA_REMEDY.format(level="restricted")),
    Check("block-modification-of-resource-quotas", "Block modification of resource quotas", 1, "MTB-PL1-CC-TI-1",
          "Owners must not hold write access to resourcequotas, limitranges or the blueprint's NetworkPolicies, "
          "and the vcm-protect-blueprint policy binding must exist (`vcm platform apply`)."),
    Check("block-other-tenant-resources", "Block access to other tenant resources", 1, "MTB-PL1-CC-TI-2",
          "Remove the RoleBindings or ClusterRoleBindings that give this owner access to other tenants' namespaces."),
    Check("configure-namespace-resource-quotas", "Configure namespace resource quotas", 1, "MTB-PL1-CC-FNS-1",
          "Re-apply the tenant (`vcm apply`) to restore ResourceQuota vcm-quota (requests.cpu, requests.memory, "
          "requests.storage) in every namespace."),
    Check("configure-namespace-object-limits", "Configure namespace object limits", 1, "MTB-PL1-CC-FNS-2",
          "Re-apply the tenant (`vcm apply`) to restore LimitRange vcm-limits (container max cpu and memory) and "
          "the pods and services counts of vcm-quota in every namespace."),
    Check("require-always-image-pull", "Require always imagePullPolicy", 1, "MTB-PL1-CC-DI-1",
          "Restore the vcm-image-pull-always ValidatingAdmissionPolicy and its binding (`vcm platform apply`)."),
    Check("block-host-path-volumes", "Block use of host path volumes", 1, "MTB-PL1-BC-HI-1",
          _PSA_REMEDY.format(level="restricted (or at least baseline)")),
    Check("block-nodeport-services", "Block use of NodePort services", 1, "MTB-PL1-BC-HI-1",
          "Cap services.nodeports at 0 in every namespace's ResourceQuota (policy allowNodePorts: false), then "
          "`vcm apply`."),
    Check("block-host-networking-and-ports", "Block use of host networking and ports", 1, "MTB-PL1-BC-HI-3",
          _PSA_REMEDY.format(level="restricted (or at least baseline)")),
    Check("block-host-pid", "Block use of host PID", 1, "MTB-PL1-BC-HI-4",
          _PSA_REMEDY.format(level="restricted (or at least baseline)")),
    Check("block-host-ipc", "Block use of host IPC", 1, "MTB-PL1-BC-HI-5",
          _PSA_REMEDY.format(level="restricted (or at least baseline)")),
    Check("require-pvc-for-storage", "Require PersistentVolumeClaims for storage", 1, None,
          "Owners must not create PersistentVolumes (remove the grant) and must be able to create "
          "PersistentVolumeClaims within the quota (requests.storage, persistentvolumeclaims)."),
    Check("block-existing-persistent-volumes", "Block use of existing PersistentVolumes", 1, None,
          "Remove grants that let owners get, list or watch PersistentVolumes."),
    Check("block-network-access-across-tenants", "Block network access across tenant namespaces", 1, None,
          "Use spec.network.isolation: strict so every namespace has vcm-default-deny for Ingress and Egress "
          "(`vcm apply`), and let no blueprint NetworkPolicy admit other tenants' namespaces."),
    Check("traffic-blocked-across-tenants", "No traffic between pods of different tenants (sent, not read)", 1,
          None, "Use spec.network.isolation strict or namespace (`vcm apply`), keep the blueprint's NetworkPolicies, "
          "and run a NetworkPolicy enforcer on every node (a CNI that implements NetworkPolicy).",
          needs_node=True),
    Check("tenant-can-run-compliant-pod", "Tenant can run a compliant pod (control for the pod checks)", 1, None,
          "The owner cannot create an ordinary compliant pod: check the owner's RoleBinding, the quota (pods, "
          "cpu, memory) and the vcm-placement ConfigMap. Until this passes, the pod checks cannot be judged."),
    Check("tenant-can-create-rolebindings", "Tenant can create RoleBindings (not beyond its own rights)", 2,
          "MTB-PL2-BC-OPS-3",
          "Give the owner the admin role to let it delegate; never grant owners bind or escalate on cluster-admin "
          "or other ClusterRoles."),
    Check("tenant-can-create-networkpolicies", "Tenant can create NetworkPolicies", 2, "MTB-PL2-BC-OPS-4",
          "Give the owner the admin or edit role, and do not cap count/networkpolicies.networking.k8s.io at the "
          "blueprint's own number."),
    Check("tenant-can-create-roles", "Tenant can create Roles (not beyond its own rights)", 2, None,
          "Give the owner the admin role; never grant owners escalate on roles."),
)
"""Every check, in report order."""

CHECKS_BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}
LEVELS = (1, 2)


def select_checks(wanted: Iterable[str] | None = None, *, level: int = 2) -> list[Check]:
    """The checks to run: those named in ``wanted`` (ids or benchmark ids), else all up to ``level``.

    Levels are cumulative, as in the benchmark: level 2 includes level 1. A benchmark id the benchmark
    reused (MTB-PL1-BC-HI-1) selects every check mapped to it. Raises ``errors.UsageError`` naming the
    valid ids for anything unknown, and for a level outside 1..2.
    """
    if level not in LEVELS:
        raise errors.UsageError(f"level {level} is not one of {', '.join(map(str, LEVELS))}")
    names = list(wanted or [])
    if not names:
        return [c for c in CHECKS if c.level <= level]
    chosen: set[str] = set()
    unknown = []
    for name in names:
        key = name.strip()
        hits = [c.id for c in CHECKS if key == c.id or (c.benchmark and key.upper() == c.benchmark)]
        if not hits:
            unknown.append(name)
        chosen.update(hits)
    if unknown:
        raise errors.UsageError(f"unknown check {', '.join(map(repr, unknown))}; valid ids: "
                                + ", ".join(c.id for c in CHECKS))
    selected = [c for c in CHECKS if c.id in chosen and c.level <= level]
    if not selected:
        raise errors.UsageError(f"the checks named are all above level {level}; raise --level")
    return selected


# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a check acts as: the owner entry it stands for, and the user and groups impersonated."""

    kind: str
    name: str
    role: str
    user: str
    groups: tuple[str, ...] = ()
    namespace: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"owner": {"kind": self.kind, "name": self.name, "namespace": self.namespace, "role": self.role},
                "user": self.user, "groups": list(self.groups)}

    def describe(self) -> str:
        groups = f" (groups {', '.join(self.groups)})" if self.groups else ""
        return f"{self.user}{groups}"


def identity_for(owner: Mapping[str, Any]) -> Identity:
    """The impersonation for one owner entry (``{"kind", "name", "role", "namespace"?}``).

    A User is impersonated as itself with no extra groups; a Group as the synthetic user ``vcm-verify``
    in that group; a ServiceAccount as ``system:serviceaccount:<ns>:<name>`` with the groups the API
    server gives service accounts. The API server adds ``system:authenticated`` to every impersonation.
    """
    kind, name, role = str(owner["kind"]), str(owner["name"]), str(owner.get("role", ""))
    if kind == "User":
        return Identity(kind, name, role, name)
    if kind == "Group":
        return Identity(kind, name, role, PROBE_PREFIX, (name,))
    if kind == "ServiceAccount":
        ns = owner.get("namespace")
        if not ns:
            raise VerifyError(f"ServiceAccount owner {name!r} has no namespace; cannot act as it")
        return Identity(kind, name, role, f"system:serviceaccount:{ns}:{name}",
                        ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"), str(ns))
    raise VerifyError(f"owner {name!r} has unknown kind {kind!r}")


def choose_identity(owners: Sequence[Mapping[str, Any]]) -> Identity:
    """The owner the checks act as: the first User with role admin, else the first owner of any kind."""
    if not owners:
        raise VerifyError("the tenant has no owners to act as")
    admins = [o for o in owners if o.get("kind") == "User" and o.get("role") == "admin"]
    return identity_for(admins[0] if admins else owners[0])


def _same_owner(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (a.get("kind"), a.get("name"), a.get("namespace") or None) == (
        b.get("kind"), b.get("name"), b.get("namespace") or None)


# ---------------------------------------------------------------------------------------------
# Inputs and results
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TenantInfo:
    """What verification needs to know about a tenant: its namespaces and owners (kind, name, role, namespace)."""

    name: str
    namespaces: tuple[str, ...]
    owners: tuple[Mapping[str, Any], ...] = ()
    control_plane: bool = False


@dataclasses.dataclass(frozen=True)
class CheckResult:
    check: Check
    tried: str
    result: Result
    detail: str

    def as_dict(self) -> dict[str, Any]:
        c = self.check
        return {"id": c.id, "title": c.title, "level": c.level, "benchmark": c.benchmark, "tried": self.tried,
                "result": self.result, "detail": self.detail,
                "remedy": None if self.result == "pass" else c.remedy}


@dataclasses.dataclass(frozen=True)
class Report:
    """The outcome of verifying one tenant."""

    tenant: str
    cluster: str
    identity: Identity
    seen_as: Mapping[str, Any] | None
    namespaces: tuple[str, ...]
    control_plane: bool
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """True only if every check passed or was skipped (a traffic check on a cluster that cannot run its pods);
        an ``error`` is not a pass: the property was not shown."""
        return all(c.result in ("pass", "skip") for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {r: sum(c.result == r for c in self.checks) for r in ("pass", "fail", "error", "skip")}

    def failing(self) -> dict[str, Result]:
        """The checks that did not pass (nor skip), with their result."""
        return {c.check.id: c.result for c in self.checks if c.result not in ("pass", "skip")}

    def as_dict(self) -> dict[str, Any]:
        identity = self.identity.as_dict() | {"seenByServer": dict(self.seen_as) if self.seen_as else None}
        return {"tenant": self.tenant, "cluster": self.cluster, "identity": identity, "scope": SCOPE,
                "controlPlane": self.control_plane, "namespaces": list(self.namespaces),
                "checks": [c.as_dict() for c in self.checks], "summary": self.counts(), "passed": self.passed}


def reports_data(reports: Sequence[Report], *, many: bool) -> Any:
    """The documented JSON shape: one object for a single tenant, a list for ``--all``."""
    data = [r.as_dict() for r in reports]
    return data if many else data[0]


def table_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """Rows of the printed table: id, level, result, what was tried, and the detail (at most
    ``MAX_DETAIL_LINES`` lines) plus the remedy when the check did not pass."""
    rows = []
    for c in report.checks:
        lines = c.detail.splitlines()
        if len(lines) > MAX_DETAIL_LINES:
            lines = lines[:MAX_DETAIL_LINES] + [f"... and {len(lines) - MAX_DETAIL_LINES} more (see -o json)"]
        text = "\n".join(lines) if c.result == "pass" else "\n".join([*lines, f"remedy: {c.check.remedy}"])
        rows.append((c.check.id, f"L{c.check.level}", c.result, c.tried, text))
    return rows


def scope_note(report: Report) -> str:
    """One line saying what the checks covered (and that a virtual control plane was not checked)."""
    where = ", ".join(report.namespaces)
    if report.control_plane:
        return (f"scope: host namespaces {where}; the tenant has a virtual control plane, whose own API these "
                "checks do not cover")
    return f"scope: host namespaces {where}"


# ---------------------------------------------------------------------------------------------
# Attempts, verdicts and their classification (pure)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One request sent as the owner: what it was, and whether the API server accepted it."""

    what: str
    allowed: bool
    status: int | None = None
    message: str = ""

    @property
    def refused(self) -> bool:
        """Refused by authorization or admission (403, or 422 from an admission policy or webhook).

        Other answers (404, 409, a 422 from plain validation, 5xx) mean the probe itself was wrong or the
        cluster failed, so they never count as a refusal.
        """
        if self.allowed:
            return False
        if self.status == 403:
            return True
        return self.status == 422 and any(m in self.message for m in ("ValidatingAdmissionPolicy", "admission webhook"))


Verdict = tuple[Result, str]


def refused_by(message: str) -> str:
    """Which layer refused a request, from the API server's message."""
    if "violates PodSecurity" in message:
        return "Pod Security admission"
    if "ValidatingAdmissionPolicy '" in message:
        name = message.split("ValidatingAdmissionPolicy '", 1)[1].split("'", 1)[0]
        return f"admission policy {name}"
    if "exceeded quota" in message or "status unknown for quota" in message:
        return "ResourceQuota"
    if "attempting to grant RBAC permissions not currently held" in message or "escalat" in message:
        return "RBAC escalation prevention"
    if " cannot " in message and "resource" in message:
        return "RBAC"
    if "admission webhook" in message:
        return "admission webhook"
    return "the API server"


def short_message(message: str) -> str:
    """A refusal message without the leading ``pods "x" is forbidden:`` and cut to a readable length."""
    for marker in (" is forbidden: ", " is invalid: "):
        if marker in message:
            message = message.split(marker, 1)[1]
            break
    message = " ".join(message.split())
    return message if len(message) <= 300 else message[:297] + "..."


def refusal_summary(what: str, attempts: Sequence[Attempt]) -> str:
    """One line for probes refused alike in several namespaces: who refused, and the first message."""
    layers = sorted({refused_by(a.message) for a in attempts})
    first = short_message(attempts[0].message) if attempts else ""
    return f"{what}: refused in {len(attempts)} namespace(s) by {', '.join(layers)} ({first})"


def must_refuse(attempt: Attempt, control: Attempt | None = None) -> Verdict:
    """A probe that must be refused; ``control`` is the same request without the bad property."""
    if attempt.allowed:
        return "fail", f"{attempt.what}: ACCEPTED"
    if not attempt.refused:
        return "error", f"{attempt.what}: unexpected answer {attempt.status}: {short_message(attempt.message)}"
    if control is not None and not control.allowed:
        return "error", (f"{attempt.what}: refused, but so was the compliant control ({control.what}: "
                         f"{short_message(control.message)}), so the refusal proves nothing")
    return "pass", f"{attempt.what}: refused by {refused_by(attempt.message)} ({short_message(attempt.message)})"


def must_allow(attempt: Attempt) -> Verdict:
    """A request the owner must be able to make."""
    if attempt.allowed:
        return "pass", f"{attempt.what}: accepted"
    if attempt.refused:
        return "fail", f"{attempt.what}: refused by {refused_by(attempt.message)} ({short_message(attempt.message)})"
    return "error", f"{attempt.what}: unexpected answer {attempt.status}: {short_message(attempt.message)}"


def combine(verdicts: Sequence[Verdict], summary: str | None = None) -> Verdict:
    """One result for many verdicts: any fail fails, else any error errors, else pass.

    The detail lists what did not pass, one line each; for a pass it is ``summary`` if given, else the
    passing lines.
    """
    if not verdicts:
        return "error", "nothing was checked"
    results = {r for r, _ in verdicts}
    result: Result = "fail" if "fail" in results else "error" if "error" in results else "pass"
    if result == "pass" and summary is not None:
        return result, summary
    lines = [text for r, text in verdicts if r != "pass"] if result != "pass" else [t for _, t in verdicts]
    return result, "\n".join(dict.fromkeys(lines))


# ---------------------------------------------------------------------------------------------
# Probe objects (pure)
# ---------------------------------------------------------------------------------------------

PROBE_IMAGE = "registry.k8s.io/pause:3.10"
FALLBACK_RESOURCES = {"cpu": "100m", "memory": "128Mi"}
"""Requests and limits of probe pods in a namespace without a LimitRange default."""


def container_resources(limit_ranges: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Requests and limits inside the namespace's LimitRanges: their Container defaults, else a small fallback."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                requests |= {k: str(v) for k, v in (item.get("defaultRequest") or {}).items()}
                limits |= {k: str(v) for k, v in (item.get("default") or {}).items()}
    for key, value in FALLBACK_RESOURCES.items():
        limits.setdefault(key, requests.get(key, value))
        requests.setdefault(key, limits[key])
    return {"requests": requests, "limits": limits}


def placement_selector(configmap: Mapping[str, Any] | None) -> dict[str, str]:
    """The nodeSelector the vcm-placement policy asks for, from the namespace's vcm-placement ConfigMap."""
    data = (configmap or {}).get("data") or {}
    pairs = (str(v).split("=", 1) for v in data.values())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def compliant_pod(name: str, *, node_selector: Mapping[str, str], resources: Mapping[str, Any]) -> dict[str, Any]:
    """A pod every tenant namespace must accept: Pod Security restricted, imagePullPolicy Always, the
    tenant's nodeSelector and resources inside its LimitRange."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": PROBE_PREFIX}},
        "spec": {
            "automountServiceAccountToken": False,
            "nodeSelector": dict(node_selector),
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": PROBE_IMAGE, "imagePullPolicy": "Always",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "runAsNonRoot": True, "readOnlyRootFilesystem": True},
                "resources": copy.deepcopy(dict(resources)),
            }],
        },
    }


def _add_capabilities(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_ADMIN", "SYS_ADMIN"]


def _no_run_as_non_root(pod: dict[str, Any]) -> None:
    pod["spec"]["securityContext"].pop("runAsNonRoot")
    pod["spec"]["securityContext"].pop("runAsUser")
    pod["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")


def _run_as_root(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0


def _privileged(pod: dict[str, Any]) -> None:
    context = pod["spec"]["containers"][0]["securityContext"]
    context.pop("allowPrivilegeEscalation")  # the API refuses privileged with allowPrivilegeEscalation: false
    context["privileged"] = True


def _privilege_escalation(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True


def _image_pull_if_not_present(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"


def _host_path(pod: dict[str, Any]) -> None:
    pod["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/etc", "type": "Directory"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host", "readOnly": True}]


def _host_network(pod: dict[str, Any]) -> None:
    pod["spec"]["hostNetwork"] = True


def _host_port(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]


def _host_pid(pod: dict[str, Any]) -> None:
    pod["spec"]["hostPID"] = True


def _host_ipc(pod: dict[str, Any]) -> None:
    pod["spec"]["hostIPC"] = True


@dataclasses.dataclass(frozen=True)
class PodProbe:
    """A compliant pod with ONE bad property, which the tenant's namespaces must refuse."""

    name: str
    property: str
    mutate: Callable[[dict[str, Any]], None]

    def pod(self, *, node_selector: Mapping[str, str], resources: Mapping[str, Any]) -> dict[str, Any]:
        pod = compliant_pod(f"{PROBE_PREFIX}-{self.name}", node_selector=node_selector, resources=resources)
        self.mutate(pod)
        return pod


POD_PROBES: dict[str, tuple[PodProbe, ...]] = {
    "block-add-capabilities": (PodProbe("add-capabilities", "capabilities.add: [NET_ADMIN, SYS_ADMIN]",
                                        _add_capabilities),),
    "require-run-as-non-root": (
        PodProbe("no-run-as-non-root", "no runAsNonRoot and no runAsUser (the image's user, often root)",
                 _no_run_as_non_root),
        PodProbe("run-as-root", "runAsUser: 0", _run_as_root),
    ),
    "block-privileged-containers": (PodProbe("privileged", "privileged: true", _privileged),),
    "block-privilege-escalation": (PodProbe("privilege-escalation", "allowPrivilegeEscalation: true",
                                            _privilege_escalation),),
    "require-always-image-pull": (PodProbe("image-pull", "imagePullPolicy: IfNotPresent",
                                           _image_pull_if_not_present),),
    "block-host-path-volumes": (PodProbe("host-path", "a hostPath volume (/etc, read-only)", _host_path),),
    "block-host-networking-and-ports": (
        PodProbe("host-network", "hostNetwork: true", _host_network),
        PodProbe("host-port", "hostPort: 8080", _host_port),
    ),
    "block-host-pid": (PodProbe("host-pid", "hostPID: true", _host_pid),),
    "block-host-ipc": (PodProbe("host-ipc", "hostIPC: true", _host_ipc),),
}
"""The pod probes of each pod check; each must be refused in every tenant namespace."""


def probe_service(service_type: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{PROBE_PREFIX}-{service_type.lower()}"},
            "spec": {"type": service_type, "selector": {"app.kubernetes.io/name": PROBE_PREFIX},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


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
                    if naming.parse_quantity(str(value)).value < naming.parse_quantity(out[key]).value:
                        out[key] = str(value)
                except ValueError:
                    pass
    return out


def missing_resource_quota(hard: Mapping[str, str]) -> list[str]:
    """Which of CPU, memory and storage a namespace's quotas leave uncapped."""
    wanted = {"requests.cpu": CPU_KEYS, "requests.memory": MEMORY_KEYS, "requests.storage": STORAGE_KEYS}
    return [name for name, keys in wanted.items() if not any(k in hard for k in keys)]


def _count_key(hard: Mapping[str, str], key: str) -> str | None:
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
    missing += [f"ResourceQuota count of {k}" for k in COUNT_KEYS if _count_key(hard, k) is None]
    return missing


# ---------------------------------------------------------------------------------------------
# Access reviews (pure)
# ---------------------------------------------------------------------------------------------

_SELF_REVIEWS = {("authorization.k8s.io", "selfsubjectaccessreviews"),
                 ("authorization.k8s.io", "selfsubjectrulesreviews"), ("authentication.k8s.io", "selfsubjectreviews")}


def granted_rules(rules: Sequence[Mapping[str, Any]],
                  cluster_scoped: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
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


_AGGREGATED_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                         "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")


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
    ("", "nodes"), ("", "namespaces"), ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"), ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("storage.k8s.io", "storageclasses"), ("", "persistentvolumes"),
)
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
MULTITENANT_RESOURCES = (
    ("", "namespaces"), ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
    ("scheduling.k8s.io", "priorityclasses"), ("apiextensions.k8s.io", "customresourcedefinitions"),
)


def _res(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------

ClientFactory = Callable[[Identity | None], client.ApiClient]
"""Makes an ApiClient: the admin's for ``None``, else one that impersonates the identity."""


class _Impersonating:
    """Wraps the REST client's urllib3 pool so every request carries the impersonation headers.

    The kubernetes client keeps headers in a plain dict, which cannot repeat ``Impersonate-Group``
    (the API server reads one group per header), so the headers are added here, as urllib3 allows.
    """

    def __init__(self, inner: Any, identity: Identity) -> None:
        self._inner = inner
        self._identity = identity

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(headers or {})
        merged["Impersonate-User"] = self._identity.user
        for group in self._identity.groups:
            merged.add("Impersonate-Group", group)
        return self._inner.request(method, url, *args, headers=merged, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def impersonate(api: client.ApiClient, identity: Identity) -> client.ApiClient:
    """``api`` made to act as ``identity`` (its credentials must be allowed to impersonate)."""
    api.rest_client.pool_manager = _Impersonating(api.rest_client.pool_manager, identity)
    return api


def client_factory(target: program.Target) -> ClientFactory:
    """ApiClients for a host cluster: the admin's kubeconfig, impersonating the identity when one is given."""

    def make(identity: Identity | None) -> client.ApiClient:
        api = hostcluster.api_client(target)
        return impersonate(api, identity) if identity is not None else api

    return make


# ---------------------------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------------------------


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


class _CheckFailed(Exception):
    """An admin read a check needs failed; the check reports ``error`` with this message."""


class _Session:
    """One tenant's verification: the admin's and the owner's clients, and what several checks share."""

    def __init__(self, tenant: TenantInfo, identity: Identity, others: Sequence[TenantInfo],
                 admin: client.ApiClient, owner: client.ApiClient) -> None:
        self.tenant = tenant
        self.identity = identity
        self.others = others
        self.admin = admin
        self.owner = owner
        self.server = str(admin.configuration.host)
        self.core_a, self.core_o = client.CoreV1Api(admin), client.CoreV1Api(owner)
        self.net_a, self.net_o = client.NetworkingV1Api(admin), client.NetworkingV1Api(owner)
        self.rbac_a, self.rbac_o = client.RbacAuthorizationV1Api(admin), client.RbacAuthorizationV1Api(owner)
        self.authz_o = client.AuthorizationV1Api(owner)
        self.ns = list(tenant.namespaces)
        self._compliant: dict[str, Attempt] = {}

    # -- plumbing ------------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> VerifyError:
        return VerifyError(f"the API server {self.server} is not reachable: {exc}")

    def read(self, what: str, call: Callable[[], Any]) -> Any:
        """An admin read; ``_CheckFailed`` if the server refuses it."""
        try:
            return call()
        except ApiException as exc:
            raise _CheckFailed(f"reading {what} as admin: {exc.status} {_message(exc)}") from exc
        except (HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def items(self, what: str, call: Callable[[], Any]) -> list[dict[str, Any]]:
        """An admin list call, its items as plain dicts (camelCase keys, as in manifests)."""
        return [self.admin.sanitize_for_serialization(i) for i in self.read(what, call).items]

    def attempt(self, what: str, call: Callable[[], Any]) -> Attempt:
        """A request as the owner."""
        try:
            call()
        except ApiException as exc:
            return Attempt(what, False, exc.status, _message(exc))
        except (HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return Attempt(what, True)

    def can(self, verb: str, group: str, resource: str, namespace: str | None = None,
            name: str | None = None) -> bool:
        """Whether the owner may ``verb`` the resource (SelfSubjectAccessReview as the owner)."""
        attrs = client.V1ResourceAttributes(verb=verb, group=group, resource=resource, namespace=namespace,
                                            name=name)
        body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
        try:
            review = self.authz_o.create_self_subject_access_review(body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise _CheckFailed(f"SelfSubjectAccessReview as {self.identity.user}: {exc.status} "
                               f"{_message(exc)}") from exc
        except (HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return bool(review.status.allowed)

    def denied_matrix(self, resources: Sequence[tuple[str, str]], verbs: Sequence[str]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for group, resource in resources:
            allowed = [v for v in verbs if self.can(v, group, resource)]
            if allowed:
                verdicts.append(("fail", f"may {', '.join(allowed)} {_res(group, resource)} (cluster scope)"))
            else:
                verdicts.append(("pass", f"may not {'/'.join(verbs)} {_res(group, resource)}"))
        return verdicts

    # -- what several checks share -------------------------------------------------------------

    @functools.cached_property
    def cluster_scoped(self) -> frozenset[tuple[str, str]]:
        """Cluster-scoped resources, from the server's aggregated discovery (admin); empty if it has none."""
        cfg = self.admin.configuration
        headers = {"Accept": _AGGREGATED_DISCOVERY}
        token = cfg.auth_settings().get("BearerToken")
        if token and token.get("value"):
            headers[token["key"]] = token["value"]
        documents = []
        for path in ("/api", "/apis"):
            try:
                response = self.admin.rest_client.request("GET", cfg.host + path, headers=headers,
                                                          _request_timeout=REQUEST_TIMEOUT)
                data = response.data if getattr(response, "data", None) is not None else response.read()
            except ApiException as exc:
                raise _CheckFailed(f"reading API discovery {path}: {exc.status} {_message(exc)}") from exc
            except (HTTPError, OSError) as exc:
                raise self._unreachable(exc) from exc
            if response.status == 200:
                try:
                    documents.append(json.loads(data))
                except ValueError:
                    pass
        return cluster_scoped_resources(documents)

    @functools.cached_property
    def placement(self) -> dict[str, dict[str, str]]:
        out = {}
        for ns in self.ns:
            try:
                cm = self.admin.sanitize_for_serialization(self.core_a.read_namespaced_config_map(
                    naming.PLACEMENT_CONFIGMAP, ns, _request_timeout=REQUEST_TIMEOUT))
            except ApiException as exc:
                if exc.status != 404:
                    raise _CheckFailed(f"reading ConfigMap {ns}/{naming.PLACEMENT_CONFIGMAP}: {_message(exc)}") from exc
                cm = None
            except (HTTPError, OSError) as exc:
                raise self._unreachable(exc) from exc
            out[ns] = placement_selector(cm)
        return out

    @functools.cached_property
    def limit_ranges(self) -> dict[str, list[dict[str, Any]]]:
        return {ns: self.items(f"LimitRanges in {ns}", functools.partial(
            self.core_a.list_namespaced_limit_range, ns, _request_timeout=REQUEST_TIMEOUT)) for ns in self.ns}

    @functools.cached_property
    def quotas(self) -> dict[str, list[dict[str, Any]]]:
        return {ns: self.items(f"ResourceQuotas in {ns}", functools.partial(
            self.core_a.list_namespaced_resource_quota, ns, _request_timeout=REQUEST_TIMEOUT)) for ns in self.ns}

    def blueprint(self, what: str, call: Callable[..., Any], ns: str) -> list[dict[str, Any]]:
        """Objects of one kind in ``ns`` labelled as the blueprint's (managed-by vcluster-mgr)."""
        selector = f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}"
        return self.items(f"{what} in {ns}", functools.partial(call, ns, label_selector=selector,
                                                               _request_timeout=REQUEST_TIMEOUT))

    def pod(self, ns: str, probe: PodProbe | None = None) -> dict[str, Any]:
        resources = container_resources(self.limit_ranges[ns])
        if probe is None:
            return compliant_pod(f"{PROBE_PREFIX}-compliant", node_selector=self.placement[ns], resources=resources)
        return probe.pod(node_selector=self.placement[ns], resources=resources)

    def create_pod(self, ns: str, body: dict[str, Any], what: str) -> Attempt:
        return self.attempt(what, lambda: self.core_o.create_namespaced_pod(
            ns, body, dry_run="All", _request_timeout=REQUEST_TIMEOUT))

    def compliant(self, ns: str) -> Attempt:
        if ns not in self._compliant:
            self._compliant[ns] = self.create_pod(ns, self.pod(ns), f"compliant pod in {ns}")
        return self._compliant[ns]


Outcome = tuple[str, Verdict]
"""What a check tried, and its verdict."""

_RUNNERS: dict[str, Callable[[_Session], Outcome]] = {}


def _runs(check_id: str) -> Callable[[Callable[[_Session], Outcome]], Callable[[_Session], Outcome]]:
    def register(fn: Callable[[_Session], Outcome]) -> Callable[[_Session], Outcome]:
        _RUNNERS[check_id] = fn
        return fn

    return register


def _in(s: _Session) -> str:
    return ", ".join(s.ns)


@_runs("block-cluster-resources")
def _block_cluster_resources(s: _Session) -> Outcome:
    tried = (f"SelfSubjectAccessReview for {', '.join(ALL_VERBS)} on "
             f"{', '.join(_res(g, r) for g, r in CLUSTER_RESOURCES)} at cluster scope; then list each of them")
    verdicts = s.denied_matrix(CLUSTER_RESOURCES, ALL_VERBS)
    lists: dict[str, Callable[[], Any]] = {
        "nodes": s.core_o.list_node, "namespaces": s.core_o.list_namespace,
        "persistentvolumes": s.core_o.list_persistent_volume,
        "clusterroles": s.rbac_o.list_cluster_role, "clusterrolebindings": s.rbac_o.list_cluster_role_binding,
        "storageclasses": client.StorageV1Api(s.owner).list_storage_class,
        "customresourcedefinitions": client.ApiextensionsV1Api(s.owner).list_custom_resource_definition,
    }
    for resource, call in lists.items():
        verdicts.append(must_refuse(s.attempt(f"list {resource}", functools.partial(
            call, limit=1, _request_timeout=REQUEST_TIMEOUT))))
    return tried, combine(verdicts, f"all {len(CLUSTER_RESOURCES) * len(ALL_VERBS)} access reviews denied and "
                                    f"all {len(lists)} lists refused (403)")


@_runs("block-multitenant-resources")
def _block_multitenant_resources(s: _Session) -> Outcome:
    tried = (f"SelfSubjectAccessReview for {', '.join(WRITE_VERBS)} on "
             f"{', '.join(_res(g, r) for g, r in MULTITENANT_RESOURCES)}; dry-run create of a Namespace, a "
             f"ClusterRole and a PriorityClass; dry-run patch and delete of the tenant's Namespaces and of the "
             f"blueprint's RoleBindings, Roles, ConfigMaps, Secrets and ServiceAccounts in {_in(s)}")
    verdicts = s.denied_matrix(MULTITENANT_RESOURCES, WRITE_VERBS)
    name = f"{PROBE_PREFIX}-probe"
    meta = client.V1ObjectMeta(name=name)
    creates: dict[str, Callable[[], Any]] = {
        "Namespace": lambda: s.core_o.create_namespace(client.V1Namespace(metadata=meta), dry_run="All"),
        "ClusterRole": lambda: s.rbac_o.create_cluster_role(client.V1ClusterRole(metadata=meta), dry_run="All"),
        "PriorityClass": lambda: client.SchedulingV1Api(s.owner).create_priority_class(
            client.V1PriorityClass(metadata=meta, value=1000000), dry_run="All"),
    }
    for kind, call in creates.items():
        verdicts.append(must_refuse(s.attempt(f"create {kind} {name}", call)))
    patch = {"metadata": {"annotations": {f"{PROBE_PREFIX}.vcluster-mgr.dev/probe": "modified"}}}
    relabel = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    for ns in s.ns:
        verdicts.append(must_refuse(s.attempt(f"relabel Namespace {ns} enforce=privileged", lambda ns=ns: (
            s.core_o.patch_namespace(ns, relabel, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))))
        verdicts.append(must_refuse(s.attempt(f"delete Namespace {ns}", lambda ns=ns: (
            s.core_o.delete_namespace(ns, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))))
        kinds: list[tuple[str, Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = [
            ("RoleBinding", s.rbac_a.list_namespaced_role_binding, s.rbac_o.patch_namespaced_role_binding,
             s.rbac_o.delete_namespaced_role_binding),
            ("Role", s.rbac_a.list_namespaced_role, s.rbac_o.patch_namespaced_role, s.rbac_o.delete_namespaced_role),
            ("ConfigMap", s.core_a.list_namespaced_config_map, s.core_o.patch_namespaced_config_map,
             s.core_o.delete_namespaced_config_map),
            ("Secret", s.core_a.list_namespaced_secret, s.core_o.patch_namespaced_secret,
             s.core_o.delete_namespaced_secret),
            ("ServiceAccount", s.core_a.list_namespaced_service_account, s.core_o.patch_namespaced_service_account,
             s.core_o.delete_namespaced_service_account),
        ]
        for kind, lister, patcher, deleter in kinds:
            for obj in s.blueprint(f"{kind}s", lister, ns):
                obj_name = obj["metadata"]["name"]
                verdicts.append(must_refuse(s.attempt(f"patch {kind} {ns}/{obj_name}", functools.partial(
                    patcher, obj_name, ns, patch, dry_run="All", _request_timeout=REQUEST_TIMEOUT))))
                verdicts.append(must_refuse(s.attempt(f"delete {kind} {ns}/{obj_name}", functools.partial(
                    deleter, obj_name, ns, dry_run="All", _request_timeout=REQUEST_TIMEOUT))))
    refused = [t for r, t in verdicts if r == "pass" and ": refused by " in t]
    layers = sorted({t.split(": refused by ", 1)[1].split(" (", 1)[0] for t in refused})
    return tried, combine(verdicts, f"no cluster-scoped write allowed; {len(refused)} dry-run changes refused "
                                    f"(by {', '.join(layers)})")


def _pod_check(check_id: str) -> Callable[[_Session], Outcome]:
    probes = POD_PROBES[check_id]

    def run(s: _Session) -> Outcome:
        tried = (f"dry-run create, in {_in(s)}, of a pod otherwise compliant (Pod Security restricted, "
                 f"imagePullPolicy Always, the tenant's nodeSelector and limits) with "
                 + " / with ".join(p.property for p in probes))
        verdicts = []
        refusals: dict[str, list[Attempt]] = {p.name: [] for p in probes}
        for ns in s.ns:
            control = s.compliant(ns)
            for probe in probes:
                attempt = s.create_pod(ns, s.pod(ns, probe), f"pod with {probe.property} in {ns}")
                verdicts.append(must_refuse(attempt, control))
                refusals[probe.name].append(attempt)
        summary = "\n".join(refusal_summary(p.property, refusals[p.name]) for p in probes)
        return tried, combine(verdicts, summary)

    return run


for _check_id in POD_PROBES:
    _RUNNERS[_check_id] = _pod_check(_check_id)


@_runs("tenant-can-run-compliant-pod")
def _compliant_pod(s: _Session) -> Outcome:
    tried = (f"dry-run create, in {_in(s)}, of a pod compliant with Pod Security restricted, imagePullPolicy "
             "Always, the tenant's nodeSelector (vcm-placement) and resources inside its LimitRange")
    return tried, combine([must_allow(s.compliant(ns)) for ns in s.ns], f"accepted in {_in(s)}")


@_runs("block-modification-of-resource-quotas")
def _block_quota_modification(s: _Session) -> Outcome:
    tried = (f"dry-run patch and delete of every ResourceQuota, LimitRange and blueprint NetworkPolicy in "
             f"{_in(s)}, and dry-run create of a ResourceQuota")
    patch = {"metadata": {"annotations": {f"{PROBE_PREFIX}.vcluster-mgr.dev/probe": "modified"}}}
    verdicts: list[Verdict] = []
    for ns in s.ns:
        targets: list[tuple[str, list[dict[str, Any]], Callable[..., Any], Callable[..., Any]]] = [
            ("ResourceQuota", s.quotas[ns], s.core_o.patch_namespaced_resource_quota,
             s.core_o.delete_namespaced_resource_quota),
            ("LimitRange", s.limit_ranges[ns], s.core_o.patch_namespaced_limit_range,
             s.core_o.delete_namespaced_limit_range),
            ("NetworkPolicy", s.blueprint("NetworkPolicies", s.net_a.list_namespaced_network_policy, ns),
             s.net_o.patch_namespaced_network_policy, s.net_o.delete_namespaced_network_policy),
        ]
        for kind, objects, patcher, deleter in targets:
            for obj in objects:
                name = obj["metadata"]["name"]
                verdicts.append(must_refuse(s.attempt(f"patch {kind} {ns}/{name}", functools.partial(
                    patcher, name, ns, patch, dry_run="All", _request_timeout=REQUEST_TIMEOUT))))
                verdicts.append(must_refuse(s.attempt(f"delete {kind} {ns}/{name}", functools.partial(
                    deleter, name, ns, dry_run="All", _request_timeout=REQUEST_TIMEOUT))))
        quota = client.V1ResourceQuota(metadata=client.V1ObjectMeta(name=f"{PROBE_PREFIX}-probe"),
                                       spec=client.V1ResourceQuotaSpec(hard={"pods": "1000"}))
        verdicts.append(must_refuse(s.attempt(f"create ResourceQuota in {ns}", lambda ns=ns, q=quota: (
            s.core_o.create_namespaced_resource_quota(ns, q, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))))
    refused = [t for r, t in verdicts if r == "pass"]
    by_layer: dict[str, int] = {}
    for t in refused:
        layer = t.split(": refused by ", 1)[1].split(" (", 1)[0]
        by_layer[layer] = by_layer.get(layer, 0) + 1
    layers = ", ".join(f"{n} by {layer}" for layer, n in sorted(by_layer.items()))
    return tried, combine(verdicts, f"all {len(refused)} dry-run changes refused ({layers})")


@_runs("block-other-tenant-resources")
def _block_other_tenants(s: _Session) -> Outcome:
    owner = {"kind": s.identity.kind, "name": s.identity.name, "namespace": s.identity.namespace}
    targets: list[str] = []
    shared: list[str] = []
    for other in s.others:
        if any(_same_owner(owner, o) for o in other.owners):
            shared.append(other.name)
        else:
            targets += other.namespaces
    targets.append(naming.SYSTEM_NAMESPACE)
    tried = (f"SelfSubjectRulesReview, list pods, list secrets and dry-run create of a ConfigMap in "
             f"{', '.join(targets)}")
    verdicts: list[Verdict] = []
    for ns in targets:
        review = client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=ns))
        try:
            status = s.authz_o.create_self_subject_rules_review(review, _request_timeout=REQUEST_TIMEOUT).status
        except ApiException as exc:
            raise _CheckFailed(f"SelfSubjectRulesReview in {ns}: {exc.status} {_message(exc)}") from exc
        except (HTTPError, OSError) as exc:
            raise s._unreachable(exc) from exc
        granted = granted_rules([s.owner.sanitize_for_serialization(r) for r in status.resource_rules or []],
                                s.cluster_scoped)
        if granted:
            verdicts.append(("fail", f"in {ns} the owner may: {'; '.join(granted)}"))
        elif status.incomplete:
            verdicts.append(("pass", f"{ns}: rules review incomplete ({status.evaluation_error}); attempts decide"))
        verdicts.append(must_refuse(s.attempt(f"list pods in {ns}", lambda ns=ns: s.core_o.list_namespaced_pod(
            ns, limit=1, _request_timeout=REQUEST_TIMEOUT))))
        verdicts.append(must_refuse(s.attempt(f"list secrets in {ns}", lambda ns=ns: s.core_o.list_namespaced_secret(
            ns, limit=1, _request_timeout=REQUEST_TIMEOUT))))
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"{PROBE_PREFIX}-probe"), data={"probe": "1"})
        verdicts.append(must_refuse(s.attempt(f"create ConfigMap in {ns}", lambda ns=ns, cm=cm: (
            s.core_o.create_namespaced_config_map(ns, cm, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))))
    note = f"; not checked: {', '.join(shared)} (same owner)" if shared else ""
    return tried, combine(verdicts, f"no access in {len(targets)} namespaces of other tenants and the platform{note}")


@_runs("configure-namespace-resource-quotas")
def _configure_quotas(s: _Session) -> Outcome:
    tried = f"as admin, read the ResourceQuotas of {_in(s)}"
    verdicts: list[Verdict] = []
    for ns in s.ns:
        hard = quota_hard(s.quotas[ns])
        missing = missing_resource_quota(hard)
        if not s.quotas[ns]:
            verdicts.append(("fail", f"{ns}: no ResourceQuota"))
        elif missing:
            verdicts.append(("fail", f"{ns}: no quota on {', '.join(missing)}"))
        else:
            shown = ", ".join(f"{k}={hard[k]}" for k in (*CPU_KEYS, "limits.cpu", *MEMORY_KEYS, "limits.memory",
                                                         *STORAGE_KEYS) if k in hard)
            verdicts.append(("pass", f"{ns}: {shown}"))
    return tried, combine(verdicts)


@_runs("configure-namespace-object-limits")
def _configure_object_limits(s: _Session) -> Outcome:
    tried = f"as admin, read the LimitRanges and ResourceQuotas of {_in(s)}"
    verdicts: list[Verdict] = []
    for ns in s.ns:
        hard = quota_hard(s.quotas[ns])
        missing = missing_object_limits(hard, s.limit_ranges[ns])
        if missing:
            verdicts.append(("fail", f"{ns}: missing {', '.join(missing)}"))
            continue
        counts = ", ".join(f"{k}={hard[k]}" for k in hard if "." not in k or k.startswith(("count/", "services.")))
        uncapped = [k for k in UNCAPPED_HINTS if _count_key(hard, k) is None]
        note = f" (not capped: {', '.join(uncapped)})" if uncapped else ""
        lr = ", ".join(lr["metadata"]["name"] for lr in s.limit_ranges[ns])
        verdicts.append(("pass", f"{ns}: LimitRange {lr}; counts {counts}{note}"))
    return tried, combine(verdicts)


@_runs("block-nodeport-services")
def _block_nodeports(s: _Session) -> Outcome:
    tried = f"dry-run create of a NodePort Service in {_in(s)} (control: the same Service as ClusterIP)"
    verdicts = []
    attempts = []
    for ns in s.ns:
        def create(body: dict[str, Any], ns: str = ns) -> Any:
            return s.core_o.create_namespaced_service(ns, body, dry_run="All", _request_timeout=REQUEST_TIMEOUT)

        control = s.attempt(f"ClusterIP Service in {ns}", functools.partial(create, probe_service("ClusterIP")))
        attempts.append(s.attempt(f"NodePort Service in {ns}", functools.partial(create, probe_service("NodePort"))))
        verdicts.append(must_refuse(attempts[-1], control))
    return tried, combine(verdicts, refusal_summary("NodePort Service", attempts) + "; ClusterIP control accepted")


def _pv_body() -> client.V1PersistentVolume:
    return client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name=f"{PROBE_PREFIX}-probe"),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "1Gi"}, access_modes=["ReadWriteOnce"],
            csi=client.V1CSIPersistentVolumeSource(driver="vcm-verify.invalid", volume_handle="probe")))


@_runs("require-pvc-for-storage")
def _require_pvc(s: _Session) -> Outcome:
    tried = (f"SelfSubjectAccessReview for {', '.join(WRITE_VERBS)} persistentvolumes; dry-run create of a "
             f"PersistentVolume (must be refused) and of a 1Mi PersistentVolumeClaim in {_in(s)} (must be accepted)")
    verdicts = s.denied_matrix([("", "persistentvolumes")], WRITE_VERBS)
    verdicts.append(must_refuse(s.attempt("create PersistentVolume", lambda: s.core_o.create_persistent_volume(
        _pv_body(), dry_run="All", _request_timeout=REQUEST_TIMEOUT))))
    for ns in s.ns:
        pvc = client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=f"{PROBE_PREFIX}-probe"),
            spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                    resources=client.V1VolumeResourceRequirements(
                                                        requests={"storage": "1Mi"})))
        verdicts.append(must_allow(s.attempt(f"create PersistentVolumeClaim in {ns}", lambda ns=ns, pvc=pvc: (
            s.core_o.create_namespaced_persistent_volume_claim(ns, pvc, dry_run="All",
                                                               _request_timeout=REQUEST_TIMEOUT)))))
    return tried, combine(verdicts, "PersistentVolumes may not be written; PersistentVolumeClaims accepted in "
                                    + _in(s))


@_runs("block-existing-persistent-volumes")
def _block_existing_pvs(s: _Session) -> Outcome:
    tried = f"SelfSubjectAccessReview for {', '.join(READ_VERBS)} persistentvolumes; list persistentvolumes"
    verdicts = s.denied_matrix([("", "persistentvolumes")], READ_VERBS)
    verdicts.append(must_refuse(s.attempt("list persistentvolumes", lambda: s.core_o.list_persistent_volume(
        limit=1, _request_timeout=REQUEST_TIMEOUT))))
    return tried, combine(verdicts, "PersistentVolumes can be neither listed nor read (403)")


@_runs("block-network-access-across-tenants")
def _block_network_access(s: _Session) -> Outcome:
    tried = (f"as admin, read the blueprint's NetworkPolicies in {_in(s)}: one must select every pod "
             "(podSelector {}) for Ingress and Egress and allow nothing, and none may admit other tenants' namespaces")
    others = {ns for o in s.others for ns in o.namespaces}
    labels = {}
    for ns in sorted(others):
        obj = s.read(f"Namespace {ns}", functools.partial(s.core_a.read_namespace, ns,
                                                          _request_timeout=REQUEST_TIMEOUT))
        labels[ns] = dict(obj.metadata.labels or {})
    verdicts: list[Verdict] = []
    for ns in s.ns:
        policies = s.blueprint("NetworkPolicies", s.net_a.list_namespaced_network_policy, ns)
        deny = [p["metadata"]["name"] for p in policies if is_default_deny(p)]
        if deny:
            verdicts.append(("pass", f"{ns}: default deny {', '.join(deny)}"))
        else:
            verdicts.append(("fail", f"{ns}: no blueprint NetworkPolicy denies all Ingress and Egress "
                                     f"(found: {', '.join(p['metadata']['name'] for p in policies) or 'none'})"))
        for policy in policies:
            for other_ns, why in admitted_namespaces(policy, labels).items():
                verdicts.append(("fail", f"{ns}: {why} of another tenant"))
    return tried, combine(verdicts, "; ".join(t for _, t in verdicts)
                          + f"; no blueprint policy admits the {len(others)} other tenant namespaces")


@_runs("tenant-can-create-rolebindings")
def _create_rolebindings(s: _Session) -> Outcome:
    tried = (f"dry-run create in {_in(s)} of a RoleBinding of ClusterRole view (must be accepted) and of "
             "ClusterRole cluster-admin (must be refused)")
    verdicts = []
    refused = []
    subject = client.RbacV1Subject(kind="User", name=f"{PROBE_PREFIX}-probe@invalid",
                                   api_group="rbac.authorization.k8s.io")
    for ns in s.ns:
        for role, check in (("view", must_allow), ("cluster-admin", must_refuse)):
            body = client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{PROBE_PREFIX}-{role}"), subjects=[subject],
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role))
            attempt = s.attempt(f"RoleBinding to {role} in {ns}", lambda ns=ns, body=body: (
                s.rbac_o.create_namespaced_role_binding(ns, body, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))
            verdicts.append(check(attempt))
            refused += [attempt] if check is must_refuse else []
    return tried, combine(verdicts, f"RoleBinding to view accepted in {_in(s)}\n"
                          + refusal_summary("RoleBinding to cluster-admin", refused))


@_runs("tenant-can-create-networkpolicies")
def _create_networkpolicies(s: _Session) -> Outcome:
    tried = (f"dry-run create of a NetworkPolicy in {_in(s)}; SelfSubjectAccessReview for "
             "get, list, update, patch, delete networkpolicies there")
    verdicts: list[Verdict] = []
    for ns in s.ns:
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": f"{PROBE_PREFIX}-probe"},
                "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": PROBE_PREFIX}},
                         "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]}}
        verdicts.append(must_allow(s.attempt(f"create NetworkPolicy in {ns}", lambda ns=ns, body=body: (
            s.net_o.create_namespaced_network_policy(ns, body, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))))
        denied = [v for v in ("get", "list", "update", "patch", "delete")
                  if not s.can(v, "networking.k8s.io", "networkpolicies", ns)]
        if denied:
            verdicts.append(("fail", f"{ns}: may not {', '.join(denied)} networkpolicies"))
    return tried, combine(verdicts, f"NetworkPolicy accepted, and get/list/update/patch/delete allowed, in {_in(s)}")


@_runs("tenant-can-create-roles")
def _create_roles(s: _Session) -> Outcome:
    tried = (f"dry-run create in {_in(s)} of a Role to read pods (must be accepted) and of a Role granting "
             "every verb on every resource (must be refused)")
    verdicts = []
    refused = []
    for ns in s.ns:
        for name, rule, check in (
            ("pod-reader", client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"]), must_allow),
            ("everything", client.V1PolicyRule(api_groups=["*"], resources=["*"], verbs=["*"]), must_refuse),
        ):
            body = client.V1Role(metadata=client.V1ObjectMeta(name=f"{PROBE_PREFIX}-{name}"), rules=[rule])
            attempt = s.attempt(f"Role {name} in {ns}", lambda ns=ns, body=body: (
                s.rbac_o.create_namespaced_role(ns, body, dry_run="All", _request_timeout=REQUEST_TIMEOUT)))
            verdicts.append(check(attempt))
            refused += [attempt] if check is must_refuse else []
    return tried, combine(verdicts, f"Role pod-reader accepted in {_in(s)}\n"
                          + refusal_summary("Role granting * on *", refused))


def _whoami(s: _Session) -> dict[str, Any] | None:
    """How the API server sees the impersonated owner (SelfSubjectReview); None if the server cannot say."""
    api = client.AuthenticationV1Api(s.owner)
    try:
        review = api.create_self_subject_review(client.V1SelfSubjectReview(), _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 403 and "impersonate" in _message(exc):
            raise VerifyError(f"the admin credentials for {s.server} may not impersonate {s.identity.describe()}: "
                              f"{_message(exc)}") from exc
        return None
    except (HTTPError, OSError) as exc:
        raise s._unreachable(exc) from exc
    info = review.status.user_info
    return {"username": info.username, "groups": list(info.groups or [])}


def verify_tenant(tenant: TenantInfo, *, cluster: str, clients: ClientFactory,
                  others: Sequence[TenantInfo] = (), checks: Sequence[Check] | None = None,
                  identity: Identity | None = None) -> Report:
    """Run ``checks`` (default: all) for ``tenant`` and return the report.

    ``clients`` makes the admin's ApiClient (``None``) and the owner's (an ``Identity``); ``others`` are
    the other tenants of the same cluster; ``identity`` defaults to ``choose_identity(tenant.owners)``.
    Raises ``VerifyError`` when the run cannot proceed (cluster unreachable, impersonation refused, a
    tenant namespace missing); a single check that cannot be judged reports ``error`` instead.
    """
    identity = identity or choose_identity(tenant.owners)
    selected = list(checks) if checks is not None else list(CHECKS)
    admin, owner = clients(None), clients(identity)
    try:
        s = _Session(tenant, identity, others, admin, owner)
        for ns in tenant.namespaces:
            try:
                s.core_a.read_namespace(ns, _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                reason = "does not exist" if exc.status == 404 else f"cannot be read: {_message(exc)}"
                raise VerifyError(f"namespace {ns} of tenant {tenant.name} {reason} on {s.server}; "
                                  "re-apply the tenant (vcm apply)") from exc
            except (HTTPError, OSError) as exc:
                raise s._unreachable(exc) from exc
        seen_as = _whoami(s)
        results = []
        for check in selected:
            try:
                tried, (result, detail) = _RUNNERS[check.id](s)
            except _CheckFailed as exc:
                tried, result, detail = "(could not run)", "error", str(exc)
            results.append(CheckResult(check, f"as {identity.describe()}: {tried}", result, detail))
    finally:
        admin.close()
        owner.close()
    return Report(tenant.name, cluster, identity, seen_as, tuple(tenant.namespaces), tenant.control_plane,
                  tuple(results))


# ---------------------------------------------------------------------------------------------
# Live inputs: stack outputs and the cluster's own labels
# ---------------------------------------------------------------------------------------------


def discover_tenants(api: client.ApiClient) -> dict[str, TenantInfo]:
    """Every tenant on the cluster, from its namespaces' tenant label and the blueprint's owner RoleBindings."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    try:
        namespaces = core.list_namespace(label_selector=naming.TENANT_LABEL, _request_timeout=REQUEST_TIMEOUT).items
        found: dict[str, list[str]] = {}
        for ns in namespaces:
            found.setdefault(ns.metadata.labels[naming.TENANT_LABEL], []).append(ns.metadata.name)
        tenants = {}
        for name, names in sorted(found.items()):
            owners: list[dict[str, Any]] = []
            for ns in sorted(names):
                bindings = rbac.list_namespaced_role_binding(
                    ns, label_selector=f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}",
                    _request_timeout=REQUEST_TIMEOUT).items
                for rb in bindings:
                    for subject in rb.subjects or []:
                        entry = {"kind": subject.kind, "name": subject.name, "role": rb.role_ref.name,
                                 "namespace": subject.namespace}
                        if not any(_same_owner(entry, o) for o in owners):
                            owners.append(entry)
            tenants[name] = TenantInfo(name, tuple(sorted(names)), tuple(owners))
        return tenants
    except ApiException as exc:
        raise VerifyError(f"reading tenant namespaces on {api.configuration.host}: {_message(exc)}") from exc
    except (HTTPError, OSError) as exc:
        raise VerifyError(f"the API server {api.configuration.host} is not reachable: {exc}") from exc


def _control_plane_enabled(outputs: Mapping[str, Any]) -> bool:
    """Whether the tenant has a virtual control plane: from the stack outputs, else its spec file if readable."""
    recorded = outputs.get("controlPlane")
    if isinstance(recorded, Mapping):
        return bool(recorded.get("enabled"))
    if isinstance(recorded, bool):
        return recorded
    source = outputs.get("source")
    if not source:
        return False
    try:
        doc = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        return bool(((doc.get("spec") or {}).get("controlPlane") or {}).get("enabled"))
    except (OSError, yaml.YAMLError, AttributeError):
        return False


def tenant_from_outputs(outputs: Mapping[str, Any], live: Mapping[str, TenantInfo]) -> TenantInfo:
    """The tenant as its stack recorded it; a ServiceAccount owner's namespace, which the outputs leave out,
    comes from the live RoleBindings."""
    name = str(outputs.get("tenant") or "")
    namespaces = tuple(outputs.get("namespaces") or ())
    if not name or not namespaces:
        raise VerifyError(f"the stack outputs of tenant {name or '?'} name no namespaces; re-apply it (vcm apply)")
    seen = live.get(name)
    owners = []
    for owner in outputs.get("owners") or []:
        entry = dict(owner)
        if entry.get("kind") == "ServiceAccount" and not entry.get("namespace") and seen is not None:
            match = next((o for o in seen.owners if o["kind"] == "ServiceAccount" and o["name"] == entry["name"]), None)
            entry["namespace"] = match["namespace"] if match else None
        owners.append(entry)
    return TenantInfo(name, namespaces, tuple(owners), _control_plane_enabled(outputs))


def verify_live(target: program.Target, outputs: Mapping[str, Any], *,
                checks: Sequence[Check] | None = None) -> Report:
    """Verify one tenant of ``target`` from its stack outputs (``workspace.tenant_outputs``)."""
    clients = client_factory(target)
    admin = clients(None)
    try:
        live = discover_tenants(admin)
    finally:
        admin.close()
    tenant = tenant_from_outputs(outputs, live)
    others = [t for name, t in live.items() if name != tenant.name]
    return verify_tenant(tenant, cluster=str(outputs.get("cluster") or target.name), clients=clients,
                         others=others, checks=checks)


# the checks that send traffic live in their own module and register their runners here
from vcluster_mgr import verify_traffic as _verify_traffic  # noqa: E402,F401
