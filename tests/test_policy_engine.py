"""Our blueprint judged by cyclonus's policy engine, offline: what the rendered NetworkPolicies allow.

The example tenants and hostile pairs are rendered by the real blueprint (``render.render_tenant``) and handed,
with the labels of their namespaces and of one pod per namespace, to ``vcm-netpol-matrix`` (cyclonus's engine,
``vcm toolchain ensure --conformance``). Each test states an isolation claim of the README as cells of that
matrix: strict vs strict and vs namespace isolation, ``allowIngressFrom`` and the ``ingress`` + ``nginx``
spoof, ``trustedPeerTenants``, ``allowEgressTo`` and a control plane's namespace. The twin renders with a
``templates`` override that drops the tenant-label condition of ``allowIngressFrom`` and sees the spoof cell
open. The same matrices are compared with real traffic on the node in ``integration/test_engine_matrix.py``.
Also here: the pure part of the ``tenant-policy-ports-declared`` check.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcluster_mgr import errors, naming, render, spec, toolchain
from vcluster_mgr.render import templating
from vcluster_mgr.verify import netpol_matrix, port_checks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "tenants"
#: the label every probe pod carries (as traffic.pod_manifest sets it)
POD_LABELS = {"vcluster-mgr.dev/traffic-probe": "server"}
HTTP = (8080, "TCP")


@pytest.fixture(scope="module")
def engine() -> Path:
    path = toolchain.bin_dir() / toolchain.NETPOL_MATRIX.name
    assert path.exists(), f"{path} is missing: run `vcm toolchain ensure --conformance`"
    return path


def tenant(name: str, isolation: str = "strict", namespaces: Sequence[str] = ("app",), *,
           policy: spec.Policy | None = None, **network: Any) -> spec.Tenant:
    return spec.parse_spec({
        "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
        "spec": {"owners": [{"kind": "User", "name": f"{name}@example.com", "role": "admin"}],
                 "namespaces": list(namespaces), "network": {"isolation": isolation, **network}}}, policy=policy)


def examples() -> list[spec.Tenant]:
    return spec.load_specs([EXAMPLES])


class World:
    """Rendered tenants, plain namespaces and one pod per namespace (address 10.1.<n>.1, or as given)."""

    def __init__(self, tenants: Sequence[spec.Tenant], plain: Sequence[str] = (), *,
                 policy: spec.Policy | None = None, templates: Path | None = None,
                 host_api: Sequence[Mapping[str, Any]] = (), extra_pods: Sequence[netpol_matrix.Pod] = ()) -> None:
        objects: list[dict[str, Any]] = []
        for t in tenants:
            objects += render.render_tenant(t, policy=policy, templates_dir=templates, host_api=host_api)
        self.policies = netpol_matrix.network_policies(objects)
        self.namespaces = netpol_matrix.namespace_labels(objects) | {
            ns: netpol_matrix.plain_namespace(ns) for ns in plain}
        self.pods = [netpol_matrix.Pod(ns, "pod", POD_LABELS, f"10.1.{i}.1")
                     for i, ns in enumerate(sorted(self.namespaces))] + list(extra_pods)

    def matrix(self, engine: Path, ports: Sequence[tuple[int, str]] = (HTTP,)) -> dict[netpol_matrix.Cell, bool]:
        doc = netpol_matrix.engine_input(self.policies, self.namespaces, self.pods, ports)
        return netpol_matrix.engine_matrix(doc, binary=engine)


def cell(src: str, dst: str, port: int = 8080, protocol: str = "TCP") -> netpol_matrix.Cell:
    return (src if "/" in src else f"{src}/pod", dst if "/" in dst else f"{dst}/pod", port, protocol)


# ---------------------------------------------------------------------------------------------------
# strict and namespace isolation
# ---------------------------------------------------------------------------------------------------


def test_strict_tenants_reach_only_their_own_namespaces(engine: Path) -> None:
    m = World([*examples(), tenant("nsa", "namespace")], ["outside"]).matrix(engine)
    assert m[cell("payments-app", "payments-ci")] and m[cell("payments-ci", "payments-app")]
    for a, b in (("payments-app", "search-web"), ("search-web", "payments-app"), ("payments-app", "nsa-app"),
                 ("nsa-app", "payments-app"), ("payments-app", "outside"), ("outside", "payments-app")):
        assert not m[cell(a, b)], (a, b)


def test_namespace_isolation_closes_ingress_and_leaves_egress_open(engine: Path) -> None:
    m = World([tenant("nsa", "namespace"), tenant("nsb", "namespace")], ["outside"]).matrix(engine)
    assert not m[cell("nsa-app", "nsb-app")] and not m[cell("nsb-app", "nsa-app")]
    assert not m[cell("outside", "nsa-app")]
    assert m[cell("nsa-app", "outside")]


# ---------------------------------------------------------------------------------------------------
# allowIngressFrom, the spoof, trustedPeerTenants
# ---------------------------------------------------------------------------------------------------


def test_allow_ingress_from_lets_the_plain_namespace_in(engine: Path) -> None:
    m = World(examples(), ["ingress-nginx", "monitoring", "outside"]).matrix(engine)
    assert m[cell("ingress-nginx", "payments-app")] and m[cell("ingress-nginx", "search-web")]
    assert m[cell("monitoring", "search-web")] and not m[cell("monitoring", "payments-app")]
    assert not m[cell("outside", "payments-app")]


def test_a_tenant_owning_the_named_namespace_is_not_let_in(engine: Path) -> None:
    # tenant "ingress" with namespace "nginx" owns ingress-nginx, the namespace payments names as its peer
    m = World([*examples(), tenant("ingress", "namespace", ["nginx"])]).matrix(engine)
    assert not m[cell("ingress-nginx", "payments-app")]
    assert not m[cell("ingress-nginx", "search-web")]


def test_trusted_peer_tenants_are_let_in_and_no_other_tenant(engine: Path) -> None:
    policy = spec.parse_policy({"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Policy",
                                "trustedPeerTenants": ["ingress"]})
    shop = tenant("shop", policy=policy, allowIngressFrom=[{"namespace": "ingress-nginx"}, {"namespace": "rogue-gw"}])
    world = World([shop, tenant("ingress", "namespace", ["nginx"], policy=policy),
                   tenant("rogue", "namespace", ["gw"], policy=policy)], policy=policy)
    m = world.matrix(engine)
    assert m[cell("ingress-nginx", "shop-app")]
    assert not m[cell("rogue-gw", "shop-app")]


def _drop_tenant_label_condition(tmp_path: Path) -> Path:
    """A templates override: the blueprint's NetworkPolicies without the DoesNotExist tenant-label condition."""
    text = (templating.BUILTIN_TEMPLATES / "tenant" / "networkpolicies.yaml.j2").read_text()
    bug = ("              - key: {{ tenantLabel | tojson }}\n"
           "                operator: DoesNotExist\n")
    assert text.count(bug) == 1
    (tmp_path / "tenant").mkdir()
    (tmp_path / "tenant" / "networkpolicies.yaml.j2").write_text(text.replace(bug, ""))
    return tmp_path


def test_twin_without_the_tenant_label_condition_the_spoof_gets_in(engine: Path, tmp_path: Path) -> None:
    world = World([*examples(), tenant("ingress", "namespace", ["nginx"])], templates=_drop_tenant_label_condition(
        tmp_path))
    m = world.matrix(engine)
    assert m[cell("ingress-nginx", "payments-app")]


# ---------------------------------------------------------------------------------------------------
# allowEgressTo and a control plane's namespace
# ---------------------------------------------------------------------------------------------------


def test_allow_egress_to_opens_the_rule_address_and_port_only(engine: Path) -> None:
    # payments: allowEgressTo 10.20.0.0/16, port 5432 (TCP)
    db = netpol_matrix.Pod("outside", "db", POD_LABELS, "10.20.3.4")
    far = netpol_matrix.Pod("outside", "far", POD_LABELS, "10.21.3.4")
    m = World(examples(), ["outside"], extra_pods=[db, far]).matrix(engine, [(5432, "TCP"), (5432, "UDP"), HTTP])
    assert m[cell("payments-app", "outside/db", 5432)]
    assert not m[cell("payments-app", "outside/db", 5432, "UDP")]
    assert not m[cell("payments-app", "outside/db", 8080)]
    assert not m[cell("payments-app", "outside/far", 5432)]
    # the rule is egress only: the database cannot open a connection to payments
    assert not m[cell("outside/db", "payments-app", 5432)]


def test_control_plane_rules_open_the_host_api_to_its_own_pods_only(engine: Path) -> None:
    host_api = [{"ip": "10.30.0.1", "port": 443}]
    cp = tenant("cp", namespaces=("vc", "work"))
    cp = cp.model_copy(update={"spec": cp.spec.model_copy(update={
        "control_plane": cp.spec.control_plane.model_copy(update={"enabled": True})})})
    api = netpol_matrix.Pod("default", "apiserver", {}, "10.30.0.1")
    release = naming.control_plane_release("cp")
    # the chart's labels: its control plane pods carry app=vcluster, its etcd pods app=vcluster-etcd
    syncer = netpol_matrix.Pod("cp-vc", "syncer", {naming.CONTROL_PLANE_APP_LABEL: naming.CONTROL_PLANE_APP,
                                                   naming.CONTROL_PLANE_POD_LABEL: release}, "10.1.9.9")
    etcd = netpol_matrix.Pod("cp-vc", "etcd", {naming.CONTROL_PLANE_APP_LABEL: "vcluster-etcd",
                                               naming.CONTROL_PLANE_POD_LABEL: release}, "10.1.9.8")
    world = World([cp], ["default"], host_api=host_api, extra_pods=[api, syncer, etcd])
    m = world.matrix(engine, [(443, "TCP")])
    assert m[cell("cp-vc/syncer", "default/apiserver", 443)]
    assert not m[cell("cp-vc/etcd", "default/apiserver", 443)]  # the backing store needs no host API
    assert not m[cell("cp-vc", "default/apiserver", 443)]  # an ordinary pod of that namespace
    assert not m[cell("cp-work", "default/apiserver", 443)]


# ---------------------------------------------------------------------------------------------------
# the engine's input, and comparing matrices (pure)
# ---------------------------------------------------------------------------------------------------


def test_engine_input_needs_every_pods_namespace() -> None:
    with pytest.raises(errors.VerifyError, match="no labels known for the namespaces b"):
        netpol_matrix.engine_input([], {"a": {}}, [netpol_matrix.Pod("b", "p", {}, "10.0.0.1")], [HTTP])


def test_mismatches_name_each_differing_cell() -> None:
    expected = {cell("a", "b"): True, cell("b", "a"): False}
    actual = {cell("a", "b"): True, cell("b", "a"): True}
    (m,) = netpol_matrix.mismatches(expected, actual)
    assert m.describe() == "b/pod -> a/pod 8080/TCP: engine says closed, probe saw open"
    assert netpol_matrix.mismatches(expected, copy.deepcopy(expected)) == []
    assert [line[:2] for line in netpol_matrix.table(expected, actual)] == ["  ", "!!"]


def test_malformed_input_is_refused_by_the_engine(engine: Path) -> None:
    with pytest.raises(errors.VerifyError, match="refused its input"):
        netpol_matrix.engine_matrix({"policies": [], "bogus": 1}, binary=engine)


# ---------------------------------------------------------------------------------------------------
# tenant-policy-ports-declared (pure part)
# ---------------------------------------------------------------------------------------------------


def _policy(ports: list[dict[str, Any]], direction: str = "ingress", labels: dict[str, str] | None = None
            ) -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump({
        "metadata": {"name": "mine", "namespace": "t-app", "labels": labels or {}},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, direction: [{"ports": ports}]}}))


def _pod(ports: list[dict[str, Any]], app: str = "web") -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "ports": ports}]}}


def test_a_named_port_no_selected_container_declares_is_reported() -> None:
    pods = {"t-app": [_pod([{"name": "http", "containerPort": 8080}]), _pod([{"name": "metrics",
                                                                              "containerPort": 9090}], "other")]}
    ok = port_checks.undeclared_named_ports([_policy([{"port": "http"}])], pods, [])
    assert ok == []
    # declared, but only by a pod the policy does not select
    (problem,) = port_checks.undeclared_named_ports([_policy([{"port": "metrics"}])], pods, [])
    assert "t-app/mine ingress[0] names port 'metrics'/TCP" in problem
    # declared with another protocol
    (problem,) = port_checks.undeclared_named_ports([_policy([{"port": "http", "protocol": "UDP"}])], pods, [])
    assert "'http'/UDP" in problem
    # numbered ports are left alone
    assert port_checks.undeclared_named_ports([_policy([{"port": 7981}])], pods, []) == []


def test_egress_named_ports_are_looked_up_on_every_pod_and_blueprint_policies_are_skipped() -> None:
    everywhere = [_pod([{"name": "pg", "containerPort": 5432}], "db")]
    assert port_checks.undeclared_named_ports([_policy([{"port": "pg"}], "egress")], {}, everywhere) == []
    assert len(port_checks.undeclared_named_ports([_policy([{"port": "redis"}], "egress")], {}, everywhere)) == 1
    ours = _policy([{"port": "nope"}], labels={naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE})
    assert port_checks.undeclared_named_ports([ours], {}, []) == []
