"""Pure: how a verify result is kept on the tenant's first namespace (annotation ``LAST_VERIFY_ANNOTATION``)
and read back by ``vcm status``."""

from __future__ import annotations

import json
from typing import Any

from vcluster_mgr import naming


def patch(result: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that records ``result`` on a namespace."""
    return {"metadata": {"annotations": {naming.LAST_VERIFY_ANNOTATION: json.dumps(result, sort_keys=True)}}}


def last_verify(namespaces: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The verify result recorded on the first of these namespaces (raw objects from ``tenant_quotas``)."""
    for ns in sorted(namespaces, key=lambda n: str(n.get("metadata", {}).get("name"))):
        text = (ns.get("metadata", {}).get("annotations") or {}).get(naming.LAST_VERIFY_ANNOTATION)
        if text:
            try:
                found = json.loads(text)
            except ValueError:
                return {"passed": None, "note": f"unreadable {naming.LAST_VERIFY_ANNOTATION} annotation"}
            return found if isinstance(found, dict) else None
    return None
