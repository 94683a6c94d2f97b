"""Where the binaries live, the manifest of where each came from, and asking each binary its version.

A binary's version is always read from the binary itself: its version command, or for the provider (which
has none) the ``GetPluginInfo`` gRPC call every Pulumi plugin answers. ``status()`` remembers the answer
beside the file's size and modification time, so commands that only need "is it there" do not start seven
processes; ``status(fresh=True)`` (``vcm toolchain status``) asks every binary again.

The manifest is shared by every process that uses the cache (two ``vcm toolchain ensure`` at once, a test
run beside a build): each change is a read-modify-write under an exclusive lock (``update_manifest``), so no
writer loses another's entries, and the new text replaces the old by a rename, so no reader sees half a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.metadata
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from vcluster_mgr import errors
from vcluster_mgr.toolchain import pins


def cache_dir() -> Path:
    """Root of everything this module writes (``VCM_CACHE_DIR``, default ``~/.cache/vcluster-mgr``).

    The variable is how the cache dir reaches every process of a run: ``vcm --cache-dir`` (which reads it too,
    and shows it in ``--help``) sets it, and the engine's worker processes and their children inherit it."""
    env = os.environ.get("VCM_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vcluster-mgr"


def bin_dir() -> Path:
    """Where the binaries live; put it first on ``PATH`` for anything that runs the engine."""
    return cache_dir() / "bin"


def _manifest_path() -> Path:
    return bin_dir() / "manifest.json"


#: what the manifest holds: for each binary's name, where it came from and what it last answered
Manifest = dict[str, dict[str, object]]


def read_manifest() -> Manifest:
    """The manifest as it is now ({} if there is none or it is unreadable): a snapshot, never written back
    (changes go through ``update_manifest``)."""
    try:
        data = json.loads(_manifest_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _manifest_locked() -> Iterator[None]:
    """Hold the exclusive lock of the manifest (``flock`` on a lock file beside it, never on the manifest itself,
    which the rename replaces). The lock goes with the process, so a killed writer never leaves it held."""
    lock = _manifest_path().with_name("manifest.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_manifest(change: Callable[[Manifest], None]) -> None:
    """Apply ``change`` to the manifest as it is on disk now, under the exclusive lock, and write it back.

    Hold the lock only for this (never across a build): read, change, write to a temporary file in the same
    directory, rename it over the manifest. Raises ``OSError`` when the cache is not writable.
    """
    path = _manifest_path()
    with _manifest_locked():
        data = read_manifest()
        change(data)
        fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the manifest from other users of a shared cache
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def record(entries: Manifest) -> None:
    """Record where these binaries came from (name -> entry), replacing what was recorded for them before and
    keeping every other entry as it is on disk now."""
    update_manifest(lambda data: data.update(entries))


@dataclasses.dataclass(frozen=True)
class Status:
    """What ``vcm toolchain status`` reports for one binary."""

    name: str
    wanted: str
    found: str | None
    path: str | None
    source: str | None

    @property
    def ok(self) -> bool:
        return self.found == self.wanted and self.path is not None


def probe_version(binary: pins.Binary, path: Path) -> str | None:
    """Ask the binary its version; ``None`` if it does not run or says nothing we understand."""
    if not binary.version_args:
        return plugin_version(path)
    try:
        proc = subprocess.run([str(path), *binary.version_args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(binary.version_re, proc.stdout + proc.stderr)
    return match.group(1) if match else None


def plugin_version(path: Path, *, timeout: float = 30.0) -> str | None:
    """The version a Pulumi plugin reports over gRPC (``GetPluginInfo``), as the engine itself asks it.

    A plugin started without an engine address serves on a loopback port it prints as its first line.
    """
    import grpc  # the engine's own RPC stack, shipped with the Pulumi SDK: imported only when probing
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import provider_pb2_grpc

    try:
        proc = subprocess.Popen([str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)
    except OSError:
        return None
    try:
        assert proc.stdout is not None
        port = _first_line(proc, timeout).strip()
        if not port.isdigit():
            return None
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = provider_pb2_grpc.ResourceProviderStub(channel).GetPluginInfo(empty_pb2.Empty(), timeout=timeout)
        version = str(info.version).lstrip("v")
        return version or None
    except grpc.RpcError:
        return None
    finally:
        proc.kill()
        proc.wait()


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line a process prints, or "" if it prints none within ``timeout`` seconds."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def status(*, fresh: bool = False, extras: tuple[pins.Binary, ...] = ()) -> list[Status]:
    """The state of every binary (and of ``extras``, binaries built on demand): the cached one if it runs at
    the right version.

    The version is asked of the binary; the answer is remembered in the manifest with the file's size,
    modification time and inode, and reused while those are unchanged, unless ``fresh``.
    """
    manifest = read_manifest()
    result = []
    probed_now: Manifest = {}
    for b in (*pins.BINARIES, *extras):
        path = bin_dir() / b.name
        entry = manifest.get(b.name, {})
        key = _stat_key(path)
        probed = entry.get("probed")
        if key is None:
            found = None
        elif not fresh and isinstance(probed, dict) and probed.get("stat") == key:
            found = probed.get("version")
        else:
            found = probe_version(b, path)
            if entry:
                probed_now[b.name] = {"stat": key, "version": found}
        source = entry.get("source") if found and entry else None
        if source == "go-build" and b.upstream:
            source = f"go-build {b.upstream}"
        result.append(Status(b.name, b.version, str(found) if found else None, str(path) if found else None,
                             str(source) if source else None))
    if probed_now:
        try:
            update_manifest(lambda data: _remember(data, probed_now))
        except OSError:
            pass  # a read-only cache still works, it only probes every time
    return result


def _remember(data: Manifest, probed: Manifest) -> None:
    """Put fresh version answers beside the entries that are still there. Another process may have replaced an
    entry meanwhile; the answer is tied to the file's size, time and inode, so a replaced file is asked again."""
    for name, answer in probed.items():
        entry = data.get(name)
        if isinstance(entry, dict):
            entry["probed"] = answer


def check_sdk_versions() -> None:
    """Refuse to run the engine when the Python SDKs and the pinned binaries disagree."""
    wanted = {"pulumi": pins.PULUMI_VERSION, "pulumi-kubernetes": pins.KUBERNETES_PROVIDER_VERSION}
    problems = []
    for dist, version in wanted.items():
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            have = "not installed"
        if have != version:
            problems.append(f"Python package {dist} is {have}, the toolchain pins {version}")
    if problems:
        raise errors.ToolchainError("; ".join(problems) + " (reinstall the project: pip install -e .)")
