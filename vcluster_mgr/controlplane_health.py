"""Whether a tenant's virtual control plane is up, read from the host cluster, and a wait for it.

The Helm release is applied without waiting (the engine cannot tell a vcluster that runs from one whose pods
the host refuses), so ``vcm apply`` and ``vcm status`` ask here: the chart's control plane StatefulSet and its
pods (``release: <tenant>``) in the tenant's first namespace, the pods the virtual cluster synced there
(``vcluster.loft.sh/managed-by: <tenant>``), and the Warning events the host recorded about either (a pod the
admission policies refused shows as ``FailedCreate`` on its StatefulSet or ReplicaSet; ``SyncError`` events
the syncer records on host objects are read too). Events the syncer records inside the virtual cluster are
not read from here: that needs a connection into the virtual cluster (``vcm kubeconfig``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from vcluster_mgr import cluster, naming, platformconfig, spec

#: event reasons that mean something of the control plane is being refused or cannot start
PROBLEM_REASONS = ("FailedCreate", "SyncError", "FailedScheduling", "BackOff", "Failed", "FailedMount")


@dataclasses.dataclass
class Health:
    """What the host shows of one tenant's control plane."""

    #: every control plane pod the StatefulSet wants exists and is Ready (none wanted while asleep)
    ready: bool
    #: replicas wanted by the control plane's StatefulSet (None: the StatefulSet does not exist)
    replicas: int | None
    #: one row per control plane or synced pod: name, kind (controlPlane | synced), phase, ready
    pods: list[dict[str, Any]]
    #: Warning events about them: reason, object, message, count
    problems: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        cp = [p for p in self.pods if p["kind"] == "controlPlane"]
        synced = [p for p in self.pods if p["kind"] == "synced"]
        text = (f"{'ready' if self.ready else 'NOT ready'}: {sum(p['ready'] for p in cp)}/{self.replicas or 0} "
                f"control plane pod(s) ready, {sum(p['ready'] for p in synced)}/{len(synced)} synced pod(s) ready")
        if self.problems:
            text += "; " + "; ".join(f"{p['reason']} {p['object']}: {p['message']}" for p in self.problems[:5])
        return text


def _ready(pod: Any) -> bool:
    status = pod.status
    return bool(status and status.phase == "Running"
                and any(c.type == "Ready" and c.status == "True" for c in status.conditions or []))


def read(conn: cluster.Connection, tenant: spec.Tenant) -> Health:
    """The control plane's health now (four reads of the tenant's first namespace)."""
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    where = f"the control plane of {tenant.name} in {namespace}"
    sts = conn.read(f"reading StatefulSet {namespace}/{release} ({where})", conn.apps.read_namespaced_stateful_set,
                    release, namespace)
    replicas: int | None = None
    if sts is not None:
        replicas = int(sts.spec.replicas if sts.spec and sts.spec.replicas is not None else 1)
    own = conn.call(f"listing the pods of {where}", conn.core.list_namespaced_pod, namespace,
                    label_selector=f"{naming.CONTROL_PLANE_POD_LABEL}={release}").items
    synced = conn.call(f"listing the pods synced by {where}", conn.core.list_namespaced_pod, namespace,
                       label_selector=f"{naming.SYNCED_BY_LABEL}={release}").items
    events = conn.call(f"listing Warning events in {namespace}", conn.core.list_namespaced_event, namespace,
                       field_selector="type=Warning").items
    pods: list[dict[str, Any]] = [
        {"name": str(p.metadata.name) if p.metadata else "?", "kind": kind,
         "phase": p.status.phase if p.status else None, "ready": _ready(p)}
        for kind, items in (("controlPlane", own), ("synced", synced)) for p in items]
    names = {release} | {p["name"] for p in pods}
    problems = []
    for ev in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp)):
        obj = ev.involved_object
        ours = obj is not None and (obj.name in names or str(obj.name).startswith(f"{release}-"))
        if (ours and ev.reason in PROBLEM_REASONS) or ev.reason == "SyncError":
            problems.append({"reason": ev.reason, "object": f"{obj.kind}/{obj.name}" if obj else "?",
                             "message": (ev.message or "").strip(), "count": ev.count or 1})
    cp_ready = sum(1 for p in pods if p["kind"] == "controlPlane" and p["ready"])
    ready = (replicas is not None and cp_ready >= replicas
             and all(bool(p["ready"]) for p in pods if p["kind"] == "synced"))
    return Health(ready, replicas, pods, problems)


def wait(target: platformconfig.Target, tenant: spec.Tenant, *, timeout: float,
         progress: Callable[[str], object] | None = None) -> Health:
    """Poll ``read`` until the control plane is ready or ``timeout`` seconds pass; returns the last reading
    (the caller decides what a not-ready one means). Says once what it waits for."""
    deadline = time.monotonic() + timeout
    if progress:
        progress(f"waiting up to {timeout:.0f}s for the control plane of {tenant.name}: its StatefulSet's pods "
                 f"Ready and every pod it synced Ready, in {tenant.namespace_names()[0]}")
    with cluster.connect(target) as conn:
        while True:
            health = read(conn, tenant)
            if health.ready or time.monotonic() >= deadline:
                return health
            time.sleep(2.0)
