"""``vcm verify`` against the live example tenants: every check passes, and every check can fail.

After a real ``pulumi up`` of the platform and examples/tenants (fixture ``examples_applied``), the
verification runs exactly as ``vcm verify`` does (stack outputs, the admin kubeconfig impersonating the
owner, server-side dry-run). Each weakening test then changes ONE property as the admin, directly
through the API (not through Pulumi), and asserts that exactly the checks depending on it fail; it
restores the property in ``finally`` and waits until those checks pass again, because other tests
(the isolation tests among them) share the cluster.

The API server applies RBAC, Pod Security labels, quotas and admission-policy bindings from its
caches, so a change shows after a short delay: ``until`` re-runs the verification until the expected
outcome appears (or fails the test with the last report after ``SETTLE_SECONDS``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from vcluster_mgr import cli, cluster, platformconfig, record, verify, workspace

from .conftest import Applied

TENANT = "payments"
NS = "payments-ci"
"""The namespace weakened: the tenant's SECOND namespace, so a check that looks only at the first misses it."""
OWNER = "alice@example.com"
SETTLE_SECONDS = 30.0

POD_SECURITY_CHECKS = {
    "block-add-capabilities", "require-run-as-non-root", "block-privileged-containers",
    "block-privilege-escalation", "block-host-path-volumes", "block-host-networking-and-ports",
    "block-host-pid", "block-host-ipc",
}
"""The checks Pod Security admission decides (every pod probe but the image pull policy)."""
RESTRICTED_ONLY = {"require-run-as-non-root", "block-privilege-escalation"}
"""What Pod Security restricted refuses and baseline allows."""
POD_CHECKS = set(verify.POD_PROBES)


@dataclasses.dataclass(frozen=True)
class Env:
    admin: client.ApiClient
    target: platformconfig.Target
    records: Mapping[str, record.TenantRecord]
    settings: workspace.Settings

    def dyn(self, api_version: str, kind: str) -> Any:
        return dynamic.DynamicClient(self.admin).resources.get(api_version=api_version, kind=kind)


@pytest.fixture(scope="module")
def env(examples_applied: Applied) -> Iterator[Env]:
    admin = config.new_client_from_config(str(examples_applied.cluster.kubeconfig))
    records = {name: workspace.tenant_record(examples_applied.settings, examples_applied.target.name, name)
               for name in examples_applied.tenants}
    yield Env(admin, examples_applied.target, records, examples_applied.settings)
    admin.close()


def run(env: Env, tenant: str = TENANT, checks: Sequence[str] | None = None) -> verify.Report:
    selected = verify.select_checks(checks) if checks else None
    return verify.verify_live(env.target, env.records[tenant], checks=selected)


def _explain(report: verify.Report) -> str:
    return "\n".join(f"{c.check.id}: {c.result}: {c.detail}" for c in report.checks if c.result != "pass")


def until(env: Env, wanted: Callable[[verify.Report], bool], *, tenant: str = TENANT,
          checks: Sequence[str] | None = None, what: str = "") -> verify.Report:
    """Re-run the verification until ``wanted`` holds (the API server's caches settle), else fail."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        report = run(env, tenant, checks)
        if wanted(report):
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'expected outcome'} not reached within {SETTLE_SECONDS:.0f}s; "
                                 f"not passing: {report.failing()}\n{_explain(report)}")
        time.sleep(0.3)


def expect_failing(env: Env, expected: set[str] | dict[str, str], *, tenant: str = TENANT,
                   showing: Sequence[tuple[str, str]] = ()) -> verify.Report:
    """Wait until exactly ``expected`` do not pass (a set means they fail; a dict gives each result) and
    each (check id, text) of ``showing`` is in that check's detail."""
    want = dict.fromkeys(expected, "fail") if isinstance(expected, set) else dict(expected)

    def reached(report: verify.Report) -> bool:
        return report.failing() == want and all(text in _check(report, c).detail for c, text in showing)

    return until(env, reached, tenant=tenant, what=f"exactly {sorted(want)} not passing, showing {list(showing)}")


@contextmanager
def restored_afterwards(env: Env, checks: Iterable[str], *, tenant: str = TENANT) -> Iterator[None]:
    """After the block (whatever happens in it), wait until ``checks`` pass again."""
    try:
        yield
    finally:
        until(env, lambda r: r.passed, tenant=tenant, checks=sorted(checks), what="restored")


# ---------------------------------------------------------------------------------------------
# Weakenings: each one changes one thing as the admin and puts it back
# ---------------------------------------------------------------------------------------------


def _clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as read, made fit to create again."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink"):
        meta.pop(key, None)
    return out


@contextmanager
def granted(env: Env, rules: list[dict[str, Any]], *, namespace: str | None = None,
            user: str = OWNER) -> Iterator[None]:
    """A ClusterRole with ``rules`` bound to ``user`` cluster-wide, or in ``namespace`` by a RoleBinding."""
    name = f"vcm-test-{uuid.uuid4().hex[:8]}"
    rbac = client.RbacAuthorizationV1Api(env.admin)
    subject = {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    try:
        binding = {"metadata": {"name": name}, "roleRef": ref, "subjects": [subject]}
        if namespace is None:
            rbac.create_cluster_role_binding(binding)
        else:
            rbac.create_namespaced_role_binding(namespace, binding)
        yield
    finally:
        for call in ((lambda: rbac.delete_namespaced_role_binding(name, namespace)) if namespace else
                     (lambda: rbac.delete_cluster_role_binding(name)), lambda: rbac.delete_cluster_role(name)):
            try:
                call()
            except ApiException as exc:
                if exc.status != 404:
                    raise


@contextmanager
def removed(env: Env, api_version: str, kind: str, name: str, namespace: str | None = None) -> Iterator[None]:
    """The object deleted for the block, then created again as it was."""
    res = env.dyn(api_version, kind)
    saved = _clean(res.get(name=name, namespace=namespace).to_dict())
    res.delete(name=name, namespace=namespace)
    try:
        yield
    finally:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:  # a deletion may still be finishing
            try:
                res.create(body=saved, namespace=namespace)
                break
            except ApiException as exc:
                if exc.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@contextmanager
def changed(env: Env, api_version: str, kind: str, name: str, namespace: str | None,
            change: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """The object replaced by a changed copy for the block, then replaced by its original again."""
    res = env.dyn(api_version, kind)
    original = res.get(name=name, namespace=namespace).to_dict()
    body = copy.deepcopy(original)
    change(body)
    res.replace(body=body, namespace=namespace)
    try:
        yield
    finally:
        current = res.get(name=name, namespace=namespace).to_dict()
        back = _clean(original)
        back["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        res.replace(body=back, namespace=namespace)


def quota_changed(env: Env, hard: Mapping[str, str | None], namespace: str = NS) -> Any:
    """``vcm-quota`` of ``namespace`` with some ``spec.hard`` entries set (None removes one)."""

    def change(obj: dict[str, Any]) -> None:
        for key, value in hard.items():
            if value is None:
                obj["spec"]["hard"].pop(key)
            else:
                obj["spec"]["hard"][key] = value

    return changed(env, "v1", "ResourceQuota", "vcm-quota", namespace, change)


def namespace_labelled(env: Env, labels: Mapping[str, str | None], namespace: str = NS) -> Any:
    def change(obj: dict[str, Any]) -> None:
        for key, value in labels.items():
            if value is None:
                obj["metadata"]["labels"].pop(key, None)
            else:
                obj["metadata"]["labels"][key] = value

    return changed(env, "v1", "Namespace", namespace, None, change)


def _allowed(env: Env, user: str, verb: str, resource: str, group: str = "", namespace: str | None = None) -> bool:
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, group=group,
                                                        namespace=namespace)))
    return bool(client.AuthorizationV1Api(env.admin).create_subject_access_review(review).status.allowed)


def settle(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {SETTLE_SECONDS:.0f}s")
        time.sleep(0.2)


def _check(report: verify.Report, check_id: str) -> verify.CheckResult:
    return next(c for c in report.checks if c.check.id == check_id)


# ---------------------------------------------------------------------------------------------
# The example tenants as they are
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["payments", "analytics", "search"])
def test_every_example_tenant_passes_every_check(env: Env, tenant: str) -> None:
    report = run(env, tenant)
    # every check but the opt-in ones, in catalogue order
    assert [c.check.id for c in report.checks] == [c.id for c in verify.select_checks()]
    assert report.passed, _explain(report)


def test_identity_is_the_owner_as_the_api_server_sees_it(env: Env) -> None:
    payments = run(env, "payments", ["block-host-pid"])
    assert payments.identity.user == OWNER and payments.identity.groups == ()
    assert payments.seen_as == {"username": OWNER, "groups": ["system:authenticated"]}
    search = run(env, "search", ["block-host-pid"])  # first owner is the Group search-team (admin)
    assert search.identity.as_dict()["owner"] == {"kind": "Group", "name": "search-team", "namespace": None,
                                                  "role": "admin"}
    assert search.seen_as == {"username": "vcm-verify", "groups": ["search-team", "system:authenticated"]}


def test_acting_as_an_edit_service_account_cannot_delegate(env: Env) -> None:
    """The positive halves of the level-2 checks fail for an owner without the admin role."""
    with cluster.connect(env.target) as conn:
        tenant = verify.tenant_from_record(env.records[TENANT], verify.discover_tenants(conn))
    deployer = next(o for o in tenant.owners if o["kind"] == "ServiceAccount")
    assert deployer["namespace"] == "payments-ci"  # not in the stack outputs: found in the live RoleBindings
    identity = verify.identity_for(deployer)
    report = verify.verify_tenant(tenant, cluster="default", clients=verify.client_factory(env.target),
                                  identity=identity)
    assert report.seen_as == {"username": "system:serviceaccount:payments-ci:deployer",
                              "groups": ["system:serviceaccounts", "system:serviceaccounts:payments-ci",
                                         "system:authenticated"]}
    assert report.failing() == {"tenant-can-create-rolebindings": "fail", "tenant-can-create-roles": "fail"}, \
        _explain(report)


def test_cli_all_tenants_as_json(env: Env) -> None:
    s = env.settings
    args = ["--state-dir", str(s.state_dir), "--backend-url", s.backend_url, "--kubeconfig", str(s.kubeconfig)]
    result = CliRunner().invoke(cli.app, ["verify", "--all", "-o", "json", "--level", "1", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # the session's state also holds tenants of other test modules: the examples are among them, in order
    tenants = [r["tenant"] for r in data]
    assert tenants == sorted(tenants)
    assert [t for t in tenants if t in ("analytics", "payments", "search")] == ["analytics", "payments", "search"]
    for report in data:
        assert set(report) == {"tenant", "cluster", "identity", "scope", "controlPlane", "namespaces", "checks",
                               "summary", "passed"}
        assert report["scope"] == "host-namespaces" and report["cluster"] == "default"
        assert all(c["level"] == 1 for c in report["checks"])
        assert report["passed"] is True
    one = CliRunner().invoke(cli.app, ["verify", "payments", "--check", "MTB-PL1-BC-HI-1", *args])
    assert one.exit_code == 0, one.output
    assert "PASSED payments: 2 pass, 0 fail, 0 error" in one.stdout  # host path volumes and NodePorts


# ---------------------------------------------------------------------------------------------
# Each check can fail: weaken one property, see exactly the dependent checks fail, restore it
# ---------------------------------------------------------------------------------------------


def test_cluster_resources_readable(env: Env) -> None:
    with restored_afterwards(env, ["block-cluster-resources"]), \
            granted(env, [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]):
        report = expect_failing(env, {"block-cluster-resources"})
    assert "may get, list nodes" in _check(report, "block-cluster-resources").detail


def test_cluster_scoped_writes_allowed(env: Env) -> None:
    rules = [{"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": ["create"]}]
    with restored_afterwards(env, ["block-multitenant-resources"]), granted(env, rules):
        report = expect_failing(env, {"block-multitenant-resources"})
    assert "create PriorityClass vcm-verify-probe: ACCEPTED" in _check(report, "block-multitenant-resources").detail


def test_owner_may_relabel_its_namespace(env: Env) -> None:
    rules = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["patch"]}]
    with restored_afterwards(env, ["block-multitenant-resources"]), granted(env, rules, namespace=NS):
        report = expect_failing(env, {"block-multitenant-resources"})
    assert f"relabel Namespace {NS} enforce=privileged: ACCEPTED" in _check(
        report, "block-multitenant-resources").detail


def test_pod_security_privileged(env: Env) -> None:
    with restored_afterwards(env, POD_SECURITY_CHECKS), \
            namespace_labelled(env, {"pod-security.kubernetes.io/enforce": "privileged"}):
        report = expect_failing(env, POD_SECURITY_CHECKS)
    assert f"pod with hostPID: true in {NS}: ACCEPTED" in _check(report, "block-host-pid").detail


def test_pod_security_label_removed(env: Env) -> None:
    with restored_afterwards(env, POD_SECURITY_CHECKS), \
            namespace_labelled(env, {"pod-security.kubernetes.io/enforce": None}):
        expect_failing(env, POD_SECURITY_CHECKS)


def test_pod_security_baseline(env: Env) -> None:
    with restored_afterwards(env, RESTRICTED_ONLY), \
            namespace_labelled(env, {"pod-security.kubernetes.io/enforce": "baseline"}):
        expect_failing(env, RESTRICTED_ONLY)


def test_blueprint_protection_removed(env: Env) -> None:
    """Without vcm-protect-blueprint the owner's admin role may change the blueprint's NetworkPolicies,
    RoleBindings and placement ConfigMap (quotas and LimitRanges stay refused by RBAC)."""
    expected = {"block-modification-of-resource-quotas", "block-multitenant-resources"}
    with restored_afterwards(env, expected), removed(
            env, "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "vcm-protect-blueprint"):
        report = expect_failing(env, expected)
    detail = _check(report, "block-modification-of-resource-quotas").detail
    assert f"delete NetworkPolicy {NS}/vcm-default-deny: ACCEPTED" in detail
    assert "ResourceQuota" not in detail
    assert f"patch ConfigMap {NS}/vcm-placement: ACCEPTED" in _check(report, "block-multitenant-resources").detail


_QUOTA_WRITES = [{"apiGroups": [""], "resources": ["resourcequotas", "limitranges"],
                  "verbs": ["update", "patch", "delete"]}]


def test_quota_writes_granted_are_still_refused_by_the_admission_policy(env: Env) -> None:
    """Defence in depth: RBAC alone no longer protects the quota, vcm-protect-blueprint still does."""
    with granted(env, _QUOTA_WRITES, namespace=NS):
        settle(lambda: _allowed(env, OWNER, "patch", "resourcequotas", namespace=NS), "the RBAC grant")
        report = run(env, checks=["block-modification-of-resource-quotas"])
    result = _check(report, "block-modification-of-resource-quotas")
    assert result.result == "pass", result.detail
    assert "24 by admission policy vcm-protect-blueprint" in result.detail  # was 20: RQ and LR of payments-ci


def test_quota_writes_granted_and_unprotected(env: Env) -> None:
    expected = {"block-modification-of-resource-quotas", "block-multitenant-resources"}
    with restored_afterwards(env, expected), granted(env, _QUOTA_WRITES, namespace=NS), removed(
            env, "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "vcm-protect-blueprint"):
        # the RBAC grant and the deleted binding reach the API server's caches separately: wait for both
        expect_failing(env, expected, showing=[
            ("block-modification-of-resource-quotas", f"patch ResourceQuota {NS}/vcm-quota: ACCEPTED"),
            ("block-modification-of-resource-quotas", f"delete LimitRange {NS}/vcm-limits: ACCEPTED")])


def test_owner_may_create_quotas(env: Env) -> None:
    rules = [{"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["create"]}]
    with restored_afterwards(env, ["block-modification-of-resource-quotas"]), granted(env, rules, namespace=NS):
        report = expect_failing(env, {"block-modification-of-resource-quotas"})
    assert f"create ResourceQuota in {NS}: ACCEPTED" in _check(report, "block-modification-of-resource-quotas").detail


def test_owner_may_read_another_tenant(env: Env) -> None:
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    with restored_afterwards(env, ["block-other-tenant-resources"]), granted(env, rules, namespace="search-web"):
        report = expect_failing(env, {"block-other-tenant-resources"})
    assert "in search-web the owner may: get/list configmaps" in _check(report, "block-other-tenant-resources").detail


def test_quota_without_storage(env: Env) -> None:
    with restored_afterwards(env, ["configure-namespace-resource-quotas"]), \
            quota_changed(env, {"requests.storage": None}):
        report = expect_failing(env, {"configure-namespace-resource-quotas"})
    assert f"{NS}: no quota on requests.storage" in _check(report, "configure-namespace-resource-quotas").detail


def test_quota_deleted(env: Env) -> None:
    expected = {"configure-namespace-resource-quotas", "configure-namespace-object-limits", "block-nodeport-services"}
    with restored_afterwards(env, expected), removed(env, "v1", "ResourceQuota", "vcm-quota", NS):
        expect_failing(env, expected)


def test_limit_range_deleted(env: Env) -> None:
    with restored_afterwards(env, ["configure-namespace-object-limits"]), \
            removed(env, "v1", "LimitRange", "vcm-limits", NS):
        report = expect_failing(env, {"configure-namespace-object-limits"})
    assert "LimitRange Container max cpu" in _check(report, "configure-namespace-object-limits").detail


def test_image_pull_policy_unenforced(env: Env) -> None:
    with restored_afterwards(env, ["require-always-image-pull"]), removed(
            env, "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "vcm-image-pull-always"):
        expect_failing(env, {"require-always-image-pull"})


def test_nodeports_allowed(env: Env) -> None:
    with restored_afterwards(env, ["block-nodeport-services"]), quota_changed(env, {"services.nodeports": "5"}):
        report = expect_failing(env, {"block-nodeport-services"})
    assert f"NodePort Service in {NS}: ACCEPTED" in _check(report, "block-nodeport-services").detail


def test_owner_may_create_persistent_volumes(env: Env) -> None:
    expected = {"require-pvc-for-storage", "block-cluster-resources"}
    rules = [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create"]}]
    with restored_afterwards(env, expected), granted(env, rules):
        report = expect_failing(env, expected)
    assert "create PersistentVolume: ACCEPTED" in _check(report, "require-pvc-for-storage").detail


def test_claims_impossible(env: Env) -> None:
    """The positive half: a tenant that cannot claim storage at all fails too."""
    with restored_afterwards(env, ["require-pvc-for-storage"]), quota_changed(env, {"persistentvolumeclaims": "0"}):
        report = expect_failing(env, {"require-pvc-for-storage"})
    assert f"create PersistentVolumeClaim in {NS}: refused by ResourceQuota" in _check(
        report, "require-pvc-for-storage").detail


def test_owner_may_list_persistent_volumes(env: Env) -> None:
    expected = {"block-existing-persistent-volumes", "block-cluster-resources"}
    rules = [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["list"]}]
    with restored_afterwards(env, expected), granted(env, rules):
        expect_failing(env, expected)


def test_default_deny_deleted(env: Env) -> None:
    with restored_afterwards(env, ["block-network-access-across-tenants"]), \
            removed(env, "networking.k8s.io/v1", "NetworkPolicy", "vcm-default-deny", NS):
        report = expect_failing(env, {"block-network-access-across-tenants"})
    detail = _check(report, "block-network-access-across-tenants").detail
    assert f"{NS}: no blueprint NetworkPolicy denies all" in detail


def test_default_deny_for_ingress_only(env: Env) -> None:
    def ingress_only(obj: dict[str, Any]) -> None:
        obj["spec"]["policyTypes"] = ["Ingress"]

    with restored_afterwards(env, ["block-network-access-across-tenants"]), \
            changed(env, "networking.k8s.io/v1", "NetworkPolicy", "vcm-default-deny", NS, ingress_only):
        expect_failing(env, {"block-network-access-across-tenants"})


def test_blueprint_policy_admits_every_namespace(env: Env) -> None:
    def everyone(obj: dict[str, Any]) -> None:
        obj["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})

    with restored_afterwards(env, ["block-network-access-across-tenants"]), \
            changed(env, "networking.k8s.io/v1", "NetworkPolicy", "vcm-allow-tenant", NS, everyone):
        report = expect_failing(env, {"block-network-access-across-tenants"})
    assert "vcm-allow-tenant ingress[0] selects namespace search-web" in _check(
        report, "block-network-access-across-tenants").detail


def test_compliant_pod_refused(env: Env) -> None:
    """When even the control pod is refused, every pod check says error, never pass."""
    expected = {"tenant-can-run-compliant-pod": "fail"} | dict.fromkeys(POD_CHECKS, "error")
    with restored_afterwards(env, ["tenant-can-run-compliant-pod", *POD_CHECKS]), quota_changed(env, {"pods": "0"}):
        report = expect_failing(env, expected)
    assert "so the refusal proves nothing" in _check(report, "block-host-pid").detail


def test_owner_may_bind_cluster_admin(env: Env) -> None:
    rules = [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
              "resourceNames": ["cluster-admin"]}]
    with restored_afterwards(env, ["tenant-can-create-rolebindings"]), granted(env, rules, namespace=NS):
        report = expect_failing(env, {"tenant-can-create-rolebindings"})
    assert f"RoleBinding to cluster-admin in {NS}: ACCEPTED" in _check(report, "tenant-can-create-rolebindings").detail


def test_rolebindings_impossible(env: Env) -> None:
    with restored_afterwards(env, ["tenant-can-create-rolebindings"]), \
            quota_changed(env, {"count/rolebindings.rbac.authorization.k8s.io": "0"}):
        report = expect_failing(env, {"tenant-can-create-rolebindings"})
    assert f"RoleBinding to view in {NS}: refused" in _check(report, "tenant-can-create-rolebindings").detail


def test_networkpolicies_impossible(env: Env) -> None:
    with restored_afterwards(env, ["tenant-can-create-networkpolicies"]), \
            quota_changed(env, {"count/networkpolicies.networking.k8s.io": "0"}):
        expect_failing(env, {"tenant-can-create-networkpolicies"})


def test_owner_may_escalate_roles(env: Env) -> None:
    rules = [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]
    with restored_afterwards(env, ["tenant-can-create-roles"]), granted(env, rules, namespace=NS):
        report = expect_failing(env, {"tenant-can-create-roles"})
    assert f"Role everything in {NS}: ACCEPTED" in _check(report, "tenant-can-create-roles").detail


def test_roles_impossible(env: Env) -> None:
    with restored_afterwards(env, ["tenant-can-create-roles"]), \
            quota_changed(env, {"count/roles.rbac.authorization.k8s.io": "0"}):
        expect_failing(env, {"tenant-can-create-roles"})
