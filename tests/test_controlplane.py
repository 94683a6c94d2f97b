"""Virtual control planes: spec.controlPlane, its policy rules and the vcluster Helm values (offline).

Covers: the values generated for every example tenant and for examples/controlplane/vteam.yaml validate
against the official vcluster 0.36.1 values schema (read from ../shared/vendor, never copied here); the
settings that keep the virtual cluster inside its tenant (chart policies off, restricted security contexts,
imagePullPolicy Always, the tenant's nodeSelector on every pod the chart lets us place, resources that fit
the tenant's LimitRange); backing stores, persistence, exposure, sync, sleep, the chart source; the
``values`` escape hatch merged last and its protected keys; every policy refusal with its dotted path; an
admin's own values template; a Hypothesis property (random control planes within policy always give
schema-valid values in which the overrides land); and ``vcm render --control-plane-values``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, kube, naming, render, spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "tenants"
VTEAM = REPO / "examples" / "controlplane" / "vteam.yaml"
ALL_EXAMPLES = [*sorted(EXAMPLES.glob("*.yaml")), VTEAM]
POLICY_FILE = REPO / "examples" / "policy.yaml"
VENDOR = Path(__file__).parents[2] / "shared" / "vendor" / f"vcluster-{naming.CONTROL_PLANE_CHART_VERSION}"

LENIENT = spec.parse_policy(
    {
        "allowNodePorts": True,
        "allowLoadBalancers": True,
        "allowedControlPlaneExposures": ["ClusterIP", "NodePort", "LoadBalancer", "Ingress"],
        "allowedControlPlaneSync": ["ingresses", "storageClasses", "nodes"],
        "allowedChartSources": ["https://charts.loft.sh", "oci://registry.example.com/charts", "/opt/charts"],
        "allowLicensedControlPlaneFeatures": True,
    }
)
LICENSED = spec.parse_policy({"allowLicensedControlPlaneFeatures": True})
runner = CliRunner()


# ---------------------------------------------------------------------------------------------
# The official values schema
# ---------------------------------------------------------------------------------------------


@functools.cache
def _load_chart_schema() -> dict[str, Any]:
    path = VENDOR / "values.schema.json"
    if not path.is_file():
        pytest.fail(
            f"the vcluster chart's values schema is missing at {path}: the tests check generated values against "
            "it; put the vendored chart data (values.schema.json from the chart's release) there"
        )
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = _load_chart_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def chart_validator() -> jsonschema.protocols.Validator:
    return _validator()


def assert_chart_valid(validator: jsonschema.protocols.Validator, values: dict[str, Any]) -> None:
    problems = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    assert not problems, "\n".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in problems)


def test_vendored_schema_is_the_chart_version_we_target() -> None:
    schema = _load_chart_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"controlPlane", "sync", "policies", "sleep"} <= set(schema["properties"])


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def vteam() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(VTEAM.read_text()))


def tenant_of(data: dict[str, Any], policy: spec.Policy | None = None) -> spec.Tenant:
    return spec.parse_spec(data, source="t.yaml", policy=policy)


def values_of(data: dict[str, Any], policy: spec.Policy | None = None) -> dict[str, Any]:
    return render.control_plane_values(tenant_of(data, policy), policy=policy)


def at(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        assert isinstance(node, dict) and key in node, f"{dotted}: no {key!r} in {node!r}"
        node = node[key]
    return node


def problems(data: dict[str, Any], policy: spec.Policy | None = None) -> dict[str, str]:
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec(data, source="t.yaml", policy=policy)
    found: dict[str, str] = {}
    for e in caught.value.errors:
        assert e.file == "t.yaml"
        found[e.path] = f"{found.get(e.path, '')} | {e.message}" if e.path in found else e.message
    return found


def security_contexts(values: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(component, pod context, container context) of every pod the generated values configure."""
    cp = values["controlPlane"]
    yield ("statefulSet", cp["statefulSet"]["security"]["podSecurityContext"],
           cp["statefulSet"]["security"]["containerSecurityContext"])
    yield ("distro init", cp["statefulSet"]["security"]["podSecurityContext"], cp["distro"]["k8s"]["securityContext"])
    coredns = cp["coredns"]["security"]
    yield ("coredns", coredns["podSecurityContext"], coredns["containerSecurityContext"])
    etcd = cp["backingStore"].get("etcd")
    if etcd:
        security = etcd["deploy"]["statefulSet"]["security"]
        yield ("etcd", security["podSecurityContext"], security["containerSecurityContext"])


def assert_restricted(pod: dict[str, Any], container: dict[str, Any]) -> None:
    """The Pod Security Standard "restricted" fields a pod spec can get wrong, pod and container merged."""
    merged = {**pod, **container}
    assert merged["runAsNonRoot"] is True
    assert merged.get("runAsUser", 1) != 0 and merged.get("runAsGroup", 1) != 0
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"] and not container["capabilities"].get("add")
    assert container.get("privileged") is not True
    assert merged["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")


# ---------------------------------------------------------------------------------------------
# Every example gives schema-valid values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: p.name)
def test_examples_give_schema_valid_values(path: Path, chart_validator: jsonschema.protocols.Validator) -> None:
    for policy in (None, spec.load_policy(POLICY_FILE)):
        tenant = spec.load_spec(path, policy=policy)
        values = render.control_plane_values(tenant, policy=policy)
        assert_chart_valid(chart_validator, values)
        assert yaml.safe_load(render.dump_values(values)) == values


def test_vteam_example_is_enabled_and_stays_out_of_the_applied_folder() -> None:
    tenant = spec.load_spec(VTEAM)
    assert tenant.spec.control_plane.enabled
    assert VTEAM.parent != EXAMPLES
    assert not any(spec.load_spec(p).spec.control_plane.enabled for p in EXAMPLES.glob("*.yaml"))


def test_vteam_values(chart_validator: jsonschema.protocols.Validator) -> None:
    values = render.control_plane_values(spec.load_spec(VTEAM))
    assert_chart_valid(chart_validator, values)
    assert at(values, "controlPlane.distro.k8s.enabled") is True
    assert at(values, "controlPlane.distro.k8s.version") == "v1.36.0"
    assert at(values, "controlPlane.backingStore") == {"database": {"embedded": {"enabled": True}}}
    assert at(values, "controlPlane.statefulSet.resources") == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert at(values, "controlPlane.statefulSet.persistence.volumeClaim") == {"enabled": True, "size": "10Gi"}
    assert at(values, "controlPlane.service.spec.type") == "ClusterIP"
    assert "ingress" not in values["controlPlane"]
    assert at(values, "sync.toHost.ingresses.enabled") is True
    assert at(values, "sync.fromHost.ingressClasses.enabled") is True
    assert at(values, "sync.fromHost.storageClasses.enabled") is True
    assert at(values, "sync.fromHost.nodes.enabled") is False
    assert "sleep" not in values
    assert at(values, "controlPlane.coredns.deployment.replicas") == 1, "spec.controlPlane.values lands"
    assert at(values, "policies.podSecurityStandard") == "restricted"
    assert at(values, "telemetry.enabled") is False


def test_vteam_example_validates_against_the_committed_tenant_schema() -> None:
    schema = json.loads((REPO / "schema" / "tenant.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(VTEAM.read_text()))


def test_chart_of_vteam() -> None:
    assert render.control_plane_chart(spec.load_spec(VTEAM)) == {
        "release": "vteam",
        "namespace": "vteam-cp",
        "chart": "vcluster",
        "version": "0.36.1",
        "repository": "https://charts.loft.sh",
    }


# ---------------------------------------------------------------------------------------------
# What keeps the virtual cluster inside its tenant
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: p.name)
def test_chart_policies_stay_off_and_pod_security_mirrors_the_tenant(path: Path) -> None:
    tenant = spec.load_spec(path)
    values = render.control_plane_values(tenant)
    for key in ("resourceQuota", "limitRange", "networkPolicy"):
        assert at(values, f"policies.{key}.enabled") is False, key
    assert at(values, "policies.podSecurityStandard") == tenant.spec.pod_security


@pytest.mark.parametrize("backing_store", ["embedded", "etcd"])
def test_every_pod_meets_restricted(backing_store: str) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["backingStore"] = backing_store
    values = values_of(data)
    found = list(security_contexts(values))
    assert len(found) == (4 if backing_store == "etcd" else 3)
    for component, pod, container in found:
        try:
            assert_restricted(pod, container)
        except AssertionError as exc:
            raise AssertionError(f"{component}: {exc}") from exc
    # the chart's defaults run the syncer as root (runAsUser 0): Helm merges our keys over them
    assert at(values, "controlPlane.statefulSet.security.containerSecurityContext.runAsUser") != 0


def test_baseline_tenants_get_the_same_hardened_pods() -> None:
    data = yaml.safe_load((EXAMPLES / "search.yaml").read_text())
    data["spec"]["podSecurity"] = "baseline"
    values = render.control_plane_values(spec.parse_spec(data))
    assert at(values, "policies.podSecurityStandard") == "baseline"
    for _, pod, container in security_contexts(values):
        assert_restricted(pod, container)


@pytest.mark.parametrize("backing_store", ["embedded", "etcd"])
def test_image_pull_policy_always_wherever_the_chart_allows(backing_store: str) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["backingStore"] = backing_store
    values = values_of(data)
    assert at(values, "controlPlane.statefulSet.imagePullPolicy") == "Always"
    assert at(values, "controlPlane.distro.k8s.imagePullPolicy") == "Always"
    if backing_store == "etcd":
        assert at(values, "controlPlane.backingStore.etcd.deploy.statefulSet.imagePullPolicy") == "Always"
    # the rewrite-hosts init container has no imagePullPolicy setting, so it is off
    assert at(values, "sync.toHost.pods.rewriteHosts.enabled") is False


def test_every_image_pull_policy_in_the_output_is_always() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["backingStore"] = "etcd"

    def walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "imagePullPolicy":
                    yield path + key, value
                yield from walk(value, f"{path}{key}.")

    found = dict(walk(values_of(data), ""))
    assert len(found) == 3 and set(found.values()) == {"Always"}, found


def test_node_selector_reaches_every_pod_the_chart_places() -> None:
    data = vteam()
    data["spec"]["placement"]["nodeSelector"] = {"pool": "tenants", "topology.kubernetes.io/zone": "z1"}
    data["spec"]["controlPlane"]["backingStore"] = "etcd"
    values = values_of(data)
    selector = {"pool": "tenants", "topology.kubernetes.io/zone": "z1"}
    assert at(values, "controlPlane.statefulSet.scheduling.nodeSelector") == selector
    assert at(values, "controlPlane.backingStore.etcd.deploy.statefulSet.scheduling.nodeSelector") == selector
    assert at(values, "controlPlane.coredns.deployment.nodeSelector") == selector
    # the syncer adds these labels to the nodeSelector of every pod it syncs to the host
    assert at(values, "sync.fromHost.nodes.selector") == {"all": False, "labels": selector}
    assert at(values, "sync.fromHost.nodes.syncBackChanges") is False
    assert at(values, "sync.fromHost.nodes.clearImageStatus") is True


def test_no_node_selector_gives_empty_selectors() -> None:
    data = vteam()
    data["spec"]["placement"] = {}
    values = values_of(data)
    assert at(values, "controlPlane.statefulSet.scheduling.nodeSelector") == {}
    assert at(values, "sync.fromHost.nodes.selector.labels") == {}


def _fits(resources: dict[str, Any], ceiling: dict[str, str]) -> None:
    q = kube.parse_quantity
    for r in ("cpu", "memory"):
        assert q(resources["requests"][r]).value <= q(resources["limits"][r]).value, (r, resources)
        assert q(resources["limits"][r]).value <= q(ceiling[r]).value, (r, resources, ceiling)


def test_resources_fit_a_small_limit_range() -> None:
    data = vteam()
    data["spec"]["limits"] = {
        "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
        "default": {"cpu": "100m", "memory": "100Mi"},
        "max": {"cpu": "150m", "memory": "128Mi"},
    }
    data["spec"]["controlPlane"]["resources"] = {}
    data["spec"]["controlPlane"]["backingStore"] = "etcd"
    values = values_of(data)
    ceiling = {"cpu": "150m", "memory": "128Mi"}
    cp = values["controlPlane"]
    for resources in (
        cp["statefulSet"]["resources"],
        cp["distro"]["k8s"]["resources"],
        cp["coredns"]["deployment"]["resources"],
        cp["backingStore"]["etcd"]["deploy"]["statefulSet"]["resources"],
    ):
        _fits(resources, ceiling)
    assert cp["statefulSet"]["resources"] == {
        "requests": {"cpu": "150m", "memory": "128Mi"},
        "limits": {"cpu": "150m", "memory": "128Mi"},
    }


def test_default_resources_follow_the_policy_ceiling() -> None:
    policy = spec.parse_policy({"maxControlPlaneCpu": "500m", "maxControlPlaneMemory": "1Gi"})
    data = vteam()
    data["spec"]["controlPlane"]["resources"] = {}
    values = values_of(data, policy)
    assert at(values, "controlPlane.statefulSet.resources") == {
        "requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }


def test_a_request_above_the_default_limit_raises_the_limit() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["resources"] = {"requests": {"cpu": "1500m", "memory": "3Gi"}}
    assert at(values_of(data), "controlPlane.statefulSet.resources") == {
        "requests": {"cpu": "1500m", "memory": "3Gi"},
        "limits": {"cpu": "1500m", "memory": "3Gi"},
    }


# ---------------------------------------------------------------------------------------------
# Backing store, persistence, exposure, sync, sleep
# ---------------------------------------------------------------------------------------------


def test_etcd_backing_store_keeps_its_data_in_etcd() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["backingStore"] = "etcd"
    data["spec"]["controlPlane"]["persistence"] = {"size": "20Gi", "storageClass": "fast-ssd"}
    values = values_of(data)
    etcd = at(values, "controlPlane.backingStore.etcd.deploy")
    assert etcd["enabled"] is True
    assert etcd["statefulSet"]["persistence"]["volumeClaim"] == {
        "enabled": True,
        "size": "20Gi",
        "storageClass": "fast-ssd",
    }
    assert "database" not in values["controlPlane"]["backingStore"]
    assert at(values, "controlPlane.statefulSet.persistence.volumeClaim") == {"enabled": False}


def test_persistence_can_be_off() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["persistence"] = {"enabled": False}
    assert at(values_of(data), "controlPlane.statefulSet.persistence.volumeClaim") == {"enabled": False}


def test_persistence_default_size_and_storage_class() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["persistence"] = {"storageClass": "standard"}
    assert at(values_of(data), "controlPlane.statefulSet.persistence.volumeClaim") == {
        "enabled": True,
        "size": "5Gi",
        "storageClass": "standard",
    }


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_exposure_service_type(kind: str, chart_validator: jsonschema.protocols.Validator) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["exposure"] = {"type": kind}
    values = values_of(data, LENIENT)
    assert at(values, "controlPlane.service.spec.type") == kind
    assert_chart_valid(chart_validator, values)


def test_exposure_ingress_host(chart_validator: jsonschema.protocols.Validator) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["exposure"] = {"ingressHost": "vteam.k8s.example.com"}
    values = values_of(data, LENIENT)
    assert at(values, "controlPlane.ingress") == {"enabled": True, "host": "vteam.k8s.example.com"}
    assert at(values, "controlPlane.proxy.extraSANs") == ["vteam.k8s.example.com"]
    assert at(values, "controlPlane.service.spec.type") == "ClusterIP"
    assert_chart_valid(chart_validator, values)


def test_sync_nodes_when_the_policy_allows_it() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["sync"] = {"nodes": True}
    values = values_of(data, LENIENT)
    assert at(values, "sync.fromHost.nodes.enabled") is True
    assert at(values, "sync.toHost.ingresses.enabled") is False
    assert at(values, "sync.fromHost.storageClasses.enabled") is False


@pytest.mark.parametrize(("given", "expected"), [("30m", "30m"), ("1d", "24h"), ("1w2h", "170h"), ("1h30m", "1h30m")])
def test_sleep_after_becomes_a_go_duration(given: str, expected: str) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["sleepAfter"] = given
    assert at(values_of(data, LICENSED), "sleep.auto.afterInactivity") == expected


def test_sleep_after_is_refused_unless_the_policy_says_the_image_is_licensed() -> None:
    data = vteam()
    data["spec"]["controlPlane"]["sleepAfter"] = "2h"
    found = problems(data)
    assert "licensed" in found["spec.controlPlane.sleepAfter"]
    assert "sleep" in values_of(data, LICENSED)


def test_no_sleep_and_no_version_leave_the_chart_defaults() -> None:
    data = vteam()
    del data["spec"]["controlPlane"]["version"]
    values = values_of(data)
    assert "sleep" not in values
    assert "version" not in values["controlPlane"]["distro"]["k8s"]


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ({"oci": "oci://registry.example.com/charts/vcluster"}, {"oci": "oci://registry.example.com/charts/vcluster"}),
        ({"path": "/opt/charts/vcluster-0.36.1.tgz"}, {"path": "/opt/charts/vcluster-0.36.1.tgz"}),
        ({"repository": "https://charts.loft.sh/"}, {"repository": "https://charts.loft.sh/"}),
        ({}, {"repository": "https://charts.loft.sh"}),
    ],
)
def test_chart_sources(chart: dict[str, str], expected: dict[str, str]) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["chart"] = chart
    result = render.control_plane_chart(tenant_of(data, LENIENT))
    assert {k: v for k, v in result.items() if k in ("repository", "oci", "path")} == expected
    assert result["version"] == "0.36.1"


@pytest.mark.parametrize(
    ("kind", "reference", "allowed", "expected"),
    [
        ("repository", "https://charts.loft.sh", ["https://charts.loft.sh"], True),
        ("repository", "https://charts.loft.sh/sub", ["https://charts.loft.sh/"], True),
        ("repository", "https://charts.loft.sh.evil.example", ["https://charts.loft.sh"], False),
        ("oci", "oci://r.example.com/charts/vcluster", ["oci://r.example.com/charts"], True),
        ("oci", "oci://r.example.com/chartsx/vcluster", ["oci://r.example.com/charts"], False),
        ("path", "/opt/charts/vcluster.tgz", ["/opt/charts"], True),
        ("path", "/opt/charts/../../etc/vcluster.tgz", ["/opt/charts"], False),
        ("path", "/opt/charts/./a/../vcluster.tgz", ["/opt/charts/"], True),
        ("path", "/opt/chartsx/vcluster.tgz", ["/opt/charts"], False),
        ("path", "anything", [], False),
    ],
)
def test_chart_source_allowed(kind: str, reference: str, allowed: list[str], expected: bool) -> None:
    assert spec.chart_source_allowed(kind, reference, allowed) is expected


# ---------------------------------------------------------------------------------------------
# The values escape hatch
# ---------------------------------------------------------------------------------------------


def test_merge_values_semantics() -> None:
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1}
    override = {"a": {"c": [3], "d": {"g": 2}, "b": None}, "h": {"i": True}}
    merged = render.merge_values(base, override)
    assert merged == {"a": {"c": [3], "d": {"e": 1, "g": 2}}, "f": 1, "h": {"i": True}}
    assert base == {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1}, "inputs are not changed"
    assert render.merge_values(base, {}) == base


def test_values_override_generated_ones_last(chart_validator: jsonschema.protocols.Validator) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["values"] = {
        "controlPlane": {
            "statefulSet": {"highAvailability": {"replicas": 3}, "scheduling": {"priorityClassName": "tenant"}},
            "service": {"spec": {"type": "ClusterIP", "sessionAffinity": "None"}},
        },
        "telemetry": {"enabled": True},
        "sync": {"toHost": {"pods": {"rewriteHosts": None}}},
    }
    values = values_of(data)
    assert at(values, "controlPlane.statefulSet.highAvailability.replicas") == 3
    assert at(values, "controlPlane.statefulSet.scheduling") == {
        "nodeSelector": {"pool": "tenants"},
        "priorityClassName": "tenant",
    }
    assert at(values, "telemetry.enabled") is True
    assert "rewriteHosts" not in at(values, "sync.toHost.pods"), "null removes a generated key"
    assert_chart_valid(chart_validator, values)


def test_values_that_are_not_json_data_are_refused() -> None:
    text = VTEAM.read_text().replace("replicas: 1", "replicas: 2024-01-01")
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_spec_text(text, source="t.yaml")
    [error] = caught.value.errors
    assert error.path == "spec.controlPlane.values"
    assert "date" in error.message


@pytest.mark.parametrize("dotted", sorted(spec.PROTECTED_VALUES))
def test_protected_values_are_refused_with_their_path(dotted: str) -> None:
    data = vteam()
    node: dict[str, Any] = {}
    data["spec"]["controlPlane"]["values"] = node
    keys = dotted.split(".")
    for key in keys[:-1]:
        node[key] = {}
        node = node[key]
    node[keys[-1]] = {"enabled": True}
    found = problems(data, LENIENT)
    path = "spec.controlPlane.values." + dotted
    assert path in found, found
    assert "may not be set" in found[path]


def test_values_need_the_policy() -> None:
    policy = spec.parse_policy({"allowControlPlaneValues": False})
    assert problems(vteam(), policy) == {
        "spec.controlPlane.values": "is not allowed: the policy has allowControlPlaneValues=false"
    }
    data = vteam()
    data["spec"]["controlPlane"]["values"] = {}
    tenant_of(data, policy)


# ---------------------------------------------------------------------------------------------
# Refusals: each names its dotted path
# ---------------------------------------------------------------------------------------------


def _cp(**fields: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        data["spec"]["controlPlane"].update(fields)

    return mutate


REFUSALS = [
    ("minor version only", _cp(version="1.33"), None, "spec.controlPlane.version", ["MAJOR.MINOR.PATCH", '"1.33"']),
    ("bad backing store", _cp(backingStore="mysql"), None, "spec.controlPlane.backingStore", ["'embedded' or 'etcd'"]),
    ("unknown key", _cp(replicas=3), None, "spec.controlPlane.replicas", ["valid keys here: enabled, version"]),
    (
        "unknown exposure key",
        _cp(exposure={"port": 443}),
        None,
        "spec.controlPlane.exposure.port",
        ["valid keys here: type, ingressHost"],
    ),
    ("bad exposure type", _cp(exposure={"type": "Ingress"}), None, "spec.controlPlane.exposure.type", ["'ClusterIP'"]),
    (
        "exposure not allowed",
        _cp(exposure={"type": "LoadBalancer"}),
        None,
        "spec.controlPlane.exposure.type",
        ['"LoadBalancer" is not allowed', "allowedControlPlaneExposures: ClusterIP"],
    ),
    (
        "NodePort without allowNodePorts",
        _cp(exposure={"type": "NodePort"}),
        spec.parse_policy({"allowedControlPlaneExposures": ["ClusterIP", "NodePort"]}),
        "spec.controlPlane.exposure.type",
        ["allowNodePorts=true"],
    ),
    (
        "LoadBalancer without allowLoadBalancers",
        _cp(exposure={"type": "LoadBalancer"}),
        spec.parse_policy({"allowedControlPlaneExposures": ["LoadBalancer"]}),
        "spec.controlPlane.exposure.type",
        ["allowLoadBalancers=true"],
    ),
    (
        "ingress not allowed",
        _cp(exposure={"ingressHost": "vteam.example.com"}),
        None,
        "spec.controlPlane.exposure.ingressHost",
        ['"vteam.example.com"', "does not list Ingress"],
    ),
    ("bad ingress host", _cp(exposure={"ingressHost": "Vteam_"}), LENIENT, "spec.controlPlane.exposure.ingressHost",
     ["DNS-1123 subdomain"]),
    (
        "sync nodes not allowed",
        _cp(sync={"nodes": True}),
        None,
        "spec.controlPlane.sync.nodes",
        ["allowedControlPlaneSync: ingresses, storageClasses"],
    ),
    ("sync as string", _cp(sync={"nodes": "yes"}), LENIENT, "spec.controlPlane.sync.nodes", ["true or false"]),
    (
        "cpu over the policy",
        _cp(resources={"limits": {"cpu": "3"}}),
        None,
        "spec.controlPlane.resources.limits.cpu",
        ["3 exceeds the policy ceiling maxControlPlaneCpu=2"],
    ),
    (
        "memory over the policy",
        _cp(resources={"requests": {"memory": "5Gi"}, "limits": {"memory": "8Gi"}}),
        spec.parse_policy({"maxControlPlaneMemory": "4Gi"}),
        "spec.controlPlane.resources.limits.memory",
        ["exceeds the policy ceiling maxControlPlaneMemory=4Gi"],
    ),
    (
        "over the tenant's limits.max",
        _cp(resources={"limits": {"memory": "5Gi"}}),
        spec.parse_policy({"maxControlPlaneMemory": "8Gi"}),
        "spec.controlPlane.resources.limits.memory",
        ["more than spec.limits.max.memory (4Gi)", "LimitRange"],
    ),
    (
        "requests above limits",
        _cp(resources={"requests": {"cpu": "1"}, "limits": {"cpu": "500m"}}),
        None,
        "spec.controlPlane.resources.requests.cpu",
        ["1 is more than limits.cpu (500m)"],
    ),
    ("bad quantity", _cp(resources={"limits": {"cpu": "lots"}}), None, "spec.controlPlane.resources.limits.cpu",
     ["not a Kubernetes quantity"]),
    (
        "persistence off with a size",
        _cp(persistence={"enabled": False, "size": "1Gi"}),
        None,
        "spec.controlPlane.persistence.size",
        ["no effect with enabled: false"],
    ),
    ("bad storage class", _cp(persistence={"storageClass": "Fast SSD"}), None,
     "spec.controlPlane.persistence.storageClass", ['"Fast SSD"']),
    ("bad sleepAfter", _cp(sleepAfter="soon"), None, "spec.controlPlane.sleepAfter", ['"soon"', "30m, 2h"]),
    ("values not a mapping", _cp(values=[1]), None, "spec.controlPlane.values", ["expected a mapping"]),
    (
        "two chart sources",
        _cp(chart={"repository": "https://charts.loft.sh", "oci": "oci://r.example.com/vcluster"}),
        LENIENT,
        "spec.controlPlane.chart",
        ["gives repository and oci", "exactly one"],
    ),
    ("bad chart version", _cp(chart={"version": "^0.35"}), None, "spec.controlPlane.chart.version", ["exact"]),
    (
        "repository not a URL",
        _cp(chart={"repository": "charts.loft.sh"}),
        None,
        "spec.controlPlane.chart.repository",
        ["not an http:// or https:// URL"],
    ),
    ("oci without oci://", _cp(chart={"oci": "r.example.com/x"}), None, "spec.controlPlane.chart.oci", ["oci://"]),
    (
        "chart source not allowed",
        _cp(chart={"repository": "https://charts.example.com"}),
        None,
        "spec.controlPlane.chart.repository",
        ['"https://charts.example.com" is not allowed', "allowedChartSources (https://charts.loft.sh)"],
    ),
    (
        "local path climbing out",
        _cp(chart={"path": "/opt/charts/../../etc/vcluster.tgz"}),
        LENIENT,
        "spec.controlPlane.chart.path",
        ["not allowed"],
    ),
    (
        "default source not allowed",
        _cp(chart={}),
        spec.parse_policy({"allowedChartSources": ["oci://mirror.example.com/charts"]}),
        "spec.controlPlane.chart.repository",
        ["the default https://charts.loft.sh is not allowed"],
    ),
    (
        "control planes not allowed",
        _cp(),
        spec.parse_policy({"allowControlPlanes": False}),
        "spec.controlPlane.enabled",
        ["true is not allowed: the policy has allowControlPlanes=false"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "policy", "path", "fragments"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_name_their_path(mutate: Any, policy: spec.Policy | None, path: str, fragments: list[str]) -> None:
    data = vteam()
    mutate(data)
    found = problems(data, policy)
    assert path in found, found
    for fragment in fragments:
        assert fragment in found[path], f"{fragment!r} not in {found[path]!r}"


def test_every_control_plane_problem_is_reported_at_once() -> None:
    data = vteam()
    data["spec"]["controlPlane"].update(
        exposure={"type": "NodePort", "ingressHost": "a.example.com"},
        sync={"nodes": True},
        resources={"limits": {"cpu": "3"}},
        values={"rbac": {}},
        chart={"repository": "https://elsewhere.example.com"},
    )
    assert set(problems(data)) == {
        "spec.controlPlane.exposure.type",
        "spec.controlPlane.exposure.ingressHost",
        "spec.controlPlane.sync.nodes",
        "spec.controlPlane.resources.limits.cpu",
        "spec.controlPlane.values.rbac",
        "spec.controlPlane.chart.repository",
    }


def test_policy_rules_wait_for_enabled_but_values_generation_applies_them() -> None:
    data = vteam()
    data["spec"]["controlPlane"].update(enabled=False, exposure={"type": "LoadBalancer"})
    tenant = tenant_of(data)  # a disabled control plane is only checked for shape
    with pytest.raises(errors.SpecError) as caught:
        render.control_plane_values(tenant)
    assert [e.path for e in caught.value.errors] == ["spec.controlPlane.exposure.type"]
    with pytest.raises(errors.SpecError) as caught:
        render.control_plane_values(spec.load_spec(VTEAM), policy=spec.parse_policy({"allowControlPlanes": False}))
    assert [e.path for e in caught.value.errors] == ["spec.controlPlane.enabled"]


def test_pass_two_checks_the_control_plane_when_another_field_is_bad() -> None:
    data = vteam()
    data["spec"]["quota"]["pods"] = "many"
    data["spec"]["controlPlane"]["exposure"] = {"type": "LoadBalancer"}
    assert {"spec.quota.pods", "spec.controlPlane.exposure.type"} <= set(problems(data))


@pytest.mark.parametrize(
    ("policy", "path"),
    [
        ({"allowedControlPlaneExposures": []}, "allowedControlPlaneExposures"),
        ({"allowedChartSources": []}, "allowedChartSources"),
        ({"allowedControlPlaneExposures": ["Route"]}, "allowedControlPlaneExposures[0]"),
        ({"maxControlPlaneCpu": "two"}, "maxControlPlaneCpu"),
    ],
)
def test_policy_contradictions(policy: dict[str, Any], path: str) -> None:
    with pytest.raises(errors.SpecError) as caught:
        spec.parse_policy(policy, source="p.yaml")
    assert path in [e.path for e in caught.value.errors]


def test_policy_without_control_planes_needs_no_exposure() -> None:
    spec.parse_policy({"allowControlPlanes": False, "allowedControlPlaneExposures": [], "allowedChartSources": []})


# ---------------------------------------------------------------------------------------------
# Templates and determinism
# ---------------------------------------------------------------------------------------------


def test_values_are_deterministic_and_independent_of_key_order() -> None:
    data = vteam()
    reordered = json.loads(json.dumps(data, sort_keys=True))
    reordered["spec"]["controlPlane"] = dict(reversed(list(reordered["spec"]["controlPlane"].items())))
    first = render.dump_values(values_of(data))
    assert first == render.dump_values(values_of(data)) == render.dump_values(values_of(reordered))


def test_admin_values_template_overrides_the_builtin(tmp_path: Path) -> None:
    folder = tmp_path / "controlplane"
    folder.mkdir()
    builtin = (render.BUILTIN_TEMPLATES / render.CONTROL_PLANE_VALUES_TEMPLATE).read_text()
    (folder / "values.yaml.j2").write_text(builtin + "experimental:\n  syncSettings:\n    setOwner: false\n")
    tenant = spec.load_spec(VTEAM)
    values = render.control_plane_values(tenant, templates_dir=tmp_path)
    assert at(values, "experimental.syncSettings.setOwner") is False


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("policies:\n  resourceQuota: {enabled: true}\n", "policies.resourceQuota.enabled: false"),
        ("- a list\n", "one mapping"),
        ("a: 1\n---\nb: 2\n", "exactly one YAML document"),
        ("a: {{ nothing }}\n", "undefined"),
        ("a: [\n", "invalid YAML"),
    ],
)
def test_broken_values_templates_are_render_errors(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "controlplane").mkdir()
    (tmp_path / "controlplane" / "values.yaml.j2").write_text(text)
    with pytest.raises(render.RenderError) as caught:
        render.control_plane_values(spec.load_spec(VTEAM), templates_dir=tmp_path)
    assert fragment in str(caught.value)


def test_values_enter_the_template_only_as_json() -> None:
    text = (render.BUILTIN_TEMPLATES / render.CONTROL_PLANE_VALUES_TEMPLATE).read_text()
    body = text.split("#}", 1)[1]
    for line in body.splitlines():
        for expression in line.split("{{")[1:]:
            assert "| tojson" in expression.split("}}")[0], line


# ---------------------------------------------------------------------------------------------
# Property: random control planes within policy always give schema-valid values
# ---------------------------------------------------------------------------------------------

quantity_cpu = st.integers(min_value=1, max_value=2000).map(lambda m: f"{m}m")
quantity_memory = st.integers(min_value=32, max_value=4096).map(lambda m: f"{m}Mi")
label_value = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label_value, min_size=1, max_size=4).map(".".join)
duration = st.sampled_from(["30s", "5m", "30m", "2h", "1d", "1w", "1h30m", "2d12h"])


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limits = {}
    if draw(st.booleans()):
        limits = {"cpu": draw(quantity_cpu), "memory": draw(quantity_memory)}
        out["limits"] = limits
    if draw(st.booleans()):
        cpu = draw(quantity_cpu)
        memory = draw(quantity_memory)
        if limits:
            q = kube.parse_quantity
            cpu = min(cpu, limits["cpu"], key=lambda t: q(t).value)
            memory = min(memory, limits["memory"], key=lambda t: q(t).value)
        out["requests"] = {"cpu": cpu, "memory": memory}
    return out


SAFE_OVERRIDES = st.fixed_dictionaries(
    {},
    optional={
        "controlPlane": st.fixed_dictionaries(
            {},
            optional={
                "statefulSet": st.fixed_dictionaries(
                    {},
                    optional={
                        "highAvailability": st.fixed_dictionaries({"replicas": st.integers(1, 5)}),
                        "labels": st.dictionaries(label_value, label_value, max_size=3),
                        "pods": st.fixed_dictionaries(
                            {"annotations": st.dictionaries(label_value, st.text(max_size=20), max_size=3)}
                        ),
                    },
                ),
                "coredns": st.fixed_dictionaries(
                    {"deployment": st.fixed_dictionaries({"replicas": st.integers(1, 3)})}
                ),
                "proxy": st.fixed_dictionaries({"extraSANs": st.lists(hostname, max_size=3)}),
            },
        ),
        "sync": st.fixed_dictionaries(
            {
                "toHost": st.fixed_dictionaries(
                    {"pods": st.fixed_dictionaries({"runtimeClassName": label_value})}
                )
            }
        ),
        "logging": st.fixed_dictionaries({"encoding": st.sampled_from(["json", "console"])}),
    },
)


@st.composite
def control_planes(draw: st.DrawFn) -> dict[str, Any]:
    cp: dict[str, Any] = {"enabled": draw(st.booleans())}
    optional: dict[str, Any] = {
        "version": st.tuples(st.integers(1, 1), st.integers(20, 40), st.integers(0, 20)).map(
            lambda v: ("v" if v[2] % 2 else "") + ".".join(map(str, v))
        ),
        "backingStore": st.sampled_from(["embedded", "etcd"]),
        "resources": resources(),
        "persistence": st.one_of(
            st.just({"enabled": False}),
            st.fixed_dictionaries(
                {}, optional={"size": quantity_memory, "storageClass": label_value, "enabled": st.just(True)}
            ),
        ),
        "exposure": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]), "ingressHost": hostname}
        ),
        "sync": st.fixed_dictionaries(
            {}, optional={"ingresses": st.booleans(), "storageClasses": st.booleans(), "nodes": st.booleans()}
        ),
        "sleepAfter": duration,
        "values": SAFE_OVERRIDES,
        "chart": st.sampled_from(
            [{}, {"version": "0.36.1"}, {"oci": "oci://registry.example.com/charts/vcluster"}, {"path": "/opt/charts"}]
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            cp[key] = draw(strategy)
    return cp


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every non-mapping value in ``node``; an empty mapping merges nothing."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    else:
        yield prefix, node


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cp=control_planes(),
    node_selector=st.dictionaries(st.sampled_from(["pool", "zone", "example.com/tier"]), label_value, max_size=3),
    pod_security=st.sampled_from(["restricted", "baseline"]),
)
def test_random_control_planes_give_schema_valid_values(
    cp: dict[str, Any], node_selector: dict[str, str], pod_security: str
) -> None:
    validator = _validator()
    data = vteam()
    data["spec"]["controlPlane"] = cp
    data["spec"]["placement"] = {"nodeSelector": node_selector}
    data["spec"]["podSecurity"] = pod_security
    values = values_of(data, LENIENT)
    assert_chart_valid(validator, values)
    for path, leaf in _leaves(cp.get("values", {})):
        assert at(values, ".".join(path)) == leaf, path
    for _, pod, container in security_contexts(values):
        assert_restricted(pod, container)
    assert at(values, "controlPlane.statefulSet.scheduling.nodeSelector") == node_selector
    assert at(values, "sync.fromHost.nodes.selector.labels") == node_selector
    assert json.loads(json.dumps(values)) == values


# ---------------------------------------------------------------------------------------------
# vcm render --control-plane-values
# ---------------------------------------------------------------------------------------------


def run(*args: Any) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_cli_prints_the_values_as_yaml() -> None:
    code, out, err = run("render", VTEAM, "--control-plane-values")
    assert code == 0, err
    assert err == ""
    assert yaml.safe_load(out) == render.control_plane_values(spec.load_spec(VTEAM))
    assert out.startswith("# vcluster Helm values for tenant vteam: release vteam in vteam-cp")
    assert "# chart vcluster 0.36.1 from repository https://charts.loft.sh\n" in out


def test_cli_prints_one_document_per_tenant_and_notes_disabled_ones() -> None:
    code, out, err = run("render", EXAMPLES / "payments.yaml", VTEAM, "--control-plane-values")
    assert code == 0, err
    documents = list(yaml.safe_load_all(out))
    assert documents == [
        render.control_plane_values(spec.load_spec(EXAMPLES / "payments.yaml")),
        render.control_plane_values(spec.load_spec(VTEAM)),
    ]
    assert "payments has controlPlane.enabled false" in err
    assert "vteam" not in err


def test_cli_uses_the_policy_and_reports_refusals() -> None:
    policy = REPO / "examples" / "policy.yaml"
    code, out, _ = run("render", VTEAM, "--control-plane-values", "--policy", policy)
    assert code == 0
    assert yaml.safe_load(out) == render.control_plane_values(
        spec.load_spec(VTEAM), policy=spec.load_policy(policy)
    )


def test_cli_refusal_exits_2_with_the_path(tmp_path: Path) -> None:
    data = vteam()
    data["spec"]["controlPlane"]["enabled"] = False
    data["spec"]["controlPlane"]["exposure"] = {"type": "NodePort"}
    path = tmp_path / "vteam.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = run("render", path, "--control-plane-values")
    assert code == 2 and out == ""
    assert f"{path}: spec.controlPlane.exposure.type" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--control-plane-values"], "name at least one tenant"),
        ([VTEAM, "--control-plane-values", "--platform"], "drop --platform"),
    ],
)
def test_cli_usage_errors(args: list[Any], fragment: str) -> None:
    code, out, err = run("render", *args)
    assert code == 2 and out == ""
    assert fragment in err


def test_cli_render_without_the_flag_is_unchanged() -> None:
    code, out, _ = run("render", EXAMPLES / "payments.yaml")
    assert code == 0
    assert out == render.dump_manifests(render.render_tenant(spec.load_spec(EXAMPLES / "payments.yaml")))


# ---------------------------------------------------------------------------------------------
# The virtual cluster's CoreDNS: our whole manifest instead of the chart's
# ---------------------------------------------------------------------------------------------


def test_coredns_manifest_is_ours_and_complete(chart_validator: jsonschema.protocols.Validator) -> None:
    policy = spec.parse_policy({"controlPlaneCorednsImage": "registry.local/coredns/coredns:1.11.3"})
    values = values_of(vteam(), policy)
    assert_chart_valid(chart_validator, values)
    text = at(values, "controlPlane.coredns.overwriteManifests")
    assert "{{" not in text, "literal values only: no placeholders left for the syncer"
    docs = {d["kind"]: d for d in yaml.safe_load_all(text)}
    assert set(docs) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert container["image"] == "registry.local/coredns/coredns:1.11.3"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "tenants"}
    assert pod["dnsPolicy"] == "Default"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"] == at(values, "controlPlane.coredns.deployment.resources")
    assert "forward . /etc/resolv.conf" in docs["ConfigMap"]["data"]["Corefile"]
    assert {p["targetPort"] for p in docs["Service"]["spec"]["ports"]} == {1053}


def test_coredns_image_defaults_to_vclusters_own() -> None:
    text = at(values_of(vteam()), "controlPlane.coredns.overwriteManifests")
    deployment = next(d for d in yaml.safe_load_all(text) if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "coredns/coredns:1.11.3"


# ---------------------------------------------------------------------------------------------
# The syncer image and the distro's controller list (chart 0.36.1)
# ---------------------------------------------------------------------------------------------


def test_syncer_is_the_open_source_image_at_the_charts_version(chart_validator: jsonschema.protocols.Validator) -> None:
    doc = vteam()
    doc["spec"]["controlPlane"]["chart"] = {"version": "0.36.0"}
    values = render.control_plane_values(spec.parse_spec(doc, policy=LENIENT), policy=LENIENT)
    assert values["controlPlane"]["statefulSet"]["image"] == {"repository": "loft-sh/vcluster-oss", "tag": "0.36.0"}
    assert_chart_valid(chart_validator, values)


@pytest.mark.parametrize(
    ("version", "expected"),
    [(None, None), ("1.36.0", None), ("v1.37.2", [render.control_plane.CONTROLLERS_WITHOUT_CLOUD_NODE_LIFECYCLE]),
     ("1.38.0", [render.control_plane.CONTROLLERS_WITHOUT_CLOUD_NODE_LIFECYCLE])],
)
def test_controller_list_without_cloud_node_lifecycle_from_kubernetes_1_37(
    version: str | None, expected: list[str] | None, chart_validator: jsonschema.protocols.Validator
) -> None:
    doc = vteam()
    doc["spec"]["controlPlane"].pop("version", None)
    if version:
        doc["spec"]["controlPlane"]["version"] = version
    values = render.control_plane_values(spec.parse_spec(doc, policy=LENIENT), policy=LENIENT)
    assert values["controlPlane"]["distro"]["k8s"].get("controllerManager", {}).get("extraArgs") == expected
    assert_chart_valid(chart_validator, values)
    if expected:
        assert "cloud-node-lifecycle" not in expected[0] and "-nodelifecycle" in expected[0]
