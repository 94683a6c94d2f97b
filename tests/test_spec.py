"""The tenant spec and the admin policy (vcluster_mgr.spec, vcluster_mgr.naming).

Covers: the issue's example accepted exactly as written; one failing case per rule, each checked for
its dotted path, the bad value and what would be valid; every error of a file reported at once;
YAML-level failures (syntax with line and column, tags, several documents, alias bombs); the exact
quantity and duration parsers; policy ceilings and defaults; cross-tenant namespace clashes; and the
committed JSON Schemas matching the models.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vcluster_mgr import errors, kube, naming, render, spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "tenants"
PAYMENTS = EXAMPLES / "payments.yaml"
BROKEN = Path(__file__).resolve().parent / "data" / "broken"


def payments() -> dict[str, Any]:
    """The issue's example as a fresh, mutable dict."""
    return copy.deepcopy(yaml.safe_load(PAYMENTS.read_text()))


def problems(data: Any, *, policy: spec.Policy | None = None) -> list[errors.FieldError]:
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec(data, source="t.yaml", policy=policy)
    assert caught.value.errors, "a SpecError must carry at least one FieldError"
    return caught.value.errors


def only_problem(data: Any, **kwargs: Any) -> errors.FieldError:
    found = problems(data, **kwargs)
    assert len(found) == 1, [str(e) for e in found]
    return found[0]


# ---------------------------------------------------------------------------------------------
# The example
# ---------------------------------------------------------------------------------------------


def test_issue_example_is_accepted_exactly_as_written() -> None:
    tenant = spec.load_spec(PAYMENTS)
    assert tenant.name == "payments"
    assert tenant.namespace_names() == ["payments-app", "payments-ci"]
    assert tenant.labels == {"cost-center": "cc-1042"}
    assert tenant.source == str(PAYMENTS)
    owners = [(o.kind, o.name, o.namespace, o.role) for o in tenant.spec.owners]
    assert owners == [
        ("User", "alice@example.com", None, "admin"),
        ("Group", "payments-devs", None, "edit"),
        ("ServiceAccount", "deployer", "payments-ci", "edit"),
    ]
    q = tenant.spec.quota
    assert q is not None
    assert (q.cpu, q.memory, q.storage, q.pods, q.services, q.gpu) == ("8", "16Gi", "100Gi", 60, 20, 0)
    assert (q.limits_cpu, q.limits_memory) == ("8", "16Gi"), "limits default to the requests"
    limits = tenant.spec.limits
    assert limits is not None and limits.max is not None and limits.default_request is not None
    assert (limits.default_request.cpu, limits.max.memory) == ("100m", "8Gi")
    assert tenant.spec.network.isolation == "strict"
    assert [p.namespace for p in tenant.spec.network.allow_ingress_from] == ["ingress-nginx"]
    assert [(r.cidr, r.ports) for r in tenant.spec.network.allow_egress_to] == [("10.20.0.0/16", [5432])]
    assert tenant.spec.pod_security == "restricted"
    assert tenant.spec.placement.node_selector == {"pool": "tenants"}
    assert tenant.spec.placement.cluster is None
    assert tenant.spec.control_plane.enabled is False
    assert tenant.spec.ttl is None and tenant.ttl_duration() is None


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid_under_both_policies(path: Path) -> None:
    spec.load_spec(path)
    spec.load_spec(path, policy=spec.load_policy(REPO / "examples" / "policy.yaml"))


def test_examples_are_three_strict_tenants_with_restricted_or_baseline() -> None:
    tenants = spec.load_specs([EXAMPLES])
    assert sorted(t.name for t in tenants) == ["analytics", "payments", "search"]
    assert {t.spec.network.isolation for t in tenants} == {"strict"}
    assert {t.spec.pod_security for t in tenants} <= {"restricted", "baseline"}


def test_dump_by_alias_round_trips() -> None:
    tenant = spec.load_spec(PAYMENTS)
    again = spec.parse_spec(tenant.model_dump(mode="json"), source="again")
    assert again.model_dump() == tenant.model_dump()
    assert again.source == "again"


def test_ttl_is_parsed() -> None:
    data = payments()
    data["spec"]["ttl"] = "1h30m"
    tenant = spec.parse_spec(data)
    assert tenant.ttl_duration() is not None and tenant.ttl_duration().total_seconds() == 5400


# ---------------------------------------------------------------------------------------------
# One failing case per rule: (what to change, expected path, fragments of the message)
# ---------------------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Any:
    """A mutation that sets a dotted path (list indices as numbers) in the example."""

    def mutate(data: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


def _delete(path: str) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = data
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


RULES = [
    # unknown keys, listing the valid ones
    (
        "unknown spec key",
        _set("spec.replicas", 3),
        "spec.replicas",
        ['unknown key "replicas"', "valid keys here: owners"],
    ),
    ("unknown quota key", _set("spec.quota.cores", "4"), "spec.quota.cores", ["unknown key", "limitsCpu"]),
    (
        "unknown controlPlane key",
        _set("spec.controlPlane.size", 3),
        "spec.controlPlane.size",
        ["valid keys here: enabled"],
    ),
    ("snake_case is unknown", _set("spec.pod_security", "baseline"), "spec.pod_security", ["unknown key"]),
    ("unknown top key", _set("status", {}), "status", ["apiVersion, kind, metadata, spec"]),
    # enums name the valid choices and the bad value
    ("bad role", _set("spec.owners.1.role", "owner"), "spec.owners[1].role", ["'admin', 'edit' or 'view'", '"owner"']),
    ("bad owner kind", _set("spec.owners.0.kind", "Robot"), "spec.owners[0].kind", ["'User'", '"Robot"']),
    ("bad isolation", _set("spec.network.isolation", "total"), "spec.network.isolation", ["'strict'", '"total"']),
    ("bad podSecurity", _set("spec.podSecurity", "privileged"), "spec.podSecurity", ["'restricted' or 'baseline'"]),
    ("bad apiVersion", _set("apiVersion", "v1"), "apiVersion", ["vcluster-mgr.dev/v1alpha1", '"v1"']),
    ("bad kind", _set("kind", "Policy"), "kind", ["'Tenant'", '"Policy"']),
    # required and types
    ("missing owners", _delete("spec.owners"), "spec.owners", ["required"]),
    ("missing name", _delete("metadata.name"), "metadata.name", ["required"]),
    ("no owners", _set("spec.owners", []), "spec.owners", ["at least 1"]),
    ("pods as string", _set("spec.quota.pods", "60"), "spec.quota.pods", ["expected an integer", '"60"']),
    ("pods as bool", _set("spec.quota.pods", True), "spec.quota.pods", ["expected an integer", "true"]),
    ("negative pods", _set("spec.quota.pods", -1), "spec.quota.pods", ["greater than or equal to 0", "-1"]),
    ("enabled as string", _set("spec.controlPlane.enabled", "no"), "spec.controlPlane.enabled", ["true or false"]),
    ("owners as mapping", _set("spec.owners", {"kind": "User"}), "spec.owners", ["expected a list"]),
    # quantities
    ("bad cpu", _set("spec.quota.cpu", "8 cores"), "spec.quota.cpu", ['"8 cores"', "not a Kubernetes quantity", "Gi"]),
    ("lower-case suffix", _set("spec.quota.memory", "16gi"), "spec.quota.memory", ['"16gi"', "Ki, Mi, Gi"]),
    ("negative memory", _set("spec.quota.memory", "-1Gi"), "spec.quota.memory", ['"-1Gi"', "must not be negative"]),
    ("huge storage", _set("spec.quota.storage", "1e30"), "spec.quota.storage", ["larger than the maximum"]),
    ("bad limit", _set("spec.limits.max.cpu", "four"), "spec.limits.max.cpu", ['"four"']),
    # names
    ("upper-case name", _set("metadata.name", "Payments"), "metadata.name", ['"Payments"', "DNS-1123 label"]),
    ("long name", _set("metadata.name", "p" * 64), "metadata.name", ["at most 63"]),
    ("reserved default", _set("metadata.name", "default"), "metadata.name", ['"default"', "reserved"]),
    ("bad namespace entry", _set("spec.namespaces.1", "CI"), "spec.namespaces[1]", ['"CI"', "DNS-1123"]),
    ("derived too long", _set("spec.namespaces.1", "c" * 55), "spec.namespaces[1]", ["64 characters", "at most 63"]),
    ("namespace twice", _set("spec.namespaces", ["app", "ci", "app"]), "spec.namespaces[2]", ["listed twice"]),
    # labels
    ("bad label key", _set("metadata.labels.bad key", "x"), 'metadata.labels["bad key"]', ['key "bad key"']),
    ("bad label value", _set("metadata.labels.cost-center", "cc 1042"), "metadata.labels.cost-center", ['"cc 1042"']),
    ("long label value", _set("metadata.labels.team", "t" * 64), "metadata.labels.team", ["1-63 characters"]),
    (
        "label overriding pod security",
        _set("metadata.labels", {"pod-security.kubernetes.io/enforce": "privileged"}),
        'metadata.labels["pod-security.kubernetes.io/enforce"]',
        ["reserved", "'kubernetes.io'"],
    ),
    (
        "label key of vcluster-mgr",
        _set("metadata.labels", {"vcluster-mgr.dev/tenant": "x"}),
        'metadata.labels["vcluster-mgr.dev/tenant"]',
        ["reserved"],
    ),
    (
        "managed-by label",
        _set("metadata.labels", {"app.kubernetes.io/managed-by": "me"}),
        'metadata.labels["app.kubernetes.io/managed-by"]',
        ["set by vcluster-mgr itself"],
    ),
    (
        "bad nodeSelector value",
        _set("spec.placement.nodeSelector.pool", "a b"),
        "spec.placement.nodeSelector.pool",
        ['"a b"', "label value"],
    ),
    ("bad cluster name", _set("spec.placement.cluster", "East_1"), "spec.placement.cluster", ['"East_1"']),
    # owners
    (
        "ServiceAccount elsewhere",
        _set("spec.owners.2.namespace", "other-ci"),
        "spec.owners[2].namespace",
        ['"other-ci"', "payments-app, payments-ci"],
    ),
    (
        "ServiceAccount without namespace",
        _delete("spec.owners.2.namespace"),
        "spec.owners[2].namespace",
        ["required", "payments-app, payments-ci"],
    ),
    (
        "User with namespace",
        _set("spec.owners.0.namespace", "payments-app"),
        "spec.owners[0].namespace",
        ["only for ServiceAccount"],
    ),
    ("bad ServiceAccount name", _set("spec.owners.2.name", "Deployer"), "spec.owners[2].name", ['"Deployer"']),
    (
        "owner twice",
        _set("spec.owners.1", {"kind": "User", "name": "alice@example.com", "role": "view"}),
        "spec.owners[1]",
        ["listed twice"],
    ),
    ("owner name with newline", _set("spec.owners.0.name", "alice\nadmin"), "spec.owners[0].name", ["line breaks"]),
    # network
    (
        "host bits in cidr",
        _set("spec.network.allowEgressTo.0.cidr", "10.20.0.1/16"),
        "spec.network.allowEgressTo[0].cidr",
        ['"10.20.0.1/16"', "CIDR"],
    ),
    (
        "port out of range",
        _set("spec.network.allowEgressTo.0.ports", [70000]),
        "spec.network.allowEgressTo[0].ports[0]",
        ["65535"],
    ),
    (
        "egress outside policy",
        _set("spec.network.allowEgressTo.0.cidr", "8.8.8.0/24"),
        "spec.network.allowEgressTo[0].cidr",
        ["outside the policy's egressCidrs", "10.0.0.0/8"],
    ),
    (
        "egress with namespace isolation",
        _set("spec.network.isolation", "namespace"),
        "spec.network.allowEgressTo",
        ["no effect with isolation namespace"],
    ),
    (
        "bad ingress namespace",
        _set("spec.network.allowIngressFrom.0.namespace", "Ingress"),
        "spec.network.allowIngressFrom[0].namespace",
        ['"Ingress"'],
    ),
    # limits and quota ordering
    (
        "defaultRequest above default",
        _set("spec.limits.defaultRequest.cpu", "1"),
        "spec.limits.defaultRequest.cpu",
        ["more than default.cpu (500m)"],
    ),
    (
        "default above max",
        _set("spec.limits.default.memory", "9Gi"),
        "spec.limits.default.memory",
        ["more than max.memory (8Gi)"],
    ),
    ("limits below requests", _set("spec.quota.limitsCpu", "4"), "spec.quota.limitsCpu", ["less than cpu (8)"]),
    # ttl
    ("bad ttl", _set("spec.ttl", "2 hours"), "spec.ttl", ['"2 hours"', "30m, 2h, 1d"]),
    ("zero ttl", _set("spec.ttl", "0m"), "spec.ttl", ["longer than zero"]),
    ("ttl as number", _set("spec.ttl", 30), "spec.ttl", ["expected a string"]),
]


@pytest.mark.parametrize(("mutate", "path", "fragments"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_fails_with_its_path(mutate: Any, path: str, fragments: list[str]) -> None:
    data = payments()
    mutate(data)
    found = problems(data)
    at_path = [e for e in found if e.path == path]
    assert at_path, f"no error at {path}: {[str(e) for e in found]}"
    message = " | ".join(e.message for e in at_path)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert all(e.file == "t.yaml" for e in found)


def test_reserved_derived_namespace() -> None:
    data = payments()
    data["metadata"]["name"] = "vcluster-mgr"
    data["spec"]["namespaces"] = ["system", "app"]
    data["spec"]["owners"] = data["spec"]["owners"][:2]
    error = only_problem(data)
    assert error.path == "spec.namespaces[0]"
    assert '"vcluster-mgr-system"' in error.message and "reserved" in error.message


def test_kube_prefix_is_reserved() -> None:
    data = payments()
    data["metadata"]["name"] = "kube-pay"
    data["spec"]["owners"] = data["spec"]["owners"][:2]
    paths = {e.path for e in problems(data)}
    assert paths == {"metadata.name", "spec.namespaces[0]", "spec.namespaces[1]"}


def test_longest_derived_name_that_fits_is_accepted() -> None:
    data = payments()
    data["spec"]["namespaces"] = ["app", "c" * (63 - len("payments-"))]
    data["spec"]["owners"] = data["spec"]["owners"][:2]
    assert max(len(n) for n in spec.parse_spec(data).namespace_names()) == 63


def test_yaml_anchors_and_aliases_are_plain_yaml() -> None:
    text = PAYMENTS.read_text()
    text = text.replace("    defaultRequest: {cpu: 100m, memory: 128Mi}\n", "")
    text = text.replace(
        "    default: {cpu: 500m, memory: 512Mi}\n",
        "    default: &small {cpu: 500m, memory: 512Mi}\n    defaultRequest: *small\n",
    )
    assert "*small" in text
    tenant = spec.parse_spec_text(text)
    assert tenant.spec.limits is not None and tenant.spec.limits.default_request is not None
    assert tenant.spec.limits.default_request.cpu == "500m"


# ---------------------------------------------------------------------------------------------
# Every error at once
# ---------------------------------------------------------------------------------------------


def test_multi_error_file_reports_every_error_at_once() -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.load_spec(BROKEN / "multi-error.yaml")
    found = {(e.path, e.file) for e in caught.value.errors}
    file = str(BROKEN / "multi-error.yaml")
    expected = {
        'metadata.labels["bad key"]',
        "spec.owners[1].role",
        "spec.owners[2].namespace",
        "spec.namespaces[1]",
        "spec.quota.cpu",
        "spec.quota.memory",
        "spec.quota.pods",
        "spec.network.allowEgressTo[0].cidr",
        "spec.podSecurity",
        "spec.ttl",
        "spec.colour",
    }
    assert found == {(path, file) for path in expected}
    # every line marked "bad" in the file has its error
    marked = sum("# bad" in line for line in (BROKEN / "multi-error.yaml").read_text().splitlines())
    assert len(caught.value.errors) == marked


def test_policy_errors_are_reported_together_with_shape_errors() -> None:
    data = payments()
    data["spec"]["quota"]["cpu"] = "64"
    data["spec"]["quota"]["memory"] = "lots"
    data["spec"]["owners"][0]["role"] = "root"
    found = [str(e) for e in problems(data)]
    assert "t.yaml: spec.quota.cpu: 64 exceeds the policy ceiling maxCpu=32" in found
    assert any(e.startswith("t.yaml: spec.quota.memory: ") for e in found)
    assert any(e.startswith("t.yaml: spec.owners[0].role: ") for e in found)


def test_str_of_spec_error_lists_every_problem() -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.load_spec(BROKEN / "multi-error.yaml")
    assert str(caught.value).count("\n") == len(caught.value.errors) - 1
    assert caught.value.exit_code == 2


# ---------------------------------------------------------------------------------------------
# YAML-level failures
# ---------------------------------------------------------------------------------------------


def test_yaml_syntax_error_gives_line_and_column() -> None:
    error = only_problem_of_file(BROKEN / "yaml-syntax.yaml")
    assert error.path == "line 6, column 5"
    assert "started at line 5, column 11" in error.message


def only_problem_of_file(path: Path) -> errors.FieldError:
    with pytest.raises(errors.SpecError) as caught:
        spec.load_spec(path)
    assert len(caught.value.errors) == 1, [str(e) for e in caught.value.errors]
    assert caught.value.errors[0].file == str(path)
    return caught.value.errors[0]


def test_python_tag_is_a_clean_spec_error() -> None:
    error = only_problem_of_file(BROKEN / "python-tag.yaml")
    assert error.path == "line 4, column 9"
    assert "python/object/apply:os.system" in error.message


def test_several_documents_are_refused() -> None:
    error = only_problem_of_file(BROKEN / "two-documents.yaml")
    assert "holds 2 YAML documents" in error.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a\n- b\n", 'got ["a", "b"]'),
        ("just text", 'got "just text"'),
        ("a: &x [*x]\n", "recursive"),
        ("apiVersion: !!binary AAA=\n", "apiVersion: Input should be 'vcluster-mgr.dev/v1alpha1'"),
        ("a: \x07\n", "line 1, column 4"),
        ("[" * 5000, "nested too deeply"),
        ("a: !!bool null\n", 'line 1, column 4: invalid YAML: "null" does not fit the tag !!bool'),
        ("a: !!int restricted\n", '"restricted" does not fit the tag !!int'),
        ("a: !!float x\n", '"x" does not fit the tag !!float'),
        ("a: !!timestamp nope\n", '"nope" does not fit the tag !!timestamp'),
        ("a: !!timestamp 2024-13-45\n", "!!timestamp"),
        ("a: !!set 3\n", "line 1, column 4"),
    ],
)
def test_bad_documents(text: str, fragment: str) -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec_text(text, source="d.yaml")
    assert any(fragment in str(e) for e in caught.value.errors), [str(e) for e in caught.value.errors]


def test_alias_bomb_is_refused_before_validation() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec_text("\n".join(lines) + "\n")
    assert "expands to" in str(caught.value) and "aliases" in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(errors.SpecError, match="not UTF-8"):
        spec.load_spec(latin)
    with pytest.raises(errors.SpecError, match="does not exist"):
        spec.load_spec(tmp_path / "missing.yaml")


# ---------------------------------------------------------------------------------------------
# Several files
# ---------------------------------------------------------------------------------------------


def test_load_specs_collects_the_errors_of_all_files() -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.load_specs([BROKEN])
    files = {Path(e.file).name for e in caught.value.errors if e.file}
    assert files == {p.name for p in BROKEN.glob("*.yaml")}


def test_load_specs_accepts_files_and_folders_once() -> None:
    tenants = spec.load_specs([EXAMPLES, PAYMENTS])
    assert [t.name for t in tenants] == ["analytics", "payments", "search"]


def test_load_specs_refuses_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.load_specs([tmp_path, tmp_path / "nope.yaml"])
    assert [e.message for e in caught.value.errors] == ["is a folder without *.yaml or *.yml files", "does not exist"]


def test_namespace_clash_between_tenants() -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.load_specs([BROKEN / "clash"])
    (error,) = caught.value.errors
    assert error.path == "spec.namespaces[0]"
    assert '"alpha-beta-gamma" is also claimed by tenant' in error.message


def test_namespace_clashes_function_and_duplicate_tenant_names() -> None:
    first = spec.load_spec(PAYMENTS)
    second = spec.parse_spec(payments(), source="copy.yaml")
    clashes = spec.namespace_clashes([first, second])
    assert [(e.path, e.file) for e in clashes] == [
        ("metadata.name", "copy.yaml"),
        ("spec.namespaces[0]", "copy.yaml"),
        ("spec.namespaces[1]", "copy.yaml"),
    ]
    assert spec.namespace_clashes(spec.load_specs([EXAMPLES])) == []
    with pytest.raises(errors.SpecError):
        spec.check_namespace_clashes([first, second])


def _tenant(name: str, namespaces: list[str], allow: list[str] = (), source: str | None = None) -> dict[str, Any]:
    data = payments()
    data["metadata"]["name"] = name
    data["spec"]["namespaces"] = namespaces
    data["spec"]["owners"] = [{"kind": "User", "name": "a@example.com", "role": "admin"}]
    data["spec"]["network"] = {"isolation": "strict", "allowIngressFrom": [{"namespace": n} for n in allow]}
    data["spec"].pop("controlPlane", None)
    return data


def test_a_spec_naming_another_tenants_namespace_as_peer_is_refused() -> None:
    """The issue's case: a tenant ``ingress`` with a namespace ``nginx`` owns ``ingress-nginx``."""
    spoofer = spec.parse_spec(_tenant("ingress", ["nginx"]), source="ingress.yaml")
    victim = spec.parse_spec(_tenant("shop", ["web"], ["kube-system", "ingress-nginx"]), source="shop.yaml")
    (error,) = spec.spoofed_peers([spoofer, victim], spec.DEFAULT_POLICY)
    assert (error.path, error.file) == ("spec.network.allowIngressFrom[1].namespace", "shop.yaml")
    assert '"ingress-nginx" belongs to tenant "ingress"' in error.message and "trustedPeerTenants" in error.message
    # the policy may trust that tenant
    assert spec.spoofed_peers([spoofer, victim], spec.parse_policy({"trustedPeerTenants": ["ingress"]})) == []


def test_object_counts_from_the_policy_within_its_ceilings() -> None:
    policy = spec.parse_policy({"defaultQuota": {"objects": {"configmaps": 10, "widgets.example.com": 5}},
                                "maxObjects": {"configmaps": 40}})
    data = payments()
    data["spec"]["quota"] = {"objects": {"configmaps": 40}}
    tenant = spec.parse_spec(data, policy=policy)
    assert tenant.spec.quota is not None
    assert tenant.spec.quota.objects == {"configmaps": 40, "widgets.example.com": 5}
    data["spec"]["quota"] = {"objects": {"configmaps": 41, "widgets.example.com": 6, "pods": 1, "Bad_Name": 1}}
    data["spec"]["podSecurity"] = "privileged"
    found = {(e.path, e.message.split(";")[0]) for e in problems(data, policy=policy)}
    assert ("spec.quota.objects.configmaps", "41 exceeds the policy ceiling maxObjects.configmaps=40") in found
    # without a ceiling of its own, a resource is capped at its default
    assert ("spec.quota.objects.widgets.example.com",
            "6 exceeds the policy ceiling maxObjects.widgets.example.com=5") in found
    assert ("spec.quota.objects.pods", '"pods" is not a resource the policy counts') in found
    assert {e[0] for e in found} >= {"spec.podSecurity", "spec.quota.objects.Bad_Name"}  # all reported at once


def test_gpu_profiles_and_device_classes_only_as_the_policy_allows() -> None:
    policy = spec.parse_policy({"extendedResources": {"nvidia.com/mig-1g.10gb": 4, "nvidia.com/mig-3g.40gb": 1},
                                "deviceClasses": {"gpu.example.com": 2}})
    data = payments()
    data["spec"]["quota"] = {"gpu": 1, "extendedResources": {"nvidia.com/mig-1g.10gb": 4},
                             "deviceClasses": {"gpu.example.com": 2}}
    tenant = spec.parse_spec(data, policy=policy)
    assert tenant.spec.quota is not None
    # a name the policy lists but the spec leaves out is 0, never unlimited
    assert tenant.spec.quota.extended_resources == {"nvidia.com/mig-1g.10gb": 4, "nvidia.com/mig-3g.40gb": 0}
    data["spec"]["quota"] = {"extendedResources": {"nvidia.com/mig-1g.10gb": 5, "amd.com/gpu": 1, "nvidia.com/gpu": 1},
                             "deviceClasses": {"gpu.example.com": 3, "fpga.example.com": 1}}
    found = {e.path: e.message for e in problems(data, policy=policy)}
    assert found["spec.quota.extendedResources.nvidia.com/mig-1g.10gb"].startswith("5 exceeds the policy ceiling")
    assert "not allowed by the policy" in found["spec.quota.extendedResources.amd.com/gpu"]
    assert "quota.gpu" in found["spec.quota.extendedResources.nvidia.com/gpu"]
    assert found["spec.quota.deviceClasses.gpu.example.com"].startswith("3 exceeds")
    assert "not allowed" in found["spec.quota.deviceClasses.fpga.example.com"]
    hard = render.render_tenant(tenant, policy=policy)
    quota = next(o for o in hard if o["kind"] == "ResourceQuota")["spec"]["hard"]
    assert quota["requests.nvidia.com/mig-1g.10gb"] == "2" and quota["requests.nvidia.com/mig-3g.40gb"] == "0"
    assert quota["gpu.example.com.deviceclass.resource.k8s.io/devices"] == "1"  # 2 over two namespaces


def test_gpu_tolerations_only_those_the_policy_allows() -> None:
    policy = spec.parse_policy({"gpuPlacement": {"nodeSelector": {"pool": "gpu"},
                                                 "tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}})
    data = payments()
    data["spec"]["placement"] = {"gpu": {"tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"},
                                                         {"key": "dedicated", "operator": "Exists"}]}}
    data["spec"]["ttl"] = "soon"
    found = {e.path: e.message for e in problems(data, policy=policy)}
    assert "taint keys allowed: nvidia.com/gpu" in found["spec.placement.gpu.tolerations[1]"]
    assert "spec.placement.gpu.tolerations[0]" not in found and "spec.ttl" in found  # every error at once


def test_policy_default_object_count_above_its_ceiling() -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_policy({"defaultQuota": {"objects": {"secrets": 11}}, "maxObjects": {"secrets": 10}})
    assert [e.path for e in caught.value.errors] == ["defaultQuota.objects.secrets"]


def test_validate_reports_spoofed_peers_with_every_other_error(tmp_path: Path) -> None:
    (tmp_path / "ingress.yaml").write_text(yaml.safe_dump(_tenant("ingress", ["nginx"])))
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(_tenant("shop", ["web"], ["ingress-nginx"])))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(_tenant("bad", ["Web"])))
    with pytest.raises(errors.SpecError) as caught:
        spec.load_specs([tmp_path])
    paths = sorted((Path(e.file or "").name, e.path) for e in caught.value.errors)
    assert paths == [("bad.yaml", "spec.namespaces[0]"), ("shop.yaml", "spec.network.allowIngressFrom[0].namespace")]


# ---------------------------------------------------------------------------------------------
# Quantities and durations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "canonical"),
    [
        ("8", "8", "8"),
        (8, "8", "8"),
        (0.5, "0.5", "500m"),
        ("100m", "0.1", "100m"),
        ("1500m", "1.5", "1500m"),
        ("1.5", "1.5", "1500m"),
        ("4000", "4000", "4k"),
        ("16Gi", str(16 * 2**30), "16Gi"),
        ("1.5Gi", str(3 * 2**29), "1536Mi"),
        ("0.5Ki", "512", "512"),
        ("1024", "1024", "1024"),
        ("1e3", "1000", "1e3"),
        ("1E3", "1000", "1e3"),
        ("1e-3", "0.001", "1e-3"),
        ("1E", str(10**18), "1E"),
        ("5.", "5", "5"),
        (".5", "0.5", "500m"),
        ("+2k", "2000", "2k"),
        ("1n", "0.000000001", "1n"),
        ("2u", "0.000002", "2u"),
        ("0.0000000001", "0.000000001", "1n"),  # rounded up to 1n, as Kubernetes does
        ("0", "0", "0"),
        ("0Gi", "0", "0"),
        ("1Ei", str(2**60), "1Ei"),
        ("-1", "-1", "-1"),
    ],
)
def test_quantity_parser(text: str | float, value: str, canonical: str) -> None:
    quantity = kube.parse_quantity(text)
    assert quantity.value == Decimal(value)
    assert str(quantity) == canonical
    assert kube.parse_quantity(canonical).value == quantity.value, "the canonical form reads back exactly"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "1 Gi",
        "Gi",
        "1gi",
        "1KB",
        "1.5.5",
        "e3",
        "1e",
        "1e3.5",
        "0x10",
        "1_000",
        "--1",
        "1Kii",
        "1e1234567",
        "inf",
        "NaN",
        True,
        None,
        [1],
        float("inf"),
        float("nan"),
        10**30,
        "99999999999999999999",
    ],
)
def test_quantity_parser_rejects(text: Any) -> None:
    with pytest.raises(ValueError):
        kube.parse_quantity(text)


def test_quantity_split_rounds_down() -> None:
    cpu = kube.parse_quantity("5")
    assert str(cpu.split(3, Decimal("0.001"))) == "1666m"
    memory = kube.parse_quantity("16Gi")
    assert str(memory.split(3, Decimal(1))) == "5726623061"
    assert str(memory.split(2, Decimal(1))) == "8Gi"
    assert str(kube.parse_quantity("1m").split(2, Decimal("0.001"))) == "0"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400), ("45s", 45), ("1d12h", 129600)],
)
def test_durations(text: str, seconds: int) -> None:
    duration = kube.parse_duration(text)
    assert duration.total_seconds() == seconds
    assert kube.parse_duration(kube.format_duration(duration)) == duration


@pytest.mark.parametrize("text", ["", "2", "h", "2 h", "2H", "1m1h", "-1h", "0s", "1.5h", "1000000w"])
def test_durations_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        kube.parse_duration(text)


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("team", True),
        ("app.kubernetes.io/part-of", True),
        ("example.com/team", True),
        ("a/b/c", False),
        ("/team", False),
        ("-team", False),
        ("Team_1.x", True),
        ("kubernetes.io/x", False),
        ("node.kubernetes.io/x", False),
        ("k8s.io/x", False),
        ("vcluster-mgr.dev/x", False),
        ("app.kubernetes.io/managed-by", False),
        ("x" * 64, False),
        ("EXAMPLE.com/x", False),
    ],
)
def test_spec_label_keys(key: str, ok: bool) -> None:
    if ok:
        naming.check_spec_label_key(key)
    else:
        with pytest.raises(ValueError):
            naming.check_spec_label_key(key)


def test_owner_binding_names_are_dns_names_and_distinct() -> None:
    names = {
        naming.owner_binding_name("admin", "User", "alice@example.com"),
        naming.owner_binding_name("admin", "User", "Alice@example.com"),
        naming.owner_binding_name("admin", "Group", "alice@example.com"),
        naming.owner_binding_name("edit", "ServiceAccount", "ci", "payments-app"),
        naming.owner_binding_name("edit", "ServiceAccount", "ci", "payments-ci"),
    }
    assert len(names) == 5
    for name in names:
        kube.check_dns_subdomain(name)
    assert naming.owner_binding_name("admin", "User", "alice@example.com").startswith("vcm-owner-admin-user-")


# ---------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------


def test_policy_ceiling_message_names_field_and_ceiling() -> None:
    data = payments()
    data["spec"]["quota"]["cpu"] = 64
    data["spec"]["quota"]["limitsCpu"] = 64
    found = [str(e) for e in problems(data)]
    assert found == [
        "t.yaml: spec.quota.cpu: 64 exceeds the policy ceiling maxCpu=32",
        "t.yaml: spec.quota.limitsCpu: 64 exceeds the policy ceiling maxCpu=32",
    ]


@pytest.mark.parametrize(
    ("policy", "field", "value", "expected"),
    [
        ({"maxMemory": "8Gi"}, "memory", "16Gi", "spec.quota.memory: 16Gi exceeds the policy ceiling maxMemory=8Gi"),
        (
            {"maxStorage": "1Gi", "defaultQuota": {"storage": "1Gi"}},
            "storage",
            "100Gi",
            "spec.quota.storage: 100Gi exceeds the policy ceiling maxStorage=1Gi",
        ),
        ({"maxGpu": 1}, "gpu", 2, "spec.quota.gpu: 2 exceeds the policy ceiling maxGpu=1"),
        (
            {"maxPods": 10, "defaultQuota": {"pods": 10}},
            "pods",
            60,
            "spec.quota.pods: 60 exceeds the policy ceiling maxPods=10",
        ),
        (
            {"maxServices": 5, "defaultQuota": {"services": 5}},
            "services",
            20,
            "spec.quota.services: 20 exceeds the policy ceiling maxServices=5",
        ),
        (
            {"maxLimitsCpu": "40"},
            "limitsCpu",
            "48",
            "spec.quota.limitsCpu: 48 exceeds the policy ceiling maxLimitsCpu=40",
        ),
        ({}, "memory", "1000Gi", "spec.quota.memory: 1000Gi exceeds the policy ceiling maxMemory=128Gi"),
    ],
)
def test_policy_ceilings(policy: dict[str, Any], field: str, value: Any, expected: str) -> None:
    data = payments()
    data["spec"]["quota"][field] = value
    error = only_problem(data, policy=spec.parse_policy(policy))
    assert f"{error.path}: {error.message}" == expected


def test_quota_at_the_ceiling_is_accepted() -> None:
    data = payments()
    data["spec"]["quota"]["cpu"] = "32000m"
    assert spec.parse_spec(data).spec.quota is not None


def test_policy_levels_ttl_and_control_plane() -> None:
    strict_policy = spec.parse_policy(
        {"podSecurityLevels": ["restricted"], "allowNoTtl": False, "maxTtl": "1d", "allowControlPlanes": False}
    )
    data = payments()
    data["spec"]["podSecurity"] = "baseline"
    data["spec"]["controlPlane"]["enabled"] = True
    found = {e.path: e.message for e in problems(data, policy=strict_policy)}
    assert found == {
        "spec.podSecurity": '"baseline" is not allowed by the policy; allowed: restricted',
        "spec.controlPlane.enabled": "true is not allowed: the policy has allowControlPlanes=false",
        "spec.ttl": "is required: the policy has allowNoTtl=false (at most maxTtl=1d)",
    }
    data = payments()
    data["spec"]["ttl"] = "2d"
    assert str(only_problem(data, policy=strict_policy)) == "t.yaml: spec.ttl: 2d exceeds the policy ceiling maxTtl=1d"
    data["spec"]["ttl"] = "24h"
    assert spec.parse_spec(data, policy=strict_policy).spec.ttl == "24h"


def test_isolation_none_needs_the_policy() -> None:
    data = payments()
    data["spec"]["network"] = {"isolation": "none"}
    assert only_problem(data).path == "spec.network.isolation"
    lenient = spec.parse_policy({"isolationLevels": ["strict", "namespace", "none"]})
    assert spec.parse_spec(data, policy=lenient).spec.network.isolation == "none"
    data["spec"]["network"]["allowIngressFrom"] = [{"namespace": "ingress-nginx"}]
    assert only_problem(data, policy=lenient).path == "spec.network.allowIngressFrom"


def test_egress_cidrs_come_from_the_policy() -> None:
    data = payments()
    data["spec"]["network"]["allowEgressTo"] = [{"cidr": "203.0.113.0/24"}, {"cidr": "fd00::/64"}]
    policy = spec.parse_policy({"egressCidrs": ["203.0.113.0/24"]})
    error = only_problem(data, policy=policy)
    assert error.path == "spec.network.allowEgressTo[1].cidr"
    assert "outside the policy's egressCidrs (203.0.113.0/24)" in error.message


def test_policy_defaults_fill_what_the_spec_leaves_out() -> None:
    data = payments()
    del data["spec"]["limits"]
    data["spec"]["quota"] = {"cpu": "4", "limitsMemory": "8Gi"}
    policy = spec.parse_policy({"defaultQuota": {"memory": "2Gi", "pods": 7}})
    tenant = spec.parse_spec(data, policy=policy)
    q = tenant.spec.quota
    assert q is not None
    assert (q.cpu, q.limits_cpu, q.memory, q.limits_memory, q.pods) == ("4", "4", "2Gi", "8Gi", 7)
    assert (q.storage, q.services, q.gpu) == ("20Gi", 10, 0)
    limits = tenant.spec.limits
    assert limits is not None and limits.max is not None
    assert (limits.max.cpu, limits.max.memory) == ("2", "4Gi")


def test_policy_file_and_its_errors(tmp_path: Path) -> None:
    policy = spec.load_policy(REPO / "examples" / "policy.yaml")
    assert policy.max_ttl == "30d" and policy.max_limits_cpu == "64"
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        "kind: Policy\nmaxCpu: 4\nmaxPods: many\nisolationLevels: [strict, open]\nmaxLimitsMemory: 1Gi\nsurprise: 1\n"
    )
    with pytest.raises(errors.SpecError) as caught:
        spec.load_policy(bad)
    assert {e.path for e in caught.value.errors} == {"maxPods", "isolationLevels[1]", "surprise"}
    bad.write_text("maxCpu: 1\nmaxLimitsMemory: 1Gi\nisolationLevels: []\n")
    with pytest.raises(errors.SpecError) as caught:
        spec.load_policy(bad)
    assert {str(e) for e in caught.value.errors} == {
        f"{bad}: isolationLevels: must allow at least one level",
        f"{bad}: maxLimitsMemory: 1Gi is less than the requests ceiling (128Gi); limits must be >= requests",
        f"{bad}: defaultQuota.cpu: 2 exceeds the policy ceiling maxCpu=1",
    }


def test_default_policy_matches_its_documented_defaults() -> None:
    p = spec.DEFAULT_POLICY
    assert p == spec.parse_policy({})
    assert p.isolation_levels == ["strict", "namespace"]
    assert p.egress_cidrs == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert (p.allow_node_ports, p.allow_load_balancers, p.allow_no_ttl) == (False, False, True)


# ---------------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "file"), [("tenant", "tenant.schema.json"), ("policy", "policy.schema.json")])
def test_committed_schema_equals_generated(kind: str, file: str) -> None:
    committed = (REPO / "schema" / file).read_text()
    assert committed == spec.schema_text(kind)  # type: ignore[arg-type]  # a str from parametrize, checked by the call
    assert json.loads(committed) == (spec.json_schema() if kind == "tenant" else spec.policy_json_schema())


def _properties(node: Any) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((name, prop))
        for value in node.values():
            found += _properties(value)
    elif isinstance(node, list):
        for value in node:
            found += _properties(value)
    return found


@pytest.mark.parametrize("schema", [spec.json_schema(), spec.policy_json_schema()], ids=["tenant", "policy"])
def test_every_schema_field_has_a_description_and_unknown_keys_are_closed(schema: dict[str, Any]) -> None:
    props = _properties(schema)
    assert len(props) > 20
    assert [name for name, prop in props if not prop.get("description")] == []
    for name, definition in schema["$defs"].items():
        assert definition.get("additionalProperties") is False, name
    jsonschema.Draft202012Validator.check_schema(schema)


def test_examples_validate_against_the_committed_schema() -> None:
    tenant_schema = json.loads((REPO / "schema" / "tenant.schema.json").read_text())
    for path in EXAMPLES.glob("*.yaml"):
        jsonschema.Draft202012Validator(tenant_schema).validate(yaml.safe_load(path.read_text()))
    policy_schema = json.loads((REPO / "schema" / "policy.schema.json").read_text())
    jsonschema.Draft202012Validator(policy_schema).validate(yaml.safe_load((REPO / "examples/policy.yaml").read_text()))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(tenant_schema).validate({**payments(), "status": {}})


# ---------------------------------------------------------------------------------------------
# spec.controlPlane (the rest of its rules: tests/test_controlplane.py)
# ---------------------------------------------------------------------------------------------


def test_control_plane_defaults() -> None:
    cp = spec.load_spec(PAYMENTS).spec.control_plane
    assert (cp.enabled, cp.version, cp.backing_store, cp.sleep_after, cp.values) == (False, None, "embedded", None, {})
    assert (cp.exposure.type, cp.exposure.ingress_host) == ("ClusterIP", None)
    assert (cp.sync.ingresses, cp.sync.storage_classes, cp.sync.nodes) == (False, False, False)
    assert (cp.persistence.enabled, cp.persistence.size, cp.persistence.storage_class) == (True, None, None)
    assert cp.chart.version == naming.CONTROL_PLANE_CHART_VERSION == "0.36.1"
    assert cp.chart.source() == ("repository", "https://charts.loft.sh")
    p = spec.DEFAULT_POLICY
    assert (p.allow_control_planes, p.allow_control_plane_values) == (True, True)
    assert p.allowed_control_plane_exposures == ["ClusterIP"]
    assert p.allowed_control_plane_sync == ["ingresses", "storageClasses"]
    assert (p.max_control_plane_cpu, p.max_control_plane_memory) == ("2", "4Gi")
    assert p.allowed_chart_sources == ["https://charts.loft.sh"]


CONTROL_PLANE_RULES = [
    ("version as float", _set("spec.controlPlane.version", 1.33), "spec.controlPlane.version", ["expected a string"]),
    ("minor-only version", _set("spec.controlPlane.version", "1.33"), "spec.controlPlane.version", ["1.33.4"]),
    ("bad backingStore", _set("spec.controlPlane.backingStore", "sqlite"), "spec.controlPlane.backingStore", ["etcd"]),
    (
        "exposure not allowed",
        _set("spec.controlPlane", {"enabled": True, "exposure": {"type": "NodePort"}}),
        "spec.controlPlane.exposure.type",
        ["allowedControlPlaneExposures: ClusterIP"],
    ),
    (
        "values key reaching the host",
        _set("spec.controlPlane", {"enabled": True, "values": {"experimental": {}}}),
        "spec.controlPlane.values.experimental",
        ["may not be set", "host cluster"],
    ),
    (
        "values with a set",
        _set("spec.controlPlane.values", {"a": {1, 2}}),
        "spec.controlPlane.values",
        ["only JSON data"],
    ),
    (
        "values with infinity",
        _set("spec.controlPlane.values", {"a": [float("inf")]}),
        "spec.controlPlane.values",
        ["JSON cannot represent"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "fragments"), [r[1:] for r in CONTROL_PLANE_RULES], ids=[r[0] for r in CONTROL_PLANE_RULES]
)
def test_each_control_plane_rule_fails_with_its_path(mutate: Any, path: str, fragments: list[str]) -> None:
    test_each_rule_fails_with_its_path(mutate, path, fragments)


def test_disabled_control_plane_skips_policy_rules() -> None:
    data = payments()
    data["spec"]["controlPlane"] = {"enabled": False, "exposure": {"type": "LoadBalancer"}, "sync": {"nodes": True}}
    assert not spec.parse_spec(data).spec.control_plane.enabled
