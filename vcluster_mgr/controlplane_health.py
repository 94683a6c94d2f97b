"""Whether a tenant's virtual control plane is up, read from the host cluster, and a wait for it.

The Helm release is applied without waiting (the engine cannot tell a vcluster that runs from one whose pods the
host refuses), so ``vcm apply`` and ``vcm status`` ask here: the chart's control plane StatefulSet (a Deployment
when the control plane has no persistence) and its pods (``app: vcluster, release: <tenant>``; the etcd pods of
``backingStore: etcd`` carry ``app: vcluster-etcd``) in the tenant's first namespace, the pods the virtual cluster
synced there (``vcluster.loft.sh/managed-by: <tenant>``), and the Warning events the host recorded about either (a
pod the admission policies refused shows as ``FailedCreate`` on its StatefulSet or ReplicaSet; ``SyncError`` events
the syncer records on host objects are read too; so are the kubelet's ``Unhealthy`` events of a control plane pod
that is not Ready now: its probe's last failures, the reason it was taken out of its Service). Once the control
plane is up, the ``SyncError`` events the syncer records INSIDE the virtual cluster (on the virtual object the host
refused: a pod over the tenant's limits) are read too, through the virtual cluster's own kubeconfig, when this
machine reaches its API (``vcm kubeconfig``); when it does not, ``inside`` says so.

Ready means the virtual API answers where its users reach it: once the control plane's pods are Ready (their
readiness probe is the virtual API server's ``/readyz`` through the syncer on port 8443, asked by the kubelet),
``/readyz`` is asked again through the kubeconfig ``vcm kubeconfig`` hands out (the Service's ClusterIP from a node,
an Ingress or a LoadBalancer), with the virtual cluster's own credentials. When this machine does not reach that
address (a port-forward is needed), the pods' readiness stands alone and ``inside`` says why.

Of the syncer's ``SyncError`` events inside, the write conflicts it retries by itself (``the object has been
modified``: the host changed the object between its read and its write) are left out: they are no refusal; so are
those about a pod deleted since (events outlive their object by an hour: the refusal is over). When ``/readyz``
answers not ready, the checks it names as failed (``etcd``: the backing store) are the reason ``vcm status`` gives;
when it takes the request and answers nothing in time, it is reachable and not serving: NOT ready too.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from vcluster_mgr import cluster, errors, naming, platformconfig, spec

#: event reasons that mean something of the control plane is being refused or cannot start
PROBLEM_REASONS = ("FailedCreate", "SyncError", "FailedScheduling", "BackOff", "Failed", "FailedMount")

#: seconds the virtual API has to answer ``/readyz``: when its backing store hangs it first waits out its own
#: checks of it (``--etcd-healthcheck-timeout`` and ``--etcd-readycheck-timeout``, 2 s each) and then answers 500;
#: on a loaded machine that answer took 6.8 s, so 5 s read a backing store that was down as "no answer"
READYZ_TIMEOUT = 15.0


@dataclasses.dataclass
class Health:
    """What the host shows of one tenant's control plane."""

    #: every control plane pod the StatefulSet (or Deployment) wants exists and is Ready (none wanted while asleep)
    ready: bool
    #: replicas wanted by the control plane's StatefulSet or Deployment (None: neither exists)
    replicas: int | None
    #: one row per pod: name, kind (controlPlane | backingStore, the etcd of ``backingStore: etcd`` | synced),
    #: phase, ready
    pods: list[dict[str, Any]]
    #: Warning events about them: reason, object, message, count
    problems: list[dict[str, Any]]
    #: what was read inside the virtual cluster: "read", or why not ("not up", "not reachable from here: ...")
    inside: str = "not read"
    #: the virtual API's own ``/readyz`` through the kubeconfig handed out: True, False (it answered not ready,
    #: or refused), None (not asked: the control plane is not up, or this machine does not reach it)
    virtual_api_ready: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        cp = [p for p in self.pods if p["kind"] == "controlPlane"]
        synced = [p for p in self.pods if p["kind"] == "synced"]
        text = (f"{'ready' if self.ready else 'NOT ready'}: {sum(p['ready'] for p in cp)}/{self.replicas or 0} "
                f"control plane pod(s) ready (the virtual API answering), "
                f"{sum(p['ready'] for p in synced)}/{len(synced)} synced pod(s) ready")
        if self.virtual_api_ready is not None:
            text += f", virtual API /readyz {'ok' if self.virtual_api_ready else 'NOT ok'}"
        if self.virtual_api_ready is False:  # what it answered: the checks that failed, or the refusal
            text += f" ({self.inside.removeprefix('read: ')})"
        if self.problems:
            text += "; " + "; ".join(f"{p['reason']} {p['object']}: {p['message']}" for p in self.problems[:5])
        return text


def _ready(pod: Any) -> bool:
    status = pod.status
    return bool(status and status.phase == "Running"
                and any(c.type == "Ready" and c.status == "True" for c in status.conditions or []))


def _app(pod: Any) -> str | None:
    labels = pod.metadata.labels if pod.metadata else None
    return (labels or {}).get(naming.CONTROL_PLANE_APP_LABEL)


def _wanted_replicas(conn: cluster.Connection, release: str, namespace: str, where: str) -> int | None:
    """Replicas of the control plane's StatefulSet, or of its Deployment (the chart's kind without persistence);
    None when there is neither."""
    for kind, read_kind in (("StatefulSet", conn.apps.read_namespaced_stateful_set),
                            ("Deployment", conn.apps.read_namespaced_deployment)):
        obj: Any = conn.read(f"reading {kind} {namespace}/{release} ({where})", read_kind, release, namespace)
        if obj is not None:
            return int(obj.spec.replicas if obj.spec and obj.spec.replicas is not None else 1)
    return None


def _stale(obj: Any, pods: list[dict[str, Any]]) -> bool:
    """Whether an event is about a pod that no longer exists (events of replaced pods outlive them by an hour)."""
    return obj is not None and obj.kind == "Pod" and obj.name not in {p["name"] for p in pods}


def _ours(obj: Any, release: str, pods: list[dict[str, Any]]) -> bool:
    """Whether an event's object is the control plane's: one of its pods or the pods it synced, or the
    StatefulSet, Deployment, ReplicaSet or another object of the release."""
    return obj is not None and bool(obj.name in {p["name"] for p in pods} or obj.name == release
                                    or str(obj.name).startswith(f"{release}-"))


def host_problems(events: list[Any], release: str, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Warning events the host recorded that say what is wrong with the control plane now, oldest first:
    a refusal or failure of one of its objects (``PROBLEM_REASONS``), a ``SyncError`` the syncer recorded on
    the host, and the kubelet's ``Unhealthy`` (a failed probe) about a pod of ours that is not Ready now: why
    its probe gave up on it (a pod that is Ready again got past it; a pod starting fails its probe a few
    times as it should). Events about pods that no longer exist are left out."""
    unready = {p["name"] for p in pods if not p["ready"]}
    problems = []
    for ev in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp)):
        obj = ev.involved_object
        if _stale(obj, pods):
            continue
        if ((_ours(obj, release, pods) and ev.reason in PROBLEM_REASONS) or ev.reason == "SyncError"
                or (ev.reason == "Unhealthy" and obj is not None and obj.kind == "Pod" and obj.name in unready)):
            problems.append({"reason": ev.reason, "object": f"{obj.kind}/{obj.name}" if obj else "?",
                             "message": (ev.message or "").strip(), "count": ev.count or 1})
    return problems


def read(conn: cluster.Connection, tenant: spec.Tenant) -> Health:
    """The control plane's health now (four reads of the tenant's first namespace, and the virtual cluster's
    SyncError events once it is up)."""
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    where = f"the control plane of {tenant.name} in {namespace}"
    replicas = _wanted_replicas(conn, release, namespace, where)
    released = conn.call(f"listing the pods of {where}", conn.core.list_namespaced_pod, namespace,
                         label_selector=f"{naming.CONTROL_PLANE_POD_LABEL}={release}").items
    synced = conn.call(f"listing the pods synced by {where}", conn.core.list_namespaced_pod, namespace,
                       label_selector=f"{naming.SYNCED_BY_LABEL}={release}").items
    events = conn.call(f"listing Warning events in {namespace}", conn.core.list_namespaced_event, namespace,
                       field_selector="type=Warning").items
    own = [p for p in released if _app(p) == naming.CONTROL_PLANE_APP]
    store = [p for p in released if _app(p) != naming.CONTROL_PLANE_APP]
    pods: list[dict[str, Any]] = [
        {"name": str(p.metadata.name) if p.metadata else "?", "kind": kind,
         "phase": p.status.phase if p.status else None, "ready": _ready(p)}
        for kind, items in (("controlPlane", own), ("backingStore", store), ("synced", synced)) for p in items]
    problems = host_problems(events, release, pods)
    cp_ready = sum(1 for p in pods if p["kind"] == "controlPlane" and p["ready"])
    ready = (replicas is not None and cp_ready >= replicas
             and all(bool(p["ready"]) for p in pods if p["kind"] != "controlPlane"))
    inside, virtual_api_ready = "not up", None
    if replicas and cp_ready:
        inside, virtual_api_ready, found = _read_inside(conn, tenant)
        problems += found
        ready = ready and virtual_api_ready is not False
    # the virtual cluster's own CoreDNS is synced only after the syncer is up: until its pod is on the host (and,
    # above, Ready) the virtual cluster is not usable, though no synced pod is unready yet
    ready = ready and (not dns_expected(tenant) or any(_virtual_dns(p) for p in pods))
    return Health(ready, replicas, pods, problems, inside, virtual_api_ready)


def dns_expected(tenant: spec.Tenant) -> bool:
    """Whether the virtual cluster runs a CoreDNS of its own: always with our values (they carry its manifest),
    unless the tenant's own values turn ``controlPlane.coredns.enabled`` off."""
    coredns = ((tenant.spec.control_plane.values.get("controlPlane") or {}).get("coredns") or {})
    return not (isinstance(coredns, dict) and coredns.get("enabled") is False)


def _virtual_dns(pod: dict[str, Any]) -> bool:
    """A synced pod of the virtual CoreDNS Deployment (host name ``coredns-<hash>-x-kube-system-x-<release>``)."""
    return pod["kind"] == "synced" and str(pod["name"]).startswith("coredns-") and "-x-kube-system-x-" in pod["name"]


#: what a SyncError message says when the syncer's write met a newer version of the object: it retries by itself
RETRIED_CONFLICT = "the object has been modified"


def _gone(obj: Any, live_pods: set[str] | None) -> bool:
    """Whether an event is about a virtual pod that no longer exists (``live_pods``: the uids of the pods inside;
    None when they were not listed). Its events outlive it by an hour; the refusal they record is over."""
    return (live_pods is not None and obj is not None and obj.kind == "Pod" and bool(obj.uid)
            and obj.uid not in live_pods)


def sync_problems(events: list[Any], live_pods: set[str] | None = None) -> list[dict[str, Any]]:
    """The SyncError events recorded inside the virtual cluster as problems, oldest first, without the write
    conflicts the syncer retries by itself, nor those about a pod deleted since (``live_pods``: the uids of the
    pods that exist inside, None when not known). Pure."""
    return [{"reason": ev.reason, "message": (ev.message or "").strip(), "count": ev.count or 1,
             "object": (f"virtual {ev.involved_object.kind}/{ev.involved_object.namespace}/"
                        f"{ev.involved_object.name}" if ev.involved_object else "virtual ?")}
            for ev in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time))
            if RETRIED_CONFLICT not in (ev.message or "") and not _gone(ev.involved_object, live_pods)]


def _read_inside(conn: cluster.Connection, tenant: spec.Tenant) -> tuple[str, bool | None, list[dict[str, Any]]]:
    """(what was read inside, the virtual API's ``/readyz``, the SyncError problems), through the virtual cluster's
    kubeconfig as ``vcm kubeconfig`` hands it out."""
    try:
        text = cluster.control_plane_kubeconfig(conn, tenant)
    except errors.VcmError as exc:
        return f"not read: {exc}", None, []
    if text is None:
        return "not read: its kubeconfig Secret does not exist yet", None, []
    try:
        inner = cluster.connect_kubeconfig(text, name=f"the virtual cluster of {tenant.name}")
    except errors.VcmError as exc:
        return f"not read: {exc}", None, []
    with inner:
        try:
            answer = inner.get_text("asking the virtual API's /readyz", "/readyz", timeout=READYZ_TIMEOUT)
        except errors.NoAnswerError:  # it took the request: it is reachable, and not serving
            return f"read: /readyz did not answer within {READYZ_TIMEOUT:.0f}s", False, []
        except errors.UnreachableError as exc:
            return f"not reachable from here: {exc}", None, []
        except errors.ClusterError as exc:  # it answered: not ready, or our credentials refused
            return f"read: /readyz answered {exc.status}: {exc.detail or exc}", False, []
        if answer.strip() != "ok":
            return f"read: /readyz answered {answer.strip()[:200]!r}", False, []
        try:
            events = inner.call("listing SyncError events", inner.core.list_event_for_all_namespaces,
                                field_selector="type=Warning,reason=SyncError", _request_timeout=5).items
            live_pods = None
            if any(ev.involved_object and ev.involved_object.kind == "Pod" for ev in events):
                pods = inner.call("listing the pods inside", inner.core.list_pod_for_all_namespaces,
                                  _request_timeout=5).items
                live_pods = {str(p.metadata.uid) for p in pods if p.metadata}
        except errors.ClusterError as exc:
            return f"not read: its events: {exc}", True, []
    return "read", True, sync_problems(events, live_pods)


def wait(target: platformconfig.Target, tenant: spec.Tenant, *, timeout: float,
         progress: Callable[[str], object] | None = None) -> Health:
    """Poll ``read`` until the control plane is ready or ``timeout`` seconds pass; returns the last reading
    (the caller decides what a not-ready one means). Says once what it waits for."""
    deadline = time.monotonic() + timeout
    if progress:
        progress(f"waiting up to {timeout:.0f}s for the control plane of {tenant.name}: its pods Ready, the virtual "
                 f"API's /readyz answering through its kubeconfig, its CoreDNS synced, and every pod it synced "
                 f"Ready, in {tenant.namespace_names()[0]}")
    with cluster.connect(target) as conn:
        while True:
            health = read(conn, tenant)
            if health.ready or time.monotonic() >= deadline:
                return health
            time.sleep(2.0)
