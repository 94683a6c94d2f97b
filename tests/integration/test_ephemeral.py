"""Ephemeral tenants for CI: `vcm ephemeral create --ttl 1m --wait --kubeconfig-out FILE`, then `vcm gc`
after the expiry (an injected clock) removes it completely, and never touches a tenant without expiry."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from vcluster_mgr import cli, lifecycle, localcluster

KEEPER = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {name: keeper}
spec:
  owners: [{kind: User, name: keep@example.com, role: admin}]
  namespaces: [main]
"""


def test_ephemeral_tenant_expires_and_gc_removes_it(host_cluster: localcluster.Cluster, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(host_cluster.kubeconfig))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()

    def vcm(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(cli.app, list(args))
        return res.exit_code, res.stdout, res.stderr

    keeper = tmp_path / "keeper.yaml"
    keeper.write_text(KEEPER)
    assert vcm("apply", str(keeper), "--yes")[0] == 0

    kc = tmp_path / "tenant.kubeconfig"
    code, out, err = vcm("ephemeral", "create", "--ttl", "1m", "--name-prefix", "ci-", "--wait",
                         "--kubeconfig-out", str(kc), "-o", "json")
    assert code == 0, err
    made = json.loads(out)
    name = made["name"]
    assert name.startswith("ci-") and made["namespaces"] == [f"{name}-main"]
    expires = lifecycle.parse_expiry(made["expiresAt"])
    now = datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(seconds=30) < expires - now <= datetime.timedelta(minutes=1)

    admin = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
    ns = admin.read_namespace(f"{name}-main")
    assert ns.status.phase == "Active"
    assert ns.metadata.annotations["vcluster-mgr.dev/expires-at"] == made["expiresAt"]
    # the kubeconfig works inside the tenant
    owner = client.CoreV1Api(config.new_client_from_config(str(kc)))
    assert owner.list_namespaced_config_map(f"{name}-main").items is not None
    # one context per tenant namespace; the owner gets (not lists) its namespace and reads its quota
    doc = yaml.safe_load(kc.read_text())
    assert [c["name"] for c in doc["contexts"]] == [f"{name}-main@vcm-default"]
    assert owner.read_namespace(f"{name}-main").metadata.name == f"{name}-main"
    assert owner.list_namespaced_resource_quota(f"{name}-main").items

    # before the expiry: nothing to collect
    code, out, _ = vcm("gc", "-o", "json")
    assert code == 0 and json.loads(out)["expired"] == []
    later = lifecycle.format_expiry(expires + datetime.timedelta(minutes=1))
    code, out, _ = vcm("gc", "--dry-run", "--now", later, "-o", "json")
    assert [r["tenant"] for r in json.loads(out)["expired"]] == [name]
    admin.read_namespace(f"{name}-main")  # a dry run deletes nothing

    code, out, err = vcm("gc", "--now", later, "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["deleted"] == [name] and report["kept"] == 1
    with pytest.raises(ApiException) as gone:
        admin.read_namespace(f"{name}-main")
    assert gone.value.status == 404
    listed = [r["tenant"] for r in json.loads(vcm("list", "-o", "json")[1])]
    assert listed == ["keeper"]  # no stack left for the ephemeral one; the tenant without expiry untouched
    admin.read_namespace("keeper-main")
    # far in the future, still never touches a tenant without an expiry
    code, out, _ = vcm("gc", "--now", "2100-01-01T00:00:00Z", "-o", "json")
    assert json.loads(out)["expired"] == [] and vcm("delete", "keeper", "--yes")[0] == 0
