"""The pure parts of ``vcm verify``: the check catalogue and its selection, the owner it acts as, the
probe objects (each a compliant pod with exactly ONE bad property), how refusals are judged, label
selector and NetworkPolicy evaluation, quota coverage, the table and the documented JSON shape (the
impersonation headers are in tests/test_cluster.py). What the API server decides is covered by
tests/integration/test_verify.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, record, verify

# ---------------------------------------------------------------------------------------------
# Catalogue and selection
# ---------------------------------------------------------------------------------------------


def test_catalogue_ids_are_unique_stable_and_each_has_a_runner() -> None:
    ids = [c.id for c in verify.CHECKS]
    assert len(ids) == len(set(ids)) == 27
    assert all(i == i.lower() and " " not in i for i in ids)
    assert set(verify.runners.RUNNERS) == set(ids)
    assert {c.level for c in verify.CHECKS} == {1, 2}
    assert all(c.remedy and "PodSecurityPolicy" not in c.remedy for c in verify.CHECKS)
    assert set(verify.POD_PROBES) <= set(ids)


def test_select_all_by_default_and_levels_are_cumulative() -> None:
    assert verify.select_checks() == [c for c in verify.CHECKS if not c.opt_in]
    assert [c.id for c in verify.CHECKS if c.opt_in] == [  # run only when named
        "traffic-matches-policy-engine", "tenant-api-fairness"]
    assert [c.id for c in verify.select_checks(["tenant-api-fairness"])] == ["tenant-api-fairness"]
    level1 = verify.select_checks(level=1)
    assert level1 and all(c.level == 1 for c in level1)
    assert len(level1) == len(verify.CHECKS) - 5


def test_select_by_id_or_benchmark_id_keeps_report_order() -> None:
    chosen = verify.select_checks(["block-host-ipc", "mtb-pl1-bc-hi-1"])
    # MTB-PL1-BC-HI-1 is reused by the benchmark for host path volumes and NodePort services
    assert [c.id for c in chosen] == ["block-host-path-volumes", "block-nodeport-services", "block-host-ipc"]


def test_select_refuses_unknown_ids_naming_the_valid_ones() -> None:
    with pytest.raises(errors.UsageError, match="unknown check 'nope'.*block-cluster-resources"):
        verify.select_checks(["block-host-ipc", "nope"])


def test_select_refuses_bad_levels_and_empty_selections() -> None:
    with pytest.raises(errors.UsageError, match="level 3"):
        verify.select_checks(level=3)
    with pytest.raises(errors.UsageError, match="above level 1"):
        verify.select_checks(["tenant-can-create-roles"], level=1)


# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------

PAYMENTS_OWNERS = [
    {"kind": "User", "name": "alice@example.com", "role": "admin"},
    {"kind": "Group", "name": "payments-devs", "role": "edit"},
    {"kind": "ServiceAccount", "name": "deployer", "namespace": "payments-ci", "role": "edit"},
]


def test_first_admin_user_is_chosen_with_no_groups() -> None:
    owners = [PAYMENTS_OWNERS[1], {"kind": "User", "name": "eve", "role": "edit"}, *PAYMENTS_OWNERS]
    identity = verify.choose_identity(owners)
    assert (identity.kind, identity.user, identity.groups) == ("User", "alice@example.com", ())


def test_without_an_admin_user_the_first_owner_of_any_kind_is_chosen() -> None:
    owners = [{"kind": "User", "name": "eve", "role": "edit"}, {"kind": "Group", "name": "ops", "role": "admin"}]
    assert verify.choose_identity(owners).user == "eve"
    group = verify.choose_identity([{"kind": "Group", "name": "search-team", "role": "admin"}])
    assert (group.user, group.groups) == ("vcm-verify", ("search-team",))


def test_service_account_owner_is_impersonated_with_its_groups() -> None:
    identity = verify.choose_identity([PAYMENTS_OWNERS[2]])
    assert identity.user == "system:serviceaccount:payments-ci:deployer"
    assert identity.groups == ("system:serviceaccounts", "system:serviceaccounts:payments-ci", "system:authenticated")
    assert identity.as_dict() == {
        "owner": {"kind": "ServiceAccount", "name": "deployer", "namespace": "payments-ci", "role": "edit"},
        "user": "system:serviceaccount:payments-ci:deployer", "groups": list(identity.groups)}


def test_identity_problems_are_verify_errors() -> None:
    with pytest.raises(verify.VerifyError, match="no owners"):
        verify.choose_identity([])
    with pytest.raises(verify.VerifyError, match="no namespace"):
        verify.identity_for({"kind": "ServiceAccount", "name": "ci", "role": "edit"})


def test_service_account_namespace_comes_from_the_live_bindings() -> None:
    outputs = {"tenant": "payments", "cluster": "default", "namespaces": ["payments-app", "payments-ci"],
               "owners": [{k: v for k, v in o.items() if k != "namespace"} for o in PAYMENTS_OWNERS]}
    live = {"payments": verify.TenantInfo("payments", ("payments-app", "payments-ci"), tuple(PAYMENTS_OWNERS))}
    tenant = verify.tenant_from_record(record.read(outputs), live)
    assert tenant.owners[2]["namespace"] == "payments-ci"
    assert tenant.control_plane is False
    with pytest.raises(verify.VerifyError, match="no namespaces"):
        verify.tenant_from_record(record.read({"tenant": "x"}), live)


def test_control_plane_from_the_record_whatever_its_shape(tmp_path: Path) -> None:
    base = {"tenant": "t", "namespaces": ["t-a"], "owners": []}
    assert verify.tenant_from_record(record.read(base | {"controlPlane": {"enabled": True}}), {}).control_plane
    spec_file = tmp_path / "t.yaml"
    spec_file.write_text("spec:\n  controlPlane:\n    enabled: true\n")
    assert verify.tenant_from_record(record.read(base | {"source": str(spec_file)}), {}).control_plane
    gone = record.read(base | {"source": str(tmp_path / "gone.yaml")})
    assert not verify.tenant_from_record(gone, {}).control_plane


# ---------------------------------------------------------------------------------------------
# Probe objects
# ---------------------------------------------------------------------------------------------


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{path}.{key}" if path else key)
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out |= _flatten(item, f"{path}[{i}]")
        return out or {path: []}
    return {path: value}


RESOURCES = verify.container_resources([])
SELECTOR = {"pool": "tenants"}
C = "spec.containers[0]"
EXPECTED_CHANGES = {
    "add-capabilities": {f"{C}.securityContext.capabilities.add[0]", f"{C}.securityContext.capabilities.add[1]"},
    "no-run-as-non-root": {"spec.securityContext.runAsNonRoot", "spec.securityContext.runAsUser",
                           f"{C}.securityContext.runAsNonRoot"},
    "run-as-root": {f"{C}.securityContext.runAsUser"},
    "privileged": {f"{C}.securityContext.privileged", f"{C}.securityContext.allowPrivilegeEscalation"},
    "privilege-escalation": {f"{C}.securityContext.allowPrivilegeEscalation"},
    "image-pull": {f"{C}.imagePullPolicy"},
    "host-path": {"spec.volumes[0].name", "spec.volumes[0].hostPath.path", "spec.volumes[0].hostPath.type",
                  f"{C}.volumeMounts[0].name", f"{C}.volumeMounts[0].mountPath", f"{C}.volumeMounts[0].readOnly"},
    "host-network": {"spec.hostNetwork"},
    "host-port": {f"{C}.ports[0].containerPort", f"{C}.ports[0].hostPort", f"{C}.ports[0].protocol"},
    "host-pid": {"spec.hostPID"},
    "host-ipc": {"spec.hostIPC"},
}


def test_compliant_pod_meets_restricted_and_the_blueprint() -> None:
    pod = verify.compliant_pod("p", node_selector=SELECTOR, resources=RESOURCES)
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["nodeSelector"] == SELECTOR and container["imagePullPolicy"] == "Always"
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not any(k in spec for k in ("hostNetwork", "hostPID", "hostIPC", "volumes"))
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "100m", "memory": "128Mi"}}


@pytest.mark.parametrize("probe", [p for probes in verify.POD_PROBES.values() for p in probes], ids=lambda p: p.name)
def test_each_pod_probe_changes_exactly_one_property(probe: verify.PodProbe) -> None:
    compliant = _flatten(verify.compliant_pod("x", node_selector=SELECTOR, resources=RESOURCES))
    bad = _flatten(probe.pod(node_selector=SELECTOR, resources=RESOURCES))
    compliant.pop("metadata.name")
    assert bad.pop("metadata.name") == f"vcm-verify-{probe.name}"
    changed = {k for k in compliant.keys() | bad.keys() if compliant.get(k, "<absent>") != bad.get(k, "<absent>")}
    assert changed == EXPECTED_CHANGES[probe.name]
    assert verify.compliant_pod("x", node_selector=SELECTOR, resources=RESOURCES)["spec"]["containers"][0][
        "securityContext"]["capabilities"] == {"drop": ["ALL"]}  # probes never alter the shared template


def test_probe_resources_come_from_the_limit_range_defaults() -> None:
    lr = {"spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
                               "default": {"cpu": "1", "memory": "1Gi"}, "max": {"cpu": "4", "memory": "8Gi"}}]}}
    assert verify.container_resources([lr]) == {"requests": {"cpu": "250m", "memory": "256Mi"},
                                                "limits": {"cpu": "1", "memory": "1Gi"}}
    only_limits = {"spec": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]}}
    assert verify.container_resources([only_limits]) == {"requests": {"cpu": "1", "memory": "128Mi"},
                                                         "limits": {"cpu": "1", "memory": "128Mi"}}


def test_placement_selector_reads_key_value_pairs() -> None:
    cm = {"data": {"selector-0": "node.kubernetes.io/instance-type=m5.2xlarge", "selector-1": "pool=batch"}}
    assert verify.placement_selector(cm) == {"node.kubernetes.io/instance-type": "m5.2xlarge", "pool": "batch"}
    assert verify.placement_selector(None) == {} == verify.placement_selector({"data": None})


# ---------------------------------------------------------------------------------------------
# Judging refusals
# ---------------------------------------------------------------------------------------------

PSA = ('pods "vcm-verify-host-pid" is forbidden: violates PodSecurity "restricted:latest": '
       'host namespaces (hostPID=true)')
VAP = ("pods \"x\" is forbidden: ValidatingAdmissionPolicy 'vcm-image-pull-always' with binding "
       "'vcm-image-pull-always' denied request: imagePullPolicy must be Always")
RBAC = 'namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope'
OK = verify.Attempt("control", True)


def test_what_counts_as_a_refusal() -> None:
    assert verify.Attempt("x", False, 403, PSA).refused
    assert verify.Attempt("x", False, 422, VAP).refused
    assert not verify.Attempt("x", False, 422, 'Pod "x" is invalid: spec.containers[0].securityContext').refused
    assert not verify.Attempt("x", False, 409, "already exists").refused
    assert not verify.Attempt("x", True).refused


@pytest.mark.parametrize(("message", "layer"), [
    (PSA, "Pod Security admission"), (VAP, "admission policy vcm-image-pull-always"), (RBAC, "RBAC"),
    ("exceeded quota: vcm-quota, requested: services.nodeports=1", "ResourceQuota"),
    ('user "a" is attempting to grant RBAC permissions not currently held', "RBAC escalation prevention"),
    ("something else", "the API server"),
])
def test_refused_by_names_the_layer(message: str, layer: str) -> None:
    assert verify.refused_by(message) == layer


def test_must_refuse() -> None:
    assert verify.must_refuse(verify.Attempt("pod with hostPID", True), OK) == ("fail", "pod with hostPID: ACCEPTED")
    result, detail = verify.must_refuse(verify.Attempt("pod with hostPID", False, 403, PSA), OK)
    assert result == "pass" and "refused by Pod Security admission (violates PodSecurity" in detail
    assert "is forbidden" not in detail
    control = verify.Attempt("compliant pod", False, 403, "exceeded quota: vcm-quota")
    result, detail = verify.must_refuse(verify.Attempt("pod with hostPID", False, 403, PSA), control)
    assert result == "error" and "proves nothing" in detail
    assert verify.must_refuse(verify.Attempt("p", False, 404, "not found"))[0] == "error"


def test_must_allow() -> None:
    assert verify.must_allow(OK) == ("pass", "control: accepted")
    assert verify.must_allow(verify.Attempt("pvc", False, 403, "exceeded quota: q"))[0] == "fail"
    assert verify.must_allow(verify.Attempt("pvc", False, 500, "etcd"))[0] == "error"


def test_combine_fail_beats_error_beats_pass() -> None:
    assert verify.combine([("pass", "a"), ("error", "b"), ("fail", "c"), ("fail", "c")]) == ("fail", "b\nc")
    assert verify.combine([("pass", "a"), ("error", "b")]) == ("error", "b")
    assert verify.combine([("pass", "a"), ("pass", "b")]) == ("pass", "a\nb")
    assert verify.combine([("pass", "a")], "summary") == ("pass", "summary")
    assert verify.combine([]) == ("error", "nothing was checked")


def test_refusal_summary() -> None:
    attempts = [verify.Attempt("a", False, 403, PSA), verify.Attempt("b", False, 403, PSA)]
    assert verify.refusal_summary("hostPID: true", attempts) == (
        'hostPID: true: refused in 2 namespace(s) by Pod Security admission (violates PodSecurity '
        '"restricted:latest": host namespaces (hostPID=true))')


# ---------------------------------------------------------------------------------------------
# Selectors, NetworkPolicies, quotas, access reviews
# ---------------------------------------------------------------------------------------------

LABELS = {"kubernetes.io/metadata.name": "search-web", "vcluster-mgr.dev/tenant": "search"}


@pytest.mark.parametrize(("selector", "matches"), [
    ({}, True),
    ({"matchLabels": {"vcluster-mgr.dev/tenant": "search"}}, True),
    ({"matchLabels": {"vcluster-mgr.dev/tenant": "payments"}}, False),
    ({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["search-web"]}]}, True),
    ({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["payments-app"]}]},
     False),
    ({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["x"]}]}, True),
    ({"matchExpressions": [{"key": "vcluster-mgr.dev/tenant", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "vcluster-mgr.dev/tenant", "operator": "DoesNotExist"}]}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, False),
])
def test_selector_matches(selector: dict[str, Any], matches: bool) -> None:
    assert verify.selector_matches(selector, LABELS) is matches


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec}


def test_default_deny_must_cover_every_pod_both_ways_and_allow_nothing() -> None:
    assert verify.is_default_deny(_policy("d", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    assert not verify.is_default_deny(_policy("d", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    assert not verify.is_default_deny(_policy("d", {"podSelector": {"matchLabels": {"a": "b"}},
                                                    "policyTypes": ["Ingress", "Egress"]}))
    assert not verify.is_default_deny(_policy("d", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                                                    "ingress": [{}]}))


def test_admitted_namespaces() -> None:
    tenant_only = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                         "values": ["payments-app", "payments-ci"]}]}
    others = {"search-web": LABELS}
    allow_tenant = _policy("vcm-allow-tenant", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                                                "ingress": [{"from": [{"namespaceSelector": tenant_only}]}],
                                                "egress": [{"to": [{"namespaceSelector": tenant_only}]}]})
    assert verify.admitted_namespaces(allow_tenant, others) == {}
    everyone = _policy("p", {"policyTypes": ["Ingress"], "ingress": [{"from": [{"namespaceSelector": {}}]}]})
    assert "p ingress[0] selects namespace search-web" in verify.admitted_namespaces(everyone, others)["search-web"]
    no_peers = _policy("p", {"policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53}]}]})
    assert "no to" in verify.admitted_namespaces(no_peers, others)["search-web"]
    same_ns = _policy("p", {"policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}, {
        "ipBlock": {"cidr": "10.0.0.0/8"}}]}]})
    assert verify.admitted_namespaces(same_ns, others) == {}
    egress_ignored = _policy("p", {"policyTypes": ["Ingress"], "egress": [{"to": [{"namespaceSelector": {}}]}]})
    assert verify.admitted_namespaces(egress_ignored, others) == {}


def test_quota_coverage() -> None:
    hard = verify.quota_hard([{"spec": {"hard": {"requests.cpu": "4", "pods": "30"}}},
                              {"spec": {"hard": {"pods": "10", "memory": "1Gi"}}}])
    assert hard == {"requests.cpu": "4", "pods": "10", "memory": "1Gi"}
    assert verify.missing_resource_quota(hard) == ["requests.storage"]
    lr = {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}}
    assert verify.missing_object_limits(hard, [lr]) == ["LimitRange Container max memory",
                                                        "ResourceQuota count of services"]
    assert verify.missing_object_limits({"pods": "1", "count/services": "1"}, [
        {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}}]}}]) == []


def test_granted_rules_ignore_self_reviews_and_cluster_scoped_rules() -> None:
    rules = [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
         "verbs": ["create"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["clustertrustbundles"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"], "resourceNames": ["a"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    ]
    scoped = frozenset({("certificates.k8s.io", "clustertrustbundles")})
    assert verify.granted_rules(rules, scoped) == ["get/list configmaps named a", "* *.*"]


def test_cluster_scoped_resources_from_aggregated_discovery() -> None:
    doc = {"items": [{"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
        {"resource": "nodes", "scope": "Cluster"}, {"resource": "pods", "scope": "Namespaced"}]}]},
        {"metadata": {"name": "rbac.authorization.k8s.io"}, "versions": [{"version": "v1", "resources": [
            {"resource": "clusterroles", "scope": "Cluster"}]}]}]}
    assert verify.cluster_scoped_resources([doc]) == {("", "nodes"), ("rbac.authorization.k8s.io", "clusterroles")}


# ---------------------------------------------------------------------------------------------
# Report, table and JSON
# ---------------------------------------------------------------------------------------------


def _report(results: dict[str, verify.Result], *, control_plane: bool = False) -> verify.Report:
    checks = tuple(verify.CheckResult(verify.CHECKS_BY_ID[i], f"tried {i}", r, f"detail {i}")
                   for i, r in results.items())
    identity = verify.choose_identity(PAYMENTS_OWNERS)
    return verify.Report("payments", "default", identity, {"username": "alice@example.com", "groups": []},
                         ("payments-app", "payments-ci"), control_plane, checks)


def test_json_shape_is_the_documented_one() -> None:
    report = _report({"block-host-pid": "pass", "block-host-ipc": "fail", "block-nodeport-services": "error"})
    data = json.loads(json.dumps(verify.reports_data([report], many=False)))
    assert set(data) == {"tenant", "cluster", "identity", "scope", "controlPlane", "namespaces", "checks",
                         "summary", "passed"}
    assert data["scope"] == "host-namespaces" and data["passed"] is False
    assert data["summary"] == {"pass": 1, "fail": 1, "error": 1, "skip": 0}
    assert data["identity"]["user"] == "alice@example.com" and data["identity"]["seenByServer"]["groups"] == []
    first, second, _ = data["checks"]
    assert set(first) == {"id", "title", "level", "benchmark", "tried", "result", "detail", "remedy"}
    assert first["benchmark"] == "MTB-PL1-BC-HI-4" and first["remedy"] is None
    assert second["result"] == "fail" and second["remedy"]
    assert isinstance(verify.reports_data([report, report], many=True), list)


def test_errors_do_not_pass() -> None:
    assert _report({"block-host-pid": "pass"}).passed
    assert not _report({"block-host-pid": "pass", "block-host-ipc": "error"}).passed
    assert _report({"block-host-ipc": "error"}).failing() == {"block-host-ipc": "error"}


def test_table_rows_show_the_remedy_only_when_not_passing_and_cut_long_details() -> None:
    rows = verify.table_rows(_report({"block-host-pid": "pass", "block-host-ipc": "fail"}))
    assert rows[0] == ("block-host-pid", "L1", "pass", "tried block-host-pid", "detail block-host-pid")
    assert rows[1][4].endswith("remedy: " + verify.CHECKS_BY_ID["block-host-ipc"].remedy)
    long = verify.CheckResult(verify.CHECKS_BY_ID["block-host-pid"], "t", "fail", "\n".join(map(str, range(20))))
    report = _report({})
    text = verify.table_rows(verify.Report(report.tenant, report.cluster, report.identity, None, report.namespaces,
                                           False, (long,)))[0][4]
    assert "... and 8 more (see -o json)" in text and "\n12\n" not in text


def test_scope_note_mentions_a_virtual_control_plane() -> None:
    assert verify.scope_note(_report({})) == "scope: host namespaces payments-app, payments-ci"
    assert "virtual control plane" in verify.scope_note(_report({}, control_plane=True))


# ---------------------------------------------------------------------------------------------
# The command line (no cluster needed for usage errors)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["verify"], ["verify", "payments", "--all"], ["verify", "payments", "--check", "x"]])
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2, result.output
