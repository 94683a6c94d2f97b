"""The data-loss guard's decision, offline: which values changes may restart the pod that holds a control plane's data.

Covers ``operations.data_kept`` / ``check_data_kept`` with the digests ``program.Rendered`` computes and
``record.ControlPlane`` keeps. Without persistence the virtual cluster's data lives in an emptyDir of one pod:

- with the embedded store (SQLite in the control plane pod) every values change may restart that pod: refused;
- with ``backingStore: etcd`` the data lives in the etcd pod, which only its own section (and the few
  ``controlPlane.advanced`` keys its StatefulSet reads) shapes: a change to the control plane pod alone passes, a
  change to the etcd's is refused (the twin), and so is a move between stores;
- a record written before ``dataDigest`` existed compares all the values, as the guard always did;
- asleep, the etcd is scaled to zero too (nothing of the tenant runs), which the guard refuses without persistence
  and which the chart's values schema accepts;
- the record keeps ``dataDigest`` through its outputs, and older records read without it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vcluster_mgr import errors, operations, platformconfig, program, record, render, spec

REPO = Path(__file__).resolve().parent.parent
VTEAM = REPO / "examples" / "controlplane" / "vteam.yaml"
POLICY = spec.load_policy(REPO / "examples" / "policy.yaml")
BLUEPRINT = platformconfig.Blueprint(POLICY)
TARGET = platformconfig.Target("east", "/nowhere/kubeconfig")
HOST_API = [{"ip": "10.96.0.1", "port": 443}]
SCHEMA = REPO.parent / "shared" / "vendor" / "vcluster-0.36.1" / "values.schema.json"

#: a change to the control plane pod alone (its annotations)
CP_CHANGE = {"controlPlane": {"statefulSet": {"annotations": {"changed": "yes"}}}}
#: a change to the etcd StatefulSet
ETCD_CHANGE = {"controlPlane": {"backingStore": {"etcd": {"deploy": {"statefulSet": {"annotations": {"c": "y"}}}}}}}
#: a key of controlPlane.advanced that the etcd's pod reads too (its image's registry)
REGISTRY_CHANGE = {"controlPlane": {"advanced": {"defaultImageRegistry": "registry.example.com"}}}


def _tenant(store: str, values: dict[str, Any], *, persistence: bool = False) -> spec.Tenant:
    doc = yaml.safe_load(VTEAM.read_text())
    cp = doc["spec"]["controlPlane"]
    cp["backingStore"] = store
    cp["persistence"] = {"enabled": persistence}
    cp["values"] = render.merge_values(cp.get("values") or {}, values)
    return spec.parse_spec(doc, source=str(VTEAM), policy=POLICY)


def _rendered(tenant: spec.Tenant) -> program.Rendered:
    return program.render_tenant(tenant, BLUEPRINT, host_api=HOST_API)


def _recorded(tenant: spec.Tenant, *, asleep: bool = False) -> record.TenantRecord:
    outputs = program.tenant_record(tenant, TARGET, BLUEPRINT, _rendered(tenant), asleep=asleep).to_outputs()
    return record.read(json.loads(json.dumps(outputs)))


def _check(before: spec.Tenant, after: spec.Tenant, *, asleep: bool = False,
           recorded: record.TenantRecord | None = None) -> None:
    was = recorded if recorded is not None else _recorded(before)
    operations.check_data_kept(operations.Job(after, TARGET, BLUEPRINT), _rendered(after), was, asleep)


@pytest.mark.parametrize(
    ("store", "change", "refused"),
    [
        ("embedded", CP_CHANGE, True),
        ("etcd", CP_CHANGE, False),
        ("etcd", ETCD_CHANGE, True),
        ("etcd", REGISTRY_CHANGE, True),
    ],
    ids=["embedded-any-change", "etcd-control-plane-change", "etcd-own-change", "etcd-image-registry"],
)
def test_the_guard_compares_what_holds_the_data(store: str, change: dict[str, Any], refused: bool) -> None:
    before, after = _tenant(store, {}), _tenant(store, change)
    if refused:
        with pytest.raises(errors.ProvisionError, match="no persistence") as caught:
            _check(before, after)
        holder = "its etcd's pod" if store == "etcd" else "its pod"
        assert f"may restart {holder}, which holds its data" in str(caught.value)
    else:
        _check(before, after)


def test_a_chart_upgrade_of_an_etcd_backed_control_plane_leaves_the_etcd_alone() -> None:
    # the syncer's image tag follows the chart version: the control plane pod restarts, the etcd pod does not
    before = _tenant("etcd", {})
    doc = yaml.safe_load(VTEAM.read_text())
    doc["spec"]["controlPlane"] |= {"backingStore": "etcd", "persistence": {"enabled": False},
                                    "chart": {"version": "0.36.0"}}
    older = spec.parse_spec(doc, source=str(VTEAM), policy=POLICY)
    assert _rendered(older).values_digest() != _rendered(before).values_digest()
    _check(older, before)
    # twin: the same upgrade with the embedded store is refused
    with pytest.raises(errors.ProvisionError, match="no persistence"):
        doc["spec"]["controlPlane"]["backingStore"] = "embedded"
        _check(spec.parse_spec(doc, source=str(VTEAM), policy=POLICY), _tenant("embedded", {}))


def test_moving_the_data_between_stores_is_refused() -> None:
    with pytest.raises(errors.ProvisionError, match="no persistence"):
        _check(_tenant("embedded", {}), _tenant("etcd", {}))
    with pytest.raises(errors.ProvisionError, match="no persistence"):
        _check(_tenant("etcd", {}), _tenant("embedded", {}))


def test_a_record_from_before_data_digests_compares_all_the_values() -> None:
    before = _tenant("etcd", {})
    outputs = _recorded(before).to_outputs()
    del outputs["controlPlane"]["dataDigest"]
    old = record.read(outputs)
    assert old.control_plane.data_digest is None and old.control_plane.values_digest
    with pytest.raises(errors.ProvisionError, match="no persistence"):
        _check(before, _tenant("etcd", CP_CHANGE), recorded=old)
    _check(before, _tenant("etcd", {}), recorded=old)


def test_with_persistence_or_when_told_every_change_passes() -> None:
    before = _tenant("etcd", {}, persistence=True)
    _check(before, _tenant("etcd", ETCD_CHANGE, persistence=True))
    after = _tenant("embedded", CP_CHANGE)
    job = operations.Job(after, TARGET, BLUEPRINT, allow_data_loss=True)
    operations.check_data_kept(job, _rendered(after), _recorded(_tenant("embedded", {})), False)


def _validator() -> jsonschema.protocols.Validator:
    if not SCHEMA.is_file():
        pytest.fail(f"the vcluster chart's values schema is missing at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def test_asleep_the_etcd_stops_too() -> None:
    tenant = _tenant("etcd", {}, persistence=True)
    release = _rendered(tenant).release(asleep=True)
    assert release is not None
    cp = release["values"]["controlPlane"]
    assert cp["statefulSet"]["highAvailability"]["replicas"] == 0
    assert cp["backingStore"]["etcd"]["deploy"]["statefulSet"]["highAvailability"] == {"replicas": 0}
    problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in _validator().iter_errors(release["values"])]
    assert not problems, problems
    # twin: the embedded store has no etcd to stop, and its sleep values name none
    embedded = _rendered(_tenant("embedded", {}, persistence=True)).release(asleep=True)
    assert embedded is not None and "etcd" not in embedded["values"]["controlPlane"]["backingStore"]


def test_sleeping_an_etcd_without_persistence_is_refused_and_waking_it_is_not_a_change() -> None:
    tenant = _tenant("etcd", {})
    with pytest.raises(errors.ProvisionError, match="its etcd's pod"):
        _check(tenant, tenant, asleep=True)
    # recorded asleep, applied asleep again: nothing changes
    asleep = _recorded(tenant, asleep=True)
    operations.check_data_kept(operations.Job(tenant, TARGET, BLUEPRINT), _rendered(tenant), asleep, True)


def test_the_record_keeps_the_data_digest_and_older_records_read_without_it() -> None:
    tenant = _tenant("etcd", {})
    rendered = _rendered(tenant)
    got = _recorded(tenant).control_plane
    assert got.data_digest == rendered.data_digest() != rendered.values_digest()
    embedded = _rendered(_tenant("embedded", {}))
    assert embedded.data_digest() == embedded.values_digest()
    older = copy.deepcopy(_recorded(tenant).to_outputs())
    older["controlPlane"] = {"enabled": True, "persistence": False, "valuesDigest": "abc"}
    assert record.read(older).control_plane.data_digest is None
