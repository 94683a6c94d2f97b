"""Who a check acts as (``Identity``), what it is told about a tenant (``TenantInfo``), and what it reports
(``CheckResult``, ``Report``, and their JSON and table forms). Plain data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from vcluster_mgr import errors
from vcluster_mgr.verify import catalogue

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
        return {
            "owner": {"kind": self.kind, "name": self.name, "namespace": self.namespace, "role": self.role},
            "user": self.user,
            "groups": list(self.groups),
        }

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
        return Identity(kind, name, role, catalogue.PROBE_PREFIX, (name,))
    if kind == "ServiceAccount":
        ns = owner.get("namespace")
        if not ns:
            raise errors.VerifyError(f"ServiceAccount owner {name!r} has no namespace; cannot act as it")
        return Identity(
            kind,
            name,
            role,
            f"system:serviceaccount:{ns}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
            str(ns),
        )
    raise errors.VerifyError(f"owner {name!r} has unknown kind {kind!r}")


def choose_identity(owners: Sequence[Mapping[str, Any]]) -> Identity:
    """The owner the checks act as: the first User with role admin, else the first owner of any kind."""
    if not owners:
        raise errors.VerifyError("the tenant has no owners to act as")
    admins = [o for o in owners if o.get("kind") == "User" and o.get("role") == "admin"]
    return identity_for(admins[0] if admins else owners[0])


def same_owner(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (a.get("kind"), a.get("name"), a.get("namespace") or None) == (
        b.get("kind"),
        b.get("name"),
        b.get("namespace") or None,
    )


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
    check: catalogue.Check
    tried: str
    result: catalogue.Result
    detail: str

    def as_dict(self) -> dict[str, Any]:
        c = self.check
        return {
            "id": c.id,
            "title": c.title,
            "level": c.level,
            "benchmark": c.benchmark,
            "tried": self.tried,
            "result": self.result,
            "detail": self.detail,
            "remedy": None if self.result == "pass" else c.remedy,
        }


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
        """True only if every check passed or was skipped (a traffic check on a cluster that cannot run its
        pods); an ``error`` is not a pass: the property was not shown."""
        return all(c.result in ("pass", "skip") for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {r: sum(c.result == r for c in self.checks) for r in ("pass", "fail", "error", "skip")}

    def failing(self) -> dict[str, catalogue.Result]:
        """The checks that did not pass (nor skip), with their result."""
        return {c.check.id: c.result for c in self.checks if c.result not in ("pass", "skip")}

    def as_dict(self) -> dict[str, Any]:
        identity = self.identity.as_dict() | {"seenByServer": dict(self.seen_as) if self.seen_as else None}
        return {
            "tenant": self.tenant,
            "cluster": self.cluster,
            "identity": identity,
            "scope": catalogue.SCOPE,
            "controlPlane": self.control_plane,
            "namespaces": list(self.namespaces),
            "checks": [c.as_dict() for c in self.checks],
            "summary": self.counts(),
            "passed": self.passed,
        }


def reports_data(reports: Sequence[Report], *, many: bool) -> Any:
    """The documented JSON shape: one object for a single tenant, a list for ``--all``."""
    data = [r.as_dict() for r in reports]
    return data if many else data[0]


def table_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """Rows of the printed table: id, level, result, what was tried, and the detail (at most
    ``MAX_DETAIL_LINES`` lines) plus the remedy when the check did not pass."""
    rows: list[tuple[str, str, str, str, str]] = []
    for c in report.checks:
        lines = c.detail.splitlines()
        if len(lines) > catalogue.MAX_DETAIL_LINES:
            lines = lines[: catalogue.MAX_DETAIL_LINES] + [
                f"... and {len(lines) - catalogue.MAX_DETAIL_LINES} more (see -o json)"
            ]
        text = "\n".join(lines) if c.result == "pass" else "\n".join([*lines, f"remedy: {c.check.remedy}"])
        rows.append((c.check.id, f"L{c.check.level}", c.result, c.tried, text))
    return rows


def scope_note(report: Report) -> str:
    """One line saying what the checks covered (and that a virtual control plane was not checked)."""
    where = ", ".join(report.namespaces)
    if report.control_plane:
        return (
            f"scope: host namespaces {where}; the tenant has a virtual control plane, whose own API these "
            "checks do not cover"
        )
    return f"scope: host namespaces {where}"
