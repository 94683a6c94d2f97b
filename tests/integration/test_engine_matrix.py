"""Our blueprint on the node, judged cell for cell by cyclonus's policy engine.

After a real ``pulumi up`` on the cluster with a node (``node_applied``: examples/tenants, ``nsa`` and ``nsb``
with namespace isolation) this module applies two hostile tenants of its own: ``gate`` (strict; lets in
``gate-lb`` and ``edge-proxy`` through ``allowIngressFrom``, egress to one outside pod's address on port 8081
through ``allowEgressTo``) and ``edge`` (namespace isolation, namespace ``proxy``: it OWNS ``edge-proxy``, the
spoof the tenant-label condition refuses). One probe pod (busybox ``httpd`` on 8080 and 8081) runs in each of
their namespaces, in payments', search's, nsa's and nsb's, and in three plain namespaces (``gate-lb``,
``ingress-nginx`` which payments and search let in, ``engine-outside``).

The expected matrix comes from ``vcm-netpol-matrix`` (cyclonus's engine) run on the policies our blueprint
RENDERS for those tenants (``render.render_tenant``; not read back from the cluster) with the rendered namespace
labels and the pods' labels and addresses; the actual one from ``nc`` between the pods. They must agree on every
probed cell (every ordered pair on 8080, and gate's pod to every pod on 8081). The twin applies ``gate`` from a
``templatesDir`` whose ``allowIngressFrom`` lacks the tenant-label condition: the engine, still judging the
shipped blueprint, says the spoof cell is closed, the probe finds it open, and the comparison names that cell.
``gate`` is applied from the shipped blueprint again afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import cluster, platformconfig, render, traffic, verify
from vcluster_mgr.render import templating
from vcluster_mgr.verify import netpol_matrix

from .conftest import NodeApplied, small_tenant, verify_one_check

PLAIN = ("gate-lb", "ingress-nginx", "engine-outside")
TENANT_NAMESPACES = ("payments-app", "payments-ci", "search-web", "nsa-app", "nsb-app")
HOSTILE_NAMESPACES = ("gate-app", "edge-proxy")
POD = "eng"
PORTS = [(p, "TCP") for p in traffic.SERVER_PORTS]
#: parallel probes (each one exec through the API server)
PARALLEL = 4
#: seconds a cell may take to show the engine's verdict
SETTLE = 20.0


@dataclasses.dataclass
class Env:
    conn: cluster.Connection
    core: client.CoreV1Api
    applied: NodeApplied
    pods: dict[str, netpol_matrix.Pod]
    gate: dict[str, Any]
    gate_files: Path

    def expected(self) -> dict[netpol_matrix.Cell, bool]:
        """cyclonus's engine on what the shipped blueprint renders for the tenants involved."""
        objects: list[dict[str, Any]] = []
        for name in ("payments", "search", "nsa", "nsb", "gate", "edge"):
            objects += render.render_tenant(self.applied.tenants[name], policy=self.applied.policy,
                                            templates_dir=self.applied.blueprint.templates_dir)
        namespaces = netpol_matrix.namespace_labels(objects) | {ns: netpol_matrix.plain_namespace(ns) for ns in PLAIN}
        namespaces = {ns: labels for ns, labels in namespaces.items() if ns in {p.namespace for p in
                                                                                self.pods.values()}}
        doc = netpol_matrix.engine_input(netpol_matrix.network_policies(objects), namespaces,
                                         list(self.pods.values()), PORTS)
        return netpol_matrix.engine_matrix(doc)

    def probe(self, expected: dict[netpol_matrix.Cell, bool], cells: list[netpol_matrix.Cell]
              ) -> dict[netpol_matrix.Cell, bool]:
        """What ``nc`` sees in each cell, polled until it shows the engine's verdict or ``SETTLE`` passes."""
        def one(c: netpol_matrix.Cell) -> bool:
            src, dst = self.pods[c[0]], self.pods[c[1]]
            # a connection per probe: exec swaps its ApiClient's request function while it runs (not thread-safe)
            with self.conn.sibling() as conn:
                seen = traffic.eventually(lambda: traffic.connects(conn, src.namespace, src.name, dst.ip, c[2]),
                                          expected[c], seconds=SETTLE)
            return expected[c] if seen else not expected[c]

        with futures.ThreadPoolExecutor(PARALLEL) as pool:
            return dict(zip(cells, pool.map(one, cells), strict=True))

    def cells(self) -> list[netpol_matrix.Cell]:
        keys = sorted(self.pods)
        out = [(a, b, 8080, "TCP") for a in keys for b in keys if a != b]
        return out + [("gate-app/eng", b, 8081, "TCP") for b in keys if b != "gate-app/eng"]


def _fresh_namespace(core: client.CoreV1Api, name: str) -> None:
    """Create ``name``, waiting first for an earlier one of that name to finish terminating."""
    deadline = time.monotonic() + 120
    while True:
        try:
            core.create_namespace({"metadata": {"name": name}})
            return
        except ApiException as exc:
            if exc.status != 409 or time.monotonic() > deadline:
                raise
            time.sleep(1)


def _gone(core: client.CoreV1Api, name: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(1)


@pytest.fixture(scope="module")
def env(node_applied: NodeApplied, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    api = config.new_client_from_config(str(node_applied.cluster.kubeconfig))
    core = client.CoreV1Api(api)
    conn = cluster.connect(platformconfig.Target(name="node", kubeconfig=str(node_applied.cluster.kubeconfig)))
    image = str(node_applied.cluster.node["images"]["probe"])  # type: ignore[index]
    selector = {"pool": "tenants"}
    pods: dict[str, netpol_matrix.Pod] = {}
    started: list[str] = []

    def start(ns: str) -> None:
        manifest = traffic.pod_manifest(POD, image, role="server", node_selector=selector)
        started.append(ns)
        ip = traffic.start(conn, ns, manifest)
        pods[f"{ns}/{POD}"] = netpol_matrix.Pod(ns, POD, manifest["metadata"]["labels"], ip)

    try:
        for ns in PLAIN:
            _fresh_namespace(core, ns)
        for ns in (*PLAIN, *TENANT_NAMESPACES):
            start(ns)
        gate = small_tenant("gate", "strict", allowIngressFrom=[{"namespace": "gate-lb"}, {"namespace": "edge-proxy"}],
                           allowEgressTo=[{"cidr": f"{pods['engine-outside/eng'].ip}/32", "ports": [8081]}])
        edge = small_tenant("edge", "namespace")
        edge["spec"]["namespaces"] = ["proxy"]  # type: ignore[index]
        # two runs: `vcm apply` refuses, in one run, a spec naming another tenant's namespace as its peer (the
        # spoof this module wants on the cluster, to see the NetworkPolicy refuse it too)
        node_applied.apply([gate])
        node_applied.apply([edge])
        for ns in HOSTILE_NAMESPACES:
            start(ns)
        yield Env(conn, core, node_applied, pods, gate, tmp_path_factory.mktemp("gate"))
    finally:
        for ns in started:
            traffic.delete(conn, ns, POD)
        for ns in PLAIN:
            with contextlib.suppress(ApiException):
                core.delete_namespace(ns)
        for ns in PLAIN:
            _gone(core, ns)  # test_traffic creates ingress-nginx of its own
        conn.close()


def test_the_engine_says_what_the_readme_claims(env: Env) -> None:
    """The engine's reading of our rendered policies, on the hostile cells (the offline tests hold the rest)."""
    m = env.expected()
    assert m[("gate-lb/eng", "gate-app/eng", 8080, "TCP")]
    assert not m[("edge-proxy/eng", "gate-app/eng", 8080, "TCP")]  # the spoof
    assert m[("ingress-nginx/eng", "payments-app/eng", 8080, "TCP")]
    assert not m[("payments-ci/eng", "search-web/eng", 8080, "TCP")]
    assert not m[("nsa-app/eng", "nsb-app/eng", 8080, "TCP")]
    assert m[("nsa-app/eng", "engine-outside/eng", 8080, "TCP")]  # namespace isolation leaves egress open
    assert m[("gate-app/eng", "engine-outside/eng", 8081, "TCP")]
    assert not m[("gate-app/eng", "engine-outside/eng", 8080, "TCP")]


def test_probes_on_the_node_match_the_engine_cell_for_cell(env: Env) -> None:
    expected = env.expected()
    actual = env.probe(expected, env.cells())
    assert len(actual) == 90 + 9
    assert netpol_matrix.mismatches(expected, actual) == [], "\n".join(netpol_matrix.table(expected, actual))


def _buggy_templates(root: Path) -> Path:
    """The shipped blueprint with ONE bug: allowIngressFrom without its tenant-label condition."""
    text = (templating.BUILTIN_TEMPLATES / "tenant" / "networkpolicies.yaml.j2").read_text()
    condition = ("              - key: {{ tenantLabel | tojson }}\n"
                 "                operator: DoesNotExist\n")
    assert text.count(condition) == 1
    (root / "tpl" / "tenant").mkdir(parents=True)
    (root / "tpl" / "tenant" / "networkpolicies.yaml.j2").write_text(text.replace(condition, ""))
    (root / "platform.yaml").write_text(yaml.safe_dump({"templatesDir": "tpl"}))
    return root / "platform.yaml"


def test_twin_a_blueprint_bug_makes_the_matrices_disagree_on_the_spoof_cell(env: Env) -> None:
    expected = env.expected()
    spec_file = env.gate_files / "gate.yaml"
    spec_file.write_text(yaml.safe_dump(env.gate))
    env.applied.vcm("apply", str(spec_file), "--config", str(_buggy_templates(env.gate_files)), "--yes")
    try:
        into_gate = [c for c in env.cells() if c[1] == "gate-app/eng" and c[2] == 8080]
        actual = env.probe(expected, into_gate)
        wrong = netpol_matrix.mismatches(expected, actual)
        assert [m.cell for m in wrong] == [("edge-proxy/eng", "gate-app/eng", 8080, "TCP")], \
            "\n".join(netpol_matrix.table(expected, actual))
        assert wrong[0].describe().endswith("engine says closed, probe saw open")
    finally:
        env.applied.vcm("apply", str(spec_file), "--yes")
    spoof = [("edge-proxy/eng", "gate-app/eng", 8080, "TCP")]
    assert netpol_matrix.mismatches(expected, env.probe(expected, spoof)) == []


# ---------------------------------------------------------------------------------------------------
# vcm verify --check traffic-matches-policy-engine
# ---------------------------------------------------------------------------------------------------


def _verify_gate(env: Env) -> verify.CheckResult:
    return verify_one_check(env.applied.target, "gate", "traffic-matches-policy-engine", others=["edge"])


def test_verify_matrix_check_passes_on_the_node(env: Env) -> None:
    result = _verify_gate(env)
    assert result.result == "pass", result.detail
    assert "edge-proxy/" in result.detail and "expected closed, actual closed" in result.detail


def test_twin_verify_matrix_check_fails_where_kube_router_opens_a_named_port_nobody_declares(env: Env) -> None:
    """A policy the owner could write: edge-proxy may reach gate on port "web", which no container declares.
    Upstream semantics (the engine): nothing opens. kube-router: every port opens to edge-proxy."""
    net = client.NetworkingV1Api(env.core.api_client)
    policy = {"metadata": {"name": "owner-named-port"},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
                  "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge-proxy"}}}],
                  "ports": [{"port": "web", "protocol": "TCP"}]}]}}
    net.create_namespaced_network_policy("gate-app", policy)  # type: ignore[arg-type]
    try:
        result = _verify_gate(env)
    finally:
        net.delete_namespaced_network_policy("owner-named-port", "gate-app")
    assert result.result == "fail", result.detail
    assert "!! edge-proxy/" in result.detail and "expected closed, actual open" in result.detail
