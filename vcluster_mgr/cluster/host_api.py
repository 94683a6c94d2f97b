"""Where pods reach the host cluster's API server, read at each apply of a tenant with a control plane (its
egress allows exactly these) and compared with the recorded ones by ``vcm drift``."""

from __future__ import annotations

from typing import Any

from vcluster_mgr import errors
from vcluster_mgr.cluster import comparison, connection


def addresses(conn: connection.Connection) -> list[dict[str, Any]]:
    """The ``default/kubernetes`` Service (cluster IP, https port) and every address and port it is NATed to
    (its EndpointSlices), sorted, as ``{"ip", "port"}`` (see ``comparison.api_addresses``)."""
    why = "(the control plane's route to the API server)"
    svc = conn.call(f"reading Service default/kubernetes {why}", conn.core.read_namespaced_service,
                    "kubernetes", "default")
    slices = conn.call(f"listing the EndpointSlices of Service default/kubernetes {why}",
                       conn.discovery.list_namespaced_endpoint_slice, "default",
                       label_selector="kubernetes.io/service-name=kubernetes").items
    found = comparison.api_addresses(conn.plain(svc), [conn.plain(s) for s in slices])
    if not found:
        raise errors.ProvisionError(f"Service default/kubernetes on {conn.server} has no https port or endpoints: "
                                    "cannot tell where the control plane reaches the API server")
    return found


def drift(conn: connection.Connection, recorded: list[dict[str, Any]] | None) -> list[comparison.Row]:
    """A drift row when the API server's addresses moved since they were recorded (none if never recorded)."""
    if not recorded:
        return []
    return comparison.address_drift(recorded, addresses(conn))
