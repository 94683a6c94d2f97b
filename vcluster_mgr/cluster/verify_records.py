"""``vcm verify`` keeps its last result on the tenant's first namespace, where ``vcm status`` finds it
(the annotation's shape is in ``verify_annotation``)."""

from __future__ import annotations

from typing import Any

from vcluster_mgr.cluster import connection, verify_annotation


def record_verify(conn: connection.Connection, namespace: str, result: dict[str, Any]) -> None:
    """Record a verify result on ``namespace`` (annotation ``naming.LAST_VERIFY_ANNOTATION``)."""
    conn.call(f"recording the verify result on namespace {namespace}", conn.core.patch_namespace, namespace,
              verify_annotation.patch(result), field_manager="vcm-verify")
