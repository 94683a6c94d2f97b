"""One stack at a time: opening it (stale locks cleared), up / preview / destroy, and its recorded outputs.

Also the names of the projects and stacks this tool keeps (``<cluster>.<tenant>`` in ``vcm-tenants``, one
per host cluster in ``vcm-platform``) and the check that a stack is only ever run against the host cluster
it was applied to. Engine errors become ``ProvisionError`` here, with the engine's useful lines.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcluster_mgr import errors, lazy_modules, platformconfig, toolchain
from vcluster_mgr.workspace import backend, checkpoints, locks

if TYPE_CHECKING:
    from pulumi import automation as auto

    from vcluster_mgr.workspace import engine
else:
    # imported when a stack is opened, not by the commands that only read the state (``lazy_modules``)
    auto = lazy_modules.module("pulumi.automation")
    engine = lazy_modules.module("vcluster_mgr.workspace.engine")

PROJECT = "vcluster-mgr"
EventCallback = Callable[["auto.EngineEvent"], None]
TENANT_PROJECT = "vcm-tenants"
PLATFORM_PROJECT = "vcm-platform"


def tenant_stack_name(cluster: str, tenant: str) -> str:
    """Stacks are per host cluster and tenant: ``<cluster>.<tenant>``."""
    return f"{cluster}.{tenant}"


@functools.cache
def _pulumi_command(root: str) -> auto.PulumiCommand:
    """The CLI, once per process, without asking it its version, run under the keeper.

    ``PulumiCommand()`` starts ``pulumi version`` (0.3 to 0.6 s) to learn what the toolchain has already
    made sure of: ``toolchain.require`` (called by ``engine_env`` before any engine run) refuses a binary
    that is not the pinned version. So the object is given the pinned version instead.
    """
    return engine.KeptCommand(str(Path(root) / "bin" / "pulumi"), toolchain.PULUMI_VERSION)


def _workspace_opts(s: backend.Settings, project: str, work_dir: Path | None = None,
                    target: platformconfig.Target | None = None) -> auto.LocalWorkspaceOptions:
    env = backend.engine_env(s, target)
    return auto.LocalWorkspaceOptions(
        work_dir=str(work_dir) if work_dir else None,
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        pulumi_command=_pulumi_command(str(toolchain.cache_dir())),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(name=project, runtime="python",
                                              backend=auto.ProjectBackend(url=s.backend_url)),
    )


def breaker(project: str, name: str) -> str:
    """The command that breaks a stack's lock: ``vcm unlock`` for a tenant, ``vcm platform unlock`` for a
    host cluster's platform stack, the engine's own ``pulumi cancel`` for the GitOps program's stacks."""
    if project == TENANT_PROJECT and "." in name:
        cluster, _, tenant = name.partition(".")
        return f"`vcm unlock {tenant} --cluster {cluster}`"
    if project == PLATFORM_PROJECT:
        return f"`vcm platform unlock --cluster {name}`"
    return (f"`pulumi cancel --yes --stack organization/{project}/{name}` (in a shell set up by "
            "`eval \"$(vcm toolchain env --backend-url URL)\"`)")


def _locked(backend_url: str, project: str, name: str, exc: Exception) -> errors.ProvisionError:
    """The refusal of a run that found the stack locked: every holder, its age, and what to do."""
    held = locks.read(backend_url, project, name) or locks.from_engine_error(str(exc))
    return errors.ProvisionError(locks.refusal(name, held, breaker(project, name)))


def clear_stale_locks(s: backend.Settings, project: str, name: str) -> list[str]:
    """Remove the locks a process of this machine left on a file backend when it died (a killed apply);
    a line per removed lock (``locks.clear_stale``)."""
    return locks.clear_stale(s.backend_url, project, name)


def break_lock(s: backend.Settings, project: str, name: str, *, force: bool = False) -> list[locks.Lock]:
    """Break every lock of a stack (``pulumi cancel``) and return the locks seen before (a file backend's;
    other backends do not let us read them). A lock held by a run still going on this machine is kept
    unless ``force``: breaking it would let a second run write the same state at once."""
    held = locks.read(s.backend_url, project, name)
    running = [lock for lock in held if lock.here and not lock.stale]
    if running and not force:
        raise errors.ProvisionError(
            f"stack {name} is held by a run still going on this machine: "
            f"{'; '.join(lock.describe() for lock in running)}; wait for it, or stop it first (kill PID). "
            "--force breaks the lock anyway")
    st = engine.EngineStack(name, project_workspace(s, project))
    try:
        st.cancel()
    except auto.errors.CommandError as exc:
        if "no stack named" in str(exc) or "not found" in str(exc):
            raise errors.ProvisionError(f"there is no stack {name} in {s.backend_url}") from exc
        raise errors.ProvisionError(f"cannot break the lock of stack {name}: {clean(exc)}") from exc
    return held


_WORKSPACES: dict[tuple[object, ...], auto.LocalWorkspace] = {}


def _workspace(s: backend.Settings, project: str, target: platformconfig.Target,
               extra_env: Mapping[str, str] | None = None) -> auto.LocalWorkspace:
    """One workspace per project and host cluster in each process, reused by all its stacks.

    Its folder is a temporary one of this process (as the Automation API makes for inline programs), so
    stack settings written by one process are never read by another: every secret's salt comes from the
    backend's checkpoint. The environment is computed once (``engine_env``).
    """
    key = (s.backend_url, str(s.state_dir), project, target.name, target.kubeconfig, target.context, target.in_state,
           tuple(sorted((extra_env or {}).items())))
    ws = _WORKSPACES.get(key)
    if ws is None:
        opts = _workspace_opts(s, project, target=target)
        opts.env_vars = {**(opts.env_vars or {}), **(extra_env or {})}
        ws = _WORKSPACES[key] = auto.LocalWorkspace(**vars(opts))
        # the folder is this process's alone: remove it when the process ends
        atexit.register(shutil.rmtree, ws.work_dir, ignore_errors=True)
    return ws


def stack(s: backend.Settings, name: str, fn: auto.PulumiFn, *, project: str = PROJECT,
          target: platformconfig.Target | None = None, exists: bool | None = None,
          extra_env: Mapping[str, str] | None = None) -> engine.EngineStack:
    """The stack ``name`` for an inline program ``fn``, created if it does not exist (stale local locks are
    cleared first); its engine reaches ``target`` (see ``engine_env``), by default the settings' kubeconfig.

    ``exists`` is what the caller already knows from ``recorded_outputs`` (None: look it up); an existing
    stack costs no CLI run here, a new one ``pulumi stack init``. ``extra_env`` is added to the engine's
    environment (``folder`` tunes the provider and checkpoints with it).
    """
    cleared = clear_stale_locks(s, project, name)
    ws = _workspace(s, project, target or platformconfig.Target("default", s.kubeconfig, s.context), extra_env)
    ws.program = without_sdk_debug(fn)
    if exists is None:
        exists = recorded_outputs(s, project, name) is not None
    st = engine.EngineStack(name, ws)
    st.notices.extend(cleared)
    if exists:
        return st
    for attempt in range(6):
        try:
            ws.create_stack(name)
            st.created = True
            return st
        except auto.errors.StackAlreadyExistsError:
            return st  # another process created it between our look and our create: use theirs
        except auto.errors.CommandError as exc:
            # another process holds the stack's lock while it creates the stack: wait a little for it
            if "created by" in str(exc) and attempt < 5:
                time.sleep(1.0)
                continue
            if "created by" in str(exc):
                raise _locked(s.backend_url, project, name, exc) from exc
            raise errors.ProvisionError(f"cannot open stack {name}: {clean(exc)}") from exc
    raise AssertionError("unreachable")


def without_sdk_debug(fn: auto.PulumiFn) -> auto.PulumiFn:
    """``fn`` with the Pulumi SDK's debug messages turned off in this process while it runs and after.

    The SDK sends the engine three of them for every resource it registers (``registering resource``,
    ``prepared``, ``successful``), each a blocking call to the engine; the engine shows debug messages only when
    it runs with ``--debug``, which vcm never asks for. Measured on a folder batch of 1,323 objects: the program's
    CPU time 24.2 -> 17.2 s and the engine's 20.4 -> 16.9 s (README, Benchmarks). The GitOps program under plain
    ``pulumi up`` keeps them (it is not run through here), so ``pulumi up --debug`` of it shows them as always."""

    def run() -> Any:
        import pulumi.log

        pulumi.log.debug = _no_debug
        return fn()

    return run


def _no_debug(msg: str, resource: Any = None, stream_id: int | None = None, ephemeral: bool | None = None) -> None:
    """``pulumi.log.debug``'s signature, saying nothing."""


def _project_of(st: auto.Stack) -> str:
    """The project of an open stack, read from the workspace's ``Pulumi.yaml`` (no engine run)."""
    try:
        return st.workspace.project_settings().name
    except (OSError, ValueError):
        return "PROJECT"


def clean(exc: Exception) -> str:
    """The useful lines of an engine error, without the CLI's banner noise."""
    text = str(exc)
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith((" code:", "code:"))]
    return "\n".join(keep[-25:])


def up(st: auto.Stack, *, on_event: EventCallback | None = None, parallel: int | None = None,
       refresh: bool = True) -> auto.UpResult:
    """``pulumi up``; with ``refresh`` (the default) the live objects are read first, so anything changed or
    deleted outside the tool is applied again (the provider diffs desired fields against live ones). A stack
    this process has just made (``EngineStack.created``) holds nothing to read: ``refresh`` is not asked."""
    refresh = refresh and not getattr(st, "created", False)
    try:
        return st.up(on_event=on_event, parallel=parallel, color="never", refresh=refresh)
    except auto.errors.ConcurrentUpdateError as exc:
        raise _locked(st.workspace.env_vars.get("PULUMI_BACKEND_URL", ""), _project_of(st), st.name, exc) from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"update of {st.name} failed:\n{clean(exc)}") from exc


def preview(st: auto.Stack, *, on_event: EventCallback | None = None, diff: bool = False,
            refresh: bool = True) -> auto.PreviewResult:
    """``pulumi preview``, refreshed first as ``up`` is (not for a stack just made)."""
    refresh = refresh and not getattr(st, "created", False)
    try:
        return st.preview(on_event=on_event, diff=diff, color="never", refresh=refresh)
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"preview of {st.name} failed:\n{clean(exc)}") from exc


def destroy(st: auto.Stack, *, on_event: EventCallback | None = None, remove: bool = True) -> None:
    try:
        st.destroy(on_event=on_event, color="never")
        if remove:
            st.workspace.remove_stack(st.name)
    except auto.errors.ConcurrentUpdateError as exc:
        raise _locked(st.workspace.env_vars.get("PULUMI_BACKEND_URL", ""), _project_of(st), st.name, exc) from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"destroy of {st.name} failed:\n{clean(exc)}") from exc


def recorded_outputs(s: backend.Settings, project: str, name: str) -> dict[str, Any] | None:
    """A stack's outputs with secrets shown as ``[secret]``; ``None`` if there is no such stack.

    From a file backend's checkpoint when it can be read here (``checkpoints``), else in one CLI run
    (no key derivation)."""
    found = checkpoints.read_outputs(s.backend_url, project, name)
    if found is not checkpoints.UNKNOWN:
        return found  # type: ignore[return-value]  # dict or None, as read_outputs says
    work = _project_dir(s, project)
    proc = subprocess.run([str(toolchain.bin_dir() / "pulumi"), "stack", "output", "--json", "--stack", name],
                          cwd=work, env={**os.environ, **backend.engine_env(s)}, capture_output=True, text=True,
                          timeout=300, check=False)
    if proc.returncode != 0:
        if "no stack named" in proc.stderr or "not found" in proc.stderr:
            return None
        raise errors.ProvisionError(f"cannot read stack {name}: {proc.stderr.strip()[-2000:]}")
    try:
        data = json.loads(proc.stdout or "{}")
    except ValueError as exc:
        raise errors.ProvisionError(f"cannot read stack {name}: the engine printed no JSON") from exc
    return data if isinstance(data, dict) else {}


def check_cluster_identity(target: platformconfig.Target, stack_name: str, recorded_uid: str | None,
                           uid: str) -> None:
    """Refuse to run a stack against another cluster than the one it was applied to.

    A stack records its host cluster's identity (``cluster.cluster_uid``, as ``recorded_uid``) at every
    apply; a stack from before that records nothing and is bound from its next apply on.
    """
    if recorded_uid and recorded_uid != uid:
        raise errors.ProvisionError(
            f"stack {stack_name} belongs to the host cluster whose kube-system namespace has UID {recorded_uid}, "
            f"but the kubeconfig for {target.name!r} ({target.kubeconfig or 'KUBECONFIG'}"
            f"{', context ' + target.context if target.context else ''}) now reaches a cluster with UID {uid}. "
            "Nothing was changed. Point --kubeconfig/--context at the cluster the stack belongs to, or give "
            "this cluster its own name in the platform config (--config).")


def _project_dir(s: backend.Settings, project: str) -> Path:
    """A folder holding the project's ``Pulumi.yaml`` (in the state dir, reused), for reading its stacks."""
    work = s.state_dir / "workspaces" / project
    settings_file = work / "Pulumi.yaml"
    if not settings_file.exists():
        try:
            work.mkdir(parents=True, exist_ok=True)
            tmp = settings_file.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"name": project, "runtime": "python",
                                       "backend": {"url": s.backend_url}}))
            tmp.replace(settings_file)
        except OSError as exc:
            raise errors.ProvisionError(f"cannot write {settings_file}: {exc.strerror}") from exc
    return work


def project_workspace(s: backend.Settings, project: str,
                      target: platformconfig.Target | None = None) -> auto.LocalWorkspace:
    """A workspace for reading (or destroying) a project's stacks."""
    return auto.LocalWorkspace(**vars(_workspace_opts(s, project, _project_dir(s, project), target=target)))

