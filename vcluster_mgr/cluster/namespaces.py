"""Namespaces read one by one: the host cluster's identity (``kube-system``'s UID), and the wait until a
tenant's namespaces are Active."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from vcluster_mgr import errors
from vcluster_mgr.cluster import connection, funnel


def read_namespace(conn: connection.Connection, name: str) -> dict[str, Any] | None:
    """One namespace as plain JSON, or None if it does not exist.

    Read through the generic client (``Connection.get_json``) rather than ``CoreV1Api``, whose module alone
    takes 0.7 to 3 s to import on 2 cores: this is on the path of every ``vcm apply``, which needs nothing
    else from it.
    """
    path = f"/api/v1/namespaces/{urllib.parse.quote(name, safe='')}"
    doc = funnel.not_found_is_none(lambda: conn.get_json(f"reading namespace {name}", path))
    return doc if isinstance(doc, dict) else None


def cluster_uid(conn: connection.Connection) -> str:
    """The identity of a host cluster: the UID of its ``kube-system`` namespace, made once when the cluster
    was created and never reused, whatever its server address or kubeconfig say."""
    try:
        obj = read_namespace(conn, "kube-system")
    except errors.ClusterError as exc:
        raise type(exc)(f"{exc} (to identify host cluster {conn.target.name!r})", server=exc.server,
                        status=exc.status, detail=exc.detail) from exc
    uid = ((obj or {}).get("metadata") or {}).get("uid")
    if not uid:
        raise errors.ProvisionError(f"namespace kube-system on {conn.server} has no UID")
    return str(uid)


def wait_active(conn: connection.Connection, namespaces: list[str], *, timeout: float = 120) -> None:
    """Wait until every namespace exists and is Active; say what is missing when the time is up."""
    deadline = time.monotonic() + timeout
    pending = list(namespaces)
    while pending and time.monotonic() < deadline:
        still = []
        for ns in pending:
            found = conn.read(f"reading namespace {ns}", conn.core.read_namespace, ns, _request_timeout=10)
            if found is None or found.status is None or found.status.phase != "Active":
                still.append(ns)
        pending = still
        if pending:
            time.sleep(0.5)
    if pending:
        raise errors.ProvisionError(f"namespaces {', '.join(pending)} not active on {conn.server} "
                                    f"after {timeout:.0f}s")
