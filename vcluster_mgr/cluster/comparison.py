"""Pure: what ``vcm drift`` and ``vcm status`` call drift, from what was applied and what the server sends.

No requests here: ``drift`` reads the live objects over one connection and hands each pair to
``object_drift``; ``host_api`` reads the API server's addresses and hands them to ``address_drift``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: what drift rows hold: the object (``Kind ns/name``), the dotted field, the applied and the live value
Row = dict[str, Any]


def field_drift(path: str, desired: Any, live: Any, out: list[Row]) -> None:
    """Append a row for every field we set whose live value differs.

    Fields the server added are ignored (we compare only what was applied); an empty map or list is the same
    as an absent one; numbers compare by value (``1`` == ``1.0``); keys starting ``__`` are the engine's own.
    """
    empty: tuple[Any, ...] = ({}, [], None)
    if desired is None:
        return
    if desired in ({}, []) and live in empty:
        return
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            out.append({"field": path or ".", "desired": desired, "live": live})
            return
        for key, value in desired.items():
            if not str(key).startswith("__"):
                field_drift(f"{path}.{key}" if path else str(key), value, live.get(key), out)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            out.append({"field": path, "desired": desired, "live": live})
            return
        for i, (d, lv) in enumerate(zip(desired, live, strict=False)):
            field_drift(f"{path}[{i}]", d, lv, out)
    elif desired != live and not (isinstance(desired, (int, float)) and isinstance(live, (int, float))
                                  and float(desired) == float(live)):
        out.append({"field": path, "desired": desired, "live": live})


def is_object(inputs: Mapping[str, Any]) -> bool:
    """Whether applied inputs are one Kubernetes object (a Helm release's are not: its objects are the chart's,
    not fields the blueprint set)."""
    return "apiVersion" in inputs and "kind" in inputs


def object_name(inputs: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped), as drift rows name an object."""
    meta = inputs.get("metadata", {})
    ns, name = meta.get("namespace"), meta.get("name")
    return f"{inputs.get('kind')} {ns + '/' if ns else ''}{name}"


def object_drift(inputs: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[Row]:
    """The drift rows of one applied object: one per changed field, or one saying it was deleted."""
    what = object_name(inputs)
    if live is None:
        return [{"object": what, "field": "(object)", "desired": "present", "live": "deleted"}]
    found: list[Row] = []
    field_drift("", {k: v for k, v in inputs.items() if not str(k).startswith("__")}, dict(live), found)
    return [{"object": what, **f} for f in found]


def api_addresses(service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Where pods reach the API server, from Service ``default/kubernetes`` and its EndpointSlices (plain JSON):
    every (cluster IP, https port) and every (endpoint address, https port), sorted, as ``{"ip", "port"}``."""
    found: set[tuple[str, int]] = set()
    spec = service.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    for ip in ips:
        for port in spec.get("ports") or []:
            if ip and ip != "None" and port.get("name") == "https":
                found.add((str(ip), int(port["port"])))
    for sl in slices:
        ports = [int(p["port"]) for p in sl.get("ports") or []
                 if p.get("port") is not None and p.get("name") == "https"]
        for ep in sl.get("endpoints") or []:
            for ip in ep.get("addresses") or []:
                found.update((str(ip), port) for port in ports)
    return [{"ip": ip, "port": port} for ip, port in sorted(found)]


def address_drift(recorded: list[dict[str, Any]] | None, live: list[dict[str, Any]]) -> list[Row]:
    """A drift row when the API server's addresses differ from those recorded at apply (none if equal or never
    recorded): the control plane's egress rule then points at the old ones until the next apply."""
    if not recorded:
        return []
    if {(a["ip"], int(a["port"])) for a in live} == {(str(a.get("ip")), int(a.get("port", 0))) for a in recorded}:
        return []
    return [{"object": "Service default/kubernetes (and its endpoints)", "field": "addresses",
             "desired": recorded, "live": live}]
