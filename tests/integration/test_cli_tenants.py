"""The tenant commands end to end through Typer's CliRunner: plan, apply (in-process and with worker
processes), list, status, kubeconfig, drift, delete; tenants placed on two host clusters at once; an admin's
own copy of the blueprint, named by the platform config's templatesDir, applied; a tenant rendered once per
apply; and a stack an older vcm wrote (its first record shape) read by status, gc, kubeconfig and delete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from vcluster_mgr import cli, localcluster, platformconfig, render, workspace

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}}}
spec:
  owners:
    - {{kind: User, name: {owner}, role: admin}}
  namespaces: [one, two]
{extra}"""


def write_spec(folder: Path, name: str, owner: str = "dev@example.com", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, owner=owner, extra=extra))
    return path


@pytest.fixture()
def vcm(engine_settings: workspace.Settings, host_cluster: localcluster.Cluster,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KUBECONFIG", str(host_cluster.kubeconfig))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(cli.app, list(args))
        return res.exit_code, res.stdout, res.stderr

    return run


def test_tenant_lifecycle_through_the_cli(vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_spec(tmp_path / "specs", "clitest", owner="carol@example.com")
    code, out, err = vcm("plan", str(path), "-o", "json")
    assert code == 0, err
    assert json.loads(out)[0]["changes"]["create"] >= 10

    code, out, err = vcm("apply", str(path), "--yes", "-o", "json")
    assert code == 0, err
    assert json.loads(out)[0]["ok"] is True

    code, out, _ = vcm("list", "-o", "json")
    assert [(r["tenant"], r["cluster"]) for r in json.loads(out)] == [("clitest", "default")]

    code, out, _ = vcm("status", "clitest", "-o", "json")
    status = json.loads(out)
    assert status["namespaces"] == ["clitest-one", "clitest-two"]
    assert status["owners"] == [{"kind": "User", "name": "carol@example.com", "role": "admin"}]

    # the owner's kubeconfig works in the tenant and nowhere else
    kc = tmp_path / "carol.kubeconfig"
    code, _, err = vcm("kubeconfig", "clitest", "--user", "carol@example.com", "--output-file", str(kc))
    assert code == 0, err
    assert oct(kc.stat().st_mode & 0o777) == "0o600"
    doc = yaml.safe_load(kc.read_text())
    assert doc["contexts"][0]["context"]["namespace"] == "clitest-one"
    carol = client.CoreV1Api(config.new_client_from_config(str(kc)))
    carol.create_namespaced_config_map("clitest-two", {"metadata": {"name": "mine"}})
    with pytest.raises(ApiException) as denied:
        carol.list_namespaced_config_map("kube-system")
    assert denied.value.status == 403

    # drift: a change made outside the tool is reported, then put back by apply
    admin = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
    admin.patch_namespaced_resource_quota("vcm-quota", "clitest-one", {"spec": {"hard": {"pods": "999"}}})
    code, out, _ = vcm("drift", "clitest", "-o", "json", "--fail-on-drift")
    report = json.loads(out)
    assert code == 1 and report["drifted"] is True
    assert [(c["object"], c["field"], c["live"]) for c in report["changes"]] == [
        ("ResourceQuota clitest-one/vcm-quota", "spec.hard.pods", "999")]
    code, out, err = vcm("apply", str(path), "--yes", "-o", "json")
    assert code == 0, err + out
    assert json.loads(out)[0]["changes"].get("update") == 1, out
    code, out, _ = vcm("drift", "--all", "-o", "json", "--fail-on-drift")
    assert code == 0 and json.loads(out)["drifted"] is False and json.loads(out)["changes"] == []

    code, out, err = vcm("delete", "clitest", "--yes")
    assert code == 0, err
    code, out, _ = vcm("list", "-o", "json")
    assert json.loads(out) == []
    with pytest.raises(ApiException):
        admin.read_namespace("clitest-one")


def test_drift_of_a_label_and_a_deleted_object_is_reported_and_repaired(  # type: ignore[no-untyped-def]
        vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    """Someone else relabels a tenant namespace and deletes one of its NetworkPolicies: `vcm drift` sees
    both, `vcm apply` (refresh, then apply) puts both back, and nothing is left to repair."""
    path = write_spec(tmp_path / "specs", "drifty")
    code, _, err = vcm("apply", str(path), "--yes")
    assert code == 0, err
    api = config.new_client_from_config(str(host_cluster.kubeconfig))
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    level = core.read_namespace("drifty-one").metadata.labels["pod-security.kubernetes.io/enforce"]
    assert level != "privileged"
    core.patch_namespace("drifty-one", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    deleted = net.list_namespaced_network_policy("drifty-two").items[0].metadata.name
    net.delete_namespaced_network_policy(deleted, "drifty-two")
    code, out, _ = vcm("drift", "drifty", "-o", "json", "--fail-on-drift")
    report = json.loads(out)
    assert code == 1 and report["drifted"] is True, out
    objects = {c["object"] for c in report["changes"]}
    assert "Namespace drifty-one" in objects and f"NetworkPolicy drifty-two/{deleted}" in objects, out
    code, out, err = vcm("apply", str(path), "--yes", "-o", "json")
    assert code == 0, err + out
    changes = json.loads(out)[0]["changes"]
    assert changes.get("update") == 1 and changes.get("create") == 1, changes
    assert core.read_namespace("drifty-one").metadata.labels["pod-security.kubernetes.io/enforce"] == level
    net.read_namespaced_network_policy(deleted, "drifty-two")
    code, out, _ = vcm("drift", "drifty", "-o", "json", "--fail-on-drift")
    assert code == 0 and json.loads(out)["drifted"] is False and json.loads(out)["changes"] == [], out
    assert vcm("delete", "drifty", "--yes")[0] == 0


def test_parallel_apply_in_worker_processes(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "many"
    for i in range(3):
        write_spec(folder, f"par{i}")
    code, out, err = vcm("--verbose", "apply", str(folder), "--parallel", "3", "--yes", "-o", "json")
    assert code == 0, err
    outcomes = json.loads(out)
    assert sorted(o["tenant"] for o in outcomes) == ["par0", "par1", "par2"]
    assert all(o["ok"] and o["changes"]["create"] >= 10 for o in outcomes)
    # progress came from the workers' engine events (--verbose: a line per event)
    assert "par1 create Namespace" in err.replace("\n", " ")
    for i in range(3):
        assert vcm("delete", f"par{i}", "--yes")[0] == 0


def test_invalid_spec_exits_2_and_changes_nothing(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_spec(tmp_path / "bad", "broken", extra="  quota: {cpu: lots}\n  podSecurity: privileged\n")
    code, _, err = vcm("apply", str(path), "--yes")
    assert code == 2
    assert "spec.quota.cpu" in err and "spec.podSecurity" in err
    assert json.loads(vcm("list", "-o", "json")[1]) == []


def test_apply_without_yes_and_without_terminal_is_refused(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = vcm("apply", str(write_spec(tmp_path / "s", "noconfirm")))
    assert code == 2 and "--yes" in err


def test_tenants_on_two_host_clusters(vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = f"east-{os.getpid()}"
    east = localcluster.up(name)
    try:
        cfg = tmp_path / "platform.yaml"
        cfg.write_text(yaml.safe_dump({
            "clusters": [{"name": "west", "kubeconfig": str(host_cluster.kubeconfig)},
                         {"name": "east", "kubeconfig": str(east.kubeconfig)}],
            "defaultCluster": "west"}))
        folder = tmp_path / "multi"
        write_spec(folder, "westy")
        write_spec(folder, "easty", extra="  placement: {cluster: east}\n")
        code, out, err = vcm("apply", str(folder), "--config", str(cfg), "--yes", "-o", "json")
        assert code == 0, err
        assert sorted((o["tenant"], o["cluster"]) for o in json.loads(out)) == [("easty", "east"), ("westy", "west")]
        listed = json.loads(vcm("list", "-o", "json")[1])
        assert sorted((r["tenant"], r["cluster"], r["stack"]) for r in listed) == [
            ("easty", "east", "east.easty"), ("westy", "west", "west.westy")]
        east_ns = {n.metadata.name for n in client.CoreV1Api(
            config.new_client_from_config(str(east.kubeconfig))).list_namespace().items}
        west_ns = {n.metadata.name for n in client.CoreV1Api(
            config.new_client_from_config(str(host_cluster.kubeconfig))).list_namespace().items}
        assert {"easty-one", "easty-two"} <= east_ns and not {"easty-one"} & west_ns
        assert {"westy-one", "westy-two"} <= west_ns and not {"westy-one"} & east_ns
        assert vcm("delete", "westy", "--config", str(cfg), "--yes")[0] == 0
        assert vcm("delete", "easty", "--cluster", "east", "--config", str(cfg), "--yes")[0] == 0
    finally:
        localcluster.down(name)


def test_apply_renders_each_tenant_once(vcm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The progress bar's count travels with the rendered tenant: neither the CLI nor the program renders again."""
    rendered: list[str] = []
    real = render.render_tenant

    def counted(tenant, **kwargs):  # type: ignore[no-untyped-def]
        rendered.append(tenant.name)
        return real(tenant, **kwargs)

    monkeypatch.setattr(render, "render_tenant", counted)
    path = write_spec(tmp_path / "specs", "once")
    code, out, err = vcm("apply", str(path), "--yes", "-o", "json")
    assert code == 0, err
    assert json.loads(out)[0]["ok"] is True
    assert rendered == ["once"]
    rendered.clear()
    code, out, err = vcm("plan", str(path), "-o", "json")
    assert code == 0, err
    assert rendered == ["once"]
    rendered.clear()
    assert vcm("delete", "once", "--yes")[0] == 0
    assert rendered == []


def test_a_stack_written_by_an_older_vcm_still_reads(  # type: ignore[no-untyped-def]
        vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    """The first shape of a tenant's outputs (no control plane entry, spec, policy, expiry or cluster identity),
    in a real stack: the commands that read tenant records work on it, and the next delete removes it."""
    import pulumi

    first = {"tenant": "oldshape", "cluster": "default", "namespaces": ["oldshape-app"],
             "owners": [{"kind": "User", "name": "old@example.com", "role": "admin"}], "ttl": None, "source": None}

    def program() -> None:
        for key, value in first.items():
            pulumi.export(key, value)

    s = workspace.settings(state_dir=tmp_path / "state", kubeconfig=str(host_cluster.kubeconfig))
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    st = workspace.stack(s, "default.oldshape", program, project=workspace.TENANT_PROJECT, target=target)
    workspace.up(st)

    code, out, err = vcm("status", "oldshape", "-o", "json")
    assert code == 0, err
    status = json.loads(out)
    assert status["namespaces"] == ["oldshape-app"] and status["owners"] == first["owners"]
    assert status["controlPlane"] == {"enabled": False, "persistence": None, "valuesDigest": None,
                                      "dataDigest": None}
    assert status["lastApply"]["passed"] is True and "controlPlaneHealth" not in status
    code, out, err = vcm("gc", "--dry-run", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["expired"] == []
    code, out, err = vcm("kubeconfig", "oldshape", "--user", "old@example.com")
    assert code == 0, err
    assert yaml.safe_load(out)["contexts"][0]["context"]["namespace"] == "oldshape-app"
    code, out, err = vcm("delete", "oldshape", "--yes", "-o", "json")
    assert code == 0, err
    assert json.loads(vcm("list", "-o", "json")[1]) == []


def test_an_admin_copy_of_the_blueprint_named_in_the_platform_config_is_what_apply_applies(  # type: ignore[no-untyped-def]
        vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    """``templatesDir`` points vcm at an admin's own copy of ``templates/``: a file there replaces the
    built-in one, on the cluster too (the blueprint reaches the engine's program through the worker)."""
    own = tmp_path / "house-blueprint" / "tenant"
    own.mkdir(parents=True)
    shipped = (REPO / "templates" / "tenant" / "limitrange.yaml.j2").read_text()
    assert "vcm-limits" in shipped
    (own / "limitrange.yaml.j2").write_text(shipped.replace("vcm-limits", "house-limits"))
    cfg = tmp_path / "platform.yaml"
    cfg.write_text("templatesDir: house-blueprint\n")
    path = write_spec(tmp_path / "specs", "housebp")
    code, _, err = vcm("apply", str(path), "--config", str(cfg), "--yes", "--parallel", "2")
    try:
        assert code == 0, err
        core = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
        for ns in ("housebp-one", "housebp-two"):
            assert [lr.metadata.name for lr in core.list_namespaced_limit_range(ns).items] == ["house-limits"]
            assert core.list_namespaced_resource_quota(ns).items, "the other templates are the built-in ones"
    finally:
        assert vcm("delete", "housebp", "--config", str(cfg), "--yes")[0] == 0
