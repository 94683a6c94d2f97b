"""The local cluster's kube-controller-manager command line: which controllers run, and why.

It runs kube-controller-manager's DEFAULT set (``--controllers=*``), as a real cluster does: the PersistentVolume
binder and the PVC/PV protection controllers (so claims bind and ``vcm delete`` of a tenant with persistence is not
held by the ``kubernetes.io/pvc-protection`` finalizer), DaemonSets, CronJobs, disruption budgets, pod garbage
collection, Endpoints, the CSR signer, approver and cleaner, and the rest.

What stays off, and why:

- cloud controllers: none to turn off. Kubernetes 1.37's kube-controller-manager no longer has any (the service
  load balancer, route and cloud node lifecycle controllers live in a cloud-controller-manager, which a machine
  without a cloud provider does not run);
- ``bootstrap-signer-controller`` and ``token-cleaner-controller``, off by default upstream: they serve kubeadm's
  bootstrap tokens, and this cluster issues its node's certificates itself (``pki``);
- ``selinux-warning-controller``, off by default upstream (alpha, behind a feature gate);
- ``node-ipam-controller`` is in the set but does nothing without ``--allocate-node-cidrs``, which only a cluster
  with a node passes: there it gives the node its pod CIDR (``localnode.node.POD_CIDR``), node-less there is
  nothing to allocate.
"""

from __future__ import annotations

from pathlib import Path

from vcluster_mgr.localcluster import layout
from vcluster_mgr.localnode import node as localnode

#: the default set; ``--controllers`` also takes ``-name`` to turn one off, or an explicit list (fault drills)
DEFAULT_CONTROLLERS = ("*",)


def command(binary: Path, kubeconfig: Path, pki_dir: Path, *, nodes: int,
            controllers: tuple[str, ...] = DEFAULT_CONTROLLERS) -> list[str]:
    """kube-controller-manager's command line for a local cluster with ``nodes`` nodes."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}", "--secure-port=0", "--leader-elect=false",
        "--controllers=" + ",".join(controllers),
        *(["--allocate-node-cidrs=true", f"--cluster-cidr={localnode.POD_CIDR}", "--node-cidr-mask-size=24",
           f"--service-cluster-ip-range={layout.SERVICE_CIDR}"] if nodes else []),
        # the CSR signer lets `vcm kubeconfig` issue owners' client certificates, as on a real cluster
        f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}", f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
        f"--service-account-private-key-file={pki_dir / 'sa.key'}", f"--root-ca-file={pki_dir / 'ca.crt'}",
        "--use-service-account-credentials=false", "--concurrent-gc-syncs=5", "--v=1",
    ]
