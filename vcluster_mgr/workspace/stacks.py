"""One stack at a time: opening it (stale locks cleared), up / preview / destroy, and its recorded outputs.

Also the names of the projects and stacks this tool keeps (``<cluster>.<tenant>`` in ``vcm-tenants``, one
per host cluster in ``vcm-platform``) and the check that a stack is only ever run against the host cluster
it was applied to. Engine errors become ``ProvisionError`` here, with the engine's useful lines.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from vcluster_mgr import errors, platformconfig, program, toolchain
from vcluster_mgr.workspace import backend

PROJECT = "vcluster-mgr"
EventCallback = Callable[[auto.EngineEvent], None]
TENANT_PROJECT = "vcm-tenants"
PLATFORM_PROJECT = "vcm-platform"


def tenant_stack_name(cluster: str, tenant: str) -> str:
    """Stacks are per host cluster and tenant: ``<cluster>.<tenant>``."""
    return f"{cluster}.{tenant}"


def _workspace_opts(s: backend.Settings, project: str, work_dir: Path | None = None,
                    target: platformconfig.Target | None = None) -> auto.LocalWorkspaceOptions:
    env = backend.engine_env(s, target)
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


def clear_stale_locks(s: backend.Settings, project: str, name: str) -> list[str]:
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


def stack(s: backend.Settings, name: str, fn: auto.PulumiFn, *, project: str = PROJECT,
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
                    f"stack {name} is being updated by another process; wait for it to finish and retry "
                    f"({backend.stale_lock_advice(s.backend_url, project, name)})") from exc
            raise errors.ProvisionError(f"cannot open stack {name}: {clean(exc)}") from exc
    raise AssertionError("unreachable")


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
    deleted outside the tool is applied again (the provider diffs desired fields against live ones)."""
    try:
        return st.up(on_event=on_event, parallel=parallel, color="never", refresh=refresh)
    except auto.errors.ConcurrentUpdateError as exc:
        url = st.workspace.env_vars.get("PULUMI_BACKEND_URL", "")
        raise errors.ProvisionError(
            f"stack {st.name} is being updated by another process; wait for it to finish and retry "
            f"({backend.stale_lock_advice(url, _project_of(st), st.name)})") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"update of {st.name} failed:\n{clean(exc)}") from exc


def preview(st: auto.Stack, *, on_event: EventCallback | None = None, diff: bool = False,
            refresh: bool = True) -> auto.PreviewResult:
    try:
        return st.preview(on_event=on_event, diff=diff, color="never", refresh=refresh)
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"preview of {st.name} failed:\n{clean(exc)}") from exc


def destroy(st: auto.Stack, *, on_event: EventCallback | None = None, remove: bool = True) -> None:
    try:
        st.destroy(on_event=on_event, color="never")
        if remove:
            st.workspace.remove_stack(st.name)
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"destroy of {st.name} failed:\n{clean(exc)}") from exc


def recorded_outputs(s: backend.Settings, project: str, name: str) -> dict[str, Any] | None:
    """A stack's outputs with secrets shown as ``[secret]``, in one CLI run and no key derivation;
    ``None`` if there is no such stack."""
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

