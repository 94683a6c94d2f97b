"""The engine's CLI and a stack as this tool runs them: every CLI run under the keeper, one engine run an update.

``KeptCommand`` runs the pulumi CLI under the keeper (``reaper``); ``EngineStack`` answers an update's summary
and outputs from the engine's own events instead of three more CLI runs. Both derive from the Automation API's
classes, so importing this module imports the Automation API: ``stacks`` imports it only when it opens a
stack (``lazy_modules``), and the commands that only read the state never do.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable, Mapping
from typing import Any

import semver
from pulumi import automation as auto

from vcluster_mgr.workspace import reaper

#: called with each engine event of a run (as ``stacks.EventCallback``)
EventCallback = Callable[[auto.EngineEvent], None]


class KeptCommand(auto.PulumiCommand):
    """The pulumi CLI, every run of it under the keeper (``reaper``): nothing it starts outlives the run,
    and the run does not outlive ``vcm`` (see ``reaper`` for why a process of its own)."""

    def __init__(self, cli: str, version: str) -> None:
        # deliberately not PulumiCommand.__init__, which starts `pulumi version` (see _pulumi_command)
        self.cli = cli
        self.command = sys.executable  # what the Automation API starts: the keeper, in this interpreter
        self.version = semver.VersionInfo.parse(version)

    def run(self, args: list[str], cwd: str, additional_env: Mapping[str, str],
            on_output: auto.OnOutput | None = None, on_error: auto.OnOutput | None = None) -> auto.CommandResult:
        # the Automation API adds --non-interactive before any "--"; done here, since the CLI's arguments
        # now follow the keeper's
        end = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:end]:
            args = ["--non-interactive", *args]
        return super().run(["-I", "-S", reaper.__file__, self.cli, *args], cwd, additional_env, on_output, on_error)



class EngineStack(auto.Stack):
    """A stack run by name, and an update that costs one engine run.

    The Automation API's ``Stack`` selects the stack first (``pulumi stack select``) and, after ``up``
    and ``destroy``, starts three more CLI processes to read the outputs and the update summary
    (``stack output`` twice, ``stack history``, two of them deriving the passphrase key again). Every
    stack command passes ``--stack`` anyway, and the engine's own events already carry the summary and the
    stack's outputs, so this stack is never selected, and ``outputs()`` and ``info()`` answer from the events
    of the run that just ended. Outputs holding a secret are read from the CLI, since events mask them.
    """

    def __init__(self, name: str, ws: auto.Workspace) -> None:
        # deliberately not Stack.__init__, which runs `pulumi stack select`
        self.name = name
        self.workspace = ws
        self._run: _Run | None = None
        #: what opening the stack did that the user should hear of (a dead process's lock removed)
        self.notices: list[str] = []
        #: this process made the stack just now (``pulumi stack init``): its state is empty, nothing to refresh
        self.created = False

    def __repr__(self) -> str:
        return f"EngineStack(stack_name={self.name!r}, workspace={self.workspace!r})"

    def _capture(self, kind: str, on_event: EventCallback | None) -> EventCallback:
        run = self._run = _Run(kind)

        def seen(ev: auto.EngineEvent) -> None:
            run.see(ev)
            if on_event is not None:
                on_event(ev)
        return seen

    def up(self, **kwargs: Any) -> auto.UpResult:  # type: ignore[override]  # keyword arguments only
        try:
            return super().up(**{**kwargs, "on_event": self._capture("update", kwargs.get("on_event"))})
        finally:
            self._run = None

    def destroy(self, **kwargs: Any) -> auto.DestroyResult:  # type: ignore[override]  # keyword arguments only
        try:
            return super().destroy(**{**kwargs, "on_event": self._capture("destroy", kwargs.get("on_event"))})
        finally:
            self._run = None

    def outputs(self) -> auto.OutputMap:
        run = self._run
        if run is None or run.outputs is None or any(v == "[secret]" for v in _leaves(run.outputs)):
            return super().outputs()
        return {k: auto.OutputValue(v, False) for k, v in run.outputs.items()}

    def info(self, show_secrets: bool = True) -> auto.UpdateSummary | None:
        run = self._run
        if run is None or run.summary is None:
            return super().info(show_secrets)
        return auto.UpdateSummary(kind=run.kind, start_time=run.started, message="", environment={}, config={},
                                  result="succeeded", end_time=datetime.datetime.now(datetime.UTC),
                                  resource_changes=run.summary.resource_changes)


class _Run:
    """What the engine's events of one run said: its summary and the root stack's outputs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started = datetime.datetime.now(datetime.UTC)
        self.summary: auto.SummaryEvent | None = None
        self.outputs: dict[str, Any] | None = None

    def see(self, ev: auto.EngineEvent) -> None:
        if ev.summary_event is not None:
            self.summary = ev.summary_event
        out = ev.res_outputs_event
        if out is not None and out.metadata.type == "pulumi:pulumi:Stack" and out.metadata.new is not None:
            self.outputs = dict(out.metadata.new.outputs or {})


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


