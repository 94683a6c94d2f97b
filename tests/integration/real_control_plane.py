"""A tenant with the REAL virtual cluster on the node cluster: what the ``real_control_plane`` fixture (conftest)
gives a test module, and the helpers to drive it as a user does (``vcm`` and ``kubectl`` in subprocesses)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from vcluster_mgr import localcluster, render, toolchain
from vcluster_mgr.localnode import images
from vcluster_mgr.localnode import node as localnode


@dataclasses.dataclass
class RealControlPlane:
    """A tenant with the REAL virtual cluster (vcluster 0.36.1) on the session's node cluster, as a user has it.

    ``vcm apply`` installs the chart from the local directory the toolchain takes from vcluster's Go module (the
    air-gapped route, ``vcm toolchain chart``), its images from the node's loopback registry
    (``localnode.images.chart_values``): the syncer the toolchain built, our kube-apiserver, kube-controller-manager
    and kine (SQLite) as the virtual Kubernetes, persistence on the node's default StorageClass. Strict isolation,
    restricted Pod Security, the node's ``pool: tenants`` placement, limits of 1 CPU and 1Gi per container.
    Every ``vcm`` runs in a subprocess with this tenant's own state dir; ``kubectl`` inside goes through the
    kubeconfig ``vcm kubeconfig`` wrote (``kubeconfig``).
    """

    cluster: localcluster.Cluster
    folder: Path
    name: str = "vteam"
    #: what ``vcm apply -o json`` said of the tenant, and how long it took (seconds, wall)
    applied: dict[str, object] = dataclasses.field(default_factory=dict)
    apply_seconds: float = 0.0

    @property
    def namespace(self) -> str:
        """The host namespace the virtual cluster runs and syncs into (the tenant's first)."""
        return f"{self.name}-cp"

    @property
    def registry(self) -> str:
        return str(self.node["registry"])

    @property
    def node(self) -> dict[str, Any]:
        assert self.cluster.node is not None
        return dict(self.cluster.node)

    @property
    def probe_image(self) -> str:
        return str(self.node["images"]["probe"])

    @property
    def chart(self) -> Path:
        return toolchain.chart_dir()

    @property
    def policy(self) -> Path:
        path = self.folder / "policy.yaml"
        if not path.exists():
            path.write_text(yaml.safe_dump({
                "allowedChartSources": [str(self.chart)],
                "controlPlaneCorednsImage": self.node["images"]["coredns"],
                "controlPlaneDnsUpstreams": [f"{localnode.BRIDGE_IP}/32"],
            }))
        return path

    @property
    def kubeconfig(self) -> Path:
        return self.folder / f"{self.name}.kubeconfig"

    def tenant_doc(self, name: str | None = None, *, values: dict[str, Any] | None = None,
                   persistence: bool = True, network: dict[str, Any] | None = None) -> dict[str, Any]:
        """The spec document of a control plane tenant (``name`` defaults to this one's)."""
        name = name or self.name
        return {
            "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {
                "owners": [{"kind": "Group", "name": f"{name}-devs", "role": "admin"}],
                "namespaces": ["cp", "apps"],
                "quota": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "pods": 20, "services": 10},
                "limits": {"max": {"cpu": "1", "memory": "1Gi"}},
                "network": network or {"isolation": "strict"},
                "podSecurity": "restricted",
                "placement": {"nodeSelector": {"pool": "tenants"}},
                "controlPlane": {
                    "enabled": True, "chart": {"path": str(self.chart)},
                    "persistence": {"enabled": True, "size": "1Gi"} if persistence else {"enabled": False},
                    "values": render.merge_values(images.chart_values(self.registry), values or {}),
                },
            },
        }

    def write(self, doc: dict[str, Any]) -> Path:
        path = self.folder / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def vcm(self, *args: str) -> tuple[int, str, str]:
        """``vcm ARGS`` against the node cluster: (exit code, stdout, stderr)."""
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "VCM_STATE_DIR": str(self.folder / "state")}
        proc = subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def apply(self, doc: dict[str, Any], *extra: str) -> tuple[int, str, str]:
        return self.vcm("apply", str(self.write(doc)), "--yes", "--policy", str(self.policy), *extra)

    def kubectl(self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubectl`` inside the virtual cluster (or with another ``kubeconfig``, the host's for instance)."""
        return subprocess.run([str(toolchain.bin_dir() / "kubectl"), "--kubeconfig",
                               str(kubeconfig or self.kubeconfig), "--request-timeout=20s", *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def host(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubectl`` on the host cluster, as its admin."""
        return self.kubectl(*args, stdin=stdin, kubeconfig=self.cluster.kubeconfig, timeout=timeout)

    def namespaces_gone(self, names: list[str]) -> bool:
        proc = self.host("get", "ns", "-o", "jsonpath={.items[*].metadata.name}")
        return proc.returncode == 0 and not set(names) & set(proc.stdout.split())

