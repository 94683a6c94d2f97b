"""The only module that touches ``pulumi.automation``: backend, secrets, up / preview / destroy.

Offline by construction: a local file backend in a state directory (any backend URL is accepted), the
passphrase secrets provider, no update check, no plugin download, and the engine's binaries taken from
the toolchain's bin directory (first on ``PATH``), so nothing the engine does reaches beyond loopback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import queue as queue_mod
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from vcluster_mgr import errors, hostcluster, lifecycle, platformconfig, program, spec, toolchain

PROJECT = "vcluster-mgr"
EventCallback = Callable[[auto.EngineEvent], None]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where state lives and how the engine reaches the host cluster.

    ``repr`` hides the passphrase: it protects every secret in the state.
    """

    state_dir: Path
    backend_url: str
    passphrase: str = dataclasses.field(repr=False)
    kubeconfig: str | None = None
    context: str | None = None


def default_state_dir() -> Path:
    env = os.environ.get("VCM_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vcluster-mgr"


def _check_writable(target: Path) -> None:
    """Fail early and clearly on a state directory we cannot write (permissions, read-only mounts, immutable
    files; a write probe, because access(2) says yes to root whatever the mount)."""
    for d in (target, target / ".pulumi", target / ".pulumi" / "stacks"):
        if not d.is_dir():
            continue
        try:
            with tempfile.NamedTemporaryFile(dir=d, prefix=".vcm-write-probe-"):
                pass
        except OSError as exc:
            raise errors.ProvisionError(
                f"the state directory {d} is not writable ({exc.strerror}); fix that or choose another with "
                "--state-dir / VCM_STATE_DIR. Nothing was changed.") from exc


def _passphrase(state_dir: Path) -> str:
    """``VCM_PASSPHRASE`` / ``PULUMI_CONFIG_PASSPHRASE``, else one generated once and kept (mode 600)."""
    for var in ("VCM_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE"):
        if os.environ.get(var):
            return os.environ[var]
    path = state_dir / "passphrase"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise errors.ProvisionError(f"cannot write the state directory {state_dir}: {exc.strerror}") from exc
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def settings(*, state_dir: Path | None = None, backend_url: str | None = None,
             kubeconfig: str | None = None, context: str | None = None) -> Settings:
    """Resolve settings from arguments, then environment, then defaults."""
    sd = (state_dir or default_state_dir()).expanduser().resolve()
    url = backend_url or os.environ.get("VCM_BACKEND_URL") or os.environ.get("PULUMI_BACKEND_URL")
    if not url:
        url = (sd / "pulumi").as_uri()
    if url.startswith("file://"):
        target = Path(url[len("file://"):])
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.ProvisionError(f"cannot create the state directory {target}: {exc.strerror}") from exc
        _check_writable(target)
    kc = kubeconfig or os.environ.get("KUBECONFIG") or None
    return Settings(sd, url, _passphrase(sd), kc, context)


def provider_kubeconfig(s: Settings, target: platformconfig.Target) -> str:
    """``KUBECONFIG`` for the provider of ``target``: its kubeconfig path(s) as they are at this run.

    The provider's configuration in the stack holds no path and no context (``program.provider``), so what
    the engine reaches is decided here, each run. A context is chosen the way kubectl's own merging rules
    allow without copying credentials: a small file (in the state dir) that only sets ``current-context``
    goes first in the list, and the first file to set it wins.
    """
    paths = target.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if not target.context:
        return paths
    folder = s.state_dir / "kube-contexts"
    override = folder / f"{hashlib.sha256(target.context.encode()).hexdigest()[:16]}.yaml"
    if not override.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = override.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": target.context}))
            tmp.replace(override)
        except OSError as exc:
            raise errors.ProvisionError(f"cannot write {override}: {exc.strerror}") from exc
    return f"{override}{os.pathsep}{paths}"


def engine_env(s: Settings, target: platformconfig.Target | None = None) -> dict[str, str]:
    """Environment for every engine process: our binaries first, nothing reaching out; with a ``target``,
    the ``KUBECONFIG`` its provider uses (``provider_kubeconfig``)."""
    bin_dir = toolchain.require()
    extra = {"KUBECONFIG": provider_kubeconfig(s, target)} if target is not None and not target.in_state else {}
    return {
        **extra,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(toolchain.cache_dir() / "pulumi-home"),
        "PULUMI_BACKEND_URL": s.backend_url,
        "PULUMI_CONFIG_PASSPHRASE": s.passphrase,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        # the blueprint is authoritative: a field someone else changed (drift) is taken back on the next
        # apply instead of failing with a server-side apply conflict (the provider's documented switch)
        "PULUMI_K8S_ENABLE_PATCH_FORCE": "true",
        "PULUMI_PYTHON_CMD": os.environ.get("PULUMI_PYTHON_CMD", _python()),
    }


def _python() -> str:
    return sys.executable


def _workspace_opts(s: Settings, project: str, work_dir: Path | None = None,
                    target: platformconfig.Target | None = None) -> auto.LocalWorkspaceOptions:
    env = engine_env(s, target)
    return auto.LocalWorkspaceOptions(
        work_dir=str(work_dir) if work_dir else None,
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        pulumi_command=auto.PulumiCommand(root=str(toolchain.cache_dir()), skip_version_check=True),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(name=project, runtime="python",
                                              backend=auto.ProjectBackend(url=s.backend_url)),
    )


def _pid_is_pulumi(pid: int) -> bool:
    try:
        return b"pulumi" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def clear_stale_locks(s: Settings, project: str, name: str) -> list[str]:
    """Remove locks of a file backend left by a process of this host that no longer runs (a killed apply).

    A lock held by a live process, or by another host, is left alone: that update may still be running.
    Returns a line per removed lock.
    """
    if not s.backend_url.startswith("file://"):
        return []
    lock_dir = Path(s.backend_url[len("file://"):]) / ".pulumi" / "locks" / "organization" / project / name
    removed = []
    for lock in sorted(lock_dir.glob("*.json")) if lock_dir.is_dir() else []:
        try:
            info = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        if info.get("hostname") != socket.gethostname() or _pid_is_pulumi(int(info.get("pid", 0))):
            continue
        lock.unlink(missing_ok=True)
        lock.with_name(lock.name + ".attrs").unlink(missing_ok=True)
        removed.append(f"removed the stale lock of process {info.get('pid')} (no longer running) from {name}")
    return removed


def stack(s: Settings, name: str, fn: auto.PulumiFn, *, project: str = PROJECT,
          target: platformconfig.Target | None = None) -> auto.Stack:
    """Create or select the stack ``name`` for an inline program ``fn`` (stale local locks are cleared
    first); its engine reaches ``target`` (see ``engine_env``), by default the settings' kubeconfig."""
    clear_stale_locks(s, project, name)
    opts = _workspace_opts(s, project, target=target or platformconfig.Target("default", s.kubeconfig, s.context))
    for attempt in range(6):
        try:
            try:
                return auto.create_or_select_stack(stack_name=name, project_name=project, program=fn, opts=opts)
            except auto.errors.StackAlreadyExistsError:
                # another process created it between our look and our create: use theirs
                return auto.select_stack(stack_name=name, project_name=project, program=fn, opts=opts)
        except auto.errors.CommandError as exc:
            # another process holds the stack's lock while it creates the stack: wait a little for it
            if "created by" in str(exc) and attempt < 5:
                time.sleep(1.0)
                continue
            if "created by" in str(exc):
                raise errors.ProvisionError(
                    f"stack {name} is being updated by another process; wait for it to finish and retry") from exc
            raise errors.ProvisionError(f"cannot open stack {name}: {_clean(exc)}") from exc
    raise AssertionError("unreachable")


def _clean(exc: Exception) -> str:
    """The useful lines of an engine error, without the CLI's banner noise."""
    text = str(exc)
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith((" code:", "code:"))]
    return "\n".join(keep[-25:])


def up(st: auto.Stack, *, on_event: EventCallback | None = None, parallel: int | None = None,
       refresh: bool = True) -> auto.UpResult:
    """``pulumi up``; with ``refresh`` (the default) the live objects are read first, so anything changed or
    deleted outside the tool is applied again (the provider diffs desired fields against live ones)."""
    try:
        return st.up(on_event=on_event, parallel=parallel, color="never", refresh=refresh)
    except auto.errors.ConcurrentUpdateError as exc:
        raise errors.ProvisionError(
            f"stack {st.name} is being updated by another process; wait for it to finish and retry "
            "(a lock left by a process of this host that died is removed automatically on the next run)") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"update of {st.name} failed:\n{_clean(exc)}") from exc


def preview(st: auto.Stack, *, on_event: EventCallback | None = None, diff: bool = False,
            refresh: bool = True) -> auto.PreviewResult:
    try:
        return st.preview(on_event=on_event, diff=diff, color="never", refresh=refresh)
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"preview of {st.name} failed:\n{_clean(exc)}") from exc


def destroy(st: auto.Stack, *, on_event: EventCallback | None = None, remove: bool = True) -> None:
    try:
        st.destroy(on_event=on_event, color="never")
        if remove:
            st.workspace.remove_stack(st.name)
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"destroy of {st.name} failed:\n{_clean(exc)}") from exc


def outputs(st: auto.Stack) -> Mapping[str, Any]:
    return {k: "[secret]" if v.secret else v.value for k, v in st.outputs().items()}


# ----------------------------------------------------------------------------------------------------
# tenants: one stack per host cluster and tenant, applied in parallel worker processes
# ----------------------------------------------------------------------------------------------------

TENANT_PROJECT = "vcm-tenants"
PLATFORM_PROJECT = "vcm-platform"


def tenant_stack_name(cluster: str, tenant: str) -> str:
    """Stacks are per host cluster and tenant: ``<cluster>.<tenant>``."""
    return f"{cluster}.{tenant}"


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

    @property
    def stack_name(self) -> str:
        return tenant_stack_name(self.target.name, self.tenant.name)


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


Progress = Callable[[str, str], None]


def _event_text(ev: auto.EngineEvent) -> str | None:
    """A one-line summary of the engine events worth showing (changes and errors), else None."""
    quiet = (auto.OpType.SAME, auto.OpType.READ, auto.OpType.REFRESH)
    if ev.resource_pre_event and ev.resource_pre_event.metadata.op not in quiet:
        meta = ev.resource_pre_event.metadata
        if meta.type.startswith("pulumi:"):
            return None
        return f"{meta.op.value} {meta.type.split(':')[-1]} {meta.urn.rsplit('::', 1)[-1]}"
    if ev.diagnostic_event and ev.diagnostic_event.severity == "error":
        # the whole message on one line: the provider names the object, the server and the cause in it,
        # sometimes under a first line such as "1 error occurred:"
        lines = [ln.strip(" \t*") for ln in ev.diagnostic_event.message.strip().splitlines()]
        return "error: " + " ".join(ln for ln in lines if ln)
    return None


def _failure_text(exc: Exception, steps: list[str]) -> str:
    """The engine's own error lines when it reported any (they name the object and server), else the error."""
    reported = [s[len("error: "):] for s in steps
                if s.startswith("error: ") and not s.startswith(("error: update failed", "error: preview failed"))]
    return "\n".join(reported) if reported else str(exc)


def recorded_outputs(s: Settings, project: str, name: str) -> dict[str, Any] | None:
    """A stack's outputs with secrets shown as ``[secret]``, in one CLI run and no key derivation;
    ``None`` if there is no such stack."""
    work = _project_dir(s, project)
    proc = subprocess.run([str(toolchain.bin_dir() / "pulumi"), "stack", "output", "--json", "--stack", name],
                          cwd=work, env={**os.environ, **engine_env(s)}, capture_output=True, text=True,
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


def check_cluster_identity(target: platformconfig.Target, stack_name: str, recorded: Mapping[str, Any] | None,
                           uid: str) -> None:
    """Refuse to run a stack against another cluster than the one it was applied to.

    A stack records its host cluster's identity (``hostcluster.cluster_uid``) at every apply; a stack from
    before that records nothing and is bound from its next apply on.
    """
    expected = (recorded or {}).get(program.CLUSTER_UID_OUTPUT)
    if expected and expected != uid:
        raise errors.ProvisionError(
            f"stack {stack_name} belongs to the host cluster whose kube-system namespace has UID {expected}, "
            f"but the kubeconfig for {target.name!r} ({target.kubeconfig or 'KUBECONFIG'}"
            f"{', context ' + target.context if target.context else ''}) now reaches a cluster with UID {uid}. "
            "Nothing was changed. Point --kubeconfig/--context at the cluster the stack belongs to, or give "
            "this cluster its own name in the platform config (--config).")


def _expiry_of(job: Job, recorded: dict[str, Any]) -> str | None:
    """A ttl tenant keeps the expiry its stack recorded (a re-apply does not extend it); a new one gets
    now + ttl. Tenants without a ttl never expire."""
    if not job.tenant.spec.ttl:
        return None
    if recorded.get("expiresAt"):
        return str(recorded["expiresAt"])
    moment = lifecycle.expiry(job.tenant, lifecycle.utc_now())
    return lifecycle.format_expiry(moment) if moment else None


def _run_job(s: Settings, job: Job, action: str, events: Any = None) -> Outcome:
    """Plan, apply or delete one tenant (runs in a worker process when parallel)."""
    started = time.monotonic()
    steps: list[str] = []

    def on_event(ev: auto.EngineEvent) -> None:
        text = _event_text(ev)
        if text:
            steps.append(text)
            if events is not None:
                events.put((job.tenant.name, text))

    try:
        uid = hostcluster.cluster_uid(job.target)
        recorded = recorded_outputs(s, TENANT_PROJECT, job.stack_name) or {}
        check_cluster_identity(job.target, job.stack_name, recorded, uid)
        if action in ("apply", "plan"):
            hostcluster.check_ownership(job.target, job.tenant.name, job.tenant.namespace_names(),
                                        f"{TENANT_PROJECT}/{job.stack_name}")
        expires_at = job.expires_at or _expiry_of(job, recorded)
        asleep = job.asleep if job.asleep is not None else bool(recorded.get("asleep"))
        kubeconfig = None
        if job.tenant.spec.control_plane.enabled and action == "apply":
            kubeconfig = hostcluster.control_plane_kubeconfig(job.target, job.tenant)
            if kubeconfig is None:
                steps.append("control plane: its kubeconfig Secret does not exist yet (the virtual cluster "
                             "writes it once running); `vcm kubeconfig` waits for it")
        fn = program.tenant_program(job.tenant, job.target, job.blueprint, expires_at=expires_at, asleep=asleep,
                                    kubeconfig=kubeconfig, cluster_uid=uid)
        st = stack(s, job.stack_name, fn, project=TENANT_PROJECT, target=job.target)
        if action == "apply":
            res = up(st, on_event=on_event)
            # the engine's op names as plain strings (OpType is a str enum)
            changes: dict[str, int] = dict(res.summary.resource_changes or {})  # type: ignore[arg-type]
        elif action == "plan":
            pre = preview(st, on_event=on_event)
            changes = dict(pre.change_summary)  # type: ignore[arg-type]  # str enum keys, as above
        else:
            destroy(st, on_event=on_event, remove=True)
            changes = {"delete": len([x for x in steps if x.startswith("delete")])}
        return Outcome(job.tenant.name, job.target.name, action, True, changes,
                       round(time.monotonic() - started, 2), steps=steps)
    except errors.VcmError as exc:
        return Outcome(job.tenant.name, job.target.name, action, False, {}, round(time.monotonic() - started, 2),
                       error=_failure_text(exc, steps), steps=steps)


def run_jobs(s: Settings, jobs: list[Job], action: str, *, parallel: int = 1,
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
            report(job.tenant.name, f"{action} started")
            outcome = _run_job(s, job, action, _Direct(report))
            report(job.tenant.name, "done" if outcome.ok else "failed")
            outcomes.append(outcome)
        return outcomes
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        events = manager.Queue()
        with ProcessPoolExecutor(max_workers=min(parallel, len(jobs)), mp_context=ctx) as pool:
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
                    report(job.tenant.name, "done" if outcome.ok else "failed")
                    results[job.stack_name] = outcome
    return [results[j.stack_name] for j in jobs]


class _Direct:
    """Queue-like adapter so the in-process path reports events like the worker path."""

    def __init__(self, report: Progress) -> None:
        self._report = report

    def put(self, item: tuple[str, str]) -> None:
        self._report(*item)


def platform_apply(s: Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint, *,
                   progress: Progress | None = None) -> Outcome:
    started = time.monotonic()
    uid = hostcluster.cluster_uid(target)
    check_cluster_identity(target, target.name, recorded_outputs(s, PLATFORM_PROJECT, target.name), uid)
    st = stack(s, target.name, program.platform_program(target, blueprint, cluster_uid=uid),
               project=PLATFORM_PROJECT, target=target)
    report = progress or (lambda _t, _m: None)
    def on_event(ev: auto.EngineEvent) -> None:
        text = _event_text(ev)
        if text:
            report("platform", text)

    res = up(st, on_event=on_event)
    changes: dict[str, int] = dict(res.summary.resource_changes or {})  # type: ignore[arg-type]  # str enum keys
    return Outcome("platform", target.name, "apply", True, changes,
                   round(time.monotonic() - started, 2))


def _project_dir(s: Settings, project: str) -> Path:
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


def _project_workspace(s: Settings, project: str, target: platformconfig.Target | None = None) -> auto.LocalWorkspace:
    """A workspace for reading (or destroying) a project's stacks."""
    return auto.LocalWorkspace(**vars(_workspace_opts(s, project, _project_dir(s, project), target=target)))


def list_tenant_stacks(s: Settings) -> list[dict[str, Any]]:
    """Every tenant stack in the backend: cluster, tenant, last update, resource count."""
    ws = _project_workspace(s, TENANT_PROJECT)
    try:
        summaries = ws.list_stacks()
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot list stacks in {s.backend_url}: {_clean(exc)}") from exc
    rows = []
    for summary in summaries:
        cluster, _, tenant = summary.name.partition(".")
        rows.append({"tenant": tenant, "cluster": cluster, "stack": summary.name,
                     "lastUpdate": summary.last_update, "resources": summary.resource_count,
                     "updating": summary.update_in_progress})
    return sorted(rows, key=lambda r: (r["tenant"], r["cluster"]))


def tenant_outputs(s: Settings, cluster: str, tenant: str) -> dict[str, Any]:
    """The outputs of a tenant's stack (secrets as ``[secret]``); ``ProvisionError`` if there is no such stack."""
    found = recorded_outputs(s, TENANT_PROJECT, tenant_stack_name(cluster, tenant))
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


def delete_tenant(s: Settings, target: platformconfig.Target, tenant: str, *,
                  progress: Progress | None = None, unprotect: bool = False) -> Outcome:
    """Destroy a tenant's objects and remove its stack; ``ProvisionError`` if the stack is unknown.

    A tenant under deletion protection (``spec.protect``) is refused with ``ProtectedError`` before anything
    is touched, unless ``unprotect`` clears the protect flags in its state first.
    """
    started = time.monotonic()
    name = tenant_stack_name(target.name, tenant)
    recorded = recorded_outputs(s, TENANT_PROJECT, name)
    if recorded is None:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {target.name!r} in {s.backend_url}")
    check_cluster_identity(target, name, recorded, hostcluster.cluster_uid(target))
    ws = _project_workspace(s, TENANT_PROJECT, target)
    try:
        st = auto.Stack.select(name, ws)
    except auto.errors.StackNotFoundError as exc:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {target.name!r} in {s.backend_url}") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot open stack {name}: {_clean(exc)}") from exc
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
        raise errors.ProvisionError(f"cannot read stack {name}: {_clean(exc)}") from exc
    report = progress or (lambda _t, _m: None)
    steps: list[str] = []

    def on_event(ev: auto.EngineEvent) -> None:
        text = _event_text(ev)
        if text:
            steps.append(text)
            report(tenant, text)

    try:
        destroy(st, on_event=on_event, remove=True)
    except errors.VcmError as exc:
        return Outcome(tenant, target.name, "delete", False, {}, round(time.monotonic() - started, 2),
                       error=str(exc), steps=steps)
    return Outcome(tenant, target.name, "delete", True, {"delete": sum(s.startswith("delete") for s in steps)},
                   round(time.monotonic() - started, 2), steps=steps)


def applied_objects(s: Settings, cluster: str, tenant: str) -> list[dict[str, Any]]:
    """What the tenant's stack last applied: each Kubernetes object's inputs and id, from the state."""
    ws = _project_workspace(s, TENANT_PROJECT)
    name = tenant_stack_name(cluster, tenant)
    try:
        deployment = auto.Stack.select(name, ws).export_stack().deployment
    except auto.errors.StackNotFoundError as exc:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {cluster!r} in {s.backend_url}") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot read stack {name}: {_clean(exc)}") from exc
    found = []
    for res in (deployment or {}).get("resources", []):
        if res.get("custom") and res.get("type", "").startswith("kubernetes:") and res.get("id"):
            found.append({"id": res["id"], "inputs": res.get("inputs", {})})
    return found


def last_operations(s: Settings, cluster: str, tenant: str) -> dict[str, dict[str, Any]]:
    """The latest update, refresh and destroy of a tenant's stack, from its history: kind -> result and times.

    Nothing is stored for this beyond what Pulumi keeps: ``result`` is ``succeeded``, ``failed`` or
    ``in-progress``; times are ISO 8601 in UTC.
    """
    ws = _project_workspace(s, TENANT_PROJECT)
    name = tenant_stack_name(cluster, tenant)
    try:
        history = auto.Stack.select(name, ws).history(page_size=20, show_secrets=False)
    except auto.errors.StackNotFoundError as exc:
        raise errors.ProvisionError(f"no tenant {tenant!r} on host cluster {cluster!r} in {s.backend_url}") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot read the history of stack {name}: {_clean(exc)}") from exc
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
