"""A tenant's REAL virtual cluster on the local node: vcluster 0.36.1 under strict isolation, as a user meets it.

``vcm apply`` installs the vcluster chart 0.36.1 from the local chart directory the toolchain takes from vcluster's
Go module (``vcm toolchain chart``: the air-gapped route), with the node's registry as the chart's
``defaultImageRegistry`` (``localnode.images.chart_values``): the syncer is the one the toolchain built, the
virtual Kubernetes our kube-apiserver and kube-controller-manager with kine (SQLite). Nothing here imitates
vcluster; one control plane tenant (``vteam``) serves the whole module, and the tests that change it put it back.

Covered, each property with a twin that weakens it and sees it fail:

- ``vcm kubeconfig`` gives a kubeconfig that reaches the virtual API (``kubectl get ns`` inside), at the Service's
  ClusterIP, and that keeps working after the control plane pod is replaced; without its credentials, refused;
- a Deployment + Service + ConfigMap made inside run on the host in the tenant's first namespace, with the
  tenant's nodeSelector and the LimitRange's defaults; a pod over the tenant's limits is refused by the host and
  the refusal shows inside (an event on the virtual pod) and in ``vcm status``;
- DNS inside resolves the virtual cluster's own Services (our CoreDNS build with ``loop`` and ``loadbalance``);
- the control plane's egress rule carries the syncer: without ``vcm-allow-control-plane`` nothing new made inside
  reaches the host;
- ``vcm apply --wait-healthy`` fails clearly when the host refuses the control plane's pods;
- the CI flow: ``vcm ephemeral create --wait --kubeconfig-out`` of a tenant with a control plane, a workload
  applied inside and Ready, ``vcm ephemeral delete``; and ``vcm gc`` of an expired one, the rest kept;
- ``vcm delete`` leaves no namespace, synced object or secret behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from vcluster_mgr import localcluster, toolchain, traffic
from vcluster_mgr.localnode import images
from vcluster_mgr.localnode import node as localnode

NS = "vteam-cp"


def tenant_doc(name: str, chart: Path, registry: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    from vcluster_mgr import render

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
            "controlPlane": {
                "enabled": True, "chart": {"path": str(chart)}, "persistence": {"enabled": False},
                "values": render.merge_values(images.chart_values(registry), values or {}),
            },
        },
    }


class Vcm:
    """``vcm`` in a subprocess against the node cluster, with its own state dir."""

    def __init__(self, cluster: localcluster.Cluster, state: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "VCM_STATE_DIR": str(state)}

    def __call__(self, *args: str) -> tuple[int, str, str]:
        proc = subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=self.env, capture_output=True,
                              text=True, timeout=900, check=False)
        return proc.returncode, proc.stdout, proc.stderr


class Env:
    def __init__(self, cluster: localcluster.Cluster, folder: Path) -> None:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        self.core, self.apps, self.net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
        self.cluster, self.folder = cluster, folder
        self.vcm = Vcm(cluster, folder / "state")
        node = cluster.node
        assert node is not None
        self.registry = str(node["registry"])
        self.probe_image = str(node["images"]["probe"])
        self.chart = toolchain.chart_dir()
        self.policy = folder / "policy.yaml"
        self.policy.write_text(yaml.safe_dump({
            "allowedChartSources": [str(self.chart)],
            "controlPlaneCorednsImage": node["images"]["coredns"],
            "controlPlaneDnsUpstreams": [f"{localnode.BRIDGE_IP}/32"],
        }))
        self.kubeconfig = folder / "vteam.kubeconfig"

    def write(self, doc: dict[str, Any]) -> Path:
        path = self.folder / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def apply(self, name: str, *extra: str, values: dict[str, Any] | None = None) -> tuple[int, str, str]:
        doc = tenant_doc(name, self.chart, self.registry, values)
        return self.vcm("apply", str(self.write(doc)), "--yes", "--policy", str(self.policy), *extra)

    def kubectl(self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubectl`` inside the virtual cluster (the kubeconfig ``vcm kubeconfig`` wrote)."""
        return subprocess.run([str(toolchain.bin_dir() / "kubectl"), "--kubeconfig", str(kubeconfig or self.kubeconfig),
                               "--request-timeout=20s", *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def synced(self, selector: str = "") -> list[Any]:
        label = "vcluster.loft.sh/managed-by=vteam" + (f",{selector}" if selector else "")
        return [p for p in self.core.list_namespaced_pod(NS, label_selector=label).items
                if not p.metadata.deletion_timestamp]


def _wait(probe: Callable[[], object], seconds: float = 120.0, what: str = "") -> None:
    assert traffic.eventually(lambda: bool(probe()), True, seconds=seconds), f"never held: {what or probe}"


def _ready(pod: Any) -> bool:
    st = pod.status
    return bool(st and st.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                    for c in st.conditions or []))


@pytest.fixture(scope="module")
def env(node_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(node_cluster, tmp_path_factory.mktemp("vcluster-node"))
    code, out, err = e.vcm("platform", "apply", "--yes")
    assert code == 0, out + err
    started = time.monotonic()
    code, out, err = e.apply("vteam", "-o", "json", "--wait-healthy", "300")
    assert code == 0, out + err
    e.applied = json.loads(out)[0]  # type: ignore[attr-defined]
    e.apply_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    code, out, err = e.vcm("kubeconfig", "vteam", "-o", str(e.kubeconfig))
    assert code == 0, out + err
    try:
        yield e
    finally:
        e.vcm("delete", "vteam", "--yes")


# ---------------------------------------------------------------------------------------------------
# the virtual API, through the kubeconfig vcm hands out
# ---------------------------------------------------------------------------------------------------


def _namespaces(e: Env, kubeconfig: Path | None = None) -> set[str]:
    proc = e.kubectl("get", "ns", "-o", "jsonpath={.items[*].metadata.name}", kubeconfig=kubeconfig)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_apply_waited_for_the_virtual_api_and_status_says_ready(env: Env) -> None:
    steps = env.applied["steps"]  # type: ignore[attr-defined]
    assert any(s.startswith("control plane: ready") for s in steps), steps
    code, out, err = env.vcm("status", "vteam", "-o", "json")
    assert code == 0, err
    health = json.loads(out)["controlPlaneHealth"]
    assert health["ready"] is True and health["replicas"] == 1
    # without persistence the chart makes a Deployment: its pod is the one control plane pod
    assert [p["kind"] for p in health["pods"]].count("controlPlane") == 1
    assert env.apps.read_namespaced_deployment("vteam", NS).spec.replicas == 1


def test_kubectl_get_ns_inside_the_virtual_cluster(env: Env) -> None:
    assert {"default", "kube-system"} <= _namespaces(env)
    # the host's tenant namespaces are not what the virtual cluster shows
    assert NS not in _namespaces(env)
    version = json.loads(env.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert version == f"v{toolchain.KUBERNETES_VERSION}"


def test_the_kubeconfig_names_the_services_cluster_ip(env: Env) -> None:
    server = yaml.safe_load(env.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert server == f"https://{env.core.read_namespaced_service('vteam', NS).spec.cluster_ip}:443"


def test_twin_without_its_credentials_the_virtual_api_refuses(env: Env) -> None:
    doc = yaml.safe_load(env.kubeconfig.read_text())
    for user in doc["users"]:
        user["user"] = {"token": "not-a-token"}
    bare = env.folder / "bare.kubeconfig"
    bare.write_text(yaml.safe_dump(doc))
    proc = env.kubectl("get", "ns", kubeconfig=bare)
    assert proc.returncode != 0 and "Unauthorized" in proc.stderr, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------
# a workload made inside runs on the host, under the tenant's rules
# ---------------------------------------------------------------------------------------------------


def _workload(image: str) -> str:
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                  "seccompProfile": {"type": "RuntimeDefault"}}
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-page", "namespace": "default"},
         "data": {"index.html": "served from inside vteam\n"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                      "containers": [{"name": "web", "image": image, "imagePullPolicy": "Always",
                                      "command": ["/bin/httpd", "-f", "-p", "8080", "-h", "/page"],
                                      "ports": [{"containerPort": 8080}], "securityContext": restricted,
                                      "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
                                      "volumeMounts": [{"name": "page", "mountPath": "/page"}]}],
                      "volumes": [{"name": "page", "configMap": {"name": "web-page"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    ]
    return yaml.safe_dump_all(docs)


@pytest.fixture(scope="module")
def workload(env: Env) -> Env:
    proc = env.kubectl("apply", "-f", "-", stdin=_workload(env.probe_image))
    assert proc.returncode == 0, proc.stderr
    proc = env.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(
        traffic.pod_manifest("vcli", env.probe_image, role="client")))
    assert proc.returncode == 0, proc.stderr
    proc = env.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr + _describe(env)
    proc = env.kubectl("wait", "pod/vcli", "--for=condition=Ready", "--timeout=120s", timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr + _describe(env)
    return env


def _describe(env: Env) -> str:
    return env.kubectl("get", "events", "-A", "-o", "wide").stdout[-3000:]


def test_the_deployment_made_inside_runs_on_the_host_in_the_tenants_namespace(workload: Env) -> None:
    pods = [p for p in workload.synced("vcluster.loft.sh/namespace=default") if p.metadata.labels.get("app") == "web"]
    assert len(pods) == 1 and _ready(pods[0]), [p.metadata.name for p in pods]
    pod = pods[0]
    assert pod.spec.node_selector.get("pool") == "tenants"  # the tenant's placement
    limits = pod.spec.containers[0].resources.limits
    assert limits and {"cpu", "memory"} <= set(limits)  # the LimitRange's defaults, applied by the host
    assert workload.core.read_namespace(NS).metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"


def _exec(e: Env, *command: str) -> subprocess.CompletedProcess[str]:
    return e.kubectl("exec", "vcli", "--", *command, timeout=40)


def test_inside_dns_resolves_the_virtual_clusters_own_service_and_it_serves_the_configmap(workload: Env) -> None:
    svc_ip = workload.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    looked_up = _exec(workload, "nslookup", "web.default.svc.cluster.local")
    assert looked_up.returncode == 0 and svc_ip in looked_up.stdout.split("Name:", 1)[-1], looked_up
    page = _exec(workload, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80")
    assert "served from inside vteam" in page.stdout, page


def test_twin_a_name_the_virtual_cluster_does_not_have_does_not_resolve(workload: Env) -> None:
    # the host's own Service of the same kind, in a namespace the virtual cluster does not have
    looked_up = _exec(workload, "nslookup", f"kube-dns.{NS}.svc.cluster.local")
    assert looked_up.returncode != 0 or "NXDOMAIN" in looked_up.stdout + looked_up.stderr, looked_up


# ---------------------------------------------------------------------------------------------------
# the host refuses what breaks the tenant's rules, and says so inside and in vcm status
# ---------------------------------------------------------------------------------------------------


def _big_pod(image: str, memory: str) -> str:
    pod = traffic.pod_manifest("big", image, role="client")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "100m", "memory": memory},
                                                 "requests": {"cpu": "100m", "memory": "64Mi"}}
    return yaml.safe_dump(pod)


def _sync_errors_inside(e: Env) -> str:
    return e.kubectl("get", "events", "-n", "default", "--field-selector", "involvedObject.name=big,reason=SyncError",
                     "-o", "jsonpath={.items[*].message}").stdout


def test_a_pod_over_the_tenants_limits_is_refused_and_the_refusal_shows_inside_and_in_status(workload: Env) -> None:
    proc = workload.kubectl("apply", "-f", "-", stdin=_big_pod(workload.probe_image, "2Gi"))
    assert proc.returncode == 0, proc.stderr  # the virtual cluster accepts it: the host's LimitRange decides
    try:
        _wait(lambda: "vcm-limits" in _sync_errors_inside(workload) or "maximum" in _sync_errors_inside(workload),
              60, "a SyncError inside naming the LimitRange")
        assert all("big" not in p.metadata.name for p in workload.synced())
        code, out, err = workload.vcm("status", "vteam", "-o", "json")
        assert code == 0, err
        health = json.loads(out)["controlPlaneHealth"]
        assert health["inside"] == "read"
        assert any(p["reason"] == "SyncError" and "big" in p["object"] for p in health["problems"]), health
    finally:
        workload.kubectl("delete", "pod", "big", "--wait=false")


def test_twin_the_same_pod_within_the_limits_runs_on_the_host(workload: Env) -> None:
    proc = workload.kubectl("apply", "-f", "-", stdin=_big_pod(workload.probe_image, "512Mi").replace(
        "name: big", "name: fits"))
    assert proc.returncode == 0, proc.stderr
    try:
        _wait(lambda: any("fits" in p.metadata.name and _ready(p) for p in workload.synced()), 90, "pod fits runs")
    finally:
        workload.kubectl("delete", "pod", "fits", "--wait=false")


def test_a_pod_breaking_restricted_pod_security_is_refused_inside(workload: Env) -> None:
    pod = traffic.pod_manifest("root", workload.probe_image, role="client")
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    proc = workload.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pod))
    assert proc.returncode != 0 and "restricted" in proc.stderr, proc.stdout + proc.stderr
    assert not [p for p in workload.synced() if "root" in p.metadata.name]


# ---------------------------------------------------------------------------------------------------
# the control plane's egress rule carries the syncer; the twin removes it
# ---------------------------------------------------------------------------------------------------


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


def _configmap_on_host(e: Env, name: str) -> bool:
    return any(name in cm.metadata.name for cm in e.core.list_namespaced_config_map(
        NS, label_selector="vcluster.loft.sh/managed-by=vteam").items)


def test_twin_without_the_control_plane_rule_nothing_new_reaches_the_host(workload: Env) -> None:
    # a ConfigMap reaches the host once a pod uses it: mount it from a pod made inside
    def pod_using(cm: str) -> str:
        pod = traffic.pod_manifest(f"use-{cm}", workload.probe_image, role="client")
        pod["spec"]["volumes"] = [{"name": "c", "configMap": {"name": cm}}]
        pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "c", "mountPath": "/c"}]
        return yaml.safe_dump_all([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm},
                                    "data": {"k": "v"}}, pod])

    with policy_removed(workload, "vcm-allow-control-plane"):
        time.sleep(3)  # kube-router applies the change
        assert workload.kubectl("apply", "-f", "-", stdin=pod_using("cut")).returncode == 0
        time.sleep(20)
        assert not _configmap_on_host(workload, "cut")
    _wait(lambda: _configmap_on_host(workload, "cut"), 120, "the syncer catches up once the rule is back")
    workload.kubectl("delete", "pod", "use-cut", "--wait=false")


def test_the_control_plane_rule_names_the_host_api_as_looked_up_at_apply(env: Env) -> None:
    svc = env.core.read_namespaced_service("kubernetes", "default")
    rule = env.net.read_namespaced_network_policy("vcm-allow-control-plane", NS)
    cidrs = {(p.ip_block.cidr, port.port) for r in rule.spec.egress for p in r.to for port in r.ports}
    assert (f"{svc.spec.cluster_ip}/32", 443) in cidrs
    assert any(cidr == f"{localnode.BRIDGE_IP}/32" for cidr, _ in cidrs)  # the endpoint the Service is NATed to
    assert "vcm-allow-control-plane" not in {p.metadata.name for p in
                                             env.net.list_namespaced_network_policy("vteam-apps").items}


def test_the_whole_quota_goes_where_the_virtual_cluster_runs(env: Env) -> None:
    assert env.core.read_namespaced_resource_quota("vcm-quota", NS).spec.hard["pods"] == "20"
    assert env.core.read_namespaced_resource_quota("vcm-quota", "vteam-apps").spec.hard["pods"] == "0"


UPSTREAM_NAME = f"upstream.{localnode.NODE_DNS_ZONE}"


def _resolves_upstream(e: Env) -> bool:
    looked_up = _exec(e, "timeout", "5", "nslookup", UPSTREAM_NAME)
    return looked_up.returncode == 0 and localnode.BRIDGE_IP in looked_up.stdout.split("Name:", 1)[-1]


def test_inside_upstream_names_resolve_through_the_virtual_coredns(workload: Env) -> None:
    _wait(lambda: _resolves_upstream(workload), 60, f"{UPSTREAM_NAME} resolves inside")


def test_twin_without_the_dns_rule_upstream_names_fail_inside(workload: Env) -> None:
    # kube-router lets flows it already admitted go on after the policy is gone: CoreDNS's forward plugin
    # expires its upstream connections after 10 s unused, so new flows come within the wait
    with policy_removed(workload, "vcm-allow-control-plane-dns"):
        _wait(lambda: not _resolves_upstream(workload), 120, "upstream names stop resolving")
    _wait(lambda: _resolves_upstream(workload), 90, "upstream names resolve again")


# ---------------------------------------------------------------------------------------------------
# the kubeconfig survives the control plane pod; health fails clearly when the host refuses its pods
# ---------------------------------------------------------------------------------------------------


def test_the_kubeconfig_keeps_working_after_the_control_plane_pod_is_replaced(env: Env) -> None:
    old = env.core.list_namespaced_pod(NS, label_selector="app=vcluster,release=vteam").items
    assert len(old) == 1
    env.core.delete_namespaced_pod(old[0].metadata.name, NS)
    _wait(lambda: [p for p in env.core.list_namespaced_pod(NS, label_selector="app=vcluster,release=vteam").items
                   if p.metadata.name != old[0].metadata.name and _ready(p)], 180, "a new control plane pod Ready")
    _wait(lambda: env.kubectl("get", "ns").returncode == 0, 60, "the same kubeconfig answers")


def test_apply_fails_clearly_when_the_control_plane_pods_are_refused(env: Env) -> None:
    try:
        code, out, err = env.apply("vbad", "--wait-healthy", "20",
                                   values={"controlPlane": {"statefulSet": {"imagePullPolicy": "IfNotPresent"}}})
        assert code == 1, out + err
        assert "not up after 20s" in err and "FailedCreate" in err and "vcm-image-pull-always" in err, err
        assert "Traceback" not in err
    finally:
        env.vcm("delete", "vbad", "--yes")


# ---------------------------------------------------------------------------------------------------
# the CI flow: an ephemeral tenant with a control plane, a workload inside, deleted; gc of an expired one
# ---------------------------------------------------------------------------------------------------


def _ephemeral(e: Env, *extra: str) -> dict[str, Any]:
    spec_file = e.write(tenant_doc("ci", e.chart, e.registry))
    code, out, err = e.vcm("ephemeral", "create", str(spec_file), "--ttl", "1h", "--policy", str(e.policy),
                           "-o", "json", *extra)
    assert code == 0, out + err
    return dict(json.loads(out))


def _gone(e: Env, namespaces: list[str]) -> bool:
    have = {n.metadata.name for n in e.core.list_namespace().items}
    return not set(namespaces) & have


def test_ci_flow_ephemeral_control_plane_kubeconfig_workload_ready_delete(env: Env) -> None:
    kc = env.folder / "ci.kubeconfig"
    made = _ephemeral(env, "--wait", "--kubeconfig-out", str(kc))
    try:
        assert made["kubeconfig"] == str(kc) and made["name"].startswith("ci-")
        proc = env.kubectl("apply", "-f", "-", stdin=_workload(env.probe_image), kubeconfig=kc)
        assert proc.returncode == 0, proc.stderr
        proc = env.kubectl("rollout", "status", "deployment/web", "--timeout=120s", kubeconfig=kc, timeout=150)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        code, out, err = env.vcm("ephemeral", "delete", made["name"])
    assert code == 0, out + err
    _wait(lambda: _gone(env, made["namespaces"]), 180, "the ephemeral tenant's namespaces gone")


def test_gc_deletes_an_expired_ephemeral_control_plane_and_keeps_the_rest(env: Env) -> None:
    made = _ephemeral(env)
    code, out, err = env.vcm("gc", "--now", "2099-01-01T00:00:00Z", "-o", "json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["deleted"] == [made["name"]] and result["kept"] >= 1  # vteam has no expiry
    _wait(lambda: _gone(env, made["namespaces"]), 180, "the expired tenant's namespaces gone")
    assert NS in {n.metadata.name for n in env.core.list_namespace().items}


# ---------------------------------------------------------------------------------------------------
# delete leaves nothing (last: it removes the module's tenant)
# ---------------------------------------------------------------------------------------------------


def test_zz_delete_leaves_nothing_behind(env: Env) -> None:
    code, out, err = env.vcm("delete", "vteam", "--yes")
    assert code == 0, out + err
    for ns in (NS, "vteam-apps"):
        _wait(lambda ns=ns: ns not in {n.metadata.name for n in env.core.list_namespace().items}, 180, f"{ns} gone")
    left = env.core.list_pod_for_all_namespaces(label_selector="vcluster.loft.sh/managed-by=vteam").items
    assert left == []
    secrets = [s.metadata.name for s in env.core.list_secret_for_all_namespaces().items
               if s.metadata.namespace.startswith("vteam-")]
    assert secrets == []
    pvcs = [p.metadata.name for p in env.core.list_persistent_volume_claim_for_all_namespaces().items
            if p.metadata.namespace.startswith("vteam-")]
    assert pvcs == []
    csrs = client.CertificatesV1Api(env.core.api_client).list_certificate_signing_request().items
    assert [c.metadata.name for c in csrs if "vteam" in (c.spec.username or "") + c.metadata.name] == []
