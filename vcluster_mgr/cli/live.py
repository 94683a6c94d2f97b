"""Progress of many tenants at once, as a person at a terminal and a CI log each want it.

``vcm apply examples/tenants`` used to print a line per resource for every tenant, so how far along each
tenant was, and whether one failed, scrolled away. ``Tracker`` is the ``workspace.Progress`` callback of
plan, apply, delete, gc, ephemeral create, sleep/wake and verify, and shows the same run three ways:

* on a terminal (stderr is one, not ``TERM=dumb``; ``TTY_INTERACTIVE=0|1`` overrides): one live line per
  tenant, redrawn in place, with a bar of resources done out of planned, the elapsed time and the current
  step; a failed tenant's line keeps its first error line (with more tenants than the terminal has lines,
  only the running and failed ones are shown). The lines disappear when the run ends, and the command
  prints its summary table;
* anywhere else (a pipe, a file, a CI log): one plain line per tenant per state change (started, done,
  failed), no control characters;
* ``vcm --verbose``: one line per engine event (every resource), as before; ``vcm --quiet``: nothing.

Resources planned come from the rendered objects (``planned_resources``); what happens arrives as typed
``progress_events.Event`` values: a start, each resource done (``RESOURCE_DONE``; ``RESOURCE_READ`` for each
live object read first), the engine's steps and errors, and the end (``DONE`` or ``FAILED``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from vcluster_mgr import progress_events, render
from vcluster_mgr.cli import printing

if TYPE_CHECKING:
    from vcluster_mgr import operations, platformconfig, workspace

QUEUED = "queued"
WORKING = "preparing"
"""The step shown from a tenant's start until the engine reports its first event (checks, opening its stack)."""
FINISHING = "finishing"
"""The step once every planned resource is done, while the engine records the stack's state and outputs."""
READING = "reading the live objects"
"""The step while the engine reads every live object before an update (its refresh, see ``workspace.up``)."""


def planned_resources(work: Iterable[operations.Prepared]) -> dict[str, int | None]:
    """Tenant -> the resources its program declares (counted when it was rendered for the run: its objects, the
    ``Tenant`` component and, with a control plane, its Helm release). ``None`` where the blueprint cannot be
    rendered (the run says why)."""
    return {item.job.tenant.name: item.resources for item in work}


def planned_platform(blueprint: platformconfig.Blueprint) -> int | None:
    """The resources of the platform stack: its rendered objects and the ``Platform`` component."""
    try:
        return len(render.render_platform(policy=blueprint.policy, templates_dir=blueprint.templates_dir)) + 1
    except Exception:  # noqa: BLE001 - only a count for the bar, as above
        return None


@dataclasses.dataclass
class _Line:
    """What is known of one tenant during the run."""

    planned: int | None
    task: TaskID | None = None
    done: int = 0
    read: int = 0
    state: str = QUEUED
    step: str = QUEUED
    error: str | None = None
    started: float | None = None


def first_line(text: str) -> str:
    """The first non-empty line of a message."""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), text.strip())


class Tracker:
    """The progress callback of a run of ``action`` over ``planned`` (tenant -> resources planned or None).

    Use as a context manager around the run; call it as ``tracker(tenant, event)`` (a
    ``progress_events.Event``). Tenants not named up front (``platform``) are added when they first report.
    """

    def __init__(self, action: str, planned: Mapping[str, int | None], *, unit: str = "resources") -> None:
        self.action = action
        self.unit = unit
        self.lines: dict[str, _Line] = {name: _Line(count) for name, count in planned.items()}
        self.mode = (
            "quiet"
            if printing.settings.quiet
            else "verbose"
            if printing.settings.verbose
            else "live"
            if printing.err.is_interactive
            else "plain"
        )
        self._progress: Progress | None = None

    # -- the context: the live display runs between enter and exit
    def __enter__(self) -> Tracker:
        if self.mode == "live":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[step]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                console=printing.err,
                expand=True,
                transient=True,
                refresh_per_second=5,
                # other writes to stderr (a library's warning) appear above the lines; stdout is data and is
                # never sent through the live view to stderr
                redirect_stdout=False,
                redirect_stderr=True,
            )
            self._progress.start()
            for name in self.lines:
                self._add(name)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _add(self, name: str) -> None:
        line = self.lines.setdefault(name, _Line(None))
        if self._progress is not None and line.task is None:
            line.task = self._progress.add_task(escape(name), total=line.planned, start=False, step=escape(line.step))

    # -- the callback
    def __call__(self, tenant: str, event: progress_events.Event) -> None:
        kind = progress_events.Kind
        if tenant not in self.lines:
            self._add(tenant)
        line = self.lines[tenant]
        if line.state == QUEUED and event.kind is not kind.STARTED:
            # worker processes report no start: a tenant's first event is its start
            self._start(tenant, line, progress_events.started(self.action))
        state = line.state
        if event.kind is kind.RESOURCE_DONE:
            line.done += 1
            if line.planned is not None and line.done >= line.planned:
                line.step = FINISHING
            elif line.step.startswith(READING):
                line.step = "working"
        elif event.kind is kind.RESOURCE_READ:
            line.read += 1
            line.step = f"{READING} {line.read}/{line.planned or '?'}"
        elif event.kind is kind.STARTED:
            self._start(tenant, line, event)
        elif event.kind in (kind.DONE, kind.FAILED):
            line.state = event.kind.value
            self._finished(tenant, line)
        elif event.kind is kind.NOTICE:
            if self.mode in ("plain", "live"):  # verbose prints every event below; quiet prints none
                printing.err.print(f"{tenant}: {event.text}", markup=False, highlight=False, soft_wrap=True)
        elif event.kind is kind.ERROR:
            line.error = line.error or first_line(event.text)
            line.step = f"[red]{escape(line.error)}[/red]"
        else:
            line.step = escape(event.text)
        if self.mode == "verbose" and event.kind not in (kind.RESOURCE_DONE, kind.RESOURCE_READ):
            printing.tenant_progress(tenant, event.line())
        self._draw(line, now=line.state != state or event.kind is kind.ERROR)

    def _start(self, tenant: str, line: _Line, event: progress_events.Event) -> None:
        line.state, line.step, line.started = "running", WORKING, time.monotonic()
        if self.mode == "plain":
            self._plain(f"{tenant}: {event.line()}")
        if self._progress is not None and line.task is not None:
            self._progress.start_task(line.task)
            self._draw(line, now=True)

    def _finished(self, tenant: str, line: _Line) -> None:
        took = f"{time.monotonic() - line.started:.1f} s" if line.started is not None else "-"
        if line.state == "done":
            line.step = "[green]done[/green]"
            if self.mode == "plain":
                counted = f"{line.done}/{max(line.planned or 0, line.done)} {self.unit}" if line.done else "no change"
                self._plain(f"{tenant}: {self.action} done ({counted}, {took})")
        else:
            line.step = "[red]failed[/red]" + (f": {escape(line.error)}" if line.error else "")
            if self.mode == "plain":
                why = f": {line.error}" if line.error else ""
                self._plain(f"{tenant}: {self.action} failed{why} ({took})")

    def _draw(self, line: _Line, *, now: bool = False) -> None:
        """Update the tenant's live line; ``now``: redraw at once (a state change), else at the next refresh."""
        if self._progress is None or line.task is None:
            return
        total = line.planned
        if total is not None and line.done > total:
            total = line.done
        if line.state == "done":
            total = max(total or 0, line.done, 1)
            self._progress.update(line.task, total=total, completed=total, step=line.step)
        else:
            self._progress.update(line.task, total=total, completed=line.done, step=line.step)
            if line.state == "failed":
                self._progress.stop_task(line.task)
        if now:
            self._fit()
            self._progress.refresh()

    def _fit(self) -> None:
        """More tenants than the terminal has lines: show the running and failed ones only."""
        assert self._progress is not None
        crowded = len(self.lines) > max(printing.err.size.height - 2, 1)
        for line in self.lines.values():
            if line.task is not None:
                self._progress.update(line.task, visible=not crowded or line.state in ("running", "failed"))

    def _plain(self, text: str) -> None:
        printing.err.print(text, markup=False, highlight=False, emoji=False)

    def advance(self, tenant: str, count: int) -> None:
        """Count ``count`` more units done for ``tenant`` (for runs that are not engine jobs, such as verify)."""
        for _ in range(count):
            self(tenant, progress_events.RESOURCE_DONE)

    def fail(self, tenant: str, message: str) -> None:
        """Report a tenant failed with ``message`` (for runs that are not engine jobs, such as verify)."""
        self(tenant, progress_events.error(message))
        self(tenant, progress_events.FAILED)


def delete(
    tracker: Tracker, s: workspace.Settings, target: platformconfig.Target, tenant: str, *, unprotect: bool
) -> workspace.Outcome:
    """``operations.delete_tenant`` with its states reported to ``tracker`` (delete_tenant reports only the
    engine's events); an error that stops it before the engine runs is reported as the tenant's failure."""
    from vcluster_mgr import errors, operations

    tracker(tenant, progress_events.started("delete"))
    try:
        outcome = operations.delete_tenant(s, target, tenant, progress=tracker, unprotect=unprotect)
    except errors.VcmError as exc:
        tracker.fail(tenant, str(exc))
        raise
    if outcome.error:
        tracker(tenant, progress_events.error(outcome.error))
    tracker(tenant, progress_events.finished(outcome.ok))
    return outcome
