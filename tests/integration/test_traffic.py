"""Isolation proven by traffic, on the local cluster's node.

After a real ``pulumi up`` of the platform and tenants on a cluster with a node (``node_applied``),
probe pods of the node's busybox image serve HTTP (``traffic.SERVER_PORTS``) and connect with ``nc``
through ``kubectl exec``-style exec. kube-router's firewall enforces the NetworkPolicies our blueprint
rendered. Each property has a twin that weakens it (deletes the NetworkPolicy that carries it) and sees
the probe's answer flip, then restores the policy and sees it flip back, so no check here can pass
because a path is simply missing. Every probe pod is created once per module and deleted at its end.

Tenants: ``payments`` and ``search`` (strict, from examples/tenants), ``nsa`` and ``nsb`` (namespace
isolation), ``egress`` (strict, ``allowEgressTo`` = the ``allowed`` target pod's address, port 8080).
Namespaces outside every tenant: ``traffic-targets`` (servers ``allowed`` and ``other``),
``ingress-nginx`` (payments' and search's ``allowIngressFrom``) and ``traffic-outside``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from vcluster_mgr import cluster, platformconfig, traffic, verify

from .conftest import NodeApplied, small_tenant, verify_one_check

OUTSIDE = ("traffic-targets", "ingress-nginx", "traffic-outside")
#: (namespace, pod name, role) of every probe pod
PODS = (
    ("traffic-targets", "allowed", "server"), ("traffic-targets", "other", "server"),
    ("ingress-nginx", "cli", "client"), ("traffic-outside", "cli", "client"),
    ("payments-app", "srv", "server"), ("payments-ci", "cli", "client"),
    ("search-web", "srv", "server"), ("search-web", "cli", "client"),
    ("nsa-app", "srv", "server"), ("nsa-app", "cli", "client"),
    ("nsb-app", "srv", "server"), ("nsb-app", "cli", "client"),
    ("egress-app", "cli", "client"),
)


@dataclasses.dataclass
class Net:
    conn: cluster.Connection
    core: client.CoreV1Api
    net: client.NetworkingV1Api
    ips: dict[str, str]
    search_service_ip: str
    applied: NodeApplied

    def reaches(self, src: str, dst: str, port: int = 8080, *, expect: bool) -> bool:
        """Whether pod ``src`` ("ns/name") reaches pod ``dst`` ("ns/name" or an IP) - polled until ``expect``
        is seen or the settle time passes, so a True/False returned differs from ``expect`` only when the
        expected answer never appeared."""
        ns, pod = src.split("/")
        host = self.ips.get(dst, dst)
        ok = traffic.eventually(lambda: traffic.connects(self.conn, ns, pod, host, port), expect)
        return expect if ok else not expect

    def resolves(self, src: str, name: str, *, expect: bool) -> bool:
        ns, pod = src.split("/")
        ok = traffic.eventually(lambda: traffic.resolves(self.conn, ns, pod, name), expect)
        return expect if ok else not expect


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)},
            "spec": obj["spec"]}


@contextlib.contextmanager
def policies_removed(env: Net, namespace: str, names: list[str] | None = None) -> Iterator[None]:
    """Delete NetworkPolicies of ``namespace`` (the named ones, or every one) and put them back afterwards."""
    api = env.net
    found = api.list_namespaced_network_policy(namespace).items
    chosen = [p for p in found if names is None or p.metadata.name in names]
    assert names is None or {p.metadata.name for p in chosen} == set(names), [p.metadata.name for p in found]
    saved = [_clean(api.api_client.sanitize_for_serialization(p)) for p in chosen]
    for p in chosen:
        api.delete_namespaced_network_policy(p.metadata.name, namespace)
    try:
        yield
    finally:
        for body in saved:
            api.create_namespaced_network_policy(namespace, body)


@pytest.fixture(scope="module")
def env(node_applied: NodeApplied) -> Iterator[Net]:
    api = config.new_client_from_config(str(node_applied.cluster.kubeconfig))
    core = client.CoreV1Api(api)
    conn = cluster.connect(platformconfig.Target(name="node", kubeconfig=str(node_applied.cluster.kubeconfig)))
    image = str(node_applied.cluster.node["images"]["probe"])  # type: ignore[index]
    for ns in OUTSIDE:
        core.create_namespace({"metadata": {"name": ns}})
    ips: dict[str, str] = {}
    try:
        selector = {"pool": "tenants"}
        first = [p for p in PODS if p[0] != "egress-app"]
        for ns, name, role in first:
            core.create_namespaced_pod(ns, traffic.pod_manifest(name, image, role=role, node_selector=selector))
        for ns, name, _role in first:
            ips[f"{ns}/{name}"] = _wait_ip(core, ns, name)
        # the strict tenant whose one egress rule is the `allowed` target, port 8080
        node_applied.apply([small_tenant(
            "egress", "strict", allowEgressTo=[{"cidr": f"{ips['traffic-targets/allowed']}/32", "ports": [8080]}])])
        ips["egress-app/cli"] = traffic.start(conn, "egress-app", traffic.pod_manifest(
            "cli", image, role="client", node_selector=selector))
        core.create_namespaced_service("search-web", {
            "metadata": {"name": "srv"},
            "spec": {"selector": {traffic.PROBE_LABEL: "server"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        svc = core.read_namespaced_service("srv", "search-web")
        yield Net(conn, core, client.NetworkingV1Api(api), ips, svc.spec.cluster_ip, node_applied)
    finally:
        for ns, name, _ in PODS:
            traffic.delete(conn, ns, name)
        for ns in OUTSIDE:
            core.delete_namespace(ns)
        with contextlib.suppress(client.exceptions.ApiException):
            core.delete_namespaced_service("srv", "search-web")
        conn.close()


def _wait_ip(core: client.CoreV1Api, ns: str, name: str) -> str:
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        st = core.read_namespaced_pod(name, ns).status
        if st.phase == "Running" and st.pod_ip and any(
                c.type == "Ready" and c.status == "True" for c in st.conditions or []):
            return str(st.pod_ip)
        time.sleep(0.5)
    raise AssertionError(f"{ns}/{name} did not run: {st}")


# ---------------------------------------------------------------------------------------------------
# within one tenant
# ---------------------------------------------------------------------------------------------------


def test_pods_of_one_tenant_reach_each_other_across_its_namespaces(env: Net) -> None:
    assert env.reaches("payments-ci/cli", "payments-app/srv", expect=True)
    assert env.reaches("search-web/cli", "search-web/srv", expect=True)


# ---------------------------------------------------------------------------------------------------
# across tenants: strict
# ---------------------------------------------------------------------------------------------------


def test_strict_tenant_cannot_reach_another_tenants_pod_or_service(env: Net) -> None:
    assert env.reaches("payments-ci/cli", "payments-app/srv", expect=True)  # the client works
    assert not env.reaches("payments-ci/cli", "search-web/srv", expect=False)
    assert not env.reaches("payments-ci/cli", env.search_service_ip, 80, expect=False)
    assert not env.reaches("search-web/cli", "payments-app/srv", expect=False)


def test_twin_removing_the_tenants_policies_opens_the_cross_tenant_path(env: Net) -> None:
    # the default-deny alone is not what closes it: every vcm policy selects every pod of the namespace
    with policies_removed(env, "search-web", ["vcm-default-deny"]), \
            policies_removed(env, "payments-ci", ["vcm-default-deny"]):
        assert not env.reaches("payments-ci/cli", "search-web/srv", expect=False)
    with policies_removed(env, "search-web"), policies_removed(env, "payments-ci"):
        assert env.reaches("payments-ci/cli", "search-web/srv", expect=True)
        assert env.reaches("payments-ci/cli", env.search_service_ip, 80, expect=True)
    assert not env.reaches("payments-ci/cli", "search-web/srv", expect=False)


# ---------------------------------------------------------------------------------------------------
# across tenants: namespace isolation
# ---------------------------------------------------------------------------------------------------


def test_namespace_isolation_refuses_other_tenants_but_leaves_egress_open(env: Net) -> None:
    assert env.reaches("nsb-app/cli", "nsb-app/srv", expect=True)
    assert env.reaches("nsa-app/cli", "traffic-targets/other", expect=True)  # egress stays open
    assert not env.reaches("nsa-app/cli", "nsb-app/srv", expect=False)
    assert not env.reaches("nsb-app/cli", "nsa-app/srv", expect=False)
    assert not env.reaches("traffic-outside/cli", "nsa-app/srv", expect=False)


def test_twin_removing_namespace_isolation_lets_the_other_tenant_in(env: Net) -> None:
    with policies_removed(env, "nsb-app"):
        assert env.reaches("nsa-app/cli", "nsb-app/srv", expect=True)
    assert not env.reaches("nsa-app/cli", "nsb-app/srv", expect=False)


# ---------------------------------------------------------------------------------------------------
# strict egress: DNS and allowEgressTo, nothing else
# ---------------------------------------------------------------------------------------------------


def test_strict_tenant_resolves_dns_and_reaches_its_egress_rule_and_nothing_else(env: Net) -> None:
    src = "egress-app/cli"
    assert env.resolves(src, "kubernetes.default.svc.cluster.local", expect=True)
    assert env.reaches(src, "traffic-targets/allowed", 8080, expect=True)
    assert not env.reaches(src, "traffic-targets/allowed", 8081, expect=False)  # the rule's port only
    assert not env.reaches(src, "traffic-targets/other", 8080, expect=False)  # the rule's address only
    assert not env.reaches(src, "payments-app/srv", expect=False)
    assert not env.reaches(src, env.search_service_ip, 80, expect=False)


def test_twin_without_the_dns_policy_the_strict_tenant_cannot_resolve(env: Net) -> None:
    with policies_removed(env, "egress-app", ["vcm-allow-dns"]):
        assert not env.resolves("egress-app/cli", "kubernetes.default.svc.cluster.local", expect=False)
    assert env.resolves("egress-app/cli", "kubernetes.default.svc.cluster.local", expect=True)


def test_twin_without_the_egress_rule_the_allowed_target_is_closed(env: Net) -> None:
    with policies_removed(env, "egress-app", ["vcm-allow-egress-to"]):
        assert not env.reaches("egress-app/cli", "traffic-targets/allowed", 8080, expect=False)
    assert env.reaches("egress-app/cli", "traffic-targets/allowed", 8080, expect=True)


def test_twin_without_any_policy_the_strict_tenant_reaches_everything(env: Net) -> None:
    with policies_removed(env, "egress-app"):
        assert env.reaches("egress-app/cli", "traffic-targets/other", 8080, expect=True)
        assert env.reaches("egress-app/cli", "traffic-targets/allowed", 8081, expect=True)


# ---------------------------------------------------------------------------------------------------
# allowIngressFrom
# ---------------------------------------------------------------------------------------------------


def test_allow_ingress_from_lets_exactly_the_named_namespace_in(env: Net) -> None:
    assert env.reaches("traffic-outside/cli", "traffic-targets/other", expect=True)  # the client works
    assert env.reaches("ingress-nginx/cli", "payments-app/srv", expect=True)
    assert not env.reaches("traffic-outside/cli", "payments-app/srv", expect=False)
    assert not env.reaches("nsa-app/cli", "payments-app/srv", expect=False)


def test_twin_without_allow_ingress_from_the_named_namespace_is_refused(env: Net) -> None:
    with policies_removed(env, "payments-app", ["vcm-allow-ingress-from"]):
        assert not env.reaches("ingress-nginx/cli", "payments-app/srv", expect=False)
    assert env.reaches("ingress-nginx/cli", "payments-app/srv", expect=True)


# ---------------------------------------------------------------------------------------------------
# what runs: user and limits read back from the running container
# ---------------------------------------------------------------------------------------------------


def _container_facts(env: Net, namespace: str, pod: str) -> tuple[int, int, int]:
    """(uid, memory limit in bytes, CFS quota in microseconds per 100 ms) as the container sees them."""
    code, out = traffic.run(env.conn, namespace, pod, [
        "sh", "-c", "id -u; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us"])
    assert code == 0, out
    uid, memory, quota = (int(x) for x in out.split())
    return uid, memory, quota


def test_admitted_pod_runs_as_non_root_with_the_tenants_limits(env: Net) -> None:
    uid, memory, quota = _container_facts(env, "payments-app", "srv")
    limits = env.applied.tenants["payments"].spec.limits.default
    assert uid != 0
    assert memory == 512 * 1024**2 and limits.memory == "512Mi"
    assert quota == 50_000 and limits.cpu == "500m"


def test_twin_outside_a_tenant_the_same_pod_is_unlimited_and_may_be_root(env: Net) -> None:
    uid, memory, quota = _container_facts(env, "traffic-outside", "cli")
    assert memory > 2**60 and quota == -1  # no LimitRange: the read-back sees no limits
    pod = traffic.pod_manifest("root", str(env.applied.cluster.node["images"]["probe"]), role="client")  # type: ignore[index]
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    try:
        traffic.start(env.conn, "traffic-outside", pod)
        assert _container_facts(env, "traffic-outside", "root")[0] == 0
    finally:
        traffic.delete(env.conn, "traffic-outside", "root")


# ---------------------------------------------------------------------------------------------------
# vcm verify's traffic check, on a cluster that can run its pods
# ---------------------------------------------------------------------------------------------------


def _verify_traffic(env: Net) -> verify.CheckResult:
    return verify_one_check(env.applied.target, "payments", "traffic-blocked-across-tenants",
                                     others=["nsb"])


def test_verify_traffic_check_passes_on_a_node(env: Net) -> None:
    result = _verify_traffic(env)
    assert result.result == "pass", result.detail
    assert "nsb" in result.tried


def test_twin_verify_traffic_check_fails_without_the_policies(env: Net) -> None:
    with policies_removed(env, "payments-app"), policies_removed(env, "payments-ci"), \
            policies_removed(env, "nsb-app"):
        assert env.reaches("nsb-app/cli", "payments-app/srv", expect=True)
        result = _verify_traffic(env)
    assert result.result == "fail", result.detail
    assert "reaches" in result.detail
