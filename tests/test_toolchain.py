"""Toolchain: version pins agree, the Go wrapper modules are what upstream needs, every source works.

The download path is exercised against a local HTTP server on 127.0.0.1 that serves archives laid out
like the official releases (with stand-in executables), so the real code runs without leaving loopback.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import io
import json
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, toolchain
from vcluster_mgr.toolchain import gobuild, probing


def test_pins_match_installed_sdks() -> None:
    assert importlib.metadata.version("pulumi") == toolchain.PULUMI_VERSION
    assert importlib.metadata.version("pulumi-kubernetes") == toolchain.KUBERNETES_PROVIDER_VERSION
    toolchain.check_sdk_versions()


def test_wrapper_modules_pin_the_same_versions() -> None:
    gomod = Path(toolchain.__file__).parent.parent / "gomod"
    assert f"github.com/pulumi/pulumi/pkg/v3 v{toolchain.PULUMI_VERSION}" in (gomod / "pulumi" / "go.mod").read_text()
    assert f"k8s.io/kubernetes v{toolchain.KUBERNETES_VERSION}" in (gomod / "kubernetes" / "go.mod").read_text()
    assert f"go.etcd.io/etcd/server/v3 v{toolchain.ETCD_VERSION}" in (gomod / "etcd" / "go.mod").read_text()
    assert f"github.com/loft-sh/vcluster v{toolchain.VCLUSTER_VERSION}" in (gomod / "vcluster" / "go.mod").read_text()
    assert f"github.com/k3s-io/kine v{toolchain.KINE_VERSION}" in (gomod / "kine" / "go.mod").read_text()
    assert (f"github.com/rancher/local-path-provisioner v{toolchain.LOCAL_PATH_PROVISIONER_VERSION}"
            in (gomod / "local-path-provisioner" / "go.mod").read_text())
    provider = (gomod / "pulumi-kubernetes" / "go.mod").read_text()
    assert f"{toolchain.KUBERNETES_PROVIDER_MODULE} {toolchain.KUBERNETES_PROVIDER_PSEUDO_VERSION}" in provider
    # upstream replaces its SDK with ../sdk; the wrapper names the published SDK of the same release
    assert (f"github.com/pulumi/pulumi-kubernetes/sdk/v4 => github.com/pulumi/pulumi-kubernetes/sdk/v4 "
            f"v{toolchain.KUBERNETES_PROVIDER_VERSION}") in provider


def test_object_store_is_built_on_demand_only() -> None:
    """SeaweedFS (the shared-backend tests' S3 server) has its wrapper module at the pinned pseudo-version, is
    not one of the binaries vcm needs, and appears in ``status`` only when asked for."""
    gomod = Path(toolchain.__file__).parent.parent / "gomod"
    assert (f"github.com/seaweedfs/seaweedfs {toolchain.SEAWEEDFS_PSEUDO_VERSION}"
            in (gomod / "seaweedfs" / "go.mod").read_text())
    assert toolchain.OBJECT_STORE not in toolchain.BINARIES
    assert toolchain.OBJECT_STORE.name not in {s.name for s in toolchain.status()}
    assert {s.name for s in toolchain.status(extras=(toolchain.OBJECT_STORE,))} == {
        *(b.name for b in toolchain.BINARIES), toolchain.OBJECT_STORE.name}


def test_conformance_kit_is_built_on_demand_at_upstream_versions() -> None:
    """cyclonus and agnhost are not binaries vcm needs; the cyclonus wrapper requires the pinned release, and the
    agnhost pin is upstream's own agnhost version at the pinned Kubernetes release (its VERSION file)."""
    gomod = Path(toolchain.__file__).parent.parent / "gomod"
    assert not set(toolchain.CONFORMANCE) & set(toolchain.BINARIES)
    assert set(toolchain.CONFORMANCE) <= set(toolchain.ON_DEMAND)
    cyclonus = (gomod / "cyclonus" / "go.mod").read_text()
    assert f"github.com/mattfenwick/cyclonus v{toolchain.CYCLONUS_VERSION}" in cyclonus
    assert (gomod / "kubernetes" / "cmd" / "agnhost" / "main.go").exists()
    go = toolchain.find_go()
    proc = subprocess.run([str(go), "mod", "download", "-json", f"k8s.io/kubernetes@v{toolchain.KUBERNETES_VERSION}"],
                          capture_output=True, text=True, env=toolchain.go_env(), cwd=toolchain.cache_dir(),
                          check=False)
    upstream = Path(json.loads(proc.stdout)["Dir"]) / "test" / "images" / "agnhost" / "VERSION"
    assert upstream.read_text().strip() == toolchain.AGNHOST_VERSION


def test_no_resource_provider_of_our_own() -> None:
    """Every resource provider the engine loads is upstream's: no Go code of ours registers one."""
    gomod = Path(toolchain.__file__).parent.parent / "gomod"
    # the gRPC registration call a resource provider makes (spelt in two parts so that this test is not
    # itself a hit of `git grep` for it)
    needle = "RegisterResourceProvider" + "Server"
    ours = [p for p in gomod.rglob("*.go") if needle in p.read_text()]
    assert ours == []


def test_kubernetes_replaces_match_upstream_gomod() -> None:
    """The committed wrapper restates exactly the staging replaces of the pinned k8s.io/kubernetes."""
    go = toolchain.find_go()
    proc = subprocess.run([str(go), "mod", "download", "-json", f"k8s.io/kubernetes@v{toolchain.KUBERNETES_VERSION}"],
                          capture_output=True, text=True, env=toolchain.go_env(), cwd=toolchain.cache_dir(),
                          check=False)
    upstream = Path(json.loads(proc.stdout)["GoMod"]).read_text()
    staging = "v0." + toolchain.KUBERNETES_VERSION.split(".", 1)[1]
    wanted = toolchain.kubernetes_wrapper_replaces(upstream, staging)
    assert len(wanted) > 25
    committed = (Path(toolchain.__file__).parent.parent / "gomod" / "kubernetes" / "go.mod").read_text()
    have = sorted(" ".join(m.split()) for m in re.findall(r"^\s*(k8s\.io/\S+ => k8s\.io/\S+ v\S+)", committed, re.M))
    assert have == wanted


def test_missing_go_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(errors.ToolchainError, match="Go is needed.*put its bin directory on PATH"):
        toolchain.find_go()


def _script(text: str) -> bytes:
    return f"#!/bin/sh\necho '{text}'\n".encode()


def _plugin(version: str) -> bytes:
    """A stand-in Pulumi plugin: serves GetPluginInfo on a loopback port it prints first, as plugins do."""
    return f"""#!{sys.executable}
from concurrent import futures
import grpc
from pulumi.runtime.proto import plugin_pb2, provider_pb2_grpc
class Provider(provider_pb2_grpc.ResourceProviderServicer):
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version="{version}")
server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
provider_pb2_grpc.add_ResourceProviderServicer_to_server(Provider(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination(60)
""".encode()


def _standin(b: toolchain.Binary, version: str | None = None) -> bytes:
    """What a release would hold for ``b``: answers its version command (or GetPluginInfo) with ``version``."""
    v = version or b.version
    if not b.version_args:
        return _plugin(v)
    return _script({"pulumi": f"v{v}", "etcd": f"etcd Version: {v}", "coredns": f"CoreDNS-{v}", "vcluster": v,
                    "kine": f"kine version v{v} (release)",
                    "local-path-provisioner": f"local-path-provisioner version v{v}"}.get(b.name, f"v{v}"))


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture()
def release_server() -> Iterator[tuple[str, list[str]]]:
    """Serves release-shaped archives on 127.0.0.1; records every path requested."""
    pv, kv, ev, kp = (toolchain.PULUMI_VERSION, toolchain.KUBERNETES_VERSION, toolchain.ETCD_VERSION,
                      toolchain.KUBERNETES_PROVIDER_VERSION)
    files = {
        f"/sdk/pulumi-v{pv}-linux-x64.tar.gz": _tar({
            "pulumi/pulumi": _script(f"v{pv}"), "pulumi/pulumi-language-python": _script(pv),
            f"pulumi/{toolchain.EXEC_SCRIPT}": b"#!/usr/bin/env python\n"}),
        f"/plugins/pulumi-resource-kubernetes-v{kp}-linux-amd64.tar.gz": _tar(
            {"pulumi-resource-kubernetes": _plugin(kp)}),
        f"/v{ev}/etcd-v{ev}-linux-amd64.tar.gz": _tar(
            {f"etcd-v{ev}-linux-amd64/etcd": _script(f"etcd Version: {ev}")}),
    }
    for name in ("kube-apiserver", "kube-controller-manager", "kubectl", "kubelet", "kube-scheduler", "kube-proxy"):
        files[f"/v{kv}/bin/linux/amd64/{name}"] = _script(f"Kubernetes v{kv}")
    cv, rv = toolchain.COREDNS_VERSION, toolchain.KUBE_ROUTER_VERSION
    files[f"/v{cv}/coredns_{cv}_linux_amd64.tgz"] = _tar({"coredns": _script(f"CoreDNS-{cv}")})
    files[f"/v{rv}/kube-router_{rv}_linux_amd64.tar.gz"] = _tar({"kube-router": _script(f"version v{rv}")})
    files[f"/v{toolchain.KINE_VERSION}/kine-amd64"] = _script(f"kine version v{toolchain.KINE_VERSION} (release)")
    lv = toolchain.LOCAL_PATH_PROVISIONER_VERSION
    files[f"/v{lv}/local-path-provisioner-amd64"] = _script(f"local-path-provisioner version v{lv}")
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()


def test_download_source_installs_every_binary(release_server: tuple[str, list[str]], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = release_server
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    # the syncer has no release of its own outside its image: a download never fetches it (a stand-in on PATH
    # here, where it would otherwise be built)
    syncer = next(b for b in toolchain.BINARIES if b.name == "vcluster")
    (tmp_path / "onpath").mkdir()
    (tmp_path / "onpath" / "vcluster").write_bytes(_standin(syncer))
    (tmp_path / "onpath" / "vcluster").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'onpath'}:/usr/bin:/bin")
    for var in ("VCM_PULUMI_DOWNLOAD_URL", "VCM_KUBERNETES_DOWNLOAD_URL", "VCM_ETCD_DOWNLOAD_URL",
                "VCM_COREDNS_DOWNLOAD_URL", "VCM_KUBE_ROUTER_DOWNLOAD_URL", "VCM_LOCAL_PATH_PROVISIONER_DOWNLOAD_URL",
                "VCM_KINE_DOWNLOAD_URL"):
        monkeypatch.setenv(var, url)
    final = toolchain.ensure(download=True)
    assert all(s.ok for s in final)
    manifest = json.loads((toolchain.bin_dir() / "manifest.json").read_text())
    assert {k: v["source"].split(":", 1)[0] for k, v in manifest.items() if k != "vcluster"} == {
        b.name: "download" for b in toolchain.BINARIES if b.name != "vcluster"}
    assert manifest["vcluster"]["source"] == f"path:{tmp_path / 'onpath' / 'vcluster'}"
    assert (toolchain.bin_dir() / toolchain.EXEC_SCRIPT).exists()
    assert len(seen) == len(toolchain.BINARIES) - 1
    # a second run finds everything in place and fetches nothing
    toolchain.ensure(download=True)
    assert len(seen) == len(toolchain.BINARIES) - 1


def _standins_on_path(tmp_path: Path) -> Path:
    """A folder holding a stand-in of every toolchain binary, as a user's PATH might."""
    onpath = tmp_path / "onpath"
    onpath.mkdir()
    for b in toolchain.BINARIES:
        (onpath / b.name).write_bytes(_standin(b))
        (onpath / b.name).chmod(0o755)
    return onpath


def test_path_source_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    onpath = _standins_on_path(tmp_path)
    monkeypatch.setenv("PATH", f"{onpath}:/usr/bin:/bin")
    final = toolchain.ensure()
    assert all(s.ok and s.source == f"path:{onpath / s.name}" for s in final)


#: one ``vcm toolchain ensure`` after another in a process of its own, each recording a binary of its own
_ENSURE_LOOP = """
import sys, time
from pathlib import Path
from vcluster_mgr import toolchain
who, rounds, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
for i in range(rounds):
    extra = toolchain.Binary(f"tool-{who}-{i}", "1.0.0", "none", "none", ("--version",), r"v(\\d+\\.\\d+\\.\\d+)")
    toolchain.ensure(extras=(extra,))
"""


def test_two_ensures_at_once_keep_each_others_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ``ensure`` runs in parallel processes, each installing binaries of its own from PATH, end with every
    entry of both in the manifest (each change is a locked read-modify-write, not a snapshot written back)."""
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    onpath = _standins_on_path(tmp_path)
    rounds, writers = 12, ("a", "b")
    for who in writers:
        for i in range(rounds):
            (onpath / f"tool-{who}-{i}").write_bytes(_script("v1.0.0"))
            (onpath / f"tool-{who}-{i}").chmod(0o755)
    monkeypatch.setenv("PATH", f"{onpath}:/usr/bin:/bin")
    toolchain.ensure()  # the pinned binaries first, so the two runs below only add their own
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _ENSURE_LOOP, who, str(rounds), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for who in writers]
    go.touch()
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    manifest = json.loads((toolchain.bin_dir() / "manifest.json").read_text())
    wanted = {f"tool-{who}-{i}" for who in writers for i in range(rounds)}
    assert wanted - set(manifest) == set()
    assert {manifest[name]["source"] for name in wanted} == {f"path:{onpath / name}" for name in wanted}
    assert {b.name for b in toolchain.BINARIES} <= set(manifest)
    assert not list(toolchain.bin_dir().glob("*.tmp")), "a temporary file was left behind"


def test_status_of_the_real_toolchain_lists_every_binary() -> None:
    res = CliRunner().invoke(cli.app, ["toolchain", "status", "-o", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == [b.name for b in toolchain.BINARIES]
    assert all(r["ok"] and r["found"] == r["wanted"] and r["source"] for r in rows)


def test_provider_version_is_read_from_the_binary_not_its_name(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A file called pulumi-resource-kubernetes that serves another version is not taken, and a changed
    binary is asked again (the remembered answer is tied to the file)."""
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    provider = next(b for b in toolchain.BINARIES if b.name == "pulumi-resource-kubernetes")
    assert provider.version_args == ()  # upstream has no version flag: asked over gRPC
    toolchain.bin_dir().mkdir(parents=True)
    path = toolchain.bin_dir() / provider.name
    path.write_bytes(_standin(provider, "9.9.9"))
    path.chmod(0o755)
    (toolchain.bin_dir() / "manifest.json").write_text(json.dumps({provider.name: {"source": "go-build"}}))
    row = next(s for s in toolchain.status() if s.name == provider.name)
    assert row.found == "9.9.9" and not row.ok
    path.write_bytes(_standin(provider))
    path.chmod(0o755)
    row = next(s for s in toolchain.status() if s.name == provider.name)
    assert row.ok and row.found == toolchain.KUBERNETES_PROVIDER_VERSION
    upstream = f"{toolchain.KUBERNETES_PROVIDER_MODULE}@{toolchain.KUBERNETES_PROVIDER_PSEUDO_VERSION}"
    assert row.source == f"go-build {upstream}"
    # a binary that is not a plugin at all has no version
    path.write_bytes(_script(toolchain.KUBERNETES_PROVIDER_VERSION))
    assert toolchain.plugin_version(path, timeout=5) is None


# ---------------------------------------------------------------------------------------------------
# the Go builds in lanes (a cold make test is mostly these)
# ---------------------------------------------------------------------------------------------------


def test_the_provider_starts_first_and_the_rest_keep_their_order() -> None:
    modules = ["pulumi", "engine", "pulumi-kubernetes", "kubernetes", "vcluster", "vcluster-0.36.0"]
    assert toolchain.build_order(modules) == [
        "pulumi-kubernetes", "pulumi", "engine", "kubernetes", "vcluster", "vcluster-0.36.0"]
    assert toolchain.build_order([]) == []


def _fake_builds(monkeypatch: pytest.MonkeyPatch, build: Callable[[str], None]) -> list[str]:
    """Replace ``go build`` by ``build(module)`` + a stand-in of each target in the bin dir; returns the modules
    built, in the order they finished."""
    done: list[str] = []

    def fake(module: str, targets: list[toolchain.Binary], progress: Callable[[str], None]) -> None:
        build(module)
        for t in targets:
            (toolchain.bin_dir() / t.name).write_bytes(
                _script(t.version) if t in toolchain.UPGRADE else _standin(t))  # a syncer says its bare version
            (toolchain.bin_dir() / t.name).chmod(0o755)
        done.append(module)

    monkeypatch.setattr(gobuild, "go_build", fake)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # nothing of the toolchain on PATH: everything is built
    return done


def test_two_modules_of_the_queue_build_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider and the next module of the queue (two workers) meet at a barrier: they can only pass it
    together."""
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCM_BUILD_JOBS", raising=False)
    barrier = threading.Barrier(2, timeout=20)
    done = _fake_builds(monkeypatch, lambda m: barrier.wait() if m in ("pulumi-kubernetes", "pulumi") else None)
    final = toolchain.ensure()
    assert all(s.ok for s in final)
    assert sorted(done) == sorted({b.module for b in toolchain.BINARIES})


def test_twin_one_build_at_a_time_never_meets_at_the_barrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCM_BUILD_JOBS", "1")
    barrier = threading.Barrier(2, timeout=1)
    _fake_builds(monkeypatch, lambda m: barrier.wait() if m in ("pulumi-kubernetes", "pulumi") else None)
    with pytest.raises(threading.BrokenBarrierError):
        toolchain.ensure()


def test_a_failed_build_keeps_what_the_others_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCM_BUILD_JOBS", raising=False)

    def build(module: str) -> None:
        if module == "pulumi":
            raise errors.ToolchainError("go build of pulumi failed: no space left on device")

    done = _fake_builds(monkeypatch, build)
    with pytest.raises(errors.ToolchainError, match="go build of pulumi failed"):
        toolchain.ensure()
    assert sorted(done) == sorted({b.module for b in toolchain.BINARIES} - {"pulumi"})
    assert probing.read_manifest()["pulumi-resource-kubernetes"]["source"] == "go-build"
    assert "pulumi" not in probing.read_manifest()


def _timed_builds(monkeypatch: pytest.MonkeyPatch, fail: str = "") -> dict[str, tuple[float, float]]:
    """Fake builds that take a moment each; returns module -> (start, end)."""
    spans: dict[str, tuple[float, float]] = {}

    def build(module: str) -> None:
        start = time.monotonic()
        time.sleep(0.05)
        spans[module] = (start, time.monotonic())
        if module == fail:
            raise errors.ToolchainError(f"go build of {module} failed")

    _fake_builds(monkeypatch, build)
    return spans


def test_the_older_syncer_waits_for_the_current_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two syncers share most packages: never built at once, so the older one finds them compiled."""
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCM_BUILD_JOBS", raising=False)
    spans = _timed_builds(monkeypatch)
    assert all(s.ok for s in toolchain.ensure(extras=toolchain.UPGRADE))
    older = toolchain.VCLUSTER_UPGRADE_FROM.module
    # (that two do build at once: test_two_modules_of_the_queue_build_at_once)
    assert spans[older][0] >= spans["vcluster"][1], spans


def test_the_older_syncer_is_not_built_when_the_current_one_failed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCM_BUILD_JOBS", raising=False)
    spans = _timed_builds(monkeypatch, fail="vcluster")
    with pytest.raises(errors.ToolchainError, match="go build of vcluster failed"):
        toolchain.ensure(extras=toolchain.UPGRADE)
    assert toolchain.VCLUSTER_UPGRADE_FROM.module not in spans
    assert "kine" in spans and "etcd" in spans  # the rest went on


def test_build_jobs_must_be_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCM_BUILD_JOBS", "two")
    _fake_builds(monkeypatch, lambda m: None)
    with pytest.raises(errors.ToolchainError, match="VCM_BUILD_JOBS must be a whole number"):
        toolchain.ensure()
