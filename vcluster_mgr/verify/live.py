"""Running the checks for a tenant: ``verify_tenant`` runs the selected checks; ``verify_live`` builds the
tenant's inputs from its stack's record and the cluster's own labels (``discover_tenants``) first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vcluster_mgr import cluster, errors, naming, platformconfig, record
from vcluster_mgr.verify import catalogue, report, runners, session


def verify_tenant(
    tenant: report.TenantInfo,
    *,
    cluster: str,
    clients: session.ClientFactory,
    others: Sequence[report.TenantInfo] = (),
    checks: Sequence[catalogue.Check] | None = None,
    identity: report.Identity | None = None,
) -> report.Report:
    """Run ``checks`` (default: all but the opt-in ones, as `select_checks()`) for ``tenant`` and return the report.

    ``clients`` opens the admin's connection (``None``) and the owner's (an ``Identity``); ``others`` are
    the other tenants of the same cluster; ``identity`` defaults to ``choose_identity(tenant.owners)``.
    Raises ``VerifyError`` when the run cannot proceed (cluster unreachable, impersonation refused, a
    tenant namespace missing); a single check that cannot be judged reports ``error`` instead.
    """
    identity = identity or report.choose_identity(tenant.owners)
    selected = list(checks) if checks is not None else catalogue.select_checks()
    with clients(None) as admin, clients(identity) as owner:
        s = session.Session(tenant, identity, others, admin, owner)
        for ns in tenant.namespaces:
            try:
                admin.call(f"reading namespace {ns}", admin.core.read_namespace, ns)
            except errors.UnreachableError:
                raise
            except errors.ClusterError as exc:
                reason = "does not exist" if exc.status == 404 else f"cannot be read: {exc.detail}"
                raise errors.VerifyError(
                    f"namespace {ns} of tenant {tenant.name} {reason} on {s.server}; re-apply the tenant (vcm apply)"
                ) from exc
        seen_as = runners.whoami(s)
        results = []
        for check in selected:
            try:
                tried, (result, detail) = runners.RUNNERS[check.id](s)
            except session.CheckFailedError as exc:
                tried, result, detail = "(could not run)", "error", str(exc)
            results.append(report.CheckResult(check, f"as {identity.describe()}: {tried}", result, detail))
    return report.Report(
        tenant.name, cluster, identity, seen_as, tuple(tenant.namespaces), tenant.control_plane, tuple(results)
    )


# ---------------------------------------------------------------------------------------------
# Live inputs: stack outputs and the cluster's own labels
# ---------------------------------------------------------------------------------------------


def discover_tenants(conn: cluster.Connection) -> dict[str, report.TenantInfo]:
    """Every tenant on the cluster, from its namespaces' tenant label and the blueprint's owner RoleBindings."""
    namespaces = conn.call(
        "listing tenant namespaces", conn.core.list_namespace, label_selector=naming.TENANT_LABEL
    ).items
    found: dict[str, list[str]] = {}
    for namespace in namespaces:
        meta = conn.plain(namespace.metadata)  # labels selected above: always present
        found.setdefault(meta["labels"][naming.TENANT_LABEL], []).append(meta["name"])
    tenants = {}
    for name, names in sorted(found.items()):
        owners: list[dict[str, Any]] = []
        for ns in sorted(names):
            bindings = conn.call(
                f"listing the owner RoleBindings in {ns}",
                conn.rbac.list_namespaced_role_binding,
                ns,
                label_selector=f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}",
            ).items
            for rb in bindings:
                for subject in rb.subjects or []:
                    entry = {
                        "kind": subject.kind,
                        "name": subject.name,
                        "role": rb.role_ref.name,
                        "namespace": subject.namespace,
                    }
                    if not any(report.same_owner(entry, o) for o in owners):
                        owners.append(entry)
        tenants[name] = report.TenantInfo(name, tuple(sorted(names)), tuple(owners))
    return tenants


def tenant_from_record(recorded: record.TenantRecord, live: Mapping[str, report.TenantInfo]) -> report.TenantInfo:
    """The tenant as its stack recorded it; a ServiceAccount owner's namespace, which the record leaves out,
    comes from the live RoleBindings."""
    name = recorded.tenant
    if not name or not recorded.namespaces:
        raise errors.VerifyError(
            f"the stack outputs of tenant {name or '?'} name no namespaces; re-apply it (vcm apply)"
        )
    seen = live.get(name)
    owners = []
    for owner in recorded.owners:
        entry: dict[str, Any] = dict(owner.as_dict())
        if owner.kind == "ServiceAccount" and not owner.namespace and seen is not None:
            match = next((o for o in seen.owners if o["kind"] == "ServiceAccount" and o["name"] == owner.name), None)
            entry["namespace"] = match["namespace"] if match else None
        owners.append(entry)
    return report.TenantInfo(name, recorded.namespaces, tuple(owners), recorded.control_plane.enabled)


def verify_live(
    target: platformconfig.Target, recorded: record.TenantRecord, *, checks: Sequence[catalogue.Check] | None = None
) -> report.Report:
    """Verify one tenant of ``target`` as its stack recorded it (``workspace.tenant_record``)."""
    clients = session.client_factory(target)
    with clients(None) as admin:
        live = discover_tenants(admin)
    tenant = tenant_from_record(recorded, live)
    others = [t for name, t in live.items() if name != tenant.name]
    return verify_tenant(
        tenant, cluster=recorded.cluster or target.name, clients=clients, others=others, checks=checks
    )
