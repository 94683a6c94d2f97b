"""The three sources of a binary, tried in order, and ``ensure``/``require`` that use them.

1. ``path``: a binary of the right version already on ``PATH``;
2. ``download``: the official release archive, only when asked (``--download`` or
   ``VCM_TOOLCHAIN_DOWNLOAD=1``): nothing in this package reaches the network on its own;
3. ``go-build``: ``go build`` of pinned Go modules through the Go module proxy (``gobuild``).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

from vcluster_mgr import errors
from vcluster_mgr.toolchain import gobuild, pins, probing


def _from_path(b: pins.Binary) -> Path | None:
    """A binary of the right version on PATH (but not our own bin dir)."""
    ours = probing.bin_dir().resolve()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).resolve() == ours:
            continue
        candidate = Path(entry) / b.name
        if candidate.is_file() and os.access(candidate, os.X_OK) and probing.probe_version(b, candidate) == b.version:
            return candidate
    return None


def _download_base() -> dict[str, str]:
    """Official release locations; each can be overridden (a mirror, or a local server in tests)."""
    return {
        "pulumi": os.environ.get("VCM_PULUMI_DOWNLOAD_URL", "https://get.pulumi.com/releases"),
        "kubernetes": os.environ.get("VCM_KUBERNETES_DOWNLOAD_URL", "https://dl.k8s.io"),
        "etcd": os.environ.get("VCM_ETCD_DOWNLOAD_URL", "https://github.com/etcd-io/etcd/releases/download"),
        "coredns": os.environ.get("VCM_COREDNS_DOWNLOAD_URL", "https://github.com/coredns/coredns/releases/download"),
        "kube-router": os.environ.get("VCM_KUBE_ROUTER_DOWNLOAD_URL",
                                      "https://github.com/cloudnativelabs/kube-router/releases/download"),
        "kine": os.environ.get("VCM_KINE_DOWNLOAD_URL", "https://github.com/k3s-io/kine/releases/download"),
        "local-path-provisioner": os.environ.get(
            "VCM_LOCAL_PATH_PROVISIONER_DOWNLOAD_URL",
            "https://github.com/rancher/local-path-provisioner/releases/download"),
    }


def downloadable(b: pins.Binary) -> bool:
    """Whether upstream publishes the binary itself: the syncer is released only inside its image, so it is
    always built from its Go module."""
    return b.module not in pins.SYNCER_MODULES


def download_urls(b: pins.Binary) -> tuple[str, str | None]:
    """(URL, member path inside the archive or ``None`` for a bare binary) of the official release."""
    base = _download_base()
    if b.name in ("pulumi", "pulumi-language-python"):
        return f"{base['pulumi']}/sdk/pulumi-v{pins.PULUMI_VERSION}-linux-x64.tar.gz", f"pulumi/{b.name}"
    if b.name == "pulumi-resource-kubernetes":
        return (f"{base['pulumi']}/plugins/pulumi-resource-kubernetes-v{b.version}-linux-amd64.tar.gz",
                b.name)
    if b.module == "kubernetes":
        return f"{base['kubernetes']}/v{b.version}/bin/linux/amd64/{b.name}", None
    if b.module == "coredns":
        return f"{base['coredns']}/v{b.version}/coredns_{b.version}_linux_amd64.tgz", "coredns"
    if b.module == "kube-router":
        return f"{base['kube-router']}/v{b.version}/kube-router_{b.version}_linux_amd64.tar.gz", "kube-router"
    if b.module == "kine":
        return f"{base['kine']}/v{b.version}/kine-amd64", None
    if b.module == "local-path-provisioner":
        return f"{base['local-path-provisioner']}/v{b.version}/local-path-provisioner-amd64", None
    return (f"{base['etcd']}/v{b.version}/etcd-v{b.version}-linux-amd64.tar.gz",
            f"etcd-v{b.version}-linux-amd64/etcd")


def _download(b: pins.Binary, dest: Path, progress: pins.Progress) -> None:
    url, member = download_urls(b)
    progress(f"{b.name}: downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - fixed https/http URLs
            payload = resp.read()
    except OSError as exc:
        raise errors.ToolchainError(f"{b.name}: download of {url} failed: {exc}") from exc
    if member is None:
        dest.write_bytes(payload)
    else:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            try:
                data = tar.extractfile(member)
            except KeyError:
                data = None
            if data is None:
                raise errors.ToolchainError(f"{b.name}: {url} has no {member}")
            dest.write_bytes(data.read())
            if b.name == "pulumi-language-python":
                script = tar.extractfile(f"pulumi/{pins.EXEC_SCRIPT}")
                if script is not None:
                    gobuild.install_file(script.read(), dest.parent / pins.EXEC_SCRIPT)
    dest.chmod(dest.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def ensure(*, download: bool | None = None, progress: pins.Progress = pins.quiet,
           force: bool = False, extras: tuple[pins.Binary, ...] = ()) -> list[probing.Status]:
    """Make every binary available in ``bin_dir()`` at its pinned version, and ``extras`` (binaries built
    on demand, ``pins.ON_DEMAND``: always from Go modules); returns the final status.

    ``download`` defaults to ``VCM_TOOLCHAIN_DOWNLOAD=1``; it is never on by itself, so nothing here
    touches the network unless asked (the Go module proxy is used by ``go`` for builds).
    """
    if download is None:
        download = os.environ.get("VCM_TOOLCHAIN_DOWNLOAD") == "1"
    probing.bin_dir().mkdir(parents=True, exist_ok=True)
    manifest = probing.read_manifest()  # a snapshot for the staleness test: entries are recorded one by one
    current = {s.name: s for s in probing.status(extras=extras)}
    to_build: dict[str, list[pins.Binary]] = {}
    for b in (*pins.BINARIES, *extras):
        entry = manifest.get(b.name, {})
        stale = entry.get("source") == "go-build" and entry.get("module_digest") != gobuild.module_digest(b.module)
        if current[b.name].ok and not force and not stale:
            continue
        started = time.monotonic()
        on_path = None if force else _from_path(b)
        if on_path is not None:
            shutil.copy2(on_path, probing.bin_dir() / b.name)
            if b.name == "pulumi-language-python" and (on_path.parent / pins.EXEC_SCRIPT).exists():
                shutil.copy2(on_path.parent / pins.EXEC_SCRIPT, probing.bin_dir() / pins.EXEC_SCRIPT)
            probing.record({b.name: {"version": b.version, "source": f"path:{on_path}"}})
            progress(f"{b.name}: using {on_path}")
            continue
        if download and b not in extras and downloadable(b):
            _download(b, probing.bin_dir() / b.name, progress)
            probing.record({b.name: {"version": b.version, "source": "download:" + download_urls(b)[0],
                                     "seconds": round(time.monotonic() - started, 1)}})
            continue
        to_build.setdefault(b.module, []).append(b)
    _build_all(to_build, progress)
    final = probing.status(extras=extras)
    bad = [s for s in final if not s.ok]
    if bad:
        raise errors.ToolchainError("after ensure, still missing or wrong: " + ", ".join(
            f"{s.name} (want {s.wanted}, found {s.found or 'nothing'})" for s in bad))
    return final


#: built first: the largest build (about 19 of 60 CPU-minutes cold), sharing almost no package version with
#: the rest (its own pulumi and Kubernetes client releases), so it runs beside the others from the start
_FIRST = ("pulumi-kubernetes",)
#: module -> modules it waits for: the upgrade test's older syncer shares most package versions with the current
#: one, and two go builds of them at once would compile those packages twice instead of once
_AFTER = {pins.VCLUSTER_UPGRADE_FROM.module: ("vcluster",)}


def build_order(modules: list[str]) -> list[str]:
    """The modules in the order builds start: the largest first, then as given."""
    return [m for m in modules if m in _FIRST] + [m for m in modules if m not in _FIRST]


def _build_jobs() -> int:
    raw = os.environ.get("VCM_BUILD_JOBS", "2")
    try:
        return max(1, int(raw))
    except ValueError:
        raise errors.ToolchainError(f"VCM_BUILD_JOBS must be a whole number of builds at once, not {raw!r}") from None


def _build_all(to_build: dict[str, list[pins.Binary]], progress: pins.Progress) -> None:
    """Build every module, ``VCM_BUILD_JOBS`` (default 2) go builds at once: each of two cores stays busy
    through the other build's single-threaded links and module downloads. Each worker takes the next module
    whose ``_AFTER`` modules are built. A failed build stops no other (what they build is kept and recorded);
    the first failure is raised at the end, and a module waiting for a failed one is not started."""
    pending = build_order(list(to_build))
    built: set[str] = set()
    failed: list[BaseException] = []
    failed_modules: set[str] = set()
    running: set[str] = set()
    changed = threading.Condition()

    def ready(module: str) -> bool:
        return all(m in built or m not in to_build for m in _AFTER.get(module, ()))

    def blocked(module: str) -> bool:
        return any(m in failed_modules for m in _AFTER.get(module, ()))

    def worker() -> None:
        while True:
            with changed:
                while True:
                    pending[:] = [m for m in pending if not blocked(m)]
                    module = next((m for m in pending if ready(m)), None)
                    if module is None and pending and not running:
                        module = pending[0]  # nothing left to wait for: the order is a saving, not a need
                    if module is not None or not pending:
                        break
                    changed.wait()
                if module is None:
                    return
                pending.remove(module)
                running.add(module)
            started = time.monotonic()
            try:
                gobuild.go_build(module, to_build[module], progress)
                probing.record({t.name: {"version": t.version, "source": "go-build",
                                         "module_digest": gobuild.module_digest(module),
                                         "seconds": round(time.monotonic() - started, 1)} for t in to_build[module]})
            except BaseException as exc:  # noqa: BLE001 - re-raised once the other builds are done
                with changed:
                    failed.append(exc)
                    failed_modules.add(module)
            else:
                with changed:
                    built.add(module)
            finally:
                with changed:
                    running.discard(module)
                    changed.notify_all()

    workers = [threading.Thread(target=worker, name=f"go-build-{i}") for i in range(min(_build_jobs(), len(pending)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failed:
        raise failed[0]


def require() -> Path:
    """The bin dir, after checking every binary the engine and the local cluster need is there (not the virtual
    control plane's, ``pins.VIRTUAL_CONTROL_PLANE``); tells the user how to get them if not."""
    bad = [s for s in probing.status() if not s.ok and s.name not in pins.VIRTUAL_CONTROL_PLANE]
    if bad:
        raise errors.ToolchainError(
            "the engine's binaries are missing or at the wrong version: "
            + ", ".join(s.name for s in bad) + ". Run `vcm toolchain ensure` first.")
    return probing.bin_dir()

