"""``vcm drift`` / ``vcm status``: read back every applied object over one connection and compare it
(``comparison.object_drift``) with what was applied."""

from __future__ import annotations

from typing import Any

from vcluster_mgr.cluster import comparison, connection


def get_object(conn: connection.Connection, api_version: str, kind: str, name: str,
               namespace: str | None) -> dict[str, Any] | None:
    """One live object as a dict, or None if it (or its kind) does not exist (the dynamic client: any kind)."""
    from kubernetes.dynamic import exceptions as dynamic_errors  # only drift needs the dynamic client

    what = f"reading {kind} {namespace + '/' if namespace else ''}{name}"
    try:
        res = conn.call(f"finding kind {kind} of {api_version}",
                        lambda **_: conn.dynamic.resources.get(api_version=api_version, kind=kind))
    except dynamic_errors.ResourceNotFoundError:
        return None  # the kind is gone (its CRD deleted): so is every object of it
    kwargs = {"namespace": namespace} if namespace else {}
    obj = conn.read(what, res.get, name=name, **kwargs)
    return None if obj is None else dict(obj.to_dict())


def drift(conn: connection.Connection, applied: list[dict[str, Any]]) -> list[comparison.Row]:
    """Compare what was applied with the live objects: one row per changed field or missing object."""
    rows: list[comparison.Row] = []
    for obj in applied:
        inputs = obj["inputs"]
        if not comparison.is_object(inputs):
            continue
        meta = inputs.get("metadata", {})
        live = get_object(conn, inputs["apiVersion"], inputs["kind"], meta.get("name"), meta.get("namespace"))
        rows.extend(comparison.object_drift(inputs, live))
    return rows
