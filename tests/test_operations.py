"""Tenant operations (vcluster_mgr.operations), offline: what apply checks before the engine runs.

Covers: the expiry a run gives (the job's own, else the one recorded, else now + ttl; none without a ttl);
the data-loss guard (a control plane without persistence whose Helm values change is refused, unless allowed;
nothing recorded, persistence on or the same values pass); the cluster identity check (another cluster's
stack is refused, naming both identities; a stack from before identities were recorded passes); that
``prepare`` renders each tenant once and carries the count of its resources, and carries a tenant that cannot
be rendered, or whose host cannot be looked up, as that tenant's error; and, with the cluster and the
state replaced by stand-ins that log their calls (connections included; wiring only: the real ones are exercised by
tests/integration/test_engine_runs.py and test_cli_tenants.py), the order of the guards and that a refusal
stops the run before anything later; the guards of one tenant share one connection, closed before
the engine runs, and the host's addresses are looked up on one connection per host cluster.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcluster_mgr import cluster, errors, operations, platformconfig, program, record, render, spec, workspace

REPO = Path(__file__).resolve().parent.parent
VTEAM = REPO / "examples" / "controlplane" / "vteam.yaml"
PAYMENTS = REPO / "examples" / "tenants" / "payments.yaml"
ANALYTICS = REPO / "examples" / "tenants" / "analytics.yaml"
POLICY = spec.load_policy(REPO / "examples" / "policy.yaml")
BLUEPRINT = platformconfig.Blueprint(POLICY)
TARGET = platformconfig.Target("east", "/nowhere/kubeconfig")
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
HOST_API = [{"ip": "10.96.0.1", "port": 443}]


def _tenant(path: Path, **changes: Any) -> spec.Tenant:
    doc = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return spec.parse_spec(doc, source=str(path), policy=POLICY)


def _ephemeral_vteam(persistence: bool = False) -> spec.Tenant:
    return _tenant(VTEAM, **{"spec.controlPlane.persistence": {"enabled": False}} if not persistence else {})


class _Connection:
    """A stand-in for ``cluster.Connection``: its target, and whether its block ended."""

    def __init__(self, target: platformconfig.Target) -> None:
        self.target = target
        self.closed = False

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed = True


def _connections(monkeypatch: pytest.MonkeyPatch) -> list[_Connection]:
    """Replace ``cluster.connect``; the connections opened, in order."""
    opened: list[_Connection] = []

    def connect(target: platformconfig.Target, **_kwargs: Any) -> _Connection:
        opened.append(_Connection(target))
        return opened[-1]

    monkeypatch.setattr(cluster, "connect", connect)
    return opened


def _recorded(tenant: spec.Tenant, rendered: program.Rendered, **kwargs: Any) -> record.TenantRecord:
    return record.read(program.tenant_record(tenant, TARGET, BLUEPRINT, rendered, **kwargs).to_outputs())


# ---------------------------------------------------------------------------------------------
# Expiry
# ---------------------------------------------------------------------------------------------


def test_expiry_without_a_ttl_is_none() -> None:
    job = operations.Job(_tenant(PAYMENTS), TARGET, BLUEPRINT)
    assert operations.expiry_of(job, None, NOW) is None
    assert operations.expiry_of(job, record.read({"expiresAt": "2025-01-01T00:00:00Z"}), NOW) is None


def test_expiry_of_a_new_ttl_tenant_is_now_plus_ttl() -> None:
    job = operations.Job(_tenant(PAYMENTS, **{"spec.ttl": "2h"}), TARGET, BLUEPRINT)
    assert operations.expiry_of(job, None, NOW) == "2025-01-02T05:04:05Z"
    assert operations.expiry_of(job, record.read({}), NOW) == "2025-01-02T05:04:05Z"


def test_a_reapply_keeps_the_recorded_expiry() -> None:
    job = operations.Job(_tenant(PAYMENTS, **{"spec.ttl": "2h"}), TARGET, BLUEPRINT)
    assert operations.expiry_of(job, record.read({"expiresAt": "2025-01-02T04:00:00Z"}), NOW) == "2025-01-02T04:00:00Z"


def test_the_jobs_own_expiry_wins() -> None:
    job = operations.Job(_tenant(PAYMENTS, **{"spec.ttl": "2h"}), TARGET, BLUEPRINT, expires_at="2030-01-01T00:00:00Z")
    assert operations.expiry_of(job, record.read({"expiresAt": "2025-01-02T04:00:00Z"}), NOW) == "2030-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------
# The data-loss guard
# ---------------------------------------------------------------------------------------------


def test_changing_a_control_plane_without_persistence_is_refused() -> None:
    before = _ephemeral_vteam()
    recorded = _recorded(before, program.render_tenant(before, BLUEPRINT, host_api=HOST_API))
    after = _tenant(VTEAM, **{"spec.controlPlane.persistence": {"enabled": False},
                              "spec.controlPlane.resources.requests.cpu": "300m"})
    rendered = program.render_tenant(after, BLUEPRINT, host_api=HOST_API)
    job = operations.Job(after, TARGET, BLUEPRINT)
    with pytest.raises(errors.ProvisionError, match=r"refusing to change the control plane of vteam.*allow-data-loss"):
        operations.check_data_kept(job, rendered, recorded, asleep=False)
    # putting it to sleep changes its values too
    same = program.render_tenant(before, BLUEPRINT, host_api=HOST_API)
    with pytest.raises(errors.ProvisionError, match="EMPTY"):
        operations.check_data_kept(operations.Job(before, TARGET, BLUEPRINT), same, recorded, asleep=True)


def test_the_data_loss_guard_lets_through_what_loses_nothing() -> None:
    before = _ephemeral_vteam()
    rendered = program.render_tenant(before, BLUEPRINT, host_api=HOST_API)
    recorded = _recorded(before, rendered)
    changed = _tenant(VTEAM, **{"spec.controlPlane.persistence": {"enabled": False},
                                "spec.controlPlane.resources.requests.cpu": "300m"})
    changed_render = program.render_tenant(changed, BLUEPRINT, host_api=HOST_API)
    # the same values
    operations.check_data_kept(operations.Job(before, TARGET, BLUEPRINT), rendered, recorded, asleep=False)
    # told to
    operations.check_data_kept(operations.Job(changed, TARGET, BLUEPRINT, allow_data_loss=True), changed_render,
                               recorded, asleep=False)
    # nothing recorded to compare with: a new tenant, or a stack from before digests were recorded
    operations.check_data_kept(operations.Job(changed, TARGET, BLUEPRINT), changed_render, None, asleep=False)
    old = record.read(recorded.to_outputs() | {"controlPlane": {"enabled": True}})
    operations.check_data_kept(operations.Job(changed, TARGET, BLUEPRINT), changed_render, old, asleep=False)
    # with persistence the data outlives the pod
    kept = _tenant(VTEAM, **{"spec.controlPlane.resources.requests.cpu": "300m"})
    operations.check_data_kept(operations.Job(kept, TARGET, BLUEPRINT),
                               program.render_tenant(kept, BLUEPRINT, host_api=HOST_API), recorded, asleep=False)


# ---------------------------------------------------------------------------------------------
# Cluster identity
# ---------------------------------------------------------------------------------------------


def test_a_stack_of_another_cluster_is_refused() -> None:
    with pytest.raises(errors.ProvisionError) as caught:
        workspace.check_cluster_identity(TARGET, "east.payments", "uid-old", "uid-new")
    text = str(caught.value)
    assert "uid-old" in text and "uid-new" in text and "Nothing was changed" in text and "/nowhere/kubeconfig" in text
    workspace.check_cluster_identity(TARGET, "east.payments", "uid-same", "uid-same")
    workspace.check_cluster_identity(TARGET, "east.payments", None, "uid-new")  # bound from its next apply


# ---------------------------------------------------------------------------------------------
# prepare: each tenant rendered once
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def renders(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """How many times the tenant's objects and its control plane's values are rendered."""
    counts = {"objects": 0, "values": 0}
    objects, values = render.render_tenant, render.control_plane_values

    def count_objects(*args: Any, **kwargs: Any) -> Any:
        counts["objects"] += 1
        return objects(*args, **kwargs)

    def count_values(*args: Any, **kwargs: Any) -> Any:
        counts["values"] += 1
        return values(*args, **kwargs)

    monkeypatch.setattr(render, "render_tenant", count_objects)
    monkeypatch.setattr(render, "control_plane_values", count_values)
    _connections(monkeypatch)
    monkeypatch.setattr(cluster, "host_api_addresses", lambda _conn: list(HOST_API))
    yield counts


def test_prepare_renders_each_tenant_once_and_counts_its_resources(renders: dict[str, int]) -> None:
    tenants = [_tenant(PAYMENTS), _tenant(VTEAM)]
    work = operations.prepare([operations.Job(t, TARGET, BLUEPRINT) for t in tenants], "apply")
    assert renders == {"objects": 2, "values": 1}
    payments, vteam = work
    assert payments.rendered is not None and vteam.rendered is not None
    assert payments.resources == len(render.render_tenant(tenants[0], policy=POLICY)) + 1
    assert vteam.resources == len(vteam.rendered.objects) + 2
    assert vteam.rendered.host_api == tuple(HOST_API) and payments.rendered.host_api == ()
    renders.update(objects=0, values=0)
    # what the guard and the record need of the rendering, and the program itself, render nothing again
    job = vteam.job
    operations.check_data_kept(job, vteam.rendered, _recorded(job.tenant, vteam.rendered), asleep=True)
    program.tenant_program(job.tenant, TARGET, BLUEPRINT, vteam.rendered)
    assert renders == {"objects": 0, "values": 0}


def test_a_delete_renders_nothing(renders: dict[str, int]) -> None:
    work = operations.prepare([operations.Job(_tenant(VTEAM), TARGET, BLUEPRINT)], "delete")
    assert renders == {"objects": 0, "values": 0}
    assert work[0].rendered is None and work[0].error is None


def test_the_host_is_asked_once_per_cluster(monkeypatch: pytest.MonkeyPatch, renders: dict[str, int]) -> None:
    asked: list[str] = []
    opened = _connections(monkeypatch)
    monkeypatch.setattr(cluster, "host_api_addresses", lambda conn: asked.append(conn.target.name) or HOST_API)
    west = platformconfig.Target("west", None)
    jobs = [operations.Job(_tenant(VTEAM, **{"metadata.name": name}), target, BLUEPRINT)
            for name, target in (("va", TARGET), ("vb", TARGET), ("vc", west))]
    operations.prepare([*jobs, operations.Job(_tenant(PAYMENTS), west, BLUEPRINT)], "plan")
    assert asked == ["east", "west"]
    assert [c.target.name for c in opened] == ["east", "west"] and all(c.closed for c in opened)


def test_a_tenant_that_cannot_be_prepared_carries_its_error(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    def unreachable(conn: _Connection) -> list[dict[str, Any]]:
        raise errors.UnreachableError(f"the API server of {conn.target.name} is not reachable", server="https://east")

    _connections(monkeypatch)
    monkeypatch.setattr(cluster, "host_api_addresses", unreachable)
    (tmp_path / "tenant").mkdir()
    (tmp_path / "tenant" / "namespace.yaml.j2").write_text("{{ no_such_value }}\n")
    broken = platformconfig.Blueprint(POLICY, str(tmp_path))
    work = operations.prepare([operations.Job(_tenant(VTEAM), TARGET, BLUEPRINT),
                               operations.Job(_tenant(PAYMENTS), TARGET, broken),
                               operations.Job(_tenant(ANALYTICS), TARGET, BLUEPRINT)],
                              "apply")
    assert [w.error is not None for w in work] == [True, True, False]
    assert "not reachable" in str(work[0].error) and work[0].resources is None
    assert "no_such_value" in str(work[1].error)
    assert work[2].resources is not None


# ---------------------------------------------------------------------------------------------
# check: the guards in order (the cluster and the state replaced by stand-ins that log their calls)
# ---------------------------------------------------------------------------------------------


class _Stand:
    """The host cluster and the state as ``check`` sees them, each call logged."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, found: record.TenantRecord | None, uid: str = "uid-1") -> None:
        self.calls: list[str] = []
        self.owned_by_other = False
        self.opened = _connections(monkeypatch)

        def cluster_uid(conn: _Connection) -> str:
            assert conn is self.opened[-1] and not conn.closed
            self.calls.append("cluster identity")
            return uid

        def find(_s: Any, _cluster: str, _tenant: str) -> record.TenantRecord | None:
            self.calls.append("record")
            return found

        def ownership(conn: _Connection, *_args: Any) -> None:
            assert conn is self.opened[-1] and not conn.closed
            self.calls.append("ownership")
            if self.owned_by_other:
                raise errors.ProvisionError("namespace vteam-cp belongs to stack vcm-tenants/east.other")

        def kubeconfig(conn: _Connection, *_args: Any, **_kwargs: Any) -> str | None:
            assert conn is self.opened[-1] and not conn.closed
            self.calls.append("kubeconfig")
            return None

        monkeypatch.setattr(cluster, "cluster_uid", cluster_uid)
        monkeypatch.setattr(workspace, "find_tenant_record", find)
        monkeypatch.setattr(cluster, "check_ownership", ownership)
        monkeypatch.setattr(cluster, "control_plane_kubeconfig", kubeconfig)


SETTINGS: Any = object()


def _prepared(tenant: spec.Tenant, **job: Any) -> operations.Prepared:
    return operations.Prepared(operations.Job(tenant, TARGET, BLUEPRINT, **job),
                               program.render_tenant(tenant, BLUEPRINT, host_api=HOST_API))


def test_check_runs_every_guard_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = _tenant(VTEAM)
    item = _prepared(tenant)
    recorded = _recorded(tenant, item.rendered, cluster_uid="uid-1", asleep=True)  # type: ignore[arg-type]
    stand = _Stand(monkeypatch, recorded)
    checked = operations.check(SETTINGS, item, "apply")
    assert stand.calls == ["cluster identity", "record", "ownership", "kubeconfig"]
    assert len(stand.opened) == 1 and stand.opened[0].closed, "one connection for every guard, closed after"
    assert checked.recorded == recorded and checked.cluster_uid == "uid-1"
    assert checked.asleep is True, "asleep as the stack recorded it"
    assert checked.kubeconfig is None and "does not exist yet" in checked.notes[0]
    stand.calls.clear()
    assert operations.check(SETTINGS, item, "plan").notes == ()
    assert stand.calls == ["cluster identity", "record", "ownership"]
    stand.calls.clear()
    operations.check(SETTINGS, operations.Prepared(item.job), "delete")
    assert stand.calls == ["cluster identity", "record"]


def test_another_clusters_stack_stops_before_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = _tenant(VTEAM)
    item = _prepared(tenant)
    stand = _Stand(monkeypatch, _recorded(tenant, item.rendered, cluster_uid="uid-old"),  # type: ignore[arg-type]
                   uid="uid-new")
    with pytest.raises(errors.ProvisionError, match="uid-old"):
        operations.check(SETTINGS, item, "apply")
    assert stand.calls == ["cluster identity", "record"]


def test_someone_elses_namespaces_stop_before_the_data_loss_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _ephemeral_vteam()
    recorded = _recorded(before, program.render_tenant(before, BLUEPRINT, host_api=HOST_API))
    changed = _tenant(VTEAM, **{"spec.controlPlane.persistence": {"enabled": False},
                                "spec.controlPlane.resources.requests.cpu": "300m"})
    stand = _Stand(monkeypatch, recorded)
    stand.owned_by_other = True
    with pytest.raises(errors.ProvisionError, match="belongs to stack"):
        operations.check(SETTINGS, _prepared(changed), "apply")
    stand.owned_by_other = False
    with pytest.raises(errors.ProvisionError, match="refusing to change"):
        operations.check(SETTINGS, _prepared(changed), "apply")
    assert stand.calls[-1] == "ownership", "refused before the control plane's kubeconfig was read"
    operations.check(SETTINGS, _prepared(changed), "plan")  # a plan changes nothing: no data-loss guard


def test_a_tenant_that_could_not_be_prepared_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    stand = _Stand(monkeypatch, None)
    item = operations.Prepared(operations.Job(_tenant(PAYMENTS), TARGET, BLUEPRINT), error="template broke")
    with pytest.raises(errors.ProvisionError, match="template broke"):
        operations.check(SETTINGS, item, "apply")
    assert stand.calls == [] and stand.opened == []


def test_a_prepared_tenant_crosses_to_a_worker_whole() -> None:
    """What a worker process receives is pickled: it arrives equal, rendering included."""
    item = _prepared(_tenant(VTEAM), expires_at="2030-01-01T00:00:00Z")
    arrived = pickle.loads(pickle.dumps(item))  # noqa: S301 - our own object, made just above
    assert arrived == item and arrived.job.stack_name == "east.vteam" and arrived.resources == item.resources
    assert arrived.job.tenant.source == str(VTEAM)
