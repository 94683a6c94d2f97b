"""Visibility end to end on the local host cluster, through the CLI: what an owner can see of its own
tenant with the kubeconfig ``vcm kubeconfig`` hands out (kubectl, as the owner), and what ``vcm usage`` and
``vcm status`` report for tenants whose pods were admitted against their quota.

The tenants here are this module's own (applied once, deleted at the end), so the quota use is known exactly.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from typer.testing import CliRunner

from vcluster_mgr import cli, localcluster, toolchain, workspace

SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}, labels: {{cost-center: {cc}}}}}
spec:
  owners:
    - {{kind: User, name: {owner}, role: {role}}}
  namespaces: [one, two]
  quota: {{cpu: "{cpu}", memory: {memory}, pods: {pods}, storage: 10Gi}}
  podSecurity: baseline
"""

TENANTS = {
    # name: (owner, role, cost center, cpu, memory, pods, pods started per namespace)
    "vis-busy": ("olga@example.com", "admin", "cc-7", "2", "4Gi", 4, 2),
    "vis-idle": ("ivan@example.com", "view", "cc-7", "4", "8Gi", 10, 0),
    "vis-half": ("hana@example.com", "edit", "cc-9", "2", "2Gi", 8, 1),
}


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example/app:1",
                    "imagePullPolicy": "Always",
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi"},
                        "limits": {"cpu": "250m", "memory": "256Mi"},
                    },
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def fleet(
    host_cluster: localcluster.Cluster, engine_settings: workspace.Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The three tenants applied through ``vcm apply``, the busy ones running pods that use part of the quota."""
    folder = tmp_path_factory.mktemp("vis-specs")
    state = tmp_path_factory.mktemp("vis-state")
    for name, (owner, role, cc, cpu, memory, pods, _) in TENANTS.items():
        (folder / f"{name}.yaml").write_text(
            SPEC.format(name=name, owner=owner, role=role, cc=cc, cpu=cpu, memory=memory, pods=pods)
        )
    env = {"KUBECONFIG": str(host_cluster.kubeconfig), "VCM_STATE_DIR": str(state)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runner = CliRunner()

    def vcm(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(cli.app, list(args))
        return res.exit_code, res.stdout, res.stderr

    try:
        code, _, err = vcm("apply", str(folder), "--yes")
        assert code == 0, err
        admin = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
        for name, (*_, started) in TENANTS.items():
            for ns in (f"{name}-one", f"{name}-two"):
                for i in range(started):
                    admin.create_namespaced_pod(ns, _pod(f"p{i}"))
        yield {"vcm": vcm, "admin": admin, "cluster": host_cluster, "folder": folder}
    finally:
        for name in TENANTS:
            vcm("delete", name, "--yes")
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = str(toolchain.bin_dir() / "kubectl")
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_owner_kubeconfig_has_a_context_per_namespace_and_sees_its_own(fleet: dict[str, Any], tmp_path: Path) -> None:
    kc = tmp_path / "olga.kubeconfig"
    code, _, err = fleet["vcm"]("kubeconfig", "vis-busy", "--user", "olga@example.com", "--output-file", str(kc))
    assert code == 0, err
    contexts = _kubectl(kc, "config", "get-contexts", "-o", "name").stdout.split()
    assert contexts == ["vis-busy-one@vcm-default", "vis-busy-two@vcm-default"]
    for ctx, ns in zip(contexts, ("vis-busy-one", "vis-busy-two"), strict=True):
        got = _kubectl(kc, "--context", ctx, "get", "namespace", ns, "-o", "name")
        assert got.returncode == 0 and got.stdout.strip() == f"namespace/{ns}", got.stderr
        quota = _kubectl(kc, "--context", ctx, "get", "resourcequota", "vcm-quota", "-o", "json")
        assert quota.returncode == 0, quota.stderr
        assert json.loads(quota.stdout)["status"]["used"]["pods"] == "2"
        limits = _kubectl(kc, "--context", ctx, "get", "limitrange", "-o", "name")
        assert limits.returncode == 0 and limits.stdout.strip(), limits.stderr
    # listing namespaces would show every tenant: refused; another tenant's namespace too
    listed = _kubectl(kc, "get", "namespaces")
    assert listed.returncode != 0 and 'cannot list resource "namespaces"' in listed.stderr
    other = _kubectl(kc, "get", "namespace", "vis-idle-one")
    assert other.returncode != 0 and "forbidden" in other.stderr.lower()


@pytest.mark.parametrize("name,user", [("vis-idle", "ivan@example.com"), ("vis-half", "hana@example.com")])
def test_view_and_edit_owners_see_their_namespaces_and_quota(
    fleet: dict[str, Any], tmp_path: Path, name: str, user: str
) -> None:
    kc = tmp_path / "owner.kubeconfig"
    assert fleet["vcm"]("kubeconfig", name, "--user", user, "--output-file", str(kc))[0] == 0
    for ns in (f"{name}-one", f"{name}-two"):
        assert _kubectl(kc, "--context", f"{ns}@vcm-default", "get", "namespace", ns).returncode == 0
        assert _kubectl(kc, "--context", f"{ns}@vcm-default", "get", "resourcequota,limitrange").returncode == 0


def test_without_the_blueprint_rolebinding_the_owner_cannot_get_its_namespace(
    fleet: dict[str, Any], tmp_path: Path
) -> None:
    """The twin of the test above: the get comes from the blueprint's RoleBinding in that namespace (the API
    server files GET /api/v1/namespaces/X under namespace X); without it, get and quota reads are refused."""
    kc = tmp_path / "olga.kubeconfig"
    assert fleet["vcm"]("kubeconfig", "vis-busy", "--user", "olga@example.com", "--output-file", str(kc))[0] == 0
    rbac = client.RbacAuthorizationV1Api(fleet["admin"].api_client)
    ns = "vis-busy-two"
    bindings = rbac.list_namespaced_role_binding(ns, label_selector="vcluster-mgr.dev/tenant=vis-busy").items
    assert bindings
    for b in bindings:
        rbac.delete_namespaced_role_binding(b.metadata.name, ns)
    try:
        got = _kubectl(kc, "--context", f"{ns}@vcm-default", "get", "namespace", ns)
        assert got.returncode != 0 and "forbidden" in got.stderr.lower()
        quota = _kubectl(kc, "--context", f"{ns}@vcm-default", "get", "resourcequota")
        assert quota.returncode != 0 and "forbidden" in quota.stderr.lower()
        # the other namespace still has its binding
        assert _kubectl(kc, "--context", "vis-busy-one@vcm-default", "get", "namespace", "vis-busy-one").returncode == 0
    finally:
        code, _, err = fleet["vcm"]("apply", str(fleet["folder"] / "vis-busy.yaml"), "--yes")
        assert code == 0, err
    assert _kubectl(kc, "--context", f"{ns}@vcm-default", "get", "namespace", ns).returncode == 0


POLICY = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Policy
prices: {currency: EUR, cpuCoreMonth: 20.0, memoryGibMonth: 3.0, storageGibMonth: 0.1}
"""


def test_usage_json_closest_to_limits_first(fleet: dict[str, Any]) -> None:
    code, out, err = fleet["vcm"]("usage", "--all", "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    rows = [t for t in report["tenants"] if t["tenant"] in TENANTS]
    assert [t["tenant"] for t in rows] == ["vis-busy", "vis-half", "vis-idle"]
    busy, half, idle = rows
    assert busy["maxFraction"] == 1.0 and busy["costCenter"] == "cc-7"
    assert busy["resources"]["pods"] == {"used": "4", "hard": "4", "fraction": 1.0}
    assert busy["resources"]["requests.cpu"] == {"used": "1", "hard": "2", "fraction": 0.5}
    assert busy["resources"]["requests.memory"]["used"] == str(1024**3)
    assert [n["namespace"] for n in busy["namespaces"]] == ["vis-busy-one", "vis-busy-two"]
    assert busy["namespaces"][0]["resources"]["pods"] == {"used": "2", "hard": "2", "fraction": 1.0}
    # the idle tenant runs nothing; its object-count quotas still count what Kubernetes puts in every
    # namespace (the kube-root-ca.crt ConfigMap, the default ServiceAccount)
    assert half["maxFraction"] == 0.25 and idle["maxFraction"] < 0.1
    assert idle["resources"]["pods"]["used"] == "0" and idle["resources"]["requests.cpu"]["used"] == "0"
    assert "cost" not in busy and report["currency"] is None


def test_usage_of_named_tenants_as_csv_and_unknown_names(fleet: dict[str, Any]) -> None:
    code, out, err = fleet["vcm"]("usage", "vis-half", "-o", "csv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "tenant,namespace,costCenter,resource,used,hard,fraction"
    assert "vis-half,,cc-9,pods,2,8,0.25" in lines
    assert "vis-half,vis-half-one,cc-9,pods,1,4,0.25" in lines
    assert all(line.startswith(("tenant,", "vis-half,")) for line in lines)
    code, _, err = fleet["vcm"]("usage", "vis-half", "nosuch")
    assert code == 2 and "nosuch" in err


def test_usage_showback_costs_and_cost_center_totals(fleet: dict[str, Any], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    code, out, err = fleet["vcm"]("usage", *TENANTS, "--policy", str(policy), "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["currency"] == "EUR"
    cost = {t["tenant"]: t["cost"] for t in report["tenants"]}
    # reserved: quota hard (cpu, memory GiB, storage GiB); used: the requests of the admitted pods
    assert cost["vis-busy"] == {"reservedMonthly": 53.0, "usedMonthly": 23.0}
    assert cost["vis-idle"] == {"reservedMonthly": 105.0, "usedMonthly": 0.0}
    assert cost["vis-half"] == {"reservedMonthly": 47.0, "usedMonthly": 11.5}
    assert report["costCenters"] == [
        {"costCenter": "cc-7", "tenants": 2, "reservedMonthly": 158.0, "usedMonthly": 23.0},
        {"costCenter": "cc-9", "tenants": 1, "reservedMonthly": 47.0, "usedMonthly": 11.5},
    ]
    code, out, err = fleet["vcm"]("usage", *TENANTS, "--policy", str(policy))
    assert code == 0, err
    assert "cc-7" in out and "158.00" in out


def test_status_shows_quota_use_and_the_last_apply_drift_and_verify(fleet: dict[str, Any]) -> None:
    vcm = fleet["vcm"]
    code, out, err = vcm("status", "vis-half", "-o", "json")
    assert code == 0, err
    status = json.loads(out)
    assert status["namespaces"] == ["vis-half-one", "vis-half-two"]
    assert status["usage"]["resources"]["pods"] == {"used": "2", "hard": "8", "fraction": 0.25}
    assert status["lastApply"]["passed"] is True and status["lastApply"]["at"].startswith("20")
    assert status["drift"]["passed"] is True and status["drift"]["changes"] == 0
    assert status["lastVerify"] is None  # never verified yet

    code, out, _ = vcm("verify", "vis-half", "--level", "1", "-o", "json")
    verified = json.loads(out)
    status = json.loads(vcm("status", "vis-half", "-o", "json")[1])
    assert status["lastVerify"]["passed"] is (code == 0) is verified["passed"]
    assert status["lastVerify"]["pass"] == verified["summary"]["pass"] and status["lastVerify"]["partial"] is True
    assert status["lastVerify"]["at"].endswith("Z")

    # a change made outside the tool shows as a failed drift check; the table says so too
    fleet["admin"].patch_namespaced_resource_quota("vcm-quota", "vis-half-two", {"spec": {"hard": {"pods": "99"}}})
    try:
        status = json.loads(vcm("status", "vis-half", "-o", "json")[1])
        assert status["drift"] == {"passed": False, "at": status["drift"]["at"], "changes": 1}
        code, out, err = vcm("status", "vis-half")
        assert code == 0, err
        assert "FAILED" in out and "quota used" in out and "pods 2/" in out
    finally:
        assert vcm("apply", str(fleet["folder"] / "vis-half.yaml"), "--yes")[0] == 0


def test_verify_all_records_the_result_of_every_tenant(fleet: dict[str, Any]) -> None:
    """``vcm verify --all`` leaves its trace on every tenant it verified, not only on the last one."""
    vcm = fleet["vcm"]
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = vcm("verify", "--all", "--check", "block-cluster-resources", "-o", "json")
    reports = {r["tenant"]: r for r in json.loads(out)}
    assert set(reports) == set(TENANTS), err
    for name in TENANTS:
        status = json.loads(vcm("status", name, "-o", "json")[1])
        recorded = status["lastVerify"]
        assert recorded is not None and recorded["at"] >= started, (name, recorded)
        assert recorded["passed"] is reports[name]["passed"] and recorded["partial"] is True, (name, recorded)


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "headless Chromium is needed for this test: run .ci/install-test-deps (as root; `make test` does)"
    return found


def _browse(page: Path, tmp_path: Path, fragment: str = "", *, screenshot: Path | None = None) -> str:
    """The DOM of ``page`` after its script ran, in headless Chromium with every host name unresolvable (so
    the page cannot fetch anything)."""
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ]
    args += [f"--screenshot={screenshot}", "--window-size=1000,600"] if screenshot else ["--dump-dom"]
    proc = subprocess.run([*args, page.as_uri() + fragment], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_usage_html_page_renders_a_sortable_bar_per_tenant(fleet: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "usage.html"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    code, _, err = fleet["vcm"]("usage", *TENANTS, "--policy", str(policy), "--html", str(page), "-o", "json")
    assert code == 0, err
    text = page.read_text()
    # self-contained: no URL to fetch anything from, and a CSP that forbids every load
    assert not re.search(r"(src|href)=|https?://|@import|url\(", text)
    assert "default-src 'none'" in text

    def order(dom: str) -> list[str]:
        return re.findall(r'<tr class="tenant" data-tenant="([^"]+)"', dom)

    dom = _browse(page, tmp_path)
    assert order(dom) == ["vis-busy", "vis-half", "vis-idle"]  # closest to a limit first
    assert dom.count('class="bar"') == 3 and 'style="width:100.0%"' in dom and 'style="width:25.0%"' in dom
    assert "reserved / month (EUR)" in dom and "158" not in dom.split("<tbody>")[0]
    # the page's own script sorts: by name, by reserved cost (the fragment asks, as a click would)
    assert order(_browse(page, tmp_path, "#sort=tenant:desc")) == ["vis-idle", "vis-half", "vis-busy"]
    dom = _browse(page, tmp_path, "#sort=reserved:asc")
    assert order(dom) == ["vis-half", "vis-busy", "vis-idle"]
    assert 'data-key="reserved" data-num="1" aria-sort="ascending"' in dom
    shot = tmp_path / "usage.png"
    _browse(page, tmp_path, screenshot=shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


def test_namespaces_carry_the_labels_cost_tools_group_by(fleet: dict[str, Any]) -> None:
    labels = fleet["admin"].read_namespace("vis-busy-one").metadata.labels
    assert labels["cost-center"] == "cc-7" and labels["department"] == "cc-7" and labels["team"] == "vis-busy"
