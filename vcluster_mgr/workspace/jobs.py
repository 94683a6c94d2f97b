"""Many tenants at once: a ``Job`` per tenant and host cluster, run in parallel worker processes.

Inline programs keep global state in the Pulumi SDK, so concurrent stacks run in separate spawned worker
processes; the engine's events come back over a queue as typed ``progress_events.Event`` values. Also the
platform stack's apply, which reports the same way.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue as queue_mod
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import managers
from typing import Any

from pulumi import automation as auto

from vcluster_mgr import cluster, errors, lifecycle, platformconfig, program, progress_events, spec
from vcluster_mgr.workspace import backend, reaper, stacks


@dataclasses.dataclass(frozen=True)
class Job:
    """One tenant to plan, apply or delete on one host cluster (picklable: it crosses processes)."""

    tenant: spec.Tenant
    target: platformconfig.Target
    blueprint: platformconfig.Blueprint
    #: RFC 3339 expiry of a tenant with a ttl; None: kept from the stack, else now + ttl
    expires_at: str | None = None
    #: control plane scaled to zero; None: as the stack recorded it (awake for a new tenant)
    asleep: bool | None = None
    #: apply a change of the control plane's values even though it keeps no data (persistence off)
    allow_data_loss: bool = False

    @property
    def stack_name(self) -> str:
        return stacks.tenant_stack_name(self.target.name, self.tenant.name)


@dataclasses.dataclass
class Outcome:
    """What happened to one tenant."""

    tenant: str
    cluster: str
    action: str
    ok: bool
    changes: dict[str, int]
    seconds: float
    error: str | None = None
    steps: list[str] = dataclasses.field(default_factory=list)


Progress = progress_events.Callback
"""Where a run reports each tenant's ``progress_events.Event``: its start, the engine's steps and resources
done (``RESOURCE_DONE``, counted against those planned; never kept in ``Outcome.steps``), errors, its end."""


def resource_tick(ev: auto.EngineEvent) -> progress_events.Event | None:
    """``RESOURCE_DONE`` or ``RESOURCE_READ`` when ``ev`` ends a step of one of the program's resources (not
    the stack's nor a provider's), else None."""
    done = ev.res_outputs_event
    if not done or done.metadata.type.startswith("pulumi:"):
        return None
    return progress_events.RESOURCE_READ if done.metadata.op is auto.OpType.REFRESH else progress_events.RESOURCE_DONE


def engine_event(ev: auto.EngineEvent) -> progress_events.Event | None:
    """The engine events worth showing, typed: a change as a ``STEP``, an error as an ``ERROR``; else None."""
    quiet = (auto.OpType.SAME, auto.OpType.READ, auto.OpType.REFRESH)
    if ev.resource_pre_event and ev.resource_pre_event.metadata.op not in quiet:
        meta = ev.resource_pre_event.metadata
        if meta.type.startswith("pulumi:"):
            return None
        return progress_events.step(f"{meta.op.value} {meta.type.split(':')[-1]} {meta.urn.rsplit('::', 1)[-1]}")
    if ev.diagnostic_event and ev.diagnostic_event.severity == "error":
        # the whole message on one line: the provider names the object, the server and the cause in it,
        # sometimes under a first line such as "1 error occurred:"
        lines = [ln.strip(" \t*") for ln in ev.diagnostic_event.message.strip().splitlines()]
        return progress_events.error(" ".join(ln for ln in lines if ln))
    return None


def event_text(ev: auto.EngineEvent) -> str | None:
    """``engine_event`` as the one line an outcome's steps keep (an error as ``error: ...``), else None."""
    found = engine_event(ev)
    return found.line() if found else None


def _failure_text(exc: Exception, steps: list[str]) -> str:
    """The engine's own error lines when it reported any (they name the object and server), else the error."""
    reported = [s[len("error: "):] for s in steps
                if s.startswith("error: ") and not s.startswith(("error: update failed", "error: preview failed"))]
    return "\n".join(reported) if reported else str(exc)


def _expiry_of(job: Job, recorded: dict[str, Any]) -> str | None:
    """A ttl tenant keeps the expiry its stack recorded (a re-apply does not extend it); a new one gets
    now + ttl. Tenants without a ttl never expire."""
    if not job.tenant.spec.ttl:
        return None
    if recorded.get("expiresAt"):
        return str(recorded["expiresAt"])
    moment = lifecycle.expiry(job.tenant, lifecycle.utc_now())
    return lifecycle.format_expiry(moment) if moment else None


def _check_data_kept(job: Job, recorded: dict[str, Any], asleep: bool) -> None:
    """Refuse to update the Helm release of a control plane that keeps its data in an emptyDir: the pod may
    restart, the virtual cluster would come back empty, and its syncer would then delete the tenant's host pods."""
    cp = job.tenant.spec.control_plane
    before = (recorded.get("controlPlane") or {}).get("valuesDigest")
    if not cp.enabled or cp.persistence.enabled or not before:
        return
    if program.control_plane_digest(job.tenant, job.blueprint, asleep=asleep) != before:
        raise errors.ProvisionError(
            f"refusing to change the control plane of {job.tenant.name}: it has no persistence "
            "(spec.controlPlane.persistence.enabled: false), so the new Helm values may restart its pod and the "
            "virtual cluster would come back EMPTY (and its syncer would then delete the tenant's host pods). "
            "Enable persistence, or rerun with --allow-data-loss")


def _run_job(s: backend.Settings, job: Job, action: str, events: Any = None) -> Outcome:
    """Plan, apply or delete one tenant (runs in a worker process when parallel)."""
    started = time.monotonic()
    steps: list[str] = []
    if events is not None and not isinstance(events, _Direct):  # run_jobs reports in-process starts itself
        events.put((job.tenant.name, progress_events.started(action)))

    def on_event(ev: auto.EngineEvent) -> None:
        found = engine_event(ev)
        if found is not None:
            steps.append(found.line())
        if events is not None and (found := found or resource_tick(ev)):
            events.put((job.tenant.name, found))

    try:
        with cluster.connect(job.target) as conn:  # closed before the engine runs
            uid = cluster.cluster_uid(conn)
            found = stacks.recorded_outputs(s, stacks.TENANT_PROJECT, job.stack_name)
            recorded = found or {}
            stacks.check_cluster_identity(job.target, job.stack_name, recorded, uid)
            if action in ("apply", "plan"):
                cluster.check_ownership(conn, job.tenant.name, job.tenant.namespace_names(),
                                        f"{stacks.TENANT_PROJECT}/{job.stack_name}")
            expires_at = job.expires_at or _expiry_of(job, recorded)
            asleep = job.asleep if job.asleep is not None else bool(recorded.get("asleep"))
            if action == "apply" and not job.allow_data_loss:
                _check_data_kept(job, recorded, asleep)
            kubeconfig = None
            if job.tenant.spec.control_plane.enabled and action == "apply":
                kubeconfig = cluster.control_plane_kubeconfig(conn, job.tenant)
                if kubeconfig is None:
                    steps.append("control plane: its kubeconfig Secret does not exist yet (the virtual cluster "
                                 "writes it once running); `vcm kubeconfig` waits for it")
            # where the control plane reaches the API server, looked up now (a strict tenant's egress rule names it)
            host_api = (cluster.host_api_addresses(conn)
                        if job.tenant.spec.control_plane.enabled and action in ("apply", "plan") else [])
        fn = program.tenant_program(job.tenant, job.target, job.blueprint, expires_at=expires_at, asleep=asleep,
                                    kubeconfig=kubeconfig, cluster_uid=uid, host_api=host_api)
        st = stacks.stack(s, job.stack_name, fn, project=stacks.TENANT_PROJECT, target=job.target,
                          exists=found is not None)
        for note in st.notices:
            steps.append(note)
            if events is not None:
                events.put((job.tenant.name, progress_events.notice(note)))
        if action == "apply":
            res = stacks.up(st, on_event=on_event)
            # the engine's op names as plain strings (OpType is a str enum)
            changes: dict[str, int] = dict(res.summary.resource_changes or {})  # type: ignore[arg-type]
        elif action == "plan":
            pre = stacks.preview(st, on_event=on_event)
            changes = dict(pre.change_summary)  # type: ignore[arg-type]  # str enum keys, as above
        else:
            stacks.destroy(st, on_event=on_event, remove=True)
            changes = {"delete": len([x for x in steps if x.startswith("delete")])}
        return Outcome(job.tenant.name, job.target.name, action, True, changes,
                       round(time.monotonic() - started, 2), steps=steps)
    except errors.VcmError as exc:
        failure = _failure_text(exc, steps)
        if events is not None and not any(s.startswith("error: ") for s in steps):
            events.put((job.tenant.name, progress_events.error(failure)))  # a failure before the engine ran
        return Outcome(job.tenant.name, job.target.name, action, False, {}, round(time.monotonic() - started, 2),
                       error=failure, steps=steps)


def run_jobs(s: backend.Settings, jobs: list[Job], action: str, *, parallel: int = 1,
             progress: Progress | None = None) -> list[Outcome]:
    """Run ``action`` (plan | apply | delete) for every job, ``parallel`` stacks at a time.

    Inline programs keep global state in the Pulumi SDK, so concurrent stacks run in separate worker
    processes (spawned, each reused for many stacks); with ``parallel=1`` everything runs here.
    """
    if action not in ("plan", "apply", "delete"):
        raise errors.UsageError(f"unknown action {action}")
    report = progress or (lambda _t, _m: None)
    if parallel <= 1 or len(jobs) <= 1:
        outcomes = []
        for job in jobs:
            report(job.tenant.name, progress_events.started(action))
            outcome = _run_job(s, job, action, _Direct(report))
            report(job.tenant.name, progress_events.finished(outcome.ok))
            outcomes.append(outcome)
        return outcomes
    ctx = multiprocessing.get_context("spawn")
    # the helper processes die with this one (a killed vcm), and each worker's engine run with its worker
    bound = (reaper.die_with_parent, (os.getpid(),))
    manager = managers.SyncManager(ctx=ctx)
    manager.start(*bound)
    with manager:
        events = manager.Queue()
        with ProcessPoolExecutor(max_workers=min(parallel, len(jobs)), mp_context=ctx, initializer=bound[0],
                                 initargs=bound[1]) as pool:
            pending = {pool.submit(_run_job, s, job, action, events): job for job in jobs}
            results: dict[str, Outcome] = {}
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        report(*events.get_nowait())
                    except queue_mod.Empty:
                        break
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died: report it as this tenant's failure
                        outcome = Outcome(job.tenant.name, job.target.name, action, False, {}, 0.0,
                                          error=f"worker process failed: {exc}")
                    report(job.tenant.name, progress_events.finished(outcome.ok))
                    results[job.stack_name] = outcome
    return [results[j.stack_name] for j in jobs]


class _Direct:
    """Queue-like adapter so the in-process path reports events like the worker path."""

    def __init__(self, report: Progress) -> None:
        self._report = report

    def put(self, item: tuple[str, progress_events.Event]) -> None:
        self._report(*item)


def platform_apply(s: backend.Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint, *,
                   progress: Progress | None = None) -> Outcome:
    started = time.monotonic()
    with cluster.connect(target) as conn:
        uid = cluster.cluster_uid(conn)
    recorded = stacks.recorded_outputs(s, stacks.PLATFORM_PROJECT, target.name)
    stacks.check_cluster_identity(target, target.name, recorded, uid)
    st = stacks.stack(s, target.name, program.platform_program(target, blueprint, cluster_uid=uid),
                      project=stacks.PLATFORM_PROJECT, target=target, exists=recorded is not None)
    report = progress or (lambda _t, _m: None)
    for note in st.notices:
        report("platform", progress_events.notice(note))

    def on_event(ev: auto.EngineEvent) -> None:
        if found := engine_event(ev) or resource_tick(ev):
            report("platform", found)

    res = stacks.up(st, on_event=on_event)
    changes: dict[str, int] = dict(res.summary.resource_changes or {})  # type: ignore[arg-type]  # str enum keys
    return Outcome("platform", target.name, "apply", True, changes,
                   round(time.monotonic() - started, 2), steps=list(st.notices))

