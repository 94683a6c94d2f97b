"""Tenant operations: the verbs the CLI calls on tenants, with everything they check before the engine runs.

``vcm plan`` / ``apply`` (and ``ephemeral create``, ``sleep``, ``wake``) build a ``Job`` per tenant, then:

1. ``prepare`` (here, once per run): each tenant is rendered once (``program.render_tenant``), with the host
   API server's addresses looked up once per host cluster for tenants with a control plane. The count of
   its resources travels with it to the progress bar, its objects to the worker that applies it.
2. ``run`` sends each to a worker (``workspace.run_jobs``), which calls ``check`` (the guards, below) and
   then the engine (``workspace.run_stack``) with the tenant's program.

What apply checks before the engine runs, in this order (``check``): the host cluster's identity against the
one the stack recorded; that no one else owns the tenant's namespaces (plan too); the expiry (kept from the
record, else now + ttl); asleep or awake (kept from the record unless asked); the data-loss guard (a control
plane without persistence whose values change what holds its data, ``check_data_kept``); what changes of the control
plane's chart and images against the last apply, as a note (plan too: an upgrade is named before it is made); the
control plane's kubeconfig, if it wrote one yet.
Delete checks the identity too (``delete_tenant``), as does the platform's apply (``platform_apply``).

Also ``status`` (one tenant as the state, the history and the cluster show it now), ``verify_tenant`` and
``record_verify`` (the one trace ``vcm verify`` leaves). Nothing here prints or exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from vcluster_mgr import (
    cluster,
    controlplane_health,
    errors,
    fingerprint,
    lifecycle,
    naming,
    platformconfig,
    program,
    progress_events,
    record,
    spec,
    usage,
    verify,
    workspace,
)


@dataclasses.dataclass(frozen=True)
class Job:
    """One tenant to plan, apply or delete on one host cluster (picklable: it crosses processes)."""

    tenant: spec.Tenant
    target: platformconfig.Target
    blueprint: platformconfig.Blueprint
    #: RFC 3339 expiry of a tenant with a ttl; None: kept from the stack, else now + ttl
    expires_at: str | None = None
    #: control plane scaled to zero; None: as the stack recorded it (awake for a new tenant)
    asleep: bool | None = None
    #: apply a change of the control plane's values even though it keeps no data (persistence off)
    allow_data_loss: bool = False

    @property
    def stack_name(self) -> str:
        return workspace.tenant_stack_name(self.target.name, self.tenant.name)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A job with its tenant rendered (``prepare``): what a worker receives."""

    job: Job
    #: the tenant rendered once for this run; None for a delete (the engine runs no program then) or an error
    rendered: program.Rendered | None = None
    #: why it could not be rendered (or the host looked up): the tenant's failure, reported by its worker
    error: str | None = None

    @property
    def resources(self) -> int | None:
        """The resources its program declares (the progress bar's total); None if unknown."""
        return self.rendered.resources if self.rendered is not None else None


def prepare(jobs: Sequence[Job], action: str) -> list[Prepared]:
    """Render each job's tenant once for ``action``; for plan and apply, a tenant with a control plane gets
    the addresses where pods reach its host's API server (looked up once per host cluster, for its egress).
    A tenant that cannot be rendered carries its error to its worker, which reports it as its failure."""
    if action == "delete":
        return [Prepared(job) for job in jobs]
    addresses: dict[str, list[dict[str, Any]] | errors.VcmError] = {}
    prepared = []
    for job in jobs:
        try:
            host_api: list[dict[str, Any]] = []
            if job.tenant.spec.control_plane.enabled:
                if job.target.name not in addresses:
                    try:
                        with cluster.connect(job.target) as conn:
                            addresses[job.target.name] = cluster.host_api_addresses(conn)
                    except errors.VcmError as exc:
                        addresses[job.target.name] = exc
                found = addresses[job.target.name]
                if isinstance(found, errors.VcmError):
                    raise found
                host_api = found
            prepared.append(Prepared(job, program.render_tenant(job.tenant, job.blueprint, host_api=host_api)))
        except errors.VcmError as exc:
            prepared.append(Prepared(job, error=str(exc)))
    return prepared


@dataclasses.dataclass(frozen=True)
class Checked:
    """What the guards found and decided for one run of a tenant's stack."""

    #: what the stack recorded at its last apply (None: no stack yet)
    recorded: record.TenantRecord | None
    #: the identity of the host cluster it runs against (``cluster.cluster_uid``)
    cluster_uid: str
    expires_at: str | None
    asleep: bool
    #: the control plane's kubeconfig, for its stack's secret output (None: none, or not written yet)
    kubeconfig: str | None = None
    notes: tuple[str, ...] = ()


def expiry_of(job: Job, recorded: record.TenantRecord | None, now: datetime.datetime) -> str | None:
    """A ttl tenant keeps the expiry its stack recorded (a re-apply does not extend it); a new one gets
    ``now`` + ttl. The job's own expiry wins. Tenants without a ttl never expire."""
    if job.expires_at:
        return job.expires_at
    if not job.tenant.spec.ttl:
        return None
    if recorded is not None and recorded.expires_at:
        return recorded.expires_at
    moment = lifecycle.expiry(job.tenant, now)
    return lifecycle.format_expiry(moment) if moment else None


def data_kept(rendered: program.Rendered, was: record.ControlPlane, asleep: bool) -> bool:
    """Whether applying ``rendered`` (``asleep`` or not) leaves alone the pod that holds the data of a control plane
    recorded as ``was``: its data digest unchanged (with ``backingStore: etcd``, the etcd's values only), or, for a
    record written before data digests, all its values unchanged. Pure: the guard's decision, tested offline."""
    if was.data_digest:
        return rendered.data_digest(asleep=asleep) == was.data_digest
    return rendered.values_digest(asleep=asleep) == was.values_digest


def check_data_kept(job: Job, rendered: program.Rendered, recorded: record.TenantRecord | None,
                    asleep: bool) -> None:
    """Refuse to update the Helm release of a control plane that keeps its data in an emptyDir when the update may
    restart the pod that holds it (the control plane's, or etcd's with ``backingStore: etcd``): the virtual cluster
    would come back empty, and its syncer would then delete the tenant's host pods."""
    cp = job.tenant.spec.control_plane
    was = recorded.control_plane if recorded is not None else None
    if not cp.enabled or cp.persistence.enabled or was is None or not was.values_digest or job.allow_data_loss:
        return
    if not data_kept(rendered, was, asleep):
        holder = "its etcd's pod" if program.etcd_deployed((rendered.control_plane or {}).get("values", {})) \
            else "its pod"
        raise errors.ProvisionError(
            f"refusing to change the control plane of {job.tenant.name}: it has no persistence "
            f"(spec.controlPlane.persistence.enabled: false), so the new Helm values may restart {holder}, which "
            "holds its data, and the virtual cluster would come back EMPTY (and its syncer would then delete the "
            "tenant's host pods). Enable persistence, or rerun with --allow-data-loss")


def _release_summary(release: dict[str, Any]) -> dict[str, str]:
    """What a user reads of a control plane release: its chart version and source, the syncer and distro images."""
    chart, cp = release["chart"], release["values"].get("controlPlane", {})
    image = cp.get("statefulSet", {}).get("image", {})
    k8s = cp.get("distro", {}).get("k8s", {})
    source = next((f"{kind} {chart[kind]}" for kind in ("path", "repository", "oci") if chart.get(kind)), "")
    return {"chart": str(chart.get("version") or "?"), "source": source,
            "syncer image": f"{image.get('repository', '?')}:{image.get('tag') or chart.get('version')}",
            "Kubernetes": str(k8s.get("version") or (k8s.get("image") or {}).get("tag") or "the chart's default")}


def control_plane_changes(job: Job, rendered: program.Rendered, recorded: record.TenantRecord | None) -> list[str]:
    """What applying ``rendered`` changes of the control plane's chart and images against what was last applied
    (rendered again from the recorded spec and policy), as one note: ``vcm plan`` says an upgrade before it is made.
    Nothing when there is no earlier apply to compare with, or it can no longer be rendered."""
    new = rendered.release()
    if new is None or recorded is None or not recorded.control_plane.enabled:
        return []
    try:
        tenant, policy = recorded.applied_tenant(), recorded.applied_policy()
        if tenant is None:
            return []
        was = program.control_plane_args(tenant, platformconfig.Blueprint(policy or job.blueprint.policy,
                                                                         job.blueprint.templates_dir))
    except errors.VcmError:
        return []
    if was is None:
        return []
    before, after = _release_summary(was), _release_summary(new)
    changed = [f"{key} {before[key]} -> {after[key]}" for key in ("chart", "syncer image", "Kubernetes")
               if before[key] != after[key]]
    if before["source"] != after["source"] and before["chart"] == after["chart"]:
        changed.append(f"chart source {before['source']} -> {after['source']}")
    if not changed:
        return []
    return ["control plane: " + ", ".join(changed) + " (its pod is replaced)"]


def check(s: workspace.Settings, item: Prepared, action: str) -> Checked:
    """Every check and look-up before the engine runs one tenant's stack (the order is the module's)."""
    job = item.job
    if item.error is not None:
        raise errors.ProvisionError(item.error)
    with cluster.connect(job.target) as conn:  # one for the guards, closed before the engine runs
        uid = cluster.cluster_uid(conn)
        recorded = workspace.find_tenant_record(s, job.target.name, job.tenant.name)
        workspace.check_cluster_identity(job.target, job.stack_name, recorded.cluster_uid if recorded else None,
                                         uid)
        if action in ("apply", "plan"):
            cluster.check_ownership(conn, job.tenant.name, job.tenant.namespace_names(),
                                    f"{workspace.TENANT_PROJECT}/{job.stack_name}")
        expires_at = expiry_of(job, recorded, lifecycle.utc_now())
        asleep = job.asleep if job.asleep is not None else bool(recorded and recorded.asleep)
        if action == "apply" and item.rendered is not None:
            check_data_kept(job, item.rendered, recorded, asleep)
        kubeconfig: str | None = None
        notes: tuple[str, ...] = ()
        if action in ("apply", "plan") and item.rendered is not None:
            notes += tuple(control_plane_changes(job, item.rendered, recorded))
        if job.tenant.spec.control_plane.enabled and action == "apply":
            kubeconfig = cluster.control_plane_kubeconfig(conn, job.tenant)
            if kubeconfig is None:
                notes += ("control plane: its kubeconfig Secret does not exist yet (the virtual cluster writes it "
                          "once running); `vcm kubeconfig` waits for it",)
    return Checked(recorded, uid, expires_at, asleep, kubeconfig, notes)


def _no_program() -> None:
    """The program of a delete: the engine destroys what the state holds and runs no program."""


def _run_one(s: workspace.Settings, item: Prepared, action: str, events: Any) -> workspace.Outcome:
    """One tenant in a worker: its guards, then its stack's engine run."""
    job = item.job

    def stack_run() -> workspace.StackRun:
        checked = check(s, item, action)
        if item.rendered is None:
            fn = _no_program
        else:
            fn = program.tenant_program(job.tenant, job.target, job.blueprint, item.rendered,
                                        expires_at=checked.expires_at, asleep=checked.asleep,
                                        kubeconfig=checked.kubeconfig, cluster_uid=checked.cluster_uid)
        return workspace.StackRun(job.stack_name, job.target, fn, exists=checked.recorded is not None,
                                  notes=list(checked.notes))

    return workspace.run_stack(s, job.tenant.name, job.target.name, action, events, stack_run)


def _names(item: Prepared) -> tuple[str, str]:
    return item.job.tenant.name, item.job.target.name


#: the reason given for every tenant when the fast path is turned off (``--full``)
FULL = "--full: the engine runs for every tenant"

#: at most this many tenants are named in one LIST's label selector; more are listed by the label's presence
#: and picked out here (a selector naming a thousand tenants makes a URL some servers refuse)
SELECTOR_NAMES = 50


class _Connections:
    """One connection per host cluster for all of a run's proofs (the identity read and the LISTs), opened
    on first use and closed together: a TLS handshake and a kubeconfig load fewer per host cluster."""

    def __init__(self) -> None:
        self._open: dict[str, cluster.Connection] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def to(self, target: platformconfig.Target) -> cluster.Connection:
        if target.name not in self._open:
            self._open[target.name] = self._stack.enter_context(cluster.connect(target))
        return self._open[target.name]


def _live_digests(conn: cluster.Connection, kinds: set[tuple[str, str]], tenants: set[str]) -> dict[str, str]:
    """``fingerprint.object_key`` -> content digest of every object of ``kinds`` labelled as one of
    ``tenants``: one label-selected LIST per kind, for all of them together."""
    names = sorted(tenants)
    selector = (f"{naming.TENANT_LABEL} in ({','.join(names)})" if len(names) <= SELECTOR_NAMES
                else naming.TENANT_LABEL)
    return cluster.live_digests(
        conn, kinds, selector,
        keep=lambda obj: (obj.get("metadata") or {}).get("labels", {}).get(naming.TENANT_LABEL) in tenants)


def _state_objects(held: fingerprint.Fingerprint) -> frozenset[tuple[str, str]]:
    """The fingerprint's objects as the state names them (``fingerprint.state_objects``)."""
    return fingerprint.state_objects(held.objects)


def prove(s: workspace.Settings, prepared: Sequence[Prepared]) -> list[str | None]:
    """Per prepared tenant: None when its fingerprint holds, so a refresh and an update would change nothing
    and the engine need not start; else why the engine runs.

    Offline first, per tenant: its stack's record and fingerprint (``record.fingerprint``), its last run
    settled and its state holding exactly the fingerprinted objects (``workspace.tenant_settled``: a file
    backend's checkpoint, history and locks), the host cluster the same, and the desired digest computed now
    (``program.desired_parts``) equal to the recorded one. Then, for the tenants still in, one label-selected
    LIST per kind and host cluster for all of them together, and ``fingerprint.verdict``."""
    with _Connections() as conns:
        return _prove(s, prepared, conns)


def _prove(s: workspace.Settings, prepared: Sequence[Prepared], conns: _Connections) -> list[str | None]:
    reasons: list[str | None] = []
    candidates: dict[int, tuple[platformconfig.Target, str, fingerprint.Fingerprint, str]] = {}
    uids: dict[str, str | errors.VcmError] = {}
    for index, item in enumerate(prepared):
        job = item.job
        why, recorded, uid = _recorded_reason(s, job.target, job.tenant.name, uids, conns)
        if why is None and item.rendered is None:
            why = "it was not rendered"
        if why is None and (job.asleep is not None or job.allow_data_loss or job.expires_at):
            why = "the run changes its stack's settings"
        if why is None and recorded is not None and recorded.fingerprint is not None and item.rendered is not None:
            desired = fingerprint.desired_digest(program.desired_parts(
                job.tenant, job.target, job.blueprint, item.rendered,
                expires_at=expiry_of(job, recorded, lifecycle.utc_now()), asleep=recorded.asleep, cluster_uid=uid))
            if desired != recorded.fingerprint.desired:
                why = "the desired state changed"
            else:
                candidates[index] = (job.target, job.tenant.name, recorded.fingerprint, desired)
        reasons.append(why)
    return _verdicts(reasons, candidates, conns)


def unchanged_on_cluster(s: workspace.Settings, tenants: Sequence[tuple[platformconfig.Target, str]]
                         ) -> list[str | None]:
    """Per (host cluster, tenant) applied: None when its fingerprint proves the cluster still holds what its
    last apply left (``vcm drift``: no drift, without reading its state's objects one by one); else why the
    full comparison runs. As ``prove``, without the desired state (drift compares the cluster with the state)."""
    reasons: list[str | None] = []
    candidates: dict[int, tuple[platformconfig.Target, str, fingerprint.Fingerprint, str]] = {}
    uids: dict[str, str | errors.VcmError] = {}
    with _Connections() as conns:
        for index, (target, name) in enumerate(tenants):
            why, recorded, _ = _recorded_reason(s, target, name, uids, conns)
            if why is None and recorded is not None and recorded.fingerprint is not None:
                if recorded.host_api is not None:
                    why = "its control plane's host API addresses are compared in full"
                else:
                    candidates[index] = (target, name, recorded.fingerprint, recorded.fingerprint.desired)
            reasons.append(why)
        return _verdicts(reasons, candidates, conns)


def _recorded_reason(s: workspace.Settings, target: platformconfig.Target, name: str,
                     uids: dict[str, str | errors.VcmError], conns: _Connections,
                     ) -> tuple[str | None, record.TenantRecord | None, str]:
    """(why the engine must run, from what needs neither the desired state nor a LIST, or None; the record;
    the host cluster's identity, looked up once per host cluster in ``uids``)."""
    recorded = workspace.find_tenant_record(s, target.name, name)
    if recorded is None:
        return "a new tenant", None, ""
    held = recorded.fingerprint
    if held is None:
        return "no fingerprint recorded", recorded, ""
    why = fingerprint.provable(held.objects)
    if why:
        return why, recorded, ""
    settled = workspace.tenant_settled(s, target.name, name)
    if settled is None:
        return "this backend's run history is not read here", recorded, ""
    if settled.why:
        return settled.why, recorded, ""
    if settled.objects != _state_objects(held):
        return "its state holds other objects than were fingerprinted (the state was edited)", recorded, ""
    if target.name not in uids:
        try:
            uids[target.name] = cluster.cluster_uid(conns.to(target))
        except errors.VcmError as exc:
            uids[target.name] = exc
    uid = uids[target.name]
    if isinstance(uid, errors.VcmError) or recorded.cluster_uid != uid:
        return "the host cluster's identity is not the recorded one", recorded, ""
    return None, recorded, uid


def _verdicts(reasons: list[str | None],
              candidates: dict[int, tuple[platformconfig.Target, str, fingerprint.Fingerprint, str]],
              conns: _Connections) -> list[str | None]:
    """``reasons`` with each candidate's ``fingerprint.verdict`` filled in: the live objects read with one
    label-selected LIST per kind and host cluster for all candidates together."""
    by_target: dict[str, list[int]] = {}
    for index, (target, _, _, _) in candidates.items():
        by_target.setdefault(target.name, []).append(index)
    for indexes in by_target.values():
        target = candidates[indexes[0]][0]
        # only kinds there is a LIST for (a candidate holds no other: ``fingerprint.provable`` was asked first)
        kinds = {fingerprint.kind_of(key) for i in indexes for key in candidates[i][2].objects}
        kinds &= set(fingerprint.PROVABLE)
        try:
            live = _live_digests(conns.to(target), kinds, {candidates[i][1] for i in indexes})
        except errors.VcmError as exc:
            for i in indexes:
                reasons[i] = f"the live objects could not be read ({exc})"
            continue
        for i in indexes:
            _, _, held, desired = candidates[i]
            reasons[i] = fingerprint.verdict(held, desired, live)
    return reasons


#: what the engine counts besides the program's resources: the stack itself and its provider
ENGINE_OWN_RESOURCES = 2


def _unchanged(item: Prepared, action: str) -> workspace.Outcome:
    """The outcome of a tenant whose fingerprint holds: nothing to change, no engine started; counted as the
    engine would count a run that changed nothing."""
    return workspace.Outcome(item.job.tenant.name, item.job.target.name, action, True,
                             {"same": (item.resources or 0) + ENGINE_OWN_RESOURCES}, 0.0,
                             path=workspace.FINGERPRINT_PATH,
                             steps=["no change: its fingerprint holds (the engine was not started)"])


def run(s: workspace.Settings, prepared: Sequence[Prepared], action: str, *, parallel: int = 1,
        progress: workspace.Progress | None = None, full: bool = False) -> list[workspace.Outcome]:
    """Plan, apply or delete the prepared tenants, ``parallel`` stacks at a time (``workspace.run_jobs``).

    For plan and apply, unless ``full``, a tenant whose fingerprint holds (``prove``) is reported unchanged
    without starting the engine; each outcome says which path it took (``path``) and, for the engine, why."""
    if action == "delete":
        return workspace.run_jobs(s, prepared, action, _run_one, names=_names, parallel=parallel,
                                  progress=progress)
    reasons = [FULL] * len(prepared) if full else prove(s, prepared)
    report = progress or (lambda _t, _m: None)
    outcomes: dict[int, workspace.Outcome] = {}
    for index, (item, why) in enumerate(zip(prepared, reasons, strict=True)):
        if why is None:
            tenant = item.job.tenant.name
            report(tenant, progress_events.started(action))
            report(tenant, progress_events.notice("no change: fingerprint holds, engine not started"))
            outcomes[index] = _unchanged(item, action)
            report(tenant, progress_events.finished(True))
    engine = [i for i, why in enumerate(reasons) if why is not None]
    ran = workspace.run_jobs(s, [prepared[i] for i in engine], action, _run_one, names=_names,
                             parallel=parallel, progress=progress)
    for i, outcome in zip(engine, ran, strict=True):
        outcome.why = reasons[i]
        outcomes[i] = outcome
    return [outcomes[i] for i in range(len(prepared))]


def run_jobs(s: workspace.Settings, jobs: Sequence[Job], action: str, *, parallel: int = 1,
             progress: workspace.Progress | None = None, full: bool = False) -> list[workspace.Outcome]:
    """``prepare`` and ``run`` in one call (when no progress bar needs the counts in between)."""
    if action not in ("plan", "apply", "delete"):
        raise errors.UsageError(f"unknown action {action}")
    return run(s, prepare(jobs, action), action, parallel=parallel, progress=progress, full=full)


def delete_tenant(s: workspace.Settings, target: platformconfig.Target, tenant: str, *,
                  progress: workspace.Progress | None = None, unprotect: bool = False) -> workspace.Outcome:
    """Destroy a tenant's objects and remove its stack, once its stack is known and belongs to ``target``;
    deletion protection as ``workspace.delete_tenant`` says."""
    recorded = workspace.tenant_record(s, target.name, tenant)
    with cluster.connect(target) as conn:
        uid = cluster.cluster_uid(conn)
    workspace.check_cluster_identity(target, workspace.tenant_stack_name(target.name, tenant), recorded.cluster_uid,
                                     uid)
    return workspace.delete_tenant(s, target, tenant, progress=progress, unprotect=unprotect)


def platform_apply(s: workspace.Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint, *,
                   progress: workspace.Progress | None = None) -> workspace.Outcome:
    """Apply the platform stack of ``target`` once it is known to belong to that cluster."""
    with cluster.connect(target) as conn:
        uid = cluster.cluster_uid(conn)
    found = workspace.recorded_outputs(s, workspace.PLATFORM_PROJECT, target.name)
    workspace.check_cluster_identity(target, target.name, (found or {}).get(program.CLUSTER_UID_OUTPUT), uid)
    return workspace.platform_apply(s, target, blueprint, cluster_uid=uid, exists=found is not None,
                                    progress=progress)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class TenantStatus:
    """One tenant as ``vcm status`` shows it: its record, and what was read now."""

    record: record.TenantRecord
    #: its quota use (``usage.tenant_usage``'s row), None without a ResourceQuota
    usage: dict[str, Any] | None
    #: the last update in its stack's history: passed, result, at (None: never applied)
    last_apply: dict[str, Any] | None
    #: the drift check run now: passed, at, changes
    drift: dict[str, Any]
    #: the last ``vcm verify`` recorded on its first namespace (None: never verified)
    last_verify: dict[str, Any] | None
    #: its control plane's health, read now (None without one)
    health: controlplane_health.Health | None = None

    def as_data(self) -> dict[str, Any]:
        """What ``vcm status -o json`` prints: the record's outputs and the readings, in camelCase."""
        data = self.record.as_data()
        data |= {"usage": self.usage, "lastApply": self.last_apply, "drift": self.drift,
                 "lastVerify": self.last_verify}
        if self.health is not None:
            data["controlPlaneHealth"] = self.health.as_dict()
        return data


def status(s: workspace.Settings, target: platformconfig.Target, name: str) -> TenantStatus:
    """Tenant ``name`` on ``target``: its record, quota use (live), the last apply (stack history), a drift
    check (run now, the host API server's move included), the last verify, and its control plane's health."""
    recorded = workspace.tenant_record(s, target.name, name)
    update = workspace.last_operations(s, target.name, name).get("update")
    last_apply = ({"passed": update["result"] == "succeeded", "result": update["result"], "at": update["endTime"]}
                  if update else None)
    with cluster.connect(target) as conn:  # one for every read of the cluster below
        namespaces, quotas = cluster.tenant_quotas(conn, tenant=name)
        report = usage.tenant_usage(namespaces, quotas, tenants=[name])
        at = _now()
        changes = cluster.drift(conn, workspace.applied_objects(s, target.name, name))
        last_verify = cluster.last_verify(namespaces)
        changes += cluster.host_api_drift(conn, recorded.host_api_rows())
        health = None
        tenant = recorded.applied_tenant() if recorded.control_plane.enabled else None
        if tenant is not None:
            health = controlplane_health.read(conn, tenant)
    return TenantStatus(recorded, report["tenants"][0] if report["tenants"] else None, last_apply,
                        {"passed": not changes, "at": at, "changes": len(changes)}, last_verify, health)


def verify_tenant(s: workspace.Settings, target: platformconfig.Target, name: str, *,
                  checks: Sequence[verify.Check] | None = None) -> verify.Report:
    """Run the isolation checks for tenant ``name`` of ``target``, as its stack recorded it."""
    return verify.verify_live(target, workspace.tenant_record(s, target.name, name), checks=checks)


def record_verify(target: platformconfig.Target, report: verify.Report, *, partial: bool) -> None:
    """The one trace verify leaves, for ``vcm status``: the result on the tenant's first namespace (a run of
    some checks only is recorded as ``partial``)."""
    if not report.namespaces:
        return
    result: dict[str, Any] = {"passed": report.passed, "at": _now(), **report.counts()}
    if partial:
        result["partial"] = True
    with cluster.connect(target) as conn:
        cluster.record_verify(conn, report.namespaces[0], result)
