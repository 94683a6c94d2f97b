"""Where state lives and how every engine process is set up: ``Settings``, the passphrase, the environment.

Offline by construction: a local file backend in a state directory (any backend URL is accepted), the
passphrase secrets provider, no update check, no plugin download, and the engine's binaries taken from
the toolchain's bin directory (first on ``PATH``), so nothing the engine does reaches beyond loopback.

A backend shared by many machines (``--shard`` jobs) is an object store: ``s3://BUCKET?region=R`` and, for an
S3-compatible server, ``&endpoint=https://HOST:PORT&use_path_style=true``. Its URL is checked here against
the query parameters that the engine's blob library (gocloud.dev 0.46, inside pulumi 3.259) understands, so a
typo fails before any stack is touched. Its credentials are the AWS SDK's own (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` in the environment, or ``profile=``): never in the URL, never printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import sys
import tempfile
import urllib.parse
from pathlib import Path

from vcluster_mgr import errors, platformconfig, reading, toolchain


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
    """``$XDG_STATE_HOME/vcluster-mgr`` (``~/.local/state/vcluster-mgr``); ``VCM_STATE_DIR`` is read by the
    CLI's ``--state-dir`` option and arrives here as ``settings(state_dir=...)``."""
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


PASSPHRASE_MAX_BYTES = 4096
"""Largest passphrase file read from a state dir (the one vcm writes is 44 bytes)."""


def _passphrase(state_dir: Path) -> str:
    """``VCM_PASSPHRASE`` / ``PULUMI_CONFIG_PASSPHRASE``, else one generated once and kept (mode 600)."""
    for var in ("VCM_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE"):
        if os.environ.get(var):
            return os.environ[var]
    path = state_dir / "passphrase"
    if os.path.lexists(path):
        return reading.read_text(path, limit=PASSPHRASE_MAX_BYTES).strip()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return reading.read_text(path, limit=PASSPHRASE_MAX_BYTES).strip()
    except OSError as exc:
        raise errors.ProvisionError(f"cannot write the state directory {state_dir}: {exc.strerror}") from exc
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


S3_URL_PARAMETERS = frozenset({
    # gocloud.dev/blob/s3blob
    "ssetype", "kmskeyid", "accelerate", "use_path_style", "s3ForcePathStyle", "disable_https",
    # gocloud.dev/aws (V2ConfigFromURLParams)
    "region", "endpoint", "profile", "hostname_immutable", "dualstack", "fips", "rate_limiter_capacity",
    "anonymous", "role", "request_checksum_calculation", "response_checksum_validation", "awssdk",
})
"""The query parameters of an ``s3://`` backend URL that the engine's gocloud.dev accepts; any other fails."""


def check_s3_url(url: str) -> None:
    """Raise ``UsageError`` for an ``s3://`` URL the engine would refuse: no bucket, an unknown or repeated
    parameter, an endpoint without its scheme. Credentials in the URL are refused too (the SDK reads them
    from the environment; a URL ends up in logs)."""
    parts = urllib.parse.urlsplit(url)
    shown = urllib.parse.urlunsplit(parts._replace(query="", netloc=parts.hostname or ""))
    if parts.username or parts.password:
        raise errors.UsageError(f"the backend URL {shown} carries credentials: remove them and set "
                                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or profile=NAME) instead")
    if not parts.hostname:
        raise errors.UsageError(f"the backend URL {url!r} names no bucket (s3://BUCKET?region=REGION)")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - S3_URL_PARAMETERS)
    if unknown:
        raise errors.UsageError(
            f"the backend URL {shown} has parameter(s) the engine does not know: {', '.join(unknown)}; known: "
            + ", ".join(sorted(S3_URL_PARAMETERS)))
    repeated = sorted(k for k, v in query.items() if len(v) > 1)
    if repeated:
        raise errors.UsageError(f"the backend URL {shown} repeats {', '.join(repeated)}")
    endpoint = query.get("endpoint", [""])[0]
    if "endpoint" in query and not endpoint.startswith(("http://", "https://")):
        raise errors.UsageError(f"the backend URL's endpoint {endpoint!r} needs its scheme "
                                "(endpoint=https://HOST:PORT, or http:// for a server on loopback)")


def settings(*, state_dir: Path | None = None, backend_url: str | None = None,
             kubeconfig: str | None = None, context: str | None = None) -> Settings:
    """Resolve settings from arguments, then defaults (the CLI's options read ``VCM_STATE_DIR`` and
    ``VCM_BACKEND_URL`` / ``PULUMI_BACKEND_URL`` and pass them in)."""
    sd = (state_dir or default_state_dir()).expanduser().resolve()
    url = backend_url
    if not url:
        url = (sd / "pulumi").as_uri()
    if url.startswith("s3://"):
        check_s3_url(url)
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
        # no second full copy of the checkpoint after each update (.pulumi/backups/<project>/<stack>/, one
        # file per update, never pruned): the stack's history keeps the same copy of every update already
        "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "true",
        "PULUMI_PYTHON_CMD": os.environ.get("PULUMI_PYTHON_CMD", _python()),
    }


def _python() -> str:
    return sys.executable
