"""Finding or building the binaries the engine needs, at pinned versions.

The engine is the Pulumi CLI, a Python language host and a Kubernetes resource provider; the built-in
local host cluster is etcd, kube-apiserver and kube-controller-manager, with kubectl for tests and
benchmarks, and its node: kubelet, kube-scheduler, kube-proxy (the same ``go build``), CoreDNS (our plugin
list, ``gomod/coredns``), kube-router (its NetworkPolicy firewall) and local-path-provisioner (its storage);
and what a tenant's virtual control plane runs on that node: the vcluster syncer (``gomod/vcluster``) and kine
(``gomod/kine``, the SQLite store, with cgo). ``charts`` takes the vcluster Helm chart from the syncer's Go module,
for clusters that cannot reach its repository. More are built only when asked
(``pins.ON_DEMAND``, ``ensure(extras=...)``): SeaweedFS, the S3-compatible object store of the tests that
share a state backend through Pulumi's ``s3://`` URL, and the NetworkPolicy conformance kit
(``pins.CONFORMANCE``: cyclonus, our command around its policy engine, and agnhost for the image cyclonus's
pods run), and the syncer of the vcluster release the upgrade test starts from (``pins.UPGRADE``).
None of them is a Python package, and on machines that only reach package registries none of them can be
downloaded, so each has three possible sources, tried in this order:

1. ``path``: a binary of the right version already on ``PATH``;
2. ``download``: the official release archive, only when asked (``--download`` or
   ``VCM_TOOLCHAIN_DOWNLOAD=1``): nothing in this package reaches the network on its own;
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

The parts: ``pins`` (versions and the table of binaries), ``probing`` (where they live, the manifest, asking
each its version), ``gobuild`` (the wrapper modules and ``go build``), ``sources`` (PATH, download, go build
in order: ``ensure`` and ``require``). This module is their public face.
"""

from __future__ import annotations

from vcluster_mgr.toolchain.charts import chart_dir
from vcluster_mgr.toolchain.gobuild import find_go, go_env, kubernetes_wrapper_replaces, module_digest
from vcluster_mgr.toolchain.pins import (
    AGNHOST,
    AGNHOST_IMAGE_TAG,
    AGNHOST_VERSION,
    BINARIES,
    CONFORMANCE,
    COREDNS_VERSION,
    CYCLONUS,
    CYCLONUS_VERSION,
    ETCD_VERSION,
    EXEC_SCRIPT,
    GO_MIN,
    KINE_VERSION,
    KUBE_ROUTER_VERSION,
    KUBERNETES_PROVIDER_MODULE,
    KUBERNETES_PROVIDER_PSEUDO_VERSION,
    KUBERNETES_PROVIDER_VERSION,
    KUBERNETES_VERSION,
    LOCAL_PATH_PROVISIONER_VERSION,
    NETPOL_MATRIX,
    OBJECT_STORE,
    ON_DEMAND,
    PULUMI_VERSION,
    SEAWEEDFS_PSEUDO_VERSION,
    SEAWEEDFS_VERSION,
    UPGRADE,
    VCLUSTER_UPGRADE_FROM,
    VCLUSTER_UPGRADE_FROM_VERSION,
    VCLUSTER_VERSION,
    VIRTUAL_CONTROL_PLANE,
    Binary,
    Progress,
)
from vcluster_mgr.toolchain.probing import (
    Status,
    bin_dir,
    cache_dir,
    check_sdk_versions,
    plugin_version,
    probe_version,
    status,
)
from vcluster_mgr.toolchain.sources import build_order, download_urls, ensure, require

__all__ = [
    "AGNHOST", "AGNHOST_IMAGE_TAG", "AGNHOST_VERSION", "BINARIES", "CONFORMANCE", "COREDNS_VERSION", "CYCLONUS",
    "CYCLONUS_VERSION", "NETPOL_MATRIX", "ETCD_VERSION", "EXEC_SCRIPT", "GO_MIN", "KUBERNETES_PROVIDER_MODULE",
    "KUBERNETES_PROVIDER_PSEUDO_VERSION", "KUBERNETES_PROVIDER_VERSION", "KUBERNETES_VERSION", "KUBE_ROUTER_VERSION",
    "KINE_VERSION", "LOCAL_PATH_PROVISIONER_VERSION", "OBJECT_STORE", "ON_DEMAND", "PULUMI_VERSION",
    "SEAWEEDFS_PSEUDO_VERSION", "SEAWEEDFS_VERSION", "UPGRADE", "VCLUSTER_UPGRADE_FROM",
    "VCLUSTER_UPGRADE_FROM_VERSION", "VCLUSTER_VERSION", "VIRTUAL_CONTROL_PLANE",
    "Binary", "Progress", "Status", "bin_dir", "build_order", "cache_dir", "chart_dir", "check_sdk_versions",
    "download_urls", "ensure", "find_go", "go_env", "kubernetes_wrapper_replaces", "module_digest", "plugin_version",
    "probe_version", "require", "status",
]
