"""Reading and removing what the backend holds: tenant stacks, their records (``record.read``), objects, deletion.

Deletion honours a tenant's deletion protection (Pulumi's protect flag on its namespaces) unless told to
clear it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vcluster_mgr import errors, lazy_modules, platformconfig, progress_events, record
from vcluster_mgr.workspace import backend, checkpoints, jobs, locks, stacks

if TYPE_CHECKING:
    from pulumi import automation as auto
else:
    auto = lazy_modules.module("pulumi.automation")  # imported when a stack is opened (``lazy_modules``)


def list_tenant_stacks(s: backend.Settings) -> list[dict[str, Any]]:
    """Every tenant stack in the backend: cluster, tenant, last update, resource count."""
    ws = stacks.project_workspace(s, stacks.TENANT_PROJECT)
    try:
        summaries = ws.list_stacks()
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot list stacks in {s.backend_url}: {stacks.clean(exc)}") from exc
    rows = []
    for summary in summaries:
        cluster, _, tenant = summary.name.partition(".")
        rows.append({"tenant": tenant, "cluster": cluster, "stack": summary.name,
                     "lastUpdate": summary.last_update, "resources": summary.resource_count,
                     "updating": summary.update_in_progress})
    return sorted(rows, key=lambda r: (r["tenant"], r["cluster"]))


def tenant_stacks(s: backend.Settings) -> list[tuple[str, str]]:
    """(cluster, tenant) of every tenant stack, by tenant: read from the backend's own files where they are
    read here (``checkpoints.stack_names``: a file backend's folder, an ``s3://`` bucket's keys), which costs
    no CLI run (``pulumi stack ls`` reads every stack's checkpoint to count its resources: seconds for a
    thousand stacks); else from the CLI (``list_tenant_stacks``)."""
    names = checkpoints.stack_names(s.backend_url, stacks.TENANT_PROJECT)
    if names is None:
        return [(r["cluster"], r["tenant"]) for r in list_tenant_stacks(s)]
    pairs = [(cluster, tenant) for cluster, _, tenant in (n.partition(".") for n in names) if tenant]
    return sorted(pairs, key=lambda ct: (ct[1], ct[0]))


def find_tenant_record(s: backend.Settings, cluster: str, tenant: str) -> record.TenantRecord | None:
    """What a tenant's stack recorded (``record.read``: any shape vcm ever wrote); None if there is no such
    stack."""
    found = stacks.recorded_outputs(s, stacks.TENANT_PROJECT, stacks.tenant_stack_name(cluster, tenant))
    return None if found is None else record.read(found, cluster=cluster, tenant=tenant)


def tenant_settled(s: backend.Settings, cluster: str, tenant: str) -> checkpoints.Settled | None:
    """Whether a tenant stack's last run is settled and which objects its state holds
    (``checkpoints.settled``), and not settled while a lock is held on it (a run going on, or killed); None
    when the backend is not one whose checkpoint and locks are read here (``blobs``), or cannot be read now."""
    name = stacks.tenant_stack_name(cluster, tenant)
    found = checkpoints.settled(s.backend_url, stacks.TENANT_PROJECT, name)
    if not isinstance(found, checkpoints.Settled):
        return None
    held = locks.held(s.backend_url, stacks.TENANT_PROJECT, name)
    if held is None:
        return None
    if held and found.why is None:
        return dataclasses.replace(found, why=f"its stack is locked ({held[0].describe()})")
    return found


def tenant_record(s: backend.Settings, cluster: str, tenant: str) -> record.TenantRecord:
    """What a tenant's stack recorded; ``ProvisionError`` if there is no such stack."""
    found = find_tenant_record(s, cluster, tenant)
    if found is None:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {cluster!r} in {s.backend_url}")
    return found


def _protected(deployment: Mapping[str, Any] | None) -> list[str]:
    """The protected namespaces in a stack's state (a tenant under deletion protection)."""
    return [str(r.get("id") or r.get("urn")) for r in (deployment or {}).get("resources", [])
            if r.get("protect") and r.get("type") == "kubernetes:core/v1:Namespace"]


def _unprotect(st: auto.Stack) -> None:
    """Clear Pulumi's protect flag on every resource of the stack's state (the explicit override)."""
    state = st.export_stack()
    for res in (state.deployment or {}).get("resources", []):
        res.pop("protect", None)
    st.import_stack(state)


def delete_tenant(s: backend.Settings, target: platformconfig.Target, tenant: str, *,
                  progress: jobs.Progress | None = None, unprotect: bool = False) -> jobs.Outcome:
    """Destroy a tenant's objects and remove its stack (the caller checked the stack belongs to ``target``);
    ``ProvisionError`` if the stack is unknown.

    A tenant under deletion protection (``spec.protect``) is refused with ``ProtectedError`` before anything
    is touched, unless ``unprotect`` clears the protect flags in its state first.
    """
    started = time.monotonic()
    name = stacks.tenant_stack_name(target.name, tenant)
    report = progress or (lambda _t, _m: None)
    steps = stacks.clear_stale_locks(s, stacks.TENANT_PROJECT, name)
    for note in steps:
        report(tenant, progress_events.notice(note))
    ws = stacks.project_workspace(s, stacks.TENANT_PROJECT, target)
    try:
        st = auto.Stack.select(name, ws)
    except auto.errors.StackNotFoundError as exc:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {target.name!r} in {s.backend_url}") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot open stack {name}: {stacks.clean(exc)}") from exc
    try:
        protected = _protected(st.export_stack().deployment)
        if protected and not unprotect:
            raise errors.ProtectedError(
                f"tenant {tenant!r} is under deletion protection (spec.protect or the policy's protectTenants); "
                f"kept: {', '.join(protected)}. To delete it anyway pass --unprotect, or set spec.protect: false "
                "and apply it first")
        if protected:
            _unprotect(st)
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot read stack {name}: {stacks.clean(exc)}") from exc

    def on_event(ev: auto.EngineEvent) -> None:
        found = jobs.engine_event(ev)
        if found is not None:
            steps.append(found.line())
        if found := found or jobs.resource_tick(ev):
            report(tenant, found)

    try:
        stacks.destroy(st, on_event=on_event, remove=True)
    except errors.VcmError as exc:
        return jobs.Outcome(tenant, target.name, "delete", False, {}, round(time.monotonic() - started, 2),
                       error=str(exc), steps=steps)
    return jobs.Outcome(tenant, target.name, "delete", True, {"delete": sum(s.startswith("delete") for s in steps)},
                   round(time.monotonic() - started, 2), steps=steps)


def applied_objects(s: backend.Settings, cluster: str, tenant: str) -> list[dict[str, Any]]:
    """What the tenant's stack last applied: each Kubernetes object's inputs and id, from the state."""
    ws = stacks.project_workspace(s, stacks.TENANT_PROJECT)
    name = stacks.tenant_stack_name(cluster, tenant)
    try:
        deployment = auto.Stack.select(name, ws).export_stack().deployment
    except auto.errors.StackNotFoundError as exc:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {cluster!r} in {s.backend_url}") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot read stack {name}: {stacks.clean(exc)}") from exc
    found = []
    for res in (deployment or {}).get("resources", []):
        if res.get("custom") and res.get("type", "").startswith("kubernetes:") and res.get("id"):
            found.append({"id": res["id"], "inputs": res.get("inputs", {})})
    return found


def last_operations(s: backend.Settings, cluster: str, tenant: str) -> dict[str, dict[str, Any]]:
    """The latest update, refresh and destroy of a tenant's stack, from its history: kind -> result and times.

    Nothing is stored for this beyond what Pulumi keeps: ``result`` is ``succeeded``, ``failed`` or
    ``in-progress``; times are ISO 8601 in UTC.
    """
    ws = stacks.project_workspace(s, stacks.TENANT_PROJECT)
    name = stacks.tenant_stack_name(cluster, tenant)
    try:
        history = auto.Stack.select(name, ws).history(page_size=20, show_secrets=False)
    except auto.errors.StackNotFoundError as exc:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {cluster!r} in {s.backend_url}") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot read the history of stack {name}: {stacks.clean(exc)}") from exc
    found: dict[str, dict[str, Any]] = {}
    for entry in history:  # newest first
        kind = str(entry.kind)
        if kind in found:
            continue
        found[kind] = {
            "result": str(entry.result),
            "startTime": entry.start_time.isoformat() if entry.start_time else None,
            "endTime": entry.end_time.isoformat() if entry.end_time else None,
            "changes": dict(entry.resource_changes or {}),
        }
    return found
