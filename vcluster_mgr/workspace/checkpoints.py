"""Reading a stack's recorded outputs and last run straight from the backend's checkpoint, without the CLI.

Every tenant command first needs what the tenant's stack recorded at its last apply (the host cluster's
identity, the expiry, whether it sleeps, its fingerprint). Asking the CLI costs a process start and a
backend open (0.3 to 1.5 s per tenant on 2 cores); the file and ``s3://`` backends keep the same data as a
JSON checkpoint in Pulumi's versioned deployment format (``pulumi stack export`` prints the same document),
at ``.pulumi/stacks/<project>/<stack>.json`` (``.json.gz`` when the backend gzips), beside the stack's
history and locks (``blobs`` reads either). Reading it is a millisecond from a file, one request from an
object store. Only the checkpoint's ``version: 3`` and the project-scoped layout (``meta.yaml`` version 1)
are read; anything else answers ``UNKNOWN`` and the caller asks the CLI. Nothing here writes.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

from vcluster_mgr.workspace import blobs

#: the answer when the checkpoint cannot be read here (another backend, an unknown format): ask the CLI
UNKNOWN = object()

#: the key and value Pulumi marks an encrypted value with in a checkpoint
_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def _masked(value: Any) -> Any:
    """``value`` with every secret replaced by ``[secret]``, as ``pulumi stack output --json`` shows them."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
            return "[secret]"
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


#: backends whose layout was seen to be the project-scoped one (only a positive answer is kept: a backend
#: with no ``meta.yaml`` yet gets one at its first run)
_LAYOUT_SEEN: set[str] = set()


def _store(backend_url: str) -> blobs.Store | None:
    """The backend's blobs when they are in the project-scoped layout read here, else None."""
    store = blobs.open_store(backend_url)
    if store is None or backend_url in _LAYOUT_SEEN:
        return store
    try:
        meta = (store.get(".pulumi/meta.yaml") or b"").decode(errors="replace")
    except blobs.UnreadableError:
        return None
    # the project-scoped layout; the legacy one (no meta.yaml, or version 0) keeps stacks elsewhere
    if "version: 1" not in meta.splitlines():
        return None
    _LAYOUT_SEEN.add(backend_url)
    return store


def _read_doc(store: blobs.Store, project: str, stack: str) -> dict[str, Any] | None | object:
    """The stack's checkpoint document, None if there is no such stack, ``UNKNOWN`` if unreadable here."""
    base = f".pulumi/stacks/{project}/{stack}"
    for key, unpack in ((base + ".json", bytes), (base + ".json.gz", gzip.decompress)):
        try:
            raw = store.get(key)
            if raw is None:
                continue
            doc = json.loads(unpack(raw))
        except (blobs.UnreadableError, OSError, EOFError, ValueError):
            return UNKNOWN
        return doc if isinstance(doc, dict) and doc.get("version") == 3 else UNKNOWN
    return None


def read_outputs(backend_url: str, project: str, stack: str) -> dict[str, Any] | None | object:
    """The stack's outputs (secrets as ``[secret]``), ``None`` if the backend has no such stack, or
    ``UNKNOWN`` if this backend or checkpoint is not one this module reads."""
    store = _store(backend_url)
    if store is None:
        return UNKNOWN
    doc = _read_doc(store, project, stack)
    if not isinstance(doc, dict):
        return doc
    latest = (doc.get("checkpoint") or {}).get("latest") or {}
    for res in latest.get("resources") or []:
        if res.get("type") == "pulumi:pulumi:Stack" and not res.get("parent"):
            outputs = res.get("outputs") or {}
            return _masked(outputs) if isinstance(outputs, dict) else UNKNOWN
    return {}  # a stack that exists but was never updated


def stack_names(backend_url: str, project: str) -> list[str] | None:
    """The names of a project's stacks in the backend, or None if this backend is not one read here."""
    store = _store(backend_url)
    if store is None:
        return None
    folder = f".pulumi/stacks/{project}/"
    try:
        keys = store.keys(folder)
    except blobs.UnreadableError:
        return None
    names = {k[len(folder):].removesuffix(".gz").removesuffix(".json") for k in keys
             if "/" not in k[len(folder):] and k.endswith((".json", ".json.gz"))}
    return sorted(n for n in names if not n.endswith((".bak", ".tmp")))


def _history_order(key: str) -> int:
    stamp = key.rpartition("/")[2].removesuffix(".history.json").rpartition("-")[2]
    return int(stamp) if stamp.isdigit() else -1


@dataclasses.dataclass(frozen=True)
class Settled:
    """What a stack's checkpoint and history say of its last run (``settled``)."""

    #: why the last run cannot be taken as settled; None when it can
    why: str | None
    #: the Kubernetes objects its state holds, as ``(kind, id)`` (id: ``namespace/name`` or ``name``)
    objects: frozenset[tuple[str, str]] = frozenset()


def settled(backend_url: str, project: str, stack: str) -> Settled | object:
    """Whether the stack's last run is settled, and the objects its state holds. Not settled: a pending
    operation in its checkpoint (a run killed mid-step), its latest update not ``succeeded`` (failed, or cut
    short), or no update at all. ``UNKNOWN`` when the backend is not one read here (``blobs``) or cannot be
    read now."""
    store = _store(backend_url)
    if store is None:
        return UNKNOWN
    doc = _read_doc(store, project, stack)
    if not isinstance(doc, dict):
        return UNKNOWN if doc is UNKNOWN else Settled("there is no stack")
    latest = (doc.get("checkpoint") or {}).get("latest") or {}
    objects = frozenset((str(r.get("type", "")).rpartition(":")[2], str(r["id"]))
                        for r in latest.get("resources") or []
                        if r.get("custom") and str(r.get("type", "")).startswith("kubernetes:")
                        and not str(r.get("type", "")).startswith("pulumi:providers:") and r.get("id"))
    if latest.get("pending_operations"):
        return Settled("its checkpoint holds a pending operation (a run was killed)", objects)
    try:
        keys = store.keys(f".pulumi/history/{project}/{stack}/")
    except blobs.UnreadableError:
        return UNKNOWN
    entries = sorted((k for k in keys if k.endswith(".history.json")), key=_history_order)
    for key in reversed(entries):
        try:
            entry = json.loads(store.get(key) or b"null")
        except (blobs.UnreadableError, ValueError):
            return UNKNOWN
        if isinstance(entry, dict) and entry.get("kind") in ("update", "destroy", "import"):
            if entry.get("result") != "succeeded":
                return Settled(f"its last update did not succeed ({entry.get('result')})", objects)
            return Settled(None, objects)
    return Settled("its history has no update", objects)
