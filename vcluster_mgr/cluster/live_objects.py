"""The fast path's read of the live objects: one label-selected LIST per kind, digested as fingerprint content.

A run proves many tenants unchanged at once (``operations.prove``, ``workspace.folder``): whatever their
number, it reads each kind once, in all namespaces, selected by a label every object vcluster-mgr renders
carries, and turns each object into its content digest (``fingerprint.object_digest``) right away, so no
object is kept. Read through the generic client as plain JSON (``Connection.get_json``): no API group
module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcluster_mgr import fingerprint
from vcluster_mgr.cluster import connection

#: seconds one LIST may take: a kind of a few thousand tenants' objects on a loaded 2-core server
LIST_TIMEOUT = 60.0


def list_labelled(conn: connection.Connection, path: str, selector: str) -> list[dict[str, Any]]:
    """Every object of one resource (``path``: ``/api/v1/namespaces``, ``/apis/<group>/<version>/<plural>``),
    in all namespaces, whose labels match ``selector``: one LIST. Each item gets back the ``apiVersion`` and
    ``kind`` a LIST leaves out of its items."""
    doc = conn.get_json(f"listing {path}", path, query=[("labelSelector", selector)], timeout=LIST_TIMEOUT)
    kind = str(doc.get("kind", "")).removesuffix("List")
    return [{"apiVersion": doc.get("apiVersion"), "kind": kind, **item} for item in doc.get("items") or []]


def live_digests(conn: connection.Connection, kinds: set[tuple[str, str]], selector: str,
                 keep: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, str]:
    """``fingerprint.object_key`` -> content digest of every live object of ``kinds`` (each in
    ``fingerprint.PROVABLE``) matching the label ``selector`` (and ``keep``, if given): one LIST per kind."""
    found: dict[str, str] = {}
    for api_version, kind in sorted(kinds):
        base, plural, _ = fingerprint.PROVABLE[(api_version, kind)]
        for obj in list_labelled(conn, f"{base}/{plural}", selector):
            if keep is None or keep(obj):
                found[fingerprint.key_of(obj)] = fingerprint.object_digest(api_version, kind, obj)
    return found
