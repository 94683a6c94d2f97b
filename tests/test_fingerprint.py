"""The fingerprint (vcluster_mgr.fingerprint) and its place in the tenant record, offline.

Covers: what counts as an object's content (labels, annotations, spec/data/rules; never status, managedFields,
resourceVersion, uid, generation; never a Secret's data); the canonical form (empty is absent, whole floats are
ints, key order does not matter); the verdict and each reason it gives; the desired digest moving with
everything that decides the desired state (spec, policy, a template that renders differently, the versions,
the expiry, sleep, the host cluster's identity) and not with a template change that renders the same; the
record reading a fingerprint, and reading an unreadable one as none; objects named as a stack's state names them;
a folder stack's desired digest (its tenants, in any order, and the platform).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vcluster_mgr import fingerprint, platformconfig, program, record, spec, toolchain

REPO = Path(__file__).resolve().parent.parent
QUOTA = {
    "apiVersion": "v1", "kind": "ResourceQuota",
    "metadata": {"name": "vcm-quota", "namespace": "a-app", "labels": {"vcluster-mgr.dev/tenant": "a"},
                 "resourceVersion": "12", "uid": "u-1", "generation": 1, "creationTimestamp": "2026-12-06T00:00:00Z",
                 "managedFields": [{"manager": "pulumi-kubernetes"}]},
    "spec": {"hard": {"pods": "10", "requests.cpu": "2"}},
    "status": {"hard": {"pods": "10"}, "used": {"pods": "0"}},
}


def _digest(obj: dict[str, Any]) -> str:
    return fingerprint.object_digest(obj["apiVersion"], obj["kind"], obj)


@pytest.mark.parametrize("path,value", [
    (("status", "used", "pods"), "3"),  # a pod started: the quota's use moved
    (("metadata", "resourceVersion"), "13"),
    (("metadata", "uid"), "u-2"),
    (("metadata", "generation"), 2),
    (("metadata", "managedFields"), [{"manager": "kubectl"}]),
])
def test_what_is_not_content_never_moves_the_digest(path: tuple[str, ...], value: Any) -> None:
    changed = copy.deepcopy(QUOTA)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _digest(changed) == _digest(QUOTA)


@pytest.mark.parametrize("path,value", [
    (("metadata", "labels", "vcluster-mgr.dev/tenant"), "b"),
    (("metadata", "annotations"), {"someone": "else"}),
    (("spec", "hard", "pods"), "11"),
])
def test_content_moves_the_digest(path: tuple[str, ...], value: Any) -> None:
    changed = copy.deepcopy(QUOTA)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _digest(changed) != _digest(QUOTA)


def test_rules_and_subjects_are_content() -> None:
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "b", "namespace": "n"}, "roleRef": {"kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "User", "name": "x"}]}
    other = copy.deepcopy(binding)
    other["subjects"].append({"kind": "User", "name": "mallory"})
    assert _digest(binding) != _digest(other)


def test_canonical_form() -> None:
    a = {"metadata": {"labels": {"x": "1"}, "annotations": {}}, "spec": {"port": 53.0, "list": [], "none": None}}
    b = {"spec": {"port": 53}, "metadata": {"labels": {"x": "1"}}}
    assert fingerprint.digest(a) == fingerprint.digest(b)
    assert fingerprint.canonical({"n": 1.5}) == {"n": 1.5}


def test_secret_data_never_enters_a_digest_and_is_never_provable() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
              "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}
    assert "data" not in fingerprint.content("v1", "Secret", secret)
    other = copy.deepcopy(secret)
    other["data"]["password"] = "c2VjcmV0"
    assert _digest(other) == _digest(secret)
    key = fingerprint.key_of(secret)
    assert fingerprint.provable([key]) is not None
    held = fingerprint.Fingerprint(format=fingerprint.FORMAT, desired="d", objects={key: _digest(secret)})
    assert fingerprint.verdict(held, "d", {key: _digest(secret)}) is not None


def test_verdict_and_its_reasons() -> None:
    key = fingerprint.key_of(QUOTA)
    held = fingerprint.Fingerprint(format=fingerprint.FORMAT, desired="d", objects={key: _digest(QUOTA)})
    assert fingerprint.verdict(held, "d", {key: _digest(QUOTA)}) is None
    assert fingerprint.verdict(None, "d", {}) == "no fingerprint recorded"
    assert fingerprint.verdict(held, "e", {key: _digest(QUOTA)}) == "the desired state changed"
    assert fingerprint.verdict(held, "d", {}) == "ResourceQuota a-app/vcm-quota is missing"
    assert fingerprint.verdict(held, "d", {key: "x"}) == "ResourceQuota a-app/vcm-quota changed on the cluster"
    older = fingerprint.Fingerprint(format=fingerprint.FORMAT - 1, desired="d", objects={key: _digest(QUOTA)})
    assert "format" in (fingerprint.verdict(older, "d", {key: _digest(QUOTA)}) or "")
    release = fingerprint.object_key("helm.sh/v3", "Release", "a-app", "a")
    with_release = fingerprint.Fingerprint(format=fingerprint.FORMAT, desired="d",
                                           objects={key: _digest(QUOTA), release: "r"})
    assert "Release" in (fingerprint.verdict(with_release, "d", {key: _digest(QUOTA), release: "r"}) or "")


def _desired(tenant: spec.Tenant, blueprint: platformconfig.Blueprint, **kwargs: Any) -> str:
    target = kwargs.pop("target", platformconfig.Target("east", None))
    rendered = program.render_tenant(tenant, blueprint)
    return fingerprint.desired_digest(program.desired_parts(tenant, target, blueprint, rendered, **kwargs))


def test_the_desired_digest_moves_with_what_decides_the_desired_state(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = REPO / "examples" / "tenants" / "payments.yaml"
    tenant = spec.load_spec(path)
    blueprint = platformconfig.Blueprint()
    base = _desired(tenant, blueprint, cluster_uid="uid-1")
    assert _desired(tenant, blueprint, cluster_uid="uid-1") == base  # stable
    assert _desired(tenant, blueprint, cluster_uid="uid-2") != base
    assert _desired(tenant, blueprint, cluster_uid="uid-1", asleep=True) != base
    assert _desired(tenant, blueprint, cluster_uid="uid-1", expires_at="2027-01-01T00:00:00Z") != base
    in_state = platformconfig.Target("east", "/k", "ctx", in_state=True)
    assert _desired(tenant, blueprint, cluster_uid="uid-1", target=in_state) != base
    doc = json.loads(json.dumps(tenant.model_dump(mode="json", by_alias=True, exclude_none=True)))
    doc["spec"]["quota"]["pods"] = 61
    changed = tmp_path / "payments.yaml"
    changed.write_text(json.dumps(doc))
    assert _desired(spec.load_spec(changed), blueprint, cluster_uid="uid-1") != base
    policy = spec.load_policy(REPO / "examples" / "policy.yaml")
    assert _desired(spec.load_spec(path, policy=policy), platformconfig.Blueprint(policy), cluster_uid="uid-1") != base
    for pin in ("KUBERNETES_PROVIDER_VERSION", "PULUMI_VERSION", "VCLUSTER_VERSION"):
        with monkeypatch.context() as m:
            m.setattr(toolchain, pin, "9.9.9")
            assert _desired(tenant, blueprint, cluster_uid="uid-1") != base, pin


def test_a_template_counts_by_what_it_renders(tmp_path: Path) -> None:
    tenant = spec.load_spec(REPO / "examples" / "tenants" / "payments.yaml")
    base = _desired(tenant, platformconfig.Blueprint(), cluster_uid="u")
    templates = tmp_path / "templates"
    (templates / "tenant").mkdir(parents=True)
    name = "tenant/limitrange.yaml.j2"
    source = (REPO / "templates" / name).read_text()
    (templates / name).write_text(source + "\n")  # renders the same objects
    assert _desired(tenant, platformconfig.Blueprint(templates_dir=str(templates)), cluster_uid="u") == base
    (templates / name).write_text(source.replace("name: vcm-limits", "name: vcm-limits-2"))
    assert _desired(tenant, platformconfig.Blueprint(templates_dir=str(templates)), cluster_uid="u") != base


def test_the_record_reads_a_fingerprint_and_an_unreadable_one_as_none() -> None:
    held = {"format": fingerprint.FORMAT, "desired": "d", "objects": {"v1|Namespace||a": "x"}}
    found = record.read({"tenant": "a", "fingerprint": held})
    assert found.fingerprint == fingerprint.Fingerprint.model_validate(held)
    assert found.to_outputs()["fingerprint"] == held
    for bad in ("[secret]", {"desired": 3}, ["x"]):
        assert record.read({"tenant": "a", "fingerprint": bad}).fingerprint is None
    assert "fingerprint" not in record.read({"tenant": "a"}).to_outputs()


def test_state_objects_name_objects_as_the_state_does() -> None:
    keys = [fingerprint.object_key("v1", "Namespace", None, "a-app"),
            fingerprint.object_key("v1", "ResourceQuota", "a-app", "vcm-quota")]
    assert fingerprint.state_objects(keys) == {("Namespace", "a-app"), ("ResourceQuota", "a-app/vcm-quota")}


def test_the_folder_desired_digest_covers_its_tenants_and_the_platform() -> None:
    tenants = spec.load_specs([REPO / "examples" / "tenants"])
    target = platformconfig.Target("east", None)
    blueprint = platformconfig.Blueprint()
    base = program.folder_desired_digest(tenants, target, blueprint, cluster_uid="u")
    assert program.folder_desired_digest(list(reversed(tenants)), target, blueprint, cluster_uid="u") == base
    assert program.folder_desired_digest(tenants[1:], target, blueprint, cluster_uid="u") != base
    assert program.folder_desired_digest(tenants, target, blueprint, with_platform=False, cluster_uid="u") != base
    assert program.folder_desired_digest(tenants, target, blueprint, cluster_uid="v") != base
