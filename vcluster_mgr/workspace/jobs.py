"""Many stacks at once, in parallel worker processes, and one tenant stack's engine run in a worker.

Inline programs keep global state in the Pulumi SDK, so concurrent stacks run in separate spawned worker
processes (``run_jobs``); the engine's events come back over a queue as typed ``progress_events.Event``
values. What a worker runs for one tenant is given by the caller (``operations``, which checks
and prepares the tenant first) and ends in ``run_stack``, which runs the engine and reports the
``Outcome``. Also the platform stack's apply, which reports the same way.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue as queue_mod
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import managers
from typing import TYPE_CHECKING, Any, TypeVar

from vcluster_mgr import errors, lazy_modules, platformconfig, program, progress_events
from vcluster_mgr.workspace import backend, reaper, stacks

if TYPE_CHECKING:
    from pulumi import automation as auto
else:
    auto = lazy_modules.module("pulumi.automation")  # imported when a stack runs (``lazy_modules``)

T = TypeVar("T")


#: ``Outcome.path`` of a tenant run by the engine
ENGINE_PATH = "engine"
#: ``Outcome.path`` of a tenant whose fingerprint held: no change, and no engine started
FINGERPRINT_PATH = "fingerprint"


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
    #: which way it went: ``engine`` or ``fingerprint`` (its fingerprint held; see ``operations.prove``)
    path: str = ENGINE_PATH
    #: for the engine path of a plan or apply, why the fingerprint did not spare it the engine
    why: str | None = None


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


@dataclasses.dataclass
class StackRun:
    """What the engine runs for one tenant once its guards passed: the stack, its program, and notes to keep
    with its steps."""

    stack_name: str
    target: platformconfig.Target
    program: auto.PulumiFn
    #: the stack exists already (its recorded outputs were found): no ``pulumi stack init``
    exists: bool
    notes: list[str] = dataclasses.field(default_factory=list)


def run_stack(s: backend.Settings, tenant: str, cluster: str, action: str, events: Any,
              prepare: Callable[[], StackRun]) -> Outcome:
    """Plan, apply or delete one tenant's stack (in a worker process when parallel): ``prepare`` checks the
    tenant and gives the run; a ``VcmError`` from it or from the engine is the tenant's failed ``Outcome``."""
    started = time.monotonic()
    steps: list[str] = []
    if events is not None and not isinstance(events, _Direct):  # run_jobs reports in-process starts itself
        events.put((tenant, progress_events.started(action)))

    def on_event(ev: auto.EngineEvent) -> None:
        found = engine_event(ev)
        if found is not None:
            steps.append(found.line())
        if events is not None and (found := found or resource_tick(ev)):
            events.put((tenant, found))

    try:
        run = prepare()
        steps += run.notes
        st = stacks.stack(s, run.stack_name, run.program, project=stacks.TENANT_PROJECT, target=run.target,
                          exists=run.exists)
        for note in st.notices:
            steps.append(note)
            if events is not None:
                events.put((tenant, progress_events.notice(note)))
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
        return Outcome(tenant, cluster, action, True, changes, round(time.monotonic() - started, 2), steps=steps)
    except errors.VcmError as exc:
        failure = _failure_text(exc, steps)
        if events is not None and not any(s.startswith("error: ") for s in steps):
            events.put((tenant, progress_events.error(failure)))  # a failure before the engine ran
        return Outcome(tenant, cluster, action, False, {}, round(time.monotonic() - started, 2),
                       error=failure, steps=steps)


#: what a worker runs for one item: (settings, item, action, events) -> its outcome; a module-level function,
#: since it is sent to the worker processes by reference
Worker = Callable[[backend.Settings, T, str, Any], Outcome]


def run_jobs(s: backend.Settings, items: Sequence[T], action: str, worker: Worker[T], *,
             names: Callable[[T], tuple[str, str]], parallel: int = 1,
             progress: Progress | None = None) -> list[Outcome]:
    """Run ``worker`` for every item (``action``: plan | apply | delete), ``parallel`` at a time; ``names``
    gives an item's tenant and host cluster (for its progress and for a worker that dies).

    Inline programs keep global state in the Pulumi SDK, so concurrent stacks run in separate worker
    processes (spawned, each reused for many stacks); with ``parallel=1`` everything runs here.
    """
    if action not in ("plan", "apply", "delete"):
        raise errors.UsageError(f"unknown action {action}")
    report = progress or (lambda _t, _m: None)
    if parallel <= 1 or len(items) <= 1:
        outcomes = []
        for item in items:
            tenant = names(item)[0]
            report(tenant, progress_events.started(action))
            outcome = worker(s, item, action, _Direct(report))
            report(tenant, progress_events.finished(outcome.ok))
            outcomes.append(outcome)
        return outcomes
    ctx = multiprocessing.get_context("spawn")
    # the helper processes die with this one (a killed vcm), and each worker's engine run with its worker
    bound = (reaper.die_with_parent, (os.getpid(),))
    manager = managers.SyncManager(ctx=ctx)
    manager.start(*bound)
    with manager:
        events = manager.Queue()
        with ProcessPoolExecutor(max_workers=min(parallel, len(items)), mp_context=ctx, initializer=bound[0],
                                 initargs=bound[1]) as pool:
            pending = {pool.submit(worker, s, item, action, events): index for index, item in enumerate(items)}
            results: dict[int, Outcome] = {}
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        report(*events.get_nowait())
                    except queue_mod.Empty:
                        break
                for fut in done:
                    index = pending.pop(fut)
                    tenant, cluster = names(items[index])
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died: report it as this tenant's failure
                        outcome = Outcome(tenant, cluster, action, False, {}, 0.0,
                                          error=f"worker process failed: {exc}")
                    report(tenant, progress_events.finished(outcome.ok))
                    results[index] = outcome
    return [results[index] for index in range(len(items))]


class _Direct:
    """Queue-like adapter so the in-process path reports events like the worker path."""

    def __init__(self, report: Progress) -> None:
        self._report = report

    def put(self, item: tuple[str, progress_events.Event]) -> None:
        self._report(*item)


def platform_apply(s: backend.Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint, *,
                   cluster_uid: str, exists: bool, progress: Progress | None = None) -> Outcome:
    """Apply the platform stack of ``target`` (its identity ``cluster_uid`` checked by the caller; ``exists``:
    the stack was found)."""
    started = time.monotonic()
    st = stacks.stack(s, target.name, program.platform_program(target, blueprint, cluster_uid=cluster_uid),
                      project=stacks.PLATFORM_PROJECT, target=target, exists=exists)
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
