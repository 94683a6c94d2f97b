"""A tenant's REAL virtual cluster on the local node: vcluster 0.36.1 under strict isolation, as a user meets it.

The ``real_control_plane`` fixture (conftest) applies one control plane tenant, ``vteam``, with ``vcm apply``: the
vcluster chart 0.36.1 from the local chart directory the toolchain takes from vcluster's Go module, the syncer the
toolchain built, our kube-apiserver, kube-controller-manager and kine (SQLite) as the virtual Kubernetes, its data
on a PersistentVolumeClaim of the node's default StorageClass. Nothing here imitates vcluster. The one tenant serves
the whole module; a test that changes it puts it back; the last test deletes it.

Covered, each property with a twin that weakens it and sees it fail:

- ``vcm kubeconfig`` gives a kubeconfig that reaches the virtual API (``kubectl get ns`` inside) at the Service's
  ClusterIP, and that keeps working, with the objects made inside, after the control plane pod is replaced;
  without its credentials the virtual API refuses;
- ``vcm apply`` waited for the virtual API's ``/readyz`` through that kubeconfig, ``vcm status`` reads it too;
- a Deployment + Service + ConfigMap made inside run on the host in the tenant's first namespace, counted by its
  quota, with the LimitRange's defaults, restricted Pod Security and the tenant's nodeSelector; a pod over the
  tenant's limits is refused by the host and the refusal shows inside (a SyncError event on the virtual pod) and
  in ``vcm status``; the same pod within the limits runs; a claim over the tenant's storage quota is refused the
  same way (within it, it reaches the host); a pod breaking restricted Pod Security is refused inside;
- DNS inside resolves the virtual cluster's own Services (and not the host's), and names outside through the
  node's resolver, carried by ``vcm-allow-control-plane-dns`` (twin: without it they fail);
- placement: a pod inside that names its node (``spec.nodeName``, which the syncer passes on without the tenant's
  nodeSelector) is refused by the host's vcm-placement policy, shown inside (SyncError) and in ``vcm status``,
  which stops quoting it once the pod is deleted; the same pod with the tenant's nodeSelector runs; a pod asking
  for another pool inside is not refused but moved: the syncer writes the tenant's nodeSelector over its own;
- ``kubectl logs`` and ``exec`` inside work under strict isolation, carried by ``vcm-allow-control-plane`` alone
  (the syncer's way to the host API): without it ``exec`` is refused, and ``logs`` too once the syncer's open
  connection to the host API is closed;
- traffic: another tenant's pods reach neither the virtual cluster's workloads nor its API, and its workloads
  reach only their own tenant (twins: an added NetworkPolicy opens each way and the probe succeeds);
- ``vcm apply`` fails clearly when the host refuses the control plane's pods;
- the CI flow: ``vcm ephemeral create --wait --kubeconfig-out`` of a tenant with a control plane, a workload
  applied inside and Ready, ``vcm ephemeral delete``; and ``vcm gc`` of an expired one, the rest kept;
- ``vcm delete`` completes (the claim's protection finalizer lifted) and leaves no namespace, PVC, volume or its
  directory, synced object, CSR or secret behind.

Runs on the node cluster (one per machine).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcluster_mgr import toolchain, traffic
from vcluster_mgr.localnode import node as localnode

from .conftest import small_tenant
from .real_control_plane import RealControlPlane

RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
              "seccompProfile": {"type": "RuntimeDefault"}}
GREETING = "serving from inside vteam"


def _wait(probe: Callable[[], object], seconds: float = 120.0, what: str = "") -> None:
    assert traffic.eventually(lambda: bool(probe()), True, seconds=seconds), f"never held: {what or probe}"


def _json(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in st.get("conditions") or [])


def _host_pods(cp: RealControlPlane, selector: str) -> list[dict[str, Any]]:
    items = _json(cp.host("get", "pods", "-n", cp.namespace, "-l", selector, "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _synced(cp: RealControlPlane, selector: str = "") -> list[dict[str, Any]]:
    return _host_pods(cp, f"vcluster.loft.sh/managed-by={cp.name}" + (f",{selector}" if selector else ""))


def _status(cp: RealControlPlane) -> dict[str, Any]:
    code, out, err = cp.vcm("status", cp.name, "-o", "json")
    assert code == 0, out + err
    return dict(json.loads(out)["controlPlaneHealth"])


# ---------------------------------------------------------------------------------------------------
# the virtual API, through the kubeconfig vcm hands out
# ---------------------------------------------------------------------------------------------------


def _namespaces(cp: RealControlPlane, kubeconfig: Path | None = None) -> set[str]:
    proc = cp.kubectl("get", "ns", "-o", "jsonpath={.items[*].metadata.name}", kubeconfig=kubeconfig)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_apply_waited_for_the_virtual_api_and_status_says_ready(real_control_plane: RealControlPlane) -> None:
    cp = real_control_plane
    steps = cp.applied["steps"]
    assert any(str(s).startswith("control plane: ready") for s in steps), steps  # type: ignore[attr-defined]
    health = _status(cp)
    assert health["ready"] is True and health["replicas"] == 1, health
    # read inside, through the kubeconfig vcm hands out: the virtual API's own /readyz, and its events
    assert health["virtual_api_ready"] is True and health["inside"] == "read", health
    assert [p["kind"] for p in health["pods"]].count("controlPlane") == 1
    # with persistence the chart makes a StatefulSet and a PVC on the node's default StorageClass
    pvc = _json(cp.host("get", "pvc", "-n", cp.namespace, "-o", "json"))["items"]
    assert [p["status"]["phase"] for p in pvc] == ["Bound"], pvc


def test_kubectl_get_ns_inside_the_virtual_cluster(real_control_plane: RealControlPlane) -> None:
    cp = real_control_plane
    inside = _namespaces(cp)
    assert {"default", "kube-system"} <= inside
    assert cp.namespace not in inside  # the host's namespaces are not the virtual cluster's
    version = _json(cp.kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    assert version == f"v{toolchain.KUBERNETES_VERSION}"


def test_the_kubeconfig_names_the_services_cluster_ip(real_control_plane: RealControlPlane) -> None:
    cp = real_control_plane
    server = yaml.safe_load(cp.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    ip = cp.host("get", "svc", cp.name, "-n", cp.namespace, "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    assert server == f"https://{ip}:443"


def test_twin_without_its_credentials_the_virtual_api_refuses(real_control_plane: RealControlPlane) -> None:
    cp = real_control_plane
    doc = yaml.safe_load(cp.kubeconfig.read_text())
    for user in doc["users"]:
        user["user"] = {"token": "not-a-token"}
    bare = cp.folder / "bare.kubeconfig"
    bare.write_text(yaml.safe_dump(doc))
    proc = cp.kubectl("get", "ns", kubeconfig=bare)
    assert proc.returncode != 0 and "Unauthorized" in proc.stderr, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------
# a workload made inside runs on the host, under the tenant's rules
# ---------------------------------------------------------------------------------------------------


def _workload(image: str) -> str:
    serve = f"echo {GREETING}; exec /bin/httpd -f -p 8080 -h /page"
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-page", "namespace": "default"},
         "data": {"index.html": f"{GREETING}\n"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                      "containers": [{"name": "web", "image": image, "imagePullPolicy": "Always",
                                      "command": ["/bin/sh", "-c", serve],
                                      "ports": [{"containerPort": 8080}], "securityContext": RESTRICTED,
                                      "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
                                      "volumeMounts": [{"name": "page", "mountPath": "/page"}]}],
                      "volumes": [{"name": "page", "configMap": {"name": "web-page"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    ]
    return yaml.safe_dump_all(docs)


def _events_inside(cp: RealControlPlane) -> str:
    return cp.kubectl("get", "events", "-A", "-o", "wide").stdout[-3000:]


@pytest.fixture(scope="module")
def workload(real_control_plane: RealControlPlane) -> RealControlPlane:
    """``web`` (Deployment, Service, ConfigMap) and a client pod ``vcli`` made inside the virtual cluster, Ready."""
    cp = real_control_plane
    proc = cp.kubectl("apply", "-f", "-", stdin=_workload(cp.probe_image))
    assert proc.returncode == 0, proc.stderr
    proc = cp.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(traffic.pod_manifest("vcli", cp.probe_image,
                                                                                     role="client")))
    assert proc.returncode == 0, proc.stderr
    proc = cp.kubectl("rollout", "status", "deployment/web", "--timeout=150s", timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr + _events_inside(cp)
    proc = cp.kubectl("wait", "pod/vcli", "--for=condition=Ready", "--timeout=150s", timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr + _events_inside(cp)
    return cp


def test_the_deployment_made_inside_runs_on_the_host_under_the_tenants_rules(workload: RealControlPlane) -> None:
    cp = workload
    pods = _synced(cp, "vcluster.loft.sh/namespace=default")
    web = [p for p in pods if p["metadata"]["name"].startswith("web-")]
    assert len(web) == 1 and _ready(web[0]), [p["metadata"]["name"] for p in pods]
    spec = web[0]["spec"]
    assert spec["nodeSelector"].get("pool") == "tenants"  # the tenant's placement
    limits = spec["containers"][0]["resources"].get("limits") or {}
    assert {"cpu", "memory"} <= set(limits)  # the LimitRange's defaults, set by the host
    ns = _json(cp.host("get", "ns", cp.namespace, "-o", "json"))
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = _json(cp.host("get", "resourcequota", "vcm-quota", "-n", cp.namespace, "-o", "json"))
    # counted by the tenant's quota: the control plane, its CoreDNS, web and vcli at least
    assert int(quota["status"]["used"]["pods"]) >= 4, quota["status"]
    # the ConfigMap the pod mounts is on the host too, in the same namespace
    cms = _json(cp.host("get", "cm", "-n", cp.namespace, "-o", "json"))["items"]
    assert f"web-page-x-default-x-{cp.name}" in {c["metadata"]["name"] for c in cms}, cms


def _exec(cp: RealControlPlane, *command: str) -> subprocess.CompletedProcess[str]:
    return cp.kubectl("exec", "vcli", "--", *command, timeout=40)


def test_inside_dns_resolves_the_virtual_clusters_own_service_which_serves(workload: RealControlPlane) -> None:
    cp = workload
    svc_ip = cp.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    looked_up = _exec(cp, "nslookup", "web.default.svc.cluster.local")
    assert looked_up.returncode == 0 and svc_ip in looked_up.stdout.split("Name:", 1)[-1], looked_up
    page = _exec(cp, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80")
    assert GREETING in page.stdout, page


def test_twin_a_service_the_virtual_cluster_does_not_have_does_not_resolve(workload: RealControlPlane) -> None:
    # the host's Service of the virtual API, in a namespace the virtual cluster does not have
    cp = workload
    assert cp.host("get", "svc", cp.name, "-n", cp.namespace).returncode == 0
    looked_up = _exec(cp, "nslookup", f"{cp.name}.{cp.namespace}.svc.cluster.local")
    assert looked_up.returncode != 0 or "NXDOMAIN" in looked_up.stdout + looked_up.stderr, looked_up


UPSTREAM_NAME = f"upstream.{localnode.NODE_DNS_ZONE}"


def _resolves_upstream(cp: RealControlPlane) -> bool:
    looked_up = _exec(cp, "timeout", "5", "nslookup", UPSTREAM_NAME)
    return looked_up.returncode == 0 and localnode.BRIDGE_IP in looked_up.stdout.split("Name:", 1)[-1]


def test_inside_names_outside_the_cluster_resolve_through_the_virtual_coredns(workload: RealControlPlane) -> None:
    # the node's resolver answers this name only: the virtual CoreDNS forwards to it (dnsPolicy Default)
    _wait(lambda: _resolves_upstream(workload), 60, f"{UPSTREAM_NAME} resolves inside")
    coredns = _synced(workload, "vcluster.loft.sh/namespace=kube-system")
    assert len(coredns) == 1 and coredns[0]["spec"]["dnsPolicy"] == "Default", coredns
    container = coredns[0]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always" and container["image"] == workload.node["images"]["coredns"]


def _restart_virtual_coredns(cp: RealControlPlane) -> None:
    proc = cp.kubectl("rollout", "restart", "deployment/coredns", "-n", "kube-system")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cp.kubectl("rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=120s", timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_twin_without_the_dns_rule_names_outside_fail_inside(workload: RealControlPlane) -> None:
    # kube-router lets flows it admitted go on after the rule is gone, and the running CoreDNS keeps its upstream
    # socket while it is used: a new CoreDNS pod (new address, new flows, empty cache) meets the missing rule
    with policy_removed(workload, "vcm-allow-control-plane-dns"):
        _restart_virtual_coredns(workload)
        _wait(lambda: not _resolves_upstream(workload), 60, "upstream names stop resolving")
    _wait(lambda: _resolves_upstream(workload), 90, "upstream names resolve again")


def test_kubectl_logs_and_exec_inside_work_under_strict_isolation(workload: RealControlPlane) -> None:
    cp = workload
    logs = cp.kubectl("logs", "deployment/web")
    assert logs.returncode == 0 and GREETING in logs.stdout, logs
    ran = _exec(cp, "sh", "-c", "echo exec-$((6*7))")
    assert ran.returncode == 0 and "exec-42" in ran.stdout, ran
    rules = _json(cp.host("get", "networkpolicy", "-n", cp.namespace, "-o", "json"))["items"]
    # strict: deny all, and the control plane's one way out is to the host API
    names = {r["metadata"]["name"] for r in rules}
    assert {"vcm-default-deny", "vcm-allow-control-plane"} <= names and not any(
        "vcluster" in n for n in names), names


# ---------------------------------------------------------------------------------------------------
# the host refuses what breaks the tenant's rules, and says so inside and in vcm status
# ---------------------------------------------------------------------------------------------------


def _pod_with_limits(name: str, image: str, memory: str) -> str:
    pod = traffic.pod_manifest(name, image, role="client")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "100m", "memory": memory},
                                                 "requests": {"cpu": "100m", "memory": "64Mi"}}
    return yaml.safe_dump(pod)


def _sync_errors_inside(cp: RealControlPlane, name: str) -> str:
    return cp.kubectl("get", "events", "-n", "default", "--field-selector",
                      f"involvedObject.name={name},reason=SyncError", "-o", "jsonpath={.items[*].message}").stdout


def test_a_pod_over_the_tenants_limits_is_refused_and_it_shows_inside_and_in_status(workload: RealControlPlane
                                                                                    ) -> None:
    cp = workload
    proc = cp.kubectl("apply", "-f", "-", stdin=_pod_with_limits("big", cp.probe_image, "2Gi"))
    assert proc.returncode == 0, proc.stderr  # the virtual cluster accepts it: the host's LimitRange decides
    try:
        _wait(lambda: "maximum memory usage per Container is 1Gi" in _sync_errors_inside(cp, "big"), 90,
              "a SyncError inside naming the LimitRange's maximum")
        assert not [p for p in _synced(cp) if p["metadata"]["name"].startswith("big-")]
        health = _status(cp)
        assert health["inside"] == "read", health
        assert any(p["reason"] == "SyncError" and "big" in p["object"] for p in health["problems"]), health
        # the write conflicts the syncer retries by itself are no problem of the tenant's
        assert not [p for p in health["problems"] if "has been modified" in p["message"]], health
    finally:
        cp.kubectl("delete", "pod", "big", "--wait=false")


def test_twin_the_same_pod_within_the_limits_runs_on_the_host(workload: RealControlPlane) -> None:
    cp = workload
    proc = cp.kubectl("apply", "-f", "-", stdin=_pod_with_limits("fits", cp.probe_image, "512Mi"))
    assert proc.returncode == 0, proc.stderr
    try:
        _wait(lambda: any(p["metadata"]["name"].startswith("fits-") and _ready(p) for p in _synced(cp)), 90,
              "pod fits runs on the host")
        assert "forbidden" not in _sync_errors_inside(cp, "fits")
    finally:
        cp.kubectl("delete", "pod", "fits", "--wait=false")


def _claim(name: str, size: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}})


def _host_claims(cp: RealControlPlane) -> set[str]:
    return {c["metadata"]["name"] for c in _json(cp.host("get", "pvc", "-n", cp.namespace, "-o", "json"))["items"]}


def test_a_claim_over_the_tenants_storage_quota_is_refused_and_it_shows_inside(workload: RealControlPlane) -> None:
    cp = workload
    proc = cp.kubectl("apply", "-f", "-", stdin=_claim("huge", "20Gi"))  # quota.storage is 10Gi
    assert proc.returncode == 0, proc.stderr
    try:
        _wait(lambda: "exceeded quota" in _sync_errors_inside(cp, "huge"), 60, "a SyncError inside naming the quota")
        assert not [n for n in _host_claims(cp) if n.startswith("huge-")]
    finally:
        cp.kubectl("delete", "pvc", "huge", "--wait=false")


def test_twin_a_claim_within_the_quota_reaches_the_host(workload: RealControlPlane) -> None:
    cp = workload
    proc = cp.kubectl("apply", "-f", "-", stdin=_claim("small", "100Mi"))
    assert proc.returncode == 0, proc.stderr
    try:
        _wait(lambda: [n for n in _host_claims(cp) if n.startswith("small-")], 60, "the claim on the host")
    finally:
        cp.kubectl("delete", "pvc", "small", "--wait=false")


def test_a_pod_breaking_restricted_pod_security_is_refused_inside(workload: RealControlPlane) -> None:
    cp = workload
    pod = traffic.pod_manifest("root", cp.probe_image, role="client")
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    proc = cp.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pod))
    try:
        if proc.returncode != 0:  # refused by the virtual API server at the door
            assert "restricted" in proc.stderr, proc.stdout + proc.stderr
        else:  # or by the host, which the syncer records on the virtual pod
            _wait(lambda: "PodSecurity" in _sync_errors_inside(cp, "root"), 60, "a SyncError naming Pod Security")
        assert not [p for p in _synced(cp) if p["metadata"]["name"].startswith("root-")]
    finally:
        cp.kubectl("delete", "pod", "root", "--wait=false", "--ignore-not-found")


def _virtual_node(cp: RealControlPlane) -> str:
    """The one node the virtual cluster shows: the syncer's stand-in for the host node its pods run on."""
    nodes = cp.kubectl("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert len(nodes) == 1, nodes
    return nodes[0]


def _pinned(cp: RealControlPlane, name: str, selector: dict[str, str] | None = None) -> str:
    """A pod that names its node itself (``spec.nodeName``), skipping the scheduler, with ``selector``."""
    pod = traffic.pod_manifest(name, cp.probe_image, role="client", node_selector=selector)
    pod["spec"]["nodeName"] = _virtual_node(cp)
    return yaml.safe_dump(pod)


def _problems_naming(cp: RealControlPlane, name: str) -> list[dict[str, Any]]:
    return [p for p in _status(cp)["problems"] if p["object"] == f"virtual Pod/default/{name}"]


def test_a_pod_naming_its_node_without_the_tenants_placement_is_refused_and_it_shows_inside_and_in_status(
        workload: RealControlPlane) -> None:
    # The syncer adds the tenant's nodeSelector only to pods without a nodeName (it checks that the node exists
    # inside, and the virtual cluster shows the host's node): a pod that names its node reaches the host without
    # the selector, and the host's vcm-placement admission policy refuses it.
    cp = workload
    proc = cp.kubectl("apply", "-f", "-", stdin=_pinned(cp, "pinned"))
    assert proc.returncode == 0, proc.stderr  # the virtual cluster accepts it: the host's placement decides
    try:
        _wait(lambda: "vcm-placement" in _sync_errors_inside(cp, "pinned"), 60,
              "a SyncError inside naming vcm-placement")
        assert "pool=tenants" in _sync_errors_inside(cp, "pinned")
        assert not [p for p in _synced(cp) if p["metadata"]["name"].startswith("pinned-")]
        refused = _problems_naming(cp, "pinned")
        assert refused and "vcm-placement" in refused[0]["message"], _status(cp)["problems"]
    finally:
        cp.kubectl("delete", "pod", "pinned", "--grace-period=0", "--force", "--wait=false")
    # once the pod is gone, its refusal is over: vcm status no longer quotes it (its event lives on an hour)
    _wait(lambda: cp.kubectl("get", "pod", "pinned").returncode != 0, 60, "pod pinned gone inside")
    assert _problems_naming(cp, "pinned") == []


def test_twin_the_same_pod_with_the_tenants_placement_runs_on_the_host(workload: RealControlPlane) -> None:
    cp = workload
    proc = cp.kubectl("apply", "-f", "-", stdin=_pinned(cp, "placed", {"pool": "tenants"}))
    assert proc.returncode == 0, proc.stderr
    try:
        _wait(lambda: any(p["metadata"]["name"].startswith("placed-") and _ready(p) for p in _synced(cp)), 90,
              "pod placed runs on the host")
        assert "vcm-placement" not in _sync_errors_inside(cp, "placed") and _problems_naming(cp, "placed") == []
    finally:
        cp.kubectl("delete", "pod", "placed", "--wait=false")


def test_a_pod_asking_for_another_pool_inside_is_moved_to_the_tenants_pool(workload: RealControlPlane) -> None:
    # Not refused: the syncer writes the tenant's nodeSelector over the pod's own keys (sync.fromHost.nodes.
    # selector.labels), so ``pool: elsewhere`` becomes ``pool: tenants`` on the host, and the pod runs there.
    cp = workload
    pod = traffic.pod_manifest("elsewhere", cp.probe_image, role="client", node_selector={"pool": "elsewhere"})
    proc = cp.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pod))
    assert proc.returncode == 0, proc.stderr
    try:
        _wait(lambda: any(p["metadata"]["name"].startswith("elsewhere-") and _ready(p) for p in _synced(cp)), 90,
              "pod elsewhere runs on the host")
        host = [p for p in _synced(cp) if p["metadata"]["name"].startswith("elsewhere-")][0]
        assert host["spec"]["nodeSelector"] == {"pool": "tenants"}, host["spec"]
        inside = _json(cp.kubectl("get", "pod", "elsewhere", "-o", "json"))
        assert inside["spec"]["nodeSelector"] == {"pool": "elsewhere"}  # what the user asked, as the user wrote it
    finally:
        cp.kubectl("delete", "pod", "elsewhere", "--wait=false")


# ---------------------------------------------------------------------------------------------------
# traffic: another tenant reaches neither the virtual cluster's workloads nor its API; they reach only their own
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def neighbour(workload: RealControlPlane) -> Iterator[dict[str, str]]:
    """Tenant ``vb`` (``namespace`` isolation: its egress is open) with a server and a client pod in ``vb-app``, and
    a NetworkPolicy of the test's own there admitting ``vteam-cp`` (a tenant's allowIngressFrom cannot name another
    tenant's namespace): what stops traffic between the two is vteam's rules alone."""
    cp = workload
    code, out, err = cp.vcm("apply", str(cp.write(small_tenant("vb", "namespace"))), "--yes")
    assert code == 0, out + err
    admit = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "test-admit-vteam", "namespace": "vb-app"},
             "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"namespaceSelector": {
                 "matchLabels": {"kubernetes.io/metadata.name": cp.namespace}}}]}]}}
    assert cp.host("apply", "-f", "-", stdin=yaml.safe_dump(admit)).returncode == 0
    for role in ("server", "client"):
        pod = traffic.pod_manifest(f"vb-{role}", cp.probe_image, role=role)
        assert cp.host("apply", "-n", "vb-app", "-f", "-", stdin=yaml.safe_dump(pod)).returncode == 0
    assert cp.host("wait", "-n", "vb-app", "pod/vb-server", "pod/vb-client", "--for=condition=Ready",
                   "--timeout=120s", timeout=150).returncode == 0
    web = [p for p in _synced(cp) if p["metadata"]["name"].startswith("web-")][0]
    try:
        yield {
            "server": cp.host("get", "pod", "vb-server", "-n", "vb-app", "-o",
                              "jsonpath={.status.podIP}").stdout.strip(),
            "web": web["status"]["podIP"],
            "api": cp.host("get", "svc", cp.name, "-n", cp.namespace, "-o",
                           "jsonpath={.spec.clusterIP}").stdout.strip(),
        }
    finally:
        cp.vcm("delete", "vb", "--yes")


def _from_b(cp: RealControlPlane, host: str, port: int) -> bool:
    """Whether vb's client opens a TCP connection to host:port (one attempt)."""
    proc = cp.host("exec", "-n", "vb-app", "vb-client", "--", "nc", "-w", "2", host, str(port), "-e", "/bin/true",
                   timeout=30)
    return proc.returncode == 0


def _from_a(cp: RealControlPlane, host: str, port: int) -> bool:
    """Whether vteam's client (made inside the virtual cluster) opens a TCP connection to host:port."""
    return _exec(cp, "nc", "-w", "2", host, str(port), "-e", "/bin/true").returncode == 0


@contextlib.contextmanager
def opened(cp: RealControlPlane, direction: str, peer: str) -> Iterator[None]:
    """A NetworkPolicy in vteam's namespace that lets every pod there talk with namespace ``peer``
    (``direction``: Ingress or Egress), deleted afterwards: the weakened rule of a twin."""
    key = "from" if direction == "Ingress" else "to"
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "twin-open", "namespace": cp.namespace},
              "spec": {"podSelector": {}, "policyTypes": [direction], direction.lower(): [{key: [{
                  "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": peer}}}]}]}}
    assert cp.host("apply", "-f", "-", stdin=yaml.safe_dump(policy)).returncode == 0
    try:
        yield
    finally:
        cp.host("delete", "networkpolicy", "twin-open", "-n", cp.namespace)


def test_another_tenant_reaches_neither_the_virtual_workloads_nor_the_virtual_api(
        workload: RealControlPlane, neighbour: dict[str, str]) -> None:
    cp = workload
    assert not _from_b(cp, neighbour["web"], 8080)
    assert not _from_b(cp, neighbour["api"], 443)
    assert _from_a(cp, neighbour["web"], 8080)  # the workload serves: its own tenant reaches it


def test_twin_opened_to_the_other_tenant_it_reaches_both(workload: RealControlPlane,
                                                         neighbour: dict[str, str]) -> None:
    cp = workload
    with opened(cp, "Ingress", "vb-app"):
        _wait(lambda: _from_b(cp, neighbour["web"], 8080), 40, "vb reaches the virtual cluster's workload")
        _wait(lambda: _from_b(cp, neighbour["api"], 443), 40, "vb reaches the virtual API")
    _wait(lambda: not _from_b(cp, neighbour["web"], 8080), 40, "closed again")


def test_the_virtual_workloads_reach_only_their_own_tenant(workload: RealControlPlane,
                                                           neighbour: dict[str, str]) -> None:
    # vb admits vteam-cp; vteam's strict spec allows no egress to it
    assert not _from_a(workload, neighbour["server"], 8080)


def test_twin_with_egress_opened_the_virtual_workloads_reach_the_other_tenant(workload: RealControlPlane,
                                                                              neighbour: dict[str, str]) -> None:
    with opened(workload, "Egress", "vb-app"):
        _wait(lambda: _from_a(workload, neighbour["server"], 8080), 40, "vteam's pod reaches vb's server")


# ---------------------------------------------------------------------------------------------------
# the control plane pod replaced: the kubeconfig and the data survive; without its rule it cannot serve
# ---------------------------------------------------------------------------------------------------


def _control_plane_pods(cp: RealControlPlane) -> list[dict[str, Any]]:
    return _host_pods(cp, f"app=vcluster,release={cp.name}")


def _replace_control_plane_pod(cp: RealControlPlane) -> None:
    old = _control_plane_pods(cp)
    assert len(old) == 1
    assert cp.host("delete", "pod", old[0]["metadata"]["name"], "-n", cp.namespace, "--wait=false").returncode == 0
    _wait(lambda: [p for p in _control_plane_pods(cp) if p["metadata"]["uid"] != old[0]["metadata"]["uid"]],
          60, "a new control plane pod")


def test_the_kubeconfig_and_the_data_survive_a_new_control_plane_pod(workload: RealControlPlane) -> None:
    cp = workload
    _replace_control_plane_pod(cp)
    _wait(lambda: cp.kubectl("get", "configmap", "web-page").returncode == 0, 180, "the same kubeconfig answers")
    logs = cp.kubectl("logs", "deployment/web")
    assert logs.returncode == 0 and GREETING in logs.stdout, logs


@contextlib.contextmanager
def policy_removed(cp: RealControlPlane, name: str) -> Iterator[None]:
    """Delete one NetworkPolicy of the control plane's namespace and put it back afterwards."""
    saved = _json(cp.host("get", "networkpolicy", name, "-n", cp.namespace, "-o", "json"))
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": cp.namespace, "labels": saved["metadata"].get("labels", {})},
            "spec": saved["spec"]}
    assert cp.host("delete", "networkpolicy", name, "-n", cp.namespace).returncode == 0
    try:
        yield
    finally:
        assert cp.host("apply", "-f", "-", stdin=json.dumps(body)).returncode == 0


def test_twin_without_the_control_plane_rule_exec_inside_fails(workload: RealControlPlane) -> None:
    # exec opens a new connection from the syncer to the host API server at every call, which the rule carries
    # (logs ride the syncer's open connection, which kube-router lets go on; a NEW control plane pod without the
    # rule cannot even start: it reads its config from the host API first)
    cp = workload
    with policy_removed(cp, "vcm-allow-control-plane"):
        _wait(lambda: _exec(cp, "true").returncode != 0, 40, "exec refused without the rule")
        refused = _exec(cp, "true")
        assert "dial tcp" in refused.stderr, refused
    _wait(lambda: _exec(cp, "true").returncode == 0, 60, "exec again with the rule")


def _cut_connections(cp: RealControlPlane) -> int:
    """Close, on this machine (the host API server's side), every TCP connection of the control plane pod, as an
    API server restart would; the syncer must dial anew. Returns how many were closed (``ss -K``)."""
    ip = _control_plane_pods(cp)[0]["status"]["podIP"]
    proc = subprocess.run(["ss", "-K", "-t", "-n", "dst", ip], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return len([line for line in proc.stdout.splitlines()[1:] if line.strip()])


def _logs(cp: RealControlPlane) -> subprocess.CompletedProcess[str]:
    return cp.kubectl("logs", "deployment/web", timeout=40)


def test_twin_without_the_control_plane_rule_kubectl_logs_inside_fails(workload: RealControlPlane) -> None:
    # logs go virtual API -> syncer -> host API (pods/log) -> kubelet; the syncer sends them over its open
    # connection to the host API, which kube-router lets go on after the rule is gone: once that connection is
    # closed (as an API server restart closes it), the syncer's new one meets the missing rule. kube-router applies
    # the deletion some seconds later: a connection cut before that is dialled again and allowed, and then lives
    # on, so wait until a new connection is refused (exec dials one), and cut again at every try
    cp = workload

    def refused() -> bool:
        _cut_connections(cp)
        return _logs(cp).returncode != 0

    with policy_removed(cp, "vcm-allow-control-plane"):
        _wait(lambda: _exec(cp, "true").returncode != 0, 60, "exec refused without the rule")
        _wait(refused, 90, "kubectl logs refused without the rule")
        assert GREETING not in _logs(cp).stdout
    _wait(lambda: GREETING in _logs(cp).stdout, 150, "kubectl logs again with the rule")


# ---------------------------------------------------------------------------------------------------
# health fails clearly when the host refuses the control plane's pods
# ---------------------------------------------------------------------------------------------------


def test_apply_fails_clearly_when_the_control_plane_pods_are_refused(real_control_plane: RealControlPlane) -> None:
    cp = real_control_plane
    doc = cp.tenant_doc("vbad", persistence=False,
                        values={"controlPlane": {"statefulSet": {"imagePullPolicy": "IfNotPresent"}}})
    try:
        code, out, err = cp.apply(doc, "--timeout", "20")
        assert code == 1, out + err
        assert "not up after 20s" in err and "FailedCreate" in err and "vcm-image-pull-always" in err, err
        assert "Traceback" not in err
    finally:
        cp.vcm("delete", "vbad", "--yes")


# ---------------------------------------------------------------------------------------------------
# the CI flow: an ephemeral tenant with a control plane, a workload inside, deleted; gc of an expired one
# ---------------------------------------------------------------------------------------------------


def _ephemeral(cp: RealControlPlane, *extra: str) -> dict[str, Any]:
    spec_file = cp.write(cp.tenant_doc("ci", persistence=False))
    code, out, err = cp.vcm("ephemeral", "create", str(spec_file), "--ttl", "1h", "--policy", str(cp.policy),
                            "-o", "json", *extra)
    assert code == 0, out + err
    return dict(json.loads(out))


def test_ci_flow_ephemeral_control_plane_kubeconfig_workload_ready_delete(real_control_plane: RealControlPlane
                                                                         ) -> None:
    cp = real_control_plane
    kc = cp.folder / "ci.kubeconfig"
    made = _ephemeral(cp, "--wait", "--timeout", "300", "--kubeconfig-out", str(kc))
    try:
        assert made["kubeconfig"] == str(kc) and made["name"].startswith("ci-")
        proc = cp.kubectl("apply", "-f", "-", stdin=_workload(cp.probe_image), kubeconfig=kc)
        assert proc.returncode == 0, proc.stderr
        proc = cp.kubectl("rollout", "status", "deployment/web", "--timeout=150s", kubeconfig=kc, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        code, out, err = cp.vcm("ephemeral", "delete", made["name"])
    assert code == 0, out + err
    _wait(lambda: cp.namespaces_gone(made["namespaces"]), 180, "the ephemeral tenant's namespaces gone")


def test_gc_deletes_an_expired_ephemeral_control_plane_and_keeps_the_rest(real_control_plane: RealControlPlane
                                                                         ) -> None:
    cp = real_control_plane
    made = _ephemeral(cp)
    code, out, err = cp.vcm("gc", "--now", "2099-01-01T00:00:00Z", "-o", "json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["deleted"] == [made["name"]] and result["kept"] >= 1, result  # vteam has no expiry
    _wait(lambda: cp.namespaces_gone(made["namespaces"]), 180, "the expired tenant's namespaces gone")
    assert not cp.namespaces_gone([cp.namespace])


# ---------------------------------------------------------------------------------------------------
# delete leaves nothing (last: it removes the module's tenant)
# ---------------------------------------------------------------------------------------------------


def _left(cp: RealControlPlane, kind: str, *flags: str) -> list[str]:
    items = _json(cp.host("get", kind, *flags, "-o", "json"))["items"]
    return [f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items]


def test_zz_delete_leaves_nothing_behind(workload: RealControlPlane) -> None:
    cp = workload
    pvcs = _json(cp.host("get", "pvc", "-n", cp.namespace, "-o", "json"))["items"]
    assert len(pvcs) == 1 and "kubernetes.io/pvc-protection" in pvcs[0]["metadata"]["finalizers"], pvcs
    pv = _json(cp.host("get", "pv", pvcs[0]["spec"]["volumeName"], "-o", "json"))
    data = Path(pv["spec"]["hostPath"]["path"])  # the provisioner's directory, under the cluster's own folder
    assert data.is_dir() and str(data).startswith(str(cp.cluster.dir)), data
    started = time.monotonic()
    code, out, err = cp.vcm("delete", cp.name, "--yes")
    assert code == 0, out + err
    assert time.monotonic() - started < 240  # the claim's protection finalizer is lifted by its controller
    _wait(lambda: cp.namespaces_gone([cp.namespace, f"{cp.name}-apps"]), 180, "its namespaces gone")
    prefix = f"{cp.name}-"
    for kind in ("pods", "secrets", "pvc", "configmaps", "services"):
        assert [n for n in _left(cp, kind, "-A") if n.startswith(prefix)] == [], kind
    assert _left(cp, "pods", "-A", "-l", f"vcluster.loft.sh/managed-by={cp.name}") == []
    # the PersistentVolume the PVC had is released and deleted (the local-path StorageClass deletes)
    _wait(lambda: not [pv for pv in _json(cp.host("get", "pv", "-o", "json"))["items"]
                       if (pv["spec"].get("claimRef") or {}).get("namespace", "").startswith(prefix)],
          90, "its PersistentVolume gone")
    _wait(lambda: not data.exists(), 30, f"{data} removed")
    csrs = _json(cp.host("get", "csr", "-o", "json"))["items"]
    assert [c["metadata"]["name"] for c in csrs if cp.name in c["spec"].get("username", "") + c["metadata"]["name"]
            ] == []
