"""The tenant record (vcluster_mgr.record), offline: what a tenant's stack records and how it reads back.

Covers: the program's record of every example tenant (and a control-plane tenant) round-trips through its
outputs unchanged, with the keys and values the stacks have always carried; the spec and policy read back
as they were applied; every older shape vcm wrote reads (the first stacks without a control plane entry,
which fall back to the spec file they were applied from; ``controlPlane`` as a bare flag; stacks without a
recorded spec, policy or cluster UID); a key from a newer vcm is ignored; outputs that cannot be read give
one error naming every bad key, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vcluster_mgr import errors, platformconfig, program, record, spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples" / "tenants").glob("*.yaml"))
VTEAM = REPO / "examples" / "controlplane" / "vteam.yaml"
POLICY = spec.load_policy(REPO / "examples" / "policy.yaml")
TARGET = platformconfig.Target("east", None)
HOST_API = [{"ip": "10.96.0.1", "port": 443}, {"ip": "192.0.2.10", "port": 6443}]


def _written(path: Path, **kwargs: Any) -> dict[str, Any]:
    """The outputs the tenant program exports for the tenant at ``path`` (namespaces as they resolve), as the
    state holds them after a JSON round trip."""
    tenant = spec.load_spec(path, policy=POLICY)
    blueprint = platformconfig.Blueprint(POLICY)
    host_api = HOST_API if tenant.spec.control_plane.enabled else []
    rendered = program.render_tenant(tenant, blueprint, host_api=host_api)
    made = program.tenant_record(tenant, TARGET, blueprint, rendered, **kwargs)
    outputs: dict[str, Any] = json.loads(json.dumps(made.to_outputs()))
    return outputs


@pytest.mark.parametrize("path", [*EXAMPLES, VTEAM], ids=lambda p: p.stem)
def test_what_the_program_writes_reads_back_the_same(path: Path) -> None:
    outputs = _written(path, expires_at="2025-01-02T03:04:05Z", cluster_uid="uid-1")
    read = record.read(outputs)
    assert read.to_outputs() == outputs
    tenant = spec.load_spec(path, policy=POLICY)
    assert read.tenant == tenant.name and read.cluster == "east" and read.cluster_uid == "uid-1"
    assert list(read.namespaces) == tenant.namespace_names()
    assert read.expires_at == "2025-01-02T03:04:05Z"
    applied = read.applied_tenant()
    assert applied is not None
    assert applied.model_dump(mode="json") == tenant.model_dump(mode="json")
    assert applied.source == str(path)
    assert read.applied_policy() == POLICY


def test_the_keys_the_stacks_have_always_carried() -> None:
    """Scripts read `vcm status -o json`: the record keeps the outputs' names and value shapes."""
    outputs = _written(VTEAM, cluster_uid="uid-1")
    assert set(outputs) == {"tenant", "cluster", "namespaces", "owners", "expiresAt", "asleep", "ttl", "protected",
                            "source", "controlPlane", "clusterUID", "hostApi", "spec", "policy"}
    assert set(outputs["controlPlane"]) == {"enabled", "persistence", "valuesDigest", "dataDigest"}
    assert outputs["controlPlane"]["enabled"] is True and len(outputs["controlPlane"]["valuesDigest"]) == 64
    assert outputs["hostApi"] == HOST_API
    assert all(set(o) <= {"kind", "name", "role", "namespace"} for o in outputs["owners"])
    payments = _written(REPO / "examples" / "tenants" / "payments.yaml")
    assert "hostApi" not in payments, "hostApi is recorded for a tenant with a control plane only"
    assert payments["controlPlane"] == {"enabled": False, "persistence": payments["controlPlane"]["persistence"],
                                        "valuesDigest": None, "dataDigest": None}
    sa = next(o for o in payments["owners"] if o["kind"] == "ServiceAccount")
    assert sa["namespace"] == "payments-ci"
    assert not any("namespace" in o for o in payments["owners"] if o["kind"] != "ServiceAccount")


def test_asleep_changes_the_recorded_digest_but_not_the_rendering() -> None:
    tenant = spec.load_spec(VTEAM, policy=POLICY)
    rendered = program.render_tenant(tenant, platformconfig.Blueprint(POLICY), host_api=HOST_API)
    awake, asleep = rendered.values_digest(asleep=False), rendered.values_digest(asleep=True)
    assert awake and asleep and awake != asleep
    release = rendered.release(asleep=True)
    assert release is not None
    assert release["values"]["controlPlane"]["statefulSet"]["highAvailability"]["replicas"] == 0
    assert rendered.values_digest(asleep=False) == awake, "putting it to sleep left the awake values alone"
    assert rendered.resources == len(rendered.objects) + 2


# ---------------------------------------------------------------------------------------------
# Older shapes
# ---------------------------------------------------------------------------------------------

#: the first stacks: no control plane entry, no spec, policy, expiry or cluster identity
FIRST = {"tenant": "payments", "cluster": "default", "namespaces": ["payments-app", "payments-ci"],
         "owners": [{"kind": "User", "name": "alice@example.com", "role": "admin"},
                    {"kind": "ServiceAccount", "name": "deployer", "role": "edit"}],
         "ttl": None, "source": None}


def test_the_first_shape_reads_with_defaults() -> None:
    read = record.read(FIRST)
    assert (read.tenant, read.cluster, read.namespaces) == ("payments", "default", ("payments-app", "payments-ci"))
    assert read.owners[1] == record.Owner(kind="ServiceAccount", name="deployer", role="edit")
    assert read.control_plane == record.ControlPlane(enabled=False)
    assert (read.expires_at, read.asleep, read.protected, read.cluster_uid, read.host_api) == (
        None, False, False, None, None)
    assert read.applied_tenant() is None and read.applied_policy() is None


def test_without_a_control_plane_entry_the_spec_file_says(tmp_path: Path) -> None:
    spec_file = tmp_path / "vteam.yaml"
    spec_file.write_text("spec:\n  controlPlane:\n    enabled: true\n")
    assert record.read(FIRST | {"source": str(spec_file)}).control_plane.enabled is True
    assert record.read(FIRST | {"source": str(tmp_path / "gone.yaml")}).control_plane.enabled is False
    spec_file.write_text(": not yaml : [")
    assert record.read(FIRST | {"source": str(spec_file)}).control_plane.enabled is False


def test_without_a_control_plane_entry_the_recorded_spec_says() -> None:
    outputs = _written(VTEAM)
    del outputs["controlPlane"]
    read = record.read(outputs | {"source": "/nowhere.yaml"})
    assert read.control_plane.enabled is True
    assert read.control_plane.persistence == spec.load_spec(VTEAM, policy=POLICY).spec.control_plane.persistence.enabled
    assert read.control_plane.values_digest is None, "no digest was recorded: the data-loss guard has none to compare"


@pytest.mark.parametrize("flag", [True, False])
def test_control_plane_as_a_bare_flag(flag: bool) -> None:
    assert record.read(FIRST | {"controlPlane": flag}).control_plane == record.ControlPlane(enabled=flag)


def test_control_plane_enabled_only() -> None:
    """The shape of the stacks from before persistence and the values digest were recorded."""
    read = record.read(FIRST | {"controlPlane": {"enabled": True}})
    assert read.control_plane == record.ControlPlane(enabled=True, persistence=None, values_digest=None)


def test_the_stack_name_fills_in_a_record_without_names() -> None:
    read = record.read({"namespaces": ["x-a"]}, cluster="east", tenant="x")
    assert (read.tenant, read.cluster) == ("x", "east")
    assert record.read(FIRST, cluster="east", tenant="other").cluster == "default", "the record's own name wins"


def test_a_key_from_a_newer_vcm_is_ignored() -> None:
    outputs = _written(EXAMPLES[0])
    read = record.read(outputs | {"appliedFingerprint": "sha256:abc", "somethingElse": {"a": 1}})
    assert read.to_outputs() == outputs


def test_the_kubeconfig_secret_is_kept_masked_and_never_written() -> None:
    read = record.read(_written(VTEAM) | {"kubeconfig": "[secret]"})
    assert read.kubeconfig == "[secret]"
    assert "kubeconfig" not in read.to_outputs()
    assert read.as_data()["kubeconfig"] == "[secret]"
    assert "kubeconfig" not in record.read(FIRST).as_data()


# ---------------------------------------------------------------------------------------------
# Outputs that cannot be read
# ---------------------------------------------------------------------------------------------


def test_unreadable_outputs_name_every_bad_key() -> None:
    bad = FIRST | {"namespaces": "payments-app", "asleep": "sometimes", "owners": [{"kind": "User"}],
                   "hostApi": [{"ip": "10.0.0.1", "port": "https"}]}
    with pytest.raises(errors.ProvisionError) as caught:
        record.read(bad)
    text = str(caught.value)
    for path in ("namespaces", "asleep", "owners.0.name", "owners.0.role", "hostApi.0.port"):
        assert path in text, text
    assert "tenant payments" in text and "apply the tenant again" in text


def test_a_recorded_spec_that_no_longer_reads_is_a_clear_error() -> None:
    outputs = _written(EXAMPLES[0])
    outputs["spec"]["spec"]["namespaces"] = 7
    read = record.read(outputs)
    with pytest.raises(errors.ProvisionError, match=r"records a spec this vcm cannot read \(spec\.spec\.namespaces"):
        read.applied_tenant()


def test_a_recorded_policy_that_no_longer_reads_names_its_field() -> None:
    outputs = _written(EXAMPLES[0])
    outputs["policy"]["maxNamespaces"] = "many"
    with pytest.raises(errors.SpecError, match="maxNamespaces"):
        record.read(outputs).applied_policy()


def test_records_are_frozen() -> None:
    read = record.read(FIRST)
    with pytest.raises(ValueError, match="frozen"):
        read.asleep = True  # type: ignore[misc]
