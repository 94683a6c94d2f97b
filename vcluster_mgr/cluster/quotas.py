"""``vcm usage`` and ``vcm status``: every tenant's Namespaces and ResourceQuotas in two list calls."""

from __future__ import annotations

from typing import Any

from vcluster_mgr import naming
from vcluster_mgr.cluster import connection

#: seconds each of the two lists may take: at 1000 tenants they are a few MB each
LIST_TIMEOUT = 60.0


def tenant_quotas(conn: connection.Connection, *, tenant: str | None = None,
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Namespaces and ResourceQuotas of every tenant (or of one), as the API server sends them.

    Two list calls whatever the fleet's size: one for namespaces, one for quotas across all namespaces,
    both by label selector, read as raw JSON (no model objects: at 1000 tenants those cost more than the
    requests). Not paged: 2000 quotas are a few MB.
    """
    selector = f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}"
    selector += f",{naming.TENANT_LABEL}={tenant}" if tenant else f",{naming.TENANT_LABEL}"
    query = [("labelSelector", selector)]
    namespaces = conn.get_json("listing tenant namespaces", "/api/v1/namespaces", query=query,
                               timeout=LIST_TIMEOUT)
    quotas = conn.get_json("listing tenant quotas", "/api/v1/resourcequotas", query=query, timeout=LIST_TIMEOUT)
    return list(namespaces.get("items") or []), list(quotas.get("items") or [])
