"""Finding or building the binaries the engine needs, at pinned versions.

The engine is the Pulumi CLI, a Python language host and a Kubernetes resource provider; the built-in
local host cluster is etcd, kube-apiserver and kube-controller-manager, with kubectl for tests and
benchmarks, and its node: kubelet, kube-scheduler, kube-proxy (the same ``go build``), CoreDNS (our plugin
list, ``gomod/coredns``) and kube-router (its NetworkPolicy firewall). None of them is a Python package,
and on machines that only reach package registries none of them can be downloaded, so each has three
possible sources, tried in this order:

1. ``path``: a binary of the right version already on ``PATH``;
2. ``download``: the official release archive, only when asked (``--download`` or
   ``VCM_TOOLCHAIN_DOWNLOAD=1``): nothing in this module reaches the network on its own;
3. ``go-build``: ``go build`` of pinned Go modules through the Go module proxy.

Each Go build uses a small wrapper module shipped in ``vcluster_mgr/gomod/<name>/`` (a ``go.mod`` and
``go.sum`` that require the upstream modules and restate their ``replace`` lines with published
versions, since ``go install pkg@version`` refuses modules with replace directives). All binaries but one
are upstream code, unchanged (CoreDNS with a plugin list of ours). The Kubernetes provider is upstream
pulumi-kubernetes built from its
``provider/v4`` module (``gomod/pulumi-kubernetes``, whose ``main.go`` is upstream's one-line ``Serve`` call;
the two files upstream embeds are generated at build time from that module, as its ``generate.go`` does).
One binary is this project's own Go code (``gomod/engine``): the Python language host, because the module
proxy does not serve upstream's ``sdk/python/cmd/pulumi-language-python``; it runs the SDK's own
``pulumi-language-python-exec`` script, so programs behave as under the upstream host.

A binary's version is always read from the binary itself: its version command, or for the provider (which
has none) the ``GetPluginInfo`` gRPC call every Pulumi plugin answers. ``status()`` remembers the answer
beside the file's size and modification time, so commands that only need "is it there" do not start seven
processes; ``status(fresh=True)`` (``vcm toolchain status``) asks every binary again.

Everything lands in the cache directory (``VCM_CACHE_DIR``, default ``~/.cache/vcluster-mgr``):
``bin/`` holds the binaries and ``bin/manifest.json`` records where each came from; ``go/mod`` and
``go/build`` are the Go module and build caches, so a second ``ensure`` takes seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from vcluster_mgr import errors

#: Pulumi CLI version; must equal the installed ``pulumi`` Python SDK (checked by ``check_sdk_versions``).
PULUMI_VERSION = "3.259.0"
#: Upstream pulumi-kubernetes release; must equal the installed ``pulumi_kubernetes`` SDK, which asks the
#: engine for plugin ``kubernetes`` at exactly this version.
KUBERNETES_PROVIDER_VERSION = "4.25.0"
#: The provider's Go module. It has no tags of its own (upstream tags the repository as ``v4.25.0``), so
#: Go names the tagged commit (f47bc2d6) by this pseudo-version.
KUBERNETES_PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
KUBERNETES_PROVIDER_PSEUDO_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
#: Kubernetes release for kube-apiserver, kube-controller-manager and kubectl (one build, one version).
KUBERNETES_VERSION = "1.37.2"
#: etcd release (3.6.x: the line Kubernetes 1.37 is tested with).
ETCD_VERSION = "3.6.16"
#: CoreDNS release for the local cluster's DNS (1.15 is built against client-go 0.37, like Kubernetes 1.37).
COREDNS_VERSION = "1.15.0"
#: kube-router release whose firewall controller enforces NetworkPolicies on the local cluster's node (iptables +
#: ipset). kube-network-policies needs the nftables ``queue`` expression, which this project's VM kernels lack.
KUBE_ROUTER_VERSION = "2.1.0"

#: Minimum Go for the wrapper modules (the ``go`` lines of their go.mod files).
GO_MIN = (1, 26)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class Binary:
    """One executable the project needs."""

    name: str
    version: str
    #: wrapper module under ``gomod/`` that builds it
    module: str
    #: Go package path to build
    package: str
    #: arguments that print the version, and a regex that finds it in the output; no arguments: the binary
    #: is a Pulumi plugin without a version flag, asked over gRPC (``GetPluginInfo``)
    version_args: tuple[str, ...]
    version_re: str
    #: the upstream Go module the binary comes from, as shown by ``status`` (``module@version``)
    upstream: str = ""


BINARIES: tuple[Binary, ...] = (
    Binary("pulumi", PULUMI_VERSION, "pulumi", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
           ("version",), r"v?(\d+\.\d+\.\d+)", f"github.com/pulumi/pulumi/pkg/v3@v{PULUMI_VERSION}"),
    Binary("pulumi-language-python", PULUMI_VERSION, "engine", "./cmd/pulumi-language-python",
           ("-version",), r"(\d+\.\d+\.\d+)", "vcluster_mgr/gomod/engine (ours)"),
    Binary("pulumi-resource-kubernetes", KUBERNETES_PROVIDER_VERSION, "pulumi-kubernetes",
           "./cmd/pulumi-resource-kubernetes", (), "",
           f"{KUBERNETES_PROVIDER_MODULE}@{KUBERNETES_PROVIDER_PSEUDO_VERSION}"),
    Binary("kube-apiserver", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver",
           ("--version",), r"v(\d+\.\d+\.\d+)", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"),
    Binary("kube-controller-manager", KUBERNETES_VERSION, "kubernetes",
           "k8s.io/kubernetes/cmd/kube-controller-manager", ("--version",), r"v(\d+\.\d+\.\d+)",
           f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"),
    Binary("kubectl", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kubectl",
           ("version", "--client"), r"v(\d+\.\d+\.\d+)", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"),
    Binary("etcd", ETCD_VERSION, "etcd", "go.etcd.io/etcd/server/v3", ("--version",),
           r"etcd Version: (\d+\.\d+\.\d+)", f"go.etcd.io/etcd/server/v3@v{ETCD_VERSION}"),
    # the local cluster's node (``vcm local up --nodes 1``): built in the same ``go build`` as the above
    Binary("kubelet", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kubelet", ("--version",),
           r"v(\d+\.\d+\.\d+)", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"),
    Binary("kube-scheduler", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler",
           ("--version",), r"v(\d+\.\d+\.\d+)", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"),
    Binary("kube-proxy", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kube-proxy", ("--version",),
           r"v(\d+\.\d+\.\d+)", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"),
    Binary("coredns", COREDNS_VERSION, "coredns", "./cmd/coredns", ("-version",), r"CoreDNS-(\d+\.\d+\.\d+)",
           f"github.com/coredns/coredns@v{COREDNS_VERSION} (our plugin list)"),
    Binary("kube-router", KUBE_ROUTER_VERSION, "kube-router",
           "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",
           ("--version",), r"v(\d+\.\d+\.\d+)", f"github.com/cloudnativelabs/kube-router/v2@v{KUBE_ROUTER_VERSION}"),
)

#: The Python script the language host runs; shipped in the Pulumi Go SDK module, copied beside the host.
EXEC_SCRIPT = "pulumi-language-python-exec"

_MODULE_DIR = Path(__file__).parent / "gomod"


def cache_dir() -> Path:
    """Root of everything this module writes (``VCM_CACHE_DIR``, default ``~/.cache/vcluster-mgr``)."""
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


def _read_manifest() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_manifest_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(data: dict[str, dict[str, object]]) -> None:
    path = _manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


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


def probe_version(binary: Binary, path: Path) -> str | None:
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


def status(*, fresh: bool = False) -> list[Status]:
    """The state of every binary: the cached one if it runs at the right version.

    The version is asked of the binary; the answer is remembered in the manifest with the file's size,
    modification time and inode, and reused while those are unchanged, unless ``fresh``.
    """
    manifest = _read_manifest()
    result = []
    changed = False
    for b in BINARIES:
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
                entry["probed"] = {"stat": key, "version": found}
                changed = True
        source = entry.get("source") if found and entry else None
        if source == "go-build" and b.upstream:
            source = f"go-build {b.upstream}"
        result.append(Status(b.name, b.version, str(found) if found else None, str(path) if found else None,
                             str(source) if source else None))
    if changed:
        try:
            _write_manifest(manifest)
        except OSError:
            pass  # a read-only cache still works, it only probes every time
    return result


def check_sdk_versions() -> None:
    """Refuse to run the engine when the Python SDKs and the pinned binaries disagree."""
    wanted = {"pulumi": PULUMI_VERSION, "pulumi-kubernetes": KUBERNETES_PROVIDER_VERSION}
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


# ----------------------------------------------------------------------------------------------------
# sources
# ----------------------------------------------------------------------------------------------------


def _from_path(b: Binary) -> Path | None:
    """A binary of the right version on PATH (but not our own bin dir)."""
    ours = bin_dir().resolve()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).resolve() == ours:
            continue
        candidate = Path(entry) / b.name
        if candidate.is_file() and os.access(candidate, os.X_OK) and probe_version(b, candidate) == b.version:
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
    }


def download_urls(b: Binary) -> tuple[str, str | None]:
    """(URL, member path inside the archive or ``None`` for a bare binary) of the official release."""
    base = _download_base()
    if b.name in ("pulumi", "pulumi-language-python"):
        return f"{base['pulumi']}/sdk/pulumi-v{PULUMI_VERSION}-linux-x64.tar.gz", f"pulumi/{b.name}"
    if b.name == "pulumi-resource-kubernetes":
        return (f"{base['pulumi']}/plugins/pulumi-resource-kubernetes-v{b.version}-linux-amd64.tar.gz",
                b.name)
    if b.module == "kubernetes":
        return f"{base['kubernetes']}/v{b.version}/bin/linux/amd64/{b.name}", None
    if b.module == "coredns":
        return f"{base['coredns']}/v{b.version}/coredns_{b.version}_linux_amd64.tgz", "coredns"
    if b.module == "kube-router":
        return f"{base['kube-router']}/v{b.version}/kube-router_{b.version}_linux_amd64.tar.gz", "kube-router"
    return (f"{base['etcd']}/v{b.version}/etcd-v{b.version}-linux-amd64.tar.gz",
            f"etcd-v{b.version}-linux-amd64/etcd")


def _download(b: Binary, dest: Path, progress: Progress) -> None:
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
                script = tar.extractfile(f"pulumi/{EXEC_SCRIPT}")
                if script is not None:
                    _install_file(script.read(), dest.parent / EXEC_SCRIPT)
    dest.chmod(dest.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _install_file(data: bytes, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(dest)


def go_env() -> dict[str, str]:
    """Environment of every ``go`` command: caches in the cache dir, no cgo, no toolchain switching."""
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(cache_dir() / "go" / "mod"),
        GOCACHE=str(cache_dir() / "go" / "build"),
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod",
        GOWORK="off",
    )
    env.setdefault("GOPROXY", "https://proxy.golang.org")
    return env


def find_go() -> Path:
    """The ``go`` command, at a version the wrapper modules accept."""
    go = shutil.which("go")
    if go is None:
        raise errors.ToolchainError(
            "Go is needed to build the engine and the local host cluster from Go modules, and `go` is not "
            f"on PATH. Install Go {GO_MIN[0]}.{GO_MIN[1]} or newer (Debian/Ubuntu: a golang package of that "
            "version, or the archive from go.dev) and put its bin directory on PATH, or rerun with --download "
            "on a machine that reaches the official release sites.")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    if not match or (int(match.group(1)), int(match.group(2))) < GO_MIN:
        raise errors.ToolchainError(
            f"{go} is {out.strip() or 'unknown'}; Go {GO_MIN[0]}.{GO_MIN[1]} or newer is needed")
    return Path(go)


def _ldflags(module: str) -> str:
    if module == "pulumi":
        return f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI_VERSION}"
    if module == "kubernetes":
        major, minor, _ = KUBERNETES_VERSION.split(".")
        pkg = "k8s.io/component-base/version"
        return " ".join([
            "-s -w",
            f"-X {pkg}.gitVersion=v{KUBERNETES_VERSION}", f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            f"-X k8s.io/client-go/pkg/version.gitVersion=v{KUBERNETES_VERSION}",
        ])
    if module == "etcd":
        return f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v{ETCD_VERSION}"
    if module == "pulumi-kubernetes":
        return f"-s -w -X {KUBERNETES_PROVIDER_MODULE}/pkg/version.Version={KUBERNETES_PROVIDER_VERSION}"
    if module == "kube-router":
        return f"-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v{KUBE_ROUTER_VERSION}"
    # the engine module (our language host) states its version as a constant (a test checks it)
    return "-s -w"


def module_digest(module: str) -> str:
    """Content hash of a wrapper module: a go-built binary is rebuilt when its sources change."""
    src = _MODULE_DIR / module
    digest = hashlib.sha256()
    files = sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        digest.update(str(p.relative_to(src)).encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()[:12]


def _module_copy(module: str) -> Path:
    """Copy a wrapper module into the cache (the package dir may be read-only) keyed by its content."""
    src = _MODULE_DIR / module
    dest = cache_dir() / "src" / f"{module}-{module_digest(module)}"
    if not dest.exists():
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        tmp.replace(dest)
    return dest


def _go_build(module: str, targets: list[Binary], progress: Progress) -> None:
    """Build every binary of one wrapper module in one ``go build`` (shared packages compile once)."""
    go = find_go()
    workdir = _module_copy(module)
    outdir = cache_dir() / "build-out" / module
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    names = ", ".join(t.name for t in targets)
    progress(f"go build {names} (module {module}; a cold build downloads modules and compiles for minutes)")
    if module == "pulumi-kubernetes":
        _generate_provider_embeds(go, workdir)
    cmd = [str(go), "build", "-v", "-trimpath", "-ldflags", _ldflags(module), "-o", str(outdir) + os.sep,
           *[t.package for t in targets]]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, env=go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    compiled = 0
    last = 0.0
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-40:]
        if line and not line.startswith(("go: ", "#", "\t")) and " " not in line:
            compiled += 1
        now = time.monotonic()
        if now - last > 5:
            last = now
            progress(f"  {names}: {compiled} packages compiled, {now - started:.0f}s")
    if proc.wait() != 0:
        raise errors.ToolchainError(f"go build of {names} failed:\n" + "\n".join(tail))
    for t in targets:
        built = outdir / _go_binary_name(t.package)
        if not built.exists():
            raise errors.ToolchainError(f"go build of {t.name} produced no {built}")
        shutil.copy2(built, bin_dir() / (t.name + ".tmp"))
        (bin_dir() / (t.name + ".tmp")).replace(bin_dir() / t.name)
    if module == "engine":
        _install_exec_script()
    progress(f"  {names}: built in {time.monotonic() - started:.0f}s")


def _generate_provider_embeds(go: Path, workdir: Path) -> None:
    """Write the two files upstream's provider main embeds, as its ``generate.go`` makes them: the
    module's ``schema.json`` with ``version`` set, and ``terraform-mapping.json``, both compacted."""
    proc = subprocess.run([str(go), "mod", "download", "-json",
                           f"{KUBERNETES_PROVIDER_MODULE}@{KUBERNETES_PROVIDER_PSEUDO_VERSION}"],
                          cwd=workdir, env=go_env(), capture_output=True, text=True, check=False)
    try:
        src = Path(json.loads(proc.stdout)["Dir"]) / "cmd" / "pulumi-resource-kubernetes"
        schema = json.loads((src / "schema.json").read_text())
        mapping = json.loads((src / "terraform-mapping.json").read_text())
    except (ValueError, KeyError, OSError) as exc:
        raise errors.ToolchainError(
            f"cannot read the schema of {KUBERNETES_PROVIDER_MODULE}@{KUBERNETES_PROVIDER_PSEUDO_VERSION} "
            f"from the module cache: {proc.stderr.strip() or exc}") from exc
    schema["version"] = KUBERNETES_PROVIDER_VERSION
    dest = workdir / "cmd" / "pulumi-resource-kubernetes"
    (dest / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    (dest / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


def _go_binary_name(package: str) -> str:
    """The file ``go build -o DIR/`` writes: the last path element, skipping a ``/vN`` major suffix."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


def _install_exec_script() -> None:
    """Place the SDK's ``pulumi-language-python-exec`` beside the language host, which runs it."""
    mod = cache_dir() / "go" / "mod" / "github.com" / "pulumi" / "pulumi" / "sdk" / f"v3@v{PULUMI_VERSION}"
    script = mod / "python" / "cmd" / EXEC_SCRIPT
    if not script.exists():
        subprocess.run([str(find_go()), "mod", "download", f"github.com/pulumi/pulumi/sdk/v3@v{PULUMI_VERSION}"],
                       env=go_env(), cwd=cache_dir(), check=True, capture_output=True)
    _install_file(script.read_bytes(), bin_dir() / EXEC_SCRIPT)


def ensure(*, download: bool | None = None, progress: Progress = _quiet, force: bool = False) -> list[Status]:
    """Make every binary available in ``bin_dir()`` at its pinned version; returns the final status.

    ``download`` defaults to ``VCM_TOOLCHAIN_DOWNLOAD=1``; it is never on by itself, so nothing here
    touches the network unless asked (the Go module proxy is used by ``go`` for builds).
    """
    if download is None:
        download = os.environ.get("VCM_TOOLCHAIN_DOWNLOAD") == "1"
    bin_dir().mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest()
    current = {s.name: s for s in status()}
    to_build: dict[str, list[Binary]] = {}
    for b in BINARIES:
        entry = manifest.get(b.name, {})
        stale = entry.get("source") == "go-build" and entry.get("module_digest") != module_digest(b.module)
        if current[b.name].ok and not force and not stale:
            continue
        started = time.monotonic()
        on_path = None if force else _from_path(b)
        if on_path is not None:
            shutil.copy2(on_path, bin_dir() / b.name)
            if b.name == "pulumi-language-python" and (on_path.parent / EXEC_SCRIPT).exists():
                shutil.copy2(on_path.parent / EXEC_SCRIPT, bin_dir() / EXEC_SCRIPT)
            manifest[b.name] = {"version": b.version, "source": f"path:{on_path}"}
            progress(f"{b.name}: using {on_path}")
            continue
        if download:
            _download(b, bin_dir() / b.name, progress)
            manifest[b.name] = {"version": b.version, "source": "download:" + download_urls(b)[0],
                                "seconds": round(time.monotonic() - started, 1)}
            continue
        to_build.setdefault(b.module, []).append(b)
    for module, targets in to_build.items():
        started = time.monotonic()
        _go_build(module, targets, progress)
        for t in targets:
            manifest[t.name] = {"version": t.version, "source": "go-build", "module_digest": module_digest(module),
                                "seconds": round(time.monotonic() - started, 1)}
        _write_manifest(manifest)
    _write_manifest(manifest)
    final = status()
    bad = [s for s in final if not s.ok]
    if bad:
        raise errors.ToolchainError("after ensure, still missing or wrong: " + ", ".join(
            f"{s.name} (want {s.wanted}, found {s.found or 'nothing'})" for s in bad))
    return final


def require() -> Path:
    """The bin dir, after checking every binary is there; tells the user how to get them if not."""
    bad = [s for s in status() if not s.ok]
    if bad:
        raise errors.ToolchainError(
            "the engine's binaries are missing or at the wrong version: "
            + ", ".join(s.name for s in bad) + ". Run `vcm toolchain ensure` first.")
    return bin_dir()


def kubernetes_wrapper_replaces(upstream_gomod: str, staging_version: str) -> list[str]:
    """The ``replace`` lines a wrapper module needs for k8s.io/kubernetes.

    The upstream go.mod points each staging module (k8s.io/api, k8s.io/client-go, ...) at
    ``./staging/src/...``, a path that does not exist outside the kubernetes repository; the wrapper
    restates each as the published ``v0.<minor>.<patch>`` of that module.
    """
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", upstream_gomod, flags=re.M)
    return [f"{n} => {n} {staging_version}" for n in sorted(set(names))]
