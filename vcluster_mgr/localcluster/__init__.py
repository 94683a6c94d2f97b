"""The built-in throwaway local host cluster: etcd, kube-apiserver and kube-controller-manager.

Enough of a Kubernetes control plane to provision and test tenants for real: RBAC authorization, the
admission plugins tenants rely on (NamespaceLifecycle, LimitRanger, ServiceAccount, ResourceQuota,
PodSecurity, ValidatingAdmissionPolicy) and kube-controller-manager's default set of controllers
(``controller_manager``). With ``nodes=0`` there is no scheduler
and no kubelet: pods are accepted but never run; with ``nodes=1`` ``localnode.node`` adds a node (kubelet,
containerd, kube-scheduler, kube-proxy, a NetworkPolicy firewall, CoreDNS) after the control plane is ready.

Every process listens on 127.0.0.1 only, on free ports picked at start; with a node, the API server and
the kubelet listen on the node's bridge address instead (``localnode.node.BRIDGE_IP``). The PKI (a CA, the API server's
serving certificate, client certificates for the admin and the controller manager, the service-account
signing key) is generated with ``cryptography``. Each cluster lives in
``<cache>/local/<name>/`` (``state.json``, ``pki/``, ``etcd/``, ``logs/``, ``admin.kubeconfig``);
``down`` stops exactly the processes recorded there and removes the folder.

The parts: ``layout`` (the folder, ``state.json`` as ``Cluster``), ``processes`` (starting, telling ours
from others, ports, readiness), ``pki`` (certificates and kubeconfigs), ``controller_manager`` (its command
line), ``cluster`` (``up``, ``down``,
restarting one process). The node itself is ``vcluster_mgr.localnode``. This module is their public face.
"""

from __future__ import annotations

from vcluster_mgr.localcluster.cluster import down, start_process, stop_process, up
from vcluster_mgr.localcluster.layout import (
    DEFAULT_NAME,
    READY_TIMEOUT,
    SERVICE_CIDR,
    Cluster,
    cluster_dir,
    clusters_dir,
    list_clusters,
    load,
)
from vcluster_mgr.localcluster.pki import user_kubeconfig
from vcluster_mgr.localcluster.processes import listening_sockets

__all__ = [
    "DEFAULT_NAME", "READY_TIMEOUT", "SERVICE_CIDR", "Cluster", "cluster_dir", "clusters_dir", "down",
    "list_clusters", "listening_sockets", "load", "start_process", "stop_process", "up", "user_kubeconfig",
]
