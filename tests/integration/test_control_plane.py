"""A tenant with its own control plane, on the local host cluster without a node.

The release installs the real vcluster chart (0.36.1, from the local chart directory the toolchain takes from
vcluster's Go module, the air-gapped route) with the values generated for it; a cluster without a node runs no pod,
so applies pass ``--no-wait`` and the test writes the kubeconfig Secret the way the virtual cluster would (the
real virtual cluster, running, is ``test_vcluster_node.py``). Everything else is real: the Helm release through the
engine and the upstream provider, the kubeconfig as a secret output, the policy recorded at apply and used by
sleep, wake, kubeconfig and delete (a different one refused), the quota all in the control plane's namespace,
the host API addresses recorded for drift, the upgrade preview, a control plane without persistence that is
not changed without --allow-data-loss, sleepAfter refused, a kubeconfig for a Group owner's member, and a
delete that leaves nothing behind. What needs running pods is in ``test_vcluster_node.py``.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from vcluster_mgr import cli, cluster, localcluster, platformconfig, toolchain


@functools.cache
def _chart() -> Path:
    """The chart directory, taken from vcluster's Go module the first time (not at collection)."""
    return toolchain.chart_dir()


SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: vteam}}
spec:
  owners: [{{kind: User, name: lead@example.com, role: admin}}]
  namespaces: [cp, work]
  quota: {{cpu: "8", memory: 16Gi, storage: 40Gi, pods: 40, services: 10}}
  limits:
    max: {{cpu: "2", memory: 4Gi}}
  placement: {{nodeSelector: {{pool: tenants}}}}
  controlPlane:
    enabled: true
    version: "{version}"
    chart: {{path: "{chart}"}}
"""
VIRTUAL_KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": "vcluster", "cluster": {"server": "https://localhost:8443",
                                                  "certificate-authority-data": "Zm9v"}}],
    "users": [{"name": "admin", "user": {"token": "s3cr3t-virtual-admin-token"}}],
    "contexts": [{"name": "vcluster", "context": {"cluster": "vcluster", "user": "admin"}}],
    "current-context": "vcluster",
}


@pytest.fixture()
def vcm(host_cluster: localcluster.Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KUBECONFIG", str(host_cluster.kubeconfig))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "state"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"allowedChartSources": [str(_chart())]}))
    runner = CliRunner()

    def run(*args: str, with_policy: bool = False) -> tuple[int, str, str]:
        extra = ["--policy", str(policy)] if with_policy else []
        res = runner.invoke(cli.app, [*args, *extra])
        return res.exit_code, res.stdout, res.stderr

    return run


def write(tmp_path: Path, version: str = "1.33.4") -> Path:
    path = tmp_path / "vteam.yaml"
    path.write_text(SPEC.format(version=version, chart=_chart()))
    return path


def test_control_plane_lifecycle(vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = config.new_client_from_config(str(host_cluster.kubeconfig))
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    path = write(tmp_path)
    code, out, err = vcm("apply", str(path), "--yes", "-o", "json", "--no-wait", with_policy=True)
    assert code == 0, err
    assert "kubeconfig Secret does not exist yet" in json.dumps(json.loads(out)[0]["steps"])

    # the whole quota where the virtual cluster runs and syncs
    assert core.read_namespaced_resource_quota("vcm-quota", "vteam-cp").spec.hard["pods"] == "40"
    assert core.read_namespaced_resource_quota("vcm-quota", "vteam-work").spec.hard["pods"] == "0"

    sts = apps.read_namespaced_stateful_set("vteam", "vteam-cp")
    assert sts.spec.replicas == 1
    pod = sts.spec.template.spec
    assert pod.node_selector == {"pool": "tenants"}  # the tenant's placement reaches the control plane
    assert all(c.image_pull_policy == "Always" for c in pod.containers)
    assert core.read_namespaced_service("vteam", "vteam-cp").spec.type == "ClusterIP"
    releases = core.list_namespaced_secret("vteam-cp", label_selector="owner=helm,name=vteam").items
    assert [s.type for s in releases] == ["helm.sh/release.v1"]

    # no kubeconfig yet: vcm kubeconfig says what it waits for, and gives up clearly
    code, _, err = vcm("kubeconfig", "vteam", "--timeout", "1")
    assert code == 1 and "vc-vteam" in err and "after 1s" in err

    # the virtual cluster writes its kubeconfig Secret once running: do it as it would
    core.create_namespaced_secret("vteam-cp", {"metadata": {"name": "vc-vteam"}, "data": {
        "config": base64.b64encode(yaml.safe_dump(VIRTUAL_KUBECONFIG).encode()).decode()}})
    code, out, err = vcm("apply", str(path), "--yes", "-o", "json", "--no-wait", with_policy=True)
    assert code == 0, err
    kc = tmp_path / "virtual.kubeconfig"
    code, _, err = vcm("kubeconfig", "vteam", "--output-file", str(kc))
    assert code == 0, err
    doc = yaml.safe_load(kc.read_text())
    assert doc["users"][0]["user"]["token"] == "s3cr3t-virtual-admin-token"
    assert doc["clusters"][0]["cluster"]["server"] == "https://localhost:8443"  # ClusterIP: port-forward
    assert "port-forward -n vteam-cp svc/vteam 8443:443" in err
    # a secret output: never in plain text in the state, never in what vcm printed
    state_text = "".join(p.read_text() for p in (tmp_path / "state").rglob("*.json"))
    assert "s3cr3t-virtual-admin-token" not in state_text
    assert "s3cr3t-virtual-admin-token" not in out + err
    code, out, err = vcm("status", "vteam", "-o", "json")
    assert code == 0, err
    assert "s3cr3t" not in out
    status = json.loads(out)
    assert status["lastApply"]["passed"] is True
    # no node: the control plane's pod never runs, and status says so
    assert status["controlPlaneHealth"]["ready"] is False and status["controlPlaneHealth"]["replicas"] == 1
    code, out, err = vcm("status", "vteam")
    assert code == 0, err
    assert "NOT ready: 0/1 control plane pod(s) ready" in " ".join(out.split())

    # the host API addresses were recorded at apply; drift notices when they change
    target = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig)).target(None)
    recorded = status["hostApi"]
    assert {"ip": "10.96.0.1", "port": 443} in recorded
    with cluster.connect(target) as conn:
        assert cluster.host_api_drift(conn, recorded) == []
        moved = cluster.host_api_drift(conn, [{"ip": "10.96.0.1", "port": 443}, {"ip": "192.0.2.7", "port": 6443}])
    assert [r["field"] for r in moved] == ["addresses"]

    # the policy recorded at apply serves later commands; a different one is refused
    other = tmp_path / "other-policy.yaml"
    other.write_text("maxPods: 100\n")
    for command in (["sleep", "vteam"], ["kubeconfig", "vteam", "--host", "--user", "lead@example.com"],
                    ["delete", "vteam", "--yes"]):
        code, _, err = vcm(*command, "--policy", str(other))
        assert code == 2 and "not the policy tenant vteam was applied under" in err, (command, err)

    # sleep: zero replicas, data kept; wake: back (no --policy: the recorded one allows the chart path)
    code, _, err = vcm("sleep", "vteam")
    assert code == 0, err
    assert apps.read_namespaced_stateful_set("vteam", "vteam-cp").spec.replicas == 0
    core.read_namespaced_secret("vc-vteam", "vteam-cp")
    code, _, err = vcm("wake", "vteam")
    assert code == 0, err
    assert apps.read_namespaced_stateful_set("vteam", "vteam-cp").spec.replicas == 1

    # upgrade preview: a new Kubernetes version shows as an update of the release, nothing changes yet
    newer = write(tmp_path, version="1.34.1")
    code, out, err = vcm("plan", str(newer), "-o", "json", with_policy=True)
    assert code == 0, err
    steps = json.loads(out)[0]["steps"]
    assert any(s.startswith("update Release") for s in steps), steps

    # delete: the release, its objects, the Secrets and the stack are gone
    code, _, err = vcm("delete", "vteam", "--yes")
    assert code == 0, err
    for ns in ("vteam-cp", "vteam-work"):
        with pytest.raises(ApiException) as gone:
            core.read_namespace(ns)
        assert gone.value.status == 404
    assert json.loads(vcm("list", "-o", "json")[1]) == []


def test_a_control_plane_without_persistence_is_not_changed_silently(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "vtmp.yaml"

    def write_spec(version: str) -> None:
        text = SPEC.format(version=version, chart=_chart()).replace("name: vteam", "name: vtmp")
        path.write_text(text.replace("    enabled: true\n", "    enabled: true\n    persistence: {enabled: false}\n"))

    write_spec("1.33.4")
    code, _, err = vcm("apply", str(path), "--yes", "--no-wait", with_policy=True)
    assert code == 0, err
    try:
        code, _, err = vcm("sleep", "vtmp")
        assert code == 2 and "EMPTY" in err and "--allow-data-loss" in err, err
        write_spec("1.34.1")
        code, out, err = vcm("apply", str(path), "--yes", "--no-wait", with_policy=True)
        assert code == 1 and "no persistence" in out + err, out + err
        code, _, err = vcm("apply", str(path), "--yes", "--no-wait", "--allow-data-loss", with_policy=True)
        assert code == 0, err
        code, _, err = vcm("apply", str(path), "--yes", "--no-wait", with_policy=True)
        assert code == 0, err  # no change of values: nothing to refuse
    finally:
        assert vcm("delete", "vtmp", "--yes")[0] == 0


def test_sleep_after_is_refused_at_apply(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "vsleep.yaml"
    path.write_text(SPEC.format(version="1.33.4", chart=_chart()).replace("name: vteam", "name: vsleep")
                    + "    sleepAfter: 2h\n")
    code, _, err = vcm("apply", str(path), "--yes", with_policy=True)
    assert code == 2 and "spec.controlPlane.sleepAfter" in err and "licensed" in err, err


def test_a_group_owner_gets_a_kubeconfig_for_a_named_member(vcm, host_cluster: localcluster.Cluster,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path) -> None:
    path = tmp_path / "gteam.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "gteam"},
        "spec": {"owners": [{"kind": "Group", "name": "gteam-devs", "role": "edit"}], "namespaces": ["app"]}}))
    code, _, err = vcm("apply", str(path), "--yes")
    assert code == 0, err
    try:
        code, _, err = vcm("kubeconfig", "gteam")
        assert code == 2 and "only Groups" in err and "--member" in err, err
        kc = tmp_path / "carol.kubeconfig"
        code, _, err = vcm("kubeconfig", "gteam", "--member", "carol", "--output-file", str(kc))
        assert code == 0, err
        assert "carol as a member of group gteam-devs (edit of gteam)" in err
        api = config.new_client_from_config(str(kc))
        who = client.AuthenticationV1Api(api).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1",
                                                                         "kind": "SelfSubjectReview"})
        assert who.status.user_info.username == "carol"
        assert "gteam-devs" in who.status.user_info.groups
        client.CoreV1Api(api).list_namespaced_config_map("gteam-app")  # the group's edit role works
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_namespaced_config_map("default")
        assert refused.value.status == 403
    finally:
        assert vcm("delete", "gteam", "--yes")[0] == 0
