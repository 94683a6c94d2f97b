"""The only module that touches ``pulumi.automation``: backend, secrets, up / preview / destroy.

Offline by construction: a local file backend in a state directory (any backend URL is accepted), the
passphrase secrets provider, no update check, no plugin download, and the engine's binaries taken from
the toolchain's bin directory (first on ``PATH``), so nothing the engine does reaches beyond loopback.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from vcluster_mgr import errors, toolchain

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
        if not os.access(target, os.W_OK):
            raise errors.ProvisionError(
                f"the state directory {target} is not writable; fix its permissions or choose another "
                "with --state-dir / VCM_STATE_DIR")
    kc = kubeconfig or os.environ.get("KUBECONFIG") or None
    return Settings(sd, url, _passphrase(sd), kc, context)


def engine_env(s: Settings) -> dict[str, str]:
    """Environment for every engine process: our binaries first, nothing reaching out."""
    bin_dir = toolchain.require()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(toolchain.cache_dir() / "pulumi-home"),
        "PULUMI_BACKEND_URL": s.backend_url,
        "PULUMI_CONFIG_PASSPHRASE": s.passphrase,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_PYTHON_CMD": os.environ.get("PULUMI_PYTHON_CMD", _python()),
    }


def _python() -> str:
    import sys

    return sys.executable


def _workspace_opts(s: Settings, project: str, work_dir: Path | None = None) -> auto.LocalWorkspaceOptions:
    env = engine_env(s)
    return auto.LocalWorkspaceOptions(
        work_dir=str(work_dir) if work_dir else None,
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        pulumi_command=auto.PulumiCommand(root=str(toolchain.cache_dir()), skip_version_check=True),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(name=project, runtime="python",
                                              backend=auto.ProjectBackend(url=s.backend_url)),
    )


def stack(s: Settings, name: str, program: auto.PulumiFn, *, project: str = PROJECT) -> auto.Stack:
    """Create or select the stack ``name`` for an inline ``program``."""
    try:
        return auto.create_or_select_stack(stack_name=name, project_name=project, program=program,
                                           opts=_workspace_opts(s, project))
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"cannot open stack {name}: {_clean(exc)}") from exc


def _clean(exc: Exception) -> str:
    """The useful lines of an engine error, without the CLI's banner noise."""
    text = str(exc)
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith((" code:", "code:"))]
    return "\n".join(keep[-25:])


def up(st: auto.Stack, *, on_event: EventCallback | None = None, parallel: int | None = None) -> auto.UpResult:
    try:
        return st.up(on_event=on_event, parallel=parallel, color="never")
    except auto.errors.ConcurrentUpdateError as exc:
        raise errors.ProvisionError(
            f"stack {st.name} is being updated by another process; wait for it to finish and retry "
            "(if that process died, `pulumi cancel` is not needed for a local backend: remove the lock with "
            f"`vcm unlock {st.name}`)") from exc
    except auto.errors.CommandError as exc:
        raise errors.ProvisionError(f"update of {st.name} failed:\n{_clean(exc)}") from exc


def preview(st: auto.Stack, *, on_event: EventCallback | None = None, diff: bool = False) -> auto.PreviewResult:
    try:
        return st.preview(on_event=on_event, diff=diff, color="never")
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
    return {k: v.value for k, v in st.outputs().items()}
