"""A tenant's control plane on the local node, under strict isolation, with pods that do what vcluster's do.

The fixture chart ``tests/data/charts/vcluster-on-node`` is installed by ``vcm apply`` with the values generated
for the real vcluster chart. Its pods run on the node, in the tenant's first namespace:

- the *syncer* (StatefulSet, ``release: vteam``, ServiceAccount ``vc-vteam``) reads and writes a ConfigMap
  through the host API server's in-cluster address every 2 s, with ``kubectl`` from the node's kubectl image;
  it is Ready while the last write succeeded;
- the virtual cluster's *CoreDNS*, as the syncer would sync it: a pod made from the Deployment of OUR
  ``controlPlane.coredns.overwriteManifests`` (pull policy, image, nodeSelector, security context as the
  blueprint wrote them), labelled as synced pods are, serving DNS to the tenant's pods on a Service and
  forwarding the rest to the node's resolver (``dnsPolicy: Default``; the local node's resolver answers
  ``upstream.node.vcm.test`` only).

Each property has a twin that removes what carries it and sees the pod fail: the syncer goes unready without
``vcm-allow-control-plane``, upstream names stop resolving without ``vcm-allow-control-plane-dns``, and the
chart's own manifest (``IfNotPresent``) is refused by ``vcm-image-pull-always``. Also here, because they need
running pods: ``vcm apply`` waits for the control plane and fails clearly when its pods are refused; ``vcm
sleep`` frees the tenant's quota (the synced pods go) using the policy recorded at apply, refuses a different
one, and ``vcm wake`` brings the control plane back.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from vcluster_mgr import cluster, localcluster, platformconfig, render, spec, traffic
from vcluster_mgr.localnode import node as localnode

CHART = Path(__file__).resolve().parents[1] / "data" / "charts" / "vcluster-on-node"
NS = "vteam-cp"
UPSTREAM_NAME = f"upstream.{localnode.NODE_DNS_ZONE}"


def tenant_doc(name: str = "vteam", values: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
        "spec": {
            "owners": [{"kind": "Group", "name": f"{name}-devs", "role": "admin"}],
            "namespaces": ["cp", "apps"],
            "quota": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "pods": 20, "services": 10},
            "limits": {"max": {"cpu": "1", "memory": "1Gi"}},
            "network": {"isolation": "strict"},
            "podSecurity": "restricted",
            "placement": {"nodeSelector": {"pool": "tenants"}},
            "controlPlane": {"enabled": True, "chart": {"path": str(CHART)}, "values": values or {}},
        },
    }


class Vcm:
    """``vcm`` in a subprocess against the node cluster (the SDK keeps global state in the process that runs an
    inline program), with its own state dir."""

    def __init__(self, cluster: localcluster.Cluster, state: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "VCM_STATE_DIR": str(state)}

    def __call__(self, *args: str) -> tuple[int, str, str]:
        proc = subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=self.env, capture_output=True,
                              text=True, timeout=900, check=False)
        return proc.returncode, proc.stdout, proc.stderr


class Env:
    def __init__(self, node_cluster: localcluster.Cluster, vcm: Vcm, folder: Path, policy: Path) -> None:
        api = config.new_client_from_config(str(node_cluster.kubeconfig))
        self.core, self.apps, self.net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
        self.conn = cluster.connect(platformconfig.Target(name="node", kubeconfig=str(node_cluster.kubeconfig)))
        self.cluster, self.vcm, self.folder, self.policy = node_cluster, vcm, folder, policy
        self.probe_image = str(node_cluster.node["images"]["probe"])  # type: ignore[index]

    def write(self, doc: dict[str, Any]) -> Path:
        path = self.folder / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def syncer_ready(self) -> bool:
        pods = self.core.list_namespaced_pod(NS, label_selector="release=vteam").items
        return bool(pods) and all(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
                                  for p in pods)

    def dns_service_ip(self) -> str:
        return str(self.core.read_namespaced_service("kube-dns-x-kube-system-x-vteam", NS).spec.cluster_ip)


@pytest.fixture(scope="module")
def env(node_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("cp-node")
    node = node_cluster.node
    assert node is not None
    policy = folder / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "allowedChartSources": [str(CHART)],
        "controlPlaneCorednsImage": node["images"]["coredns"],
        "controlPlaneDnsUpstreams": [f"{localnode.BRIDGE_IP}/32"],
    }))
    e = Env(node_cluster, Vcm(node_cluster, folder / "state"), folder, policy)
    code, out, err = e.vcm("platform", "apply", "--yes")
    assert code == 0, out + err
    values = {"fixture": {"syncerImage": node["images"]["kubectl"]}}
    code, out, err = e.vcm("apply", str(e.write(tenant_doc(values=values))), "--yes", "--policy", str(policy),
                           "-o", "json", "--timeout", "180")
    assert code == 0, out + err
    e.applied = json.loads(out)[0]  # type: ignore[attr-defined]
    e.core.create_namespaced_pod(NS, traffic.pod_manifest("cli", e.probe_image, role="client",
                                                          node_selector={"pool": "tenants"}))
    _wait(lambda: _running(e.core, NS, "cli"))
    try:
        yield e
    finally:
        traffic.delete(e.conn, NS, "cli")
        e.vcm("delete", "vteam", "--yes")
        e.conn.close()


def _wait(probe: Any, seconds: float = 120.0) -> None:
    assert traffic.eventually(probe, True, seconds=seconds), f"{probe} never held"


def _running(core: client.CoreV1Api, ns: str, name: str) -> bool:
    st = core.read_namespaced_pod(name, ns).status
    return st.phase == "Running" and any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])


@contextlib.contextmanager
def policy_removed(e: Env, name: str) -> Iterator[None]:
    """Delete one NetworkPolicy of the control plane's namespace and put it back afterwards."""
    saved = e.net.read_namespaced_network_policy(name, NS)
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NS, "labels": saved.metadata.labels},
            "spec": e.net.api_client.sanitize_for_serialization(saved.spec)}
    e.net.delete_namespaced_network_policy(name, NS)
    try:
        yield
    finally:
        e.net.create_namespaced_network_policy(NS, body)


# ---------------------------------------------------------------------------------------------------
# the apply: health, the egress rules as rendered, the quota
# ---------------------------------------------------------------------------------------------------


def test_apply_waited_for_the_control_plane_and_said_so(env: Env) -> None:
    steps = env.applied["steps"]  # type: ignore[attr-defined]
    assert any(s.startswith("control plane: ready") for s in steps), steps
    assert env.syncer_ready()
    code, out, err = env.vcm("status", "vteam", "-o", "json")
    assert code == 0, err
    health = json.loads(out)["controlPlaneHealth"]
    assert health["ready"] is True and health["replicas"] == 1
    assert {p["kind"] for p in health["pods"]} == {"controlPlane", "synced"}


def test_the_control_plane_rule_names_the_host_api_as_looked_up_at_apply(env: Env) -> None:
    svc = env.core.read_namespaced_service("kubernetes", "default")
    rule = env.net.read_namespaced_network_policy("vcm-allow-control-plane", NS)
    assert rule.spec.pod_selector.match_labels == {"app": "vcluster", "release": "vteam"}
    cidrs = {(p.ip_block.cidr, port.port) for r in rule.spec.egress for p in r.to for port in r.ports}
    assert (f"{svc.spec.cluster_ip}/32", 443) in cidrs
    assert any(cidr == f"{localnode.BRIDGE_IP}/32" for cidr, _ in cidrs)  # the endpoint the Service is NATed to
    # only in the control plane's namespace
    assert "vcm-allow-control-plane" not in {p.metadata.name for p in
                                             env.net.list_namespaced_network_policy("vteam-apps").items}


def test_the_whole_quota_goes_where_the_virtual_cluster_runs(env: Env) -> None:
    cp = env.core.read_namespaced_resource_quota("vcm-quota", NS).spec.hard
    apps = env.core.read_namespaced_resource_quota("vcm-quota", "vteam-apps").spec.hard
    assert cp["pods"] == "20" and cp["requests.cpu"] == "4"
    assert apps["pods"] == "0"


# ---------------------------------------------------------------------------------------------------
# the syncer reaches the host API under strict isolation; the twin removes the rule
# ---------------------------------------------------------------------------------------------------


def test_syncer_reads_and_writes_the_host_api_from_the_tenant_namespace(env: Env) -> None:
    first = env.core.read_namespaced_config_map("vteam-heartbeat", NS).data["n"]
    _wait(lambda: env.core.read_namespaced_config_map("vteam-heartbeat", NS).data["n"] != first, 30)


def test_twin_without_the_control_plane_rule_the_syncer_fails(env: Env) -> None:
    with policy_removed(env, "vcm-allow-control-plane"):
        assert traffic.eventually(lambda: not env.syncer_ready(), True, seconds=60), "syncer still ready"
    _wait(env.syncer_ready, 60)


# ---------------------------------------------------------------------------------------------------
# the virtual cluster's CoreDNS: serves the tenant's pods, forwards upstream; the twin removes the rule
# ---------------------------------------------------------------------------------------------------


def _resolves_upstream(env: Env) -> bool:
    code, out = traffic.run(env.conn, NS, "cli", ["timeout", "5", "nslookup", UPSTREAM_NAME, env.dns_service_ip()],
                            timeout=15)
    return code == 0 and localnode.BRIDGE_IP in out.split("Name:", 1)[-1]


def test_virtual_coredns_runs_from_our_manifest(env: Env) -> None:
    pod = env.core.read_namespaced_pod("coredns-x-kube-system-x-vteam", NS)
    container = pod.spec.containers[0]
    assert container.image_pull_policy == "Always"
    assert container.image == env.cluster.node["images"]["coredns"]  # type: ignore[index]
    assert pod.spec.dns_policy == "Default"
    assert pod.spec.node_selector == {"kubernetes.io/os": "linux", "pool": "tenants"}
    assert _running(env.core, NS, "coredns-x-kube-system-x-vteam")


def test_tenant_pod_resolves_upstream_names_through_the_virtual_coredns(env: Env) -> None:
    assert traffic.eventually(lambda: _resolves_upstream(env), True, seconds=40)


def test_twin_without_the_dns_rule_upstream_names_fail(env: Env) -> None:
    # kube-router lets a flow it already admitted go on after the policy is gone; the fixture's CoreDNS drops its
    # upstream sockets after 1 s unused, so the probes below (one a second at most) open new flows
    with policy_removed(env, "vcm-allow-control-plane-dns"):
        assert traffic.eventually(lambda: not _resolves_upstream(env), True, seconds=90)
    assert traffic.eventually(lambda: _resolves_upstream(env), True, seconds=60)


def test_twin_the_charts_own_coredns_manifest_is_refused(env: Env) -> None:
    # the same manifest with the pull policy the chart hard-codes
    policy = spec.load_policy(env.policy)
    tenant = spec.parse_spec(tenant_doc("vdns"), policy=policy)
    manifest = render.control_plane_values(tenant, policy=policy)["controlPlane"]["coredns"]["overwriteManifests"]
    chart_like = manifest.replace("imagePullPolicy: Always", "imagePullPolicy: IfNotPresent")
    assert chart_like != manifest
    doc = tenant_doc("vdns", values={"fixture": {"syncerImage": env.cluster.node["images"]["kubectl"]},  # type: ignore[index]
                                     "controlPlane": {"coredns": {"overwriteManifests": chart_like}}})
    try:
        code, out, err = env.vcm("apply", str(env.write(doc)), "--yes", "--policy", str(env.policy),
                                 "--timeout", "10")
        assert code == 1, out + err
        assert "vcm-image-pull-always" in out + err and "coredns" in out + err
    finally:
        env.vcm("delete", "vdns", "--yes")


# ---------------------------------------------------------------------------------------------------
# health: a refused control plane pod fails the apply, saying why
# ---------------------------------------------------------------------------------------------------


def test_apply_fails_clearly_when_the_control_plane_pods_are_refused(env: Env) -> None:
    doc = tenant_doc("vbad", values={"fixture": {"syncerImage": env.cluster.node["images"]["kubectl"]},  # type: ignore[index]
                                     "controlPlane": {"statefulSet": {"imagePullPolicy": "IfNotPresent"}}})
    try:
        code, out, err = env.vcm("apply", str(env.write(doc)), "--yes", "--policy", str(env.policy),
                                 "--timeout", "15")
        assert code == 1, out + err
        assert "not up after 15s" in err and "FailedCreate" in err and "vcm-image-pull-always" in err, err
        assert "Traceback" not in err
    finally:
        env.vcm("delete", "vbad", "--yes")


# ---------------------------------------------------------------------------------------------------
# sleep and wake, with the recorded policy
# ---------------------------------------------------------------------------------------------------


def test_sleep_frees_the_synced_pods_and_wake_brings_the_control_plane_back(env: Env) -> None:
    # a workload the virtual cluster synced (as the syncer labels it)
    pod = traffic.pod_manifest("web-x-default-x-vteam", env.probe_image, role="server",
                               node_selector={"pool": "tenants"},
                               labels={"vcluster.loft.sh/managed-by": "vteam", "vcluster.loft.sh/namespace": "default"})
    env.core.create_namespaced_pod(NS, pod)
    _wait(lambda: _running(env.core, NS, "web-x-default-x-vteam"))
    default_policy = env.folder / "default-policy.yaml"
    default_policy.write_text("{}\n")
    code, _, err = env.vcm("sleep", "vteam", "--policy", str(default_policy))
    assert code == 2 and "not the policy tenant vteam was applied under" in err, err
    code, _, err = env.vcm("sleep", "vteam")  # no --policy: the one recorded at apply
    assert code == 0, err
    assert env.apps.read_namespaced_stateful_set("vteam", NS).spec.replicas == 0
    left = env.core.list_namespaced_pod(NS, label_selector="vcluster.loft.sh/managed-by=vteam").items
    assert [p.metadata.name for p in left if not p.metadata.deletion_timestamp] == []
    _wait(lambda: env.core.read_namespaced_resource_quota("vcm-quota", NS).status.used.get("pods") == "1", 60)  # cli
    code, _, err = env.vcm("wake", "vteam")
    assert code == 0, err
    _wait(env.syncer_ready, 120)
