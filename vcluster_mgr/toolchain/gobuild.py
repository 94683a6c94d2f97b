"""Building binaries with ``go build`` from the wrapper modules shipped in ``vcluster_mgr/gomod/``.

Each wrapper module (a ``go.mod`` and ``go.sum`` requiring the upstream modules, restating their ``replace``
lines with published versions) builds all of its binaries in one ``go build``, with the Go module and build
caches in the cache directory, so a second build takes seconds. A go-built binary is rebuilt when its
wrapper module's content changes (``module_digest``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from vcluster_mgr import errors
from vcluster_mgr.toolchain import pins, probing

#: The wrapper modules: package data of ``vcluster_mgr``, beside this package rather than inside it.
_MODULE_DIR = Path(__file__).parent.parent / "gomod"


def install_file(data: bytes, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(dest)


def go_env() -> dict[str, str]:
    """Environment of every ``go`` command: caches in the cache dir, no cgo, no toolchain switching."""
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(probing.cache_dir() / "go" / "mod"),
        GOCACHE=str(probing.cache_dir() / "go" / "build"),
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod",
        GOWORK="off",
    )
    env.setdefault("GOPROXY", "https://proxy.golang.org")
    return env


#: Modules built with cgo: kine's SQLite is C. Linked statically (with the C library's pure-Go stand-ins for
#: user and DNS lookups, which static glibc cannot do) so the binary runs in an image that has no C library.
_CGO_MODULES = {"kine": "netgo osusergo sqlite_omit_load_extension"}


def _build_env(module: str) -> dict[str, str]:
    env = go_env()
    if module in _CGO_MODULES:
        env["CGO_ENABLED"] = "1"
        env.setdefault("CGO_CFLAGS", "-DSQLITE_USE_ALLOCA=1")
    return env


def _tags(module: str) -> list[str]:
    tags = _CGO_MODULES.get(module)
    return ["-tags", tags] if tags else []


def find_go() -> Path:
    """The ``go`` command, at a version the wrapper modules accept."""
    go = shutil.which("go")
    if go is None:
        raise errors.ToolchainError(
            "Go is needed to build the engine and the local host cluster from Go modules, and `go` is not "
            f"on PATH. Install Go {pins.GO_MIN[0]}.{pins.GO_MIN[1]} or newer (Debian/Ubuntu: a golang package of that "
            "version, or the archive from go.dev) and put its bin directory on PATH, or rerun with --download "
            "on a machine that reaches the official release sites.")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    if not match or (int(match.group(1)), int(match.group(2))) < pins.GO_MIN:
        raise errors.ToolchainError(
            f"{go} is {out.strip() or 'unknown'}; Go {pins.GO_MIN[0]}.{pins.GO_MIN[1]} or newer is needed")
    return Path(go)


def _ldflags(module: str) -> str:
    if module == "pulumi":
        return f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{pins.PULUMI_VERSION}"
    if module == "kubernetes":
        major, minor, _ = pins.KUBERNETES_VERSION.split(".")
        pkg = "k8s.io/component-base/version"
        return " ".join([
            "-s -w",
            f"-X {pkg}.gitVersion=v{pins.KUBERNETES_VERSION}", f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            f"-X k8s.io/client-go/pkg/version.gitVersion=v{pins.KUBERNETES_VERSION}",
            # our agnhost main (no other main package of the module has this variable)
            f"-X main.Version={pins.AGNHOST_VERSION}",
        ])
    if module == "etcd":
        return f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v{pins.ETCD_VERSION}"
    if module == "pulumi-kubernetes":
        return f"-s -w -X {pins.KUBERNETES_PROVIDER_MODULE}/pkg/version.Version={pins.KUBERNETES_PROVIDER_VERSION}"
    if module in pins.SYNCER_MODULES:
        # without it the syncer calls itself "dev" (and its version command says so)
        return f"-s -w -X github.com/loft-sh/vcluster/pkg/telemetry.SyncerVersion={pins.SYNCER_MODULES[module]}"
    if module == "kine":
        return (f"-s -w -X github.com/k3s-io/kine/pkg/version.Version=v{pins.KINE_VERSION} "
                "-X github.com/k3s-io/kine/pkg/version.GitCommit=release -extldflags -static")
    if module == "cyclonus":
        return (f"-s -w -X github.com/mattfenwick/cyclonus/pkg/cli.version=v{pins.CYCLONUS_VERSION} "
                f"-X main.cyclonusVersion=v{pins.CYCLONUS_VERSION}")
    if module == "kube-router":
        return f"-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v{pins.KUBE_ROUTER_VERSION}"
    if module == "local-path-provisioner":
        # upstream's release build stamps the same variable; unstamped the binary says 0.0.1
        return f"-s -w -X main.VERSION=v{pins.LOCAL_PATH_PROVISIONER_VERSION}"
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
    dest = probing.cache_dir() / "src" / f"{module}-{module_digest(module)}"
    if not dest.exists():
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        tmp.replace(dest)
    return dest


def go_build(module: str, targets: list[pins.Binary], progress: pins.Progress) -> None:
    """Build every binary of one wrapper module in one ``go build`` (shared packages compile once)."""
    go = find_go()
    workdir = _module_copy(module)
    # one output folder per process: two `ensure` runs sharing the cache (two checkouts) may build one module at once
    outdir = probing.cache_dir() / "build-out" / f"{module}.{os.getpid()}"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    names = ", ".join(t.name for t in targets)
    progress(f"go build {names} (module {module}; a cold build downloads modules and compiles for minutes)")
    if module == "pulumi-kubernetes":
        _generate_provider_embeds(go, workdir)
    cmd = [str(go), "build", "-v", "-trimpath", *_tags(module), "-ldflags", _ldflags(module),
           "-o", str(outdir) + os.sep, *[t.package for t in targets]]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, env=_build_env(module), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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
        tmp = probing.bin_dir() / f"{t.name}.tmp{os.getpid()}"
        shutil.copy2(built, tmp)
        tmp.replace(probing.bin_dir() / t.name)
    shutil.rmtree(outdir, ignore_errors=True)
    if module == "engine":
        install_exec_script()
    progress(f"  {names}: built in {time.monotonic() - started:.0f}s")


def _generate_provider_embeds(go: Path, workdir: Path) -> None:
    """Write the two files upstream's provider main embeds, as its ``generate.go`` makes them: the
    module's ``schema.json`` with ``version`` set, and ``terraform-mapping.json``, both compacted."""
    proc = subprocess.run([str(go), "mod", "download", "-json",
                           f"{pins.KUBERNETES_PROVIDER_MODULE}@{pins.KUBERNETES_PROVIDER_PSEUDO_VERSION}"],
                          cwd=workdir, env=go_env(), capture_output=True, text=True, check=False)
    try:
        src = Path(json.loads(proc.stdout)["Dir"]) / "cmd" / "pulumi-resource-kubernetes"
        schema = json.loads((src / "schema.json").read_text())
        mapping = json.loads((src / "terraform-mapping.json").read_text())
    except (ValueError, KeyError, OSError) as exc:
        raise errors.ToolchainError(
            f"cannot read the schema of {pins.KUBERNETES_PROVIDER_MODULE}@{pins.KUBERNETES_PROVIDER_PSEUDO_VERSION} "
            f"from the module cache: {proc.stderr.strip() or exc}") from exc
    schema["version"] = pins.KUBERNETES_PROVIDER_VERSION
    dest = workdir / "cmd" / "pulumi-resource-kubernetes"
    (dest / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    (dest / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


def _go_binary_name(package: str) -> str:
    """The file ``go build -o DIR/`` writes: the last path element, skipping a ``/vN`` major suffix."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


def install_exec_script() -> None:
    """Place the SDK's ``pulumi-language-python-exec`` beside the language host, which runs it."""
    mod = probing.cache_dir() / "go" / "mod" / "github.com" / "pulumi" / "pulumi" / "sdk" / f"v3@v{pins.PULUMI_VERSION}"
    script = mod / "python" / "cmd" / pins.EXEC_SCRIPT
    if not script.exists():
        subprocess.run([str(find_go()), "mod", "download", f"github.com/pulumi/pulumi/sdk/v3@v{pins.PULUMI_VERSION}"],
                       env=go_env(), cwd=probing.cache_dir(), check=True, capture_output=True)
    install_file(script.read_bytes(), probing.bin_dir() / pins.EXEC_SCRIPT)


def kubernetes_wrapper_replaces(upstream_gomod: str, staging_version: str) -> list[str]:
    """The ``replace`` lines a wrapper module needs for k8s.io/kubernetes.

    The upstream go.mod points each staging module (k8s.io/api, k8s.io/client-go, ...) at
    ``./staging/src/...``, a path that does not exist outside the kubernetes repository; the wrapper
    restates each as the published ``v0.<minor>.<patch>`` of that module.
    """
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", upstream_gomod, flags=re.M)
    return [f"{n} => {n} {staging_version}" for n in sorted(set(names))]
