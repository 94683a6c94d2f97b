"""The pinned versions of every binary the engine and the local host cluster need, and the table of them.

This is the one place a version changes: ``probing`` compares what a binary reports against these pins, and
``sources`` builds or fetches exactly these versions. Plain data, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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
#: vcluster release: the syncer (``cmd/vcluster``) that runs every tenant's virtual control plane, the version of
#: the chart it ships (``chart/`` in the same module) and of the image ``loft-sh/vcluster-oss`` written from it.
#: The module proxy refuses the module's version list but serves this exact version.
VCLUSTER_VERSION = "0.36.1"
#: kine release: the etcd API over SQLite that backs a virtual control plane's default store (the chart's
#: ``backingStore.database.embedded``). The syncer runs it from the distro image beside kube-apiserver. Built
#: with cgo (SQLite is C), statically linked so it runs in an image without a C library.
KINE_VERSION = "0.14.16"
#: rancher's local-path-provisioner: the node cluster's dynamic storage provisioner (hostPath volumes under the
#: cluster's own folder), the default StorageClass ``local-path``. Its ``main`` is at the module root.
LOCAL_PATH_PROVISIONER_VERSION = "0.0.30"

#: SeaweedFS, an S3-compatible object store (Apache-2.0), built only on demand (``vcm toolchain ensure
#: --object-store``; ``make test`` does): the tests of a state backend shared through Pulumi's ``s3://`` URL run
#: it on loopback. Upstream has no tags the module proxy serves; this is the version its binary reports.
SEAWEEDFS_VERSION = "4.53"
SEAWEEDFS_PSEUDO_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"

#: cyclonus, the NetworkPolicy conformance tool (Apache-2.0): its ``generate`` mode runs generated policy cases
#: against the local node, and its policy engine (``pkg/matcher``) computes what our rendered policies allow.
CYCLONUS_VERSION = "0.5.6"
#: upstream agnhost's own version (``test/images/agnhost/VERSION``) at ``KUBERNETES_VERSION``: our agnhost main
#: (``gomod/kubernetes/cmd/agnhost``) imports upstream's ``connect``, ``porter`` and ``serve-hostname`` from there.
AGNHOST_VERSION = "2.66.1"
#: the tag cyclonus 0.5.6 asks for (``<registry>/e2e-test-images/agnhost:2.43``, pull policy IfNotPresent): the
#: node's image store answers that name with our agnhost, whose three subcommands behave as 2.43's did.
AGNHOST_IMAGE_TAG = "2.43"

#: Minimum Go for the wrapper modules (the ``go`` lines of their go.mod files).
GO_MIN = (1, 26)

#: How ``ensure`` and the builds report what they are doing: one line of text at a time.
Progress = Callable[[str], None]


def quiet(_: str) -> None:
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
    # a tenant's virtual control plane on the local node: the syncer's image and, beside our kube-apiserver and
    # kube-controller-manager, the distro image's kine
    Binary("vcluster", VCLUSTER_VERSION, "vcluster", "github.com/loft-sh/vcluster/cmd/vcluster", ("version",),
           r"(?m)^(\d+\.\d+\.\d+)$", f"github.com/loft-sh/vcluster@v{VCLUSTER_VERSION}"),
    Binary("kine", KINE_VERSION, "kine", "github.com/k3s-io/kine", ("--version",), r"version v(\d+\.\d+\.\d+)",
           f"github.com/k3s-io/kine@v{KINE_VERSION}"),
    Binary("local-path-provisioner", LOCAL_PATH_PROVISIONER_VERSION, "local-path-provisioner",
           "github.com/rancher/local-path-provisioner", ("--version",), r"version v(\d+\.\d+\.\d+)",
           f"github.com/rancher/local-path-provisioner@v{LOCAL_PATH_PROVISIONER_VERSION}"),
)

#: Built by ``ensure`` and listed by ``status`` like the rest, but not needed to run the engine or the local
#: cluster (``require`` does not ask for them): only a virtual control plane on the local node runs them, and
#: the node writes their images when they are there.
VIRTUAL_CONTROL_PLANE = ("vcluster", "kine")

#: The object store of the shared-backend tests: not needed to run vcm, so not in ``BINARIES`` (``ensure`` and
#: ``status`` take it when asked, ``extras=ON_DEMAND``).
OBJECT_STORE = Binary("weed", SEAWEEDFS_VERSION, "seaweedfs", "github.com/seaweedfs/seaweedfs/weed", ("version",),
                      r"\b(\d+\.\d\d)\b", f"github.com/seaweedfs/seaweedfs@{SEAWEEDFS_PSEUDO_VERSION}")
#: The NetworkPolicy conformance run (``vcm toolchain ensure --conformance``; ``make test`` does): cyclonus, our
#: command around its policy engine, and agnhost, the binary of the image cyclonus's pods run (the local node
#: writes that image when the binary is there).
CYCLONUS = Binary("cyclonus", CYCLONUS_VERSION, "cyclonus", "github.com/mattfenwick/cyclonus/cmd/cyclonus",
                  ("version",), r'"Version":\s*"v(\d+\.\d+\.\d+)"',
                  f"github.com/mattfenwick/cyclonus@v{CYCLONUS_VERSION}")
NETPOL_MATRIX = Binary("vcm-netpol-matrix", CYCLONUS_VERSION, "cyclonus", "./cmd/vcm-netpol-matrix", ("--version",),
                       r"cyclonus v(\d+\.\d+\.\d+)",
                       f"vcluster_mgr/gomod/cyclonus (ours, on github.com/mattfenwick/cyclonus@v{CYCLONUS_VERSION})")
AGNHOST = Binary("agnhost", AGNHOST_VERSION, "kubernetes", "./cmd/agnhost", ("--version",),
                 r"version (\d+\.\d+\.\d+)",
                 f"vcluster_mgr/gomod/kubernetes (ours, on k8s.io/kubernetes@v{KUBERNETES_VERSION} "
                 "test/images/agnhost)")
CONFORMANCE: tuple[Binary, ...] = (CYCLONUS, NETPOL_MATRIX, AGNHOST)

#: The vcluster release a control plane is upgraded FROM in the upgrade test (``vcm toolchain ensure --upgrade-from``;
#: ``make test`` does): a second syncer, built from a wrapper module of its own (``gomod/vcluster-0.36.0``, whose
#: requirements are 0.36.1's: its go.mod is the same, so the build reuses 0.36.1's build cache for everything but
#: vcluster's own packages), and its chart from the same module (``charts.chart_dir``). The local node writes its image
#: ``loft-sh/vcluster-oss:0.36.0`` when the binary is there.
VCLUSTER_UPGRADE_FROM_VERSION = "0.36.0"
VCLUSTER_UPGRADE_FROM = Binary(f"vcluster-{VCLUSTER_UPGRADE_FROM_VERSION}", VCLUSTER_UPGRADE_FROM_VERSION,
                               f"vcluster-{VCLUSTER_UPGRADE_FROM_VERSION}", "github.com/loft-sh/vcluster/cmd/vcluster",
                               ("version",), r"(?m)^(\d+\.\d+\.\d+)$",
                               f"github.com/loft-sh/vcluster@v{VCLUSTER_UPGRADE_FROM_VERSION}")
UPGRADE: tuple[Binary, ...] = (VCLUSTER_UPGRADE_FROM,)
#: every syncer the toolchain builds: wrapper module -> the version it stamps into the binary
SYNCER_MODULES = {"vcluster": VCLUSTER_VERSION, VCLUSTER_UPGRADE_FROM.module: VCLUSTER_UPGRADE_FROM_VERSION}
ON_DEMAND: tuple[Binary, ...] = (OBJECT_STORE, *CONFORMANCE, *UPGRADE)

#: The Python script the language host runs; shipped in the Pulumi Go SDK module, copied beside the host.
EXEC_SCRIPT = "pulumi-language-python-exec"
