"""A tenant's virtual control plane seen from the host: where its API server is reached, and its admin
kubeconfig (the Secret the virtual cluster writes once it runs)."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable
from typing import Any

from vcluster_mgr import errors, naming
from vcluster_mgr.cluster import connection, kubeconfigs


def server(conn: connection.Connection, tenant: Any) -> tuple[str, str]:
    """(server URL, how to reach it) for the tenant's control plane, from its exposure."""
    cp = tenant.spec.control_plane
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    if cp.exposure.ingress_host:
        return f"https://{cp.exposure.ingress_host}", "through the Ingress"
    if cp.exposure.type == "LoadBalancer":
        try:
            svc = conn.call(f"reading Service {namespace}/{release}", conn.core.read_namespaced_service,
                            release, namespace, _request_timeout=10)
        except errors.ClusterError:
            svc = None  # no address yet is the same answer as no Service: the port-forward below
        balancer = svc.status.load_balancer if svc is not None and svc.status else None
        found = (balancer.ingress if balancer else None) or []
        if found:
            return f"https://{found[0].ip or found[0].hostname}:443", "through the LoadBalancer"
    cluster_ip = _service_cluster_ip(conn, release, namespace)
    if cluster_ip and _this_machine_is_a_node(conn):
        # a node routes ClusterIPs (the local host cluster's machine is one): the Service follows the pod when it
        # is replaced, and the control plane's certificate names the ClusterIP
        return f"https://{cluster_ip}:443", "at the Service's ClusterIP, which this machine (a node) routes to"
    return ("https://localhost:8443",
            f"after `kubectl port-forward -n {namespace} svc/{release} 8443:443` on the host cluster")


def _service_cluster_ip(conn: connection.Connection, name: str, namespace: str) -> str | None:
    try:
        svc = conn.call(f"reading Service {namespace}/{name}", conn.core.read_namespaced_service,
                        name, namespace, _request_timeout=10)
    except errors.ClusterError:
        return None
    ip = svc.spec.cluster_ip if svc.spec else None
    return str(ip) if ip and ip != "None" else None


def _this_machine_is_a_node(conn: connection.Connection) -> bool:
    """Whether one of the cluster's nodes has an InternalIP that is an address of this machine: then its proxy
    routes the cluster's ClusterIPs here. Decided without sending a packet (a ClusterIP is otherwise routed to
    the default gateway): an address is this machine's when a socket can bind to it."""
    try:
        nodes = conn.call("listing Nodes", conn.core.list_node, _request_timeout=10).items
    except errors.ClusterError:
        return False
    for node in nodes:
        for address in (node.status.addresses if node.status else None) or []:
            if address.type == "InternalIP" and _is_local_address(str(address.address)):
                return True
    return False


def _is_local_address(ip: str) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError:
            return False
    return True


def kubeconfig(conn: connection.Connection, tenant: Any, *, wait: float = 0.0,
               progress: Callable[[str], object] | None = None) -> str | None:
    """The virtual cluster's admin kubeconfig from its Secret ``vc-<release>``, server pointed at the chosen
    exposure; None if the Secret is not there (after waiting up to ``wait`` seconds, saying so)."""
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    secret_name = naming.control_plane_kubeconfig_secret(release)
    deadline = time.monotonic() + wait
    announced = False
    while True:
        secret = conn.read(f"reading Secret {namespace}/{secret_name}", conn.core.read_namespaced_secret,
                           secret_name, namespace, _request_timeout=10)
        if secret is not None:
            break
        if time.monotonic() >= deadline:
            return None
        if progress and not announced:
            progress(f"waiting up to {wait:.0f}s for Secret {namespace}/{secret_name}, which the virtual cluster "
                     "writes once its control plane runs")
            announced = True
        time.sleep(1.0)
    raw = (secret.data or {}).get("config")
    if not raw:
        raise errors.ProvisionError(f"Secret {namespace}/{secret_name} has no `config` key")
    url, _ = server(conn, tenant)
    return kubeconfigs.pointed_at(base64.b64decode(raw), url)
