"""The RBAC checks: no cluster-scoped or cross-tenant access, no tampering with the blueprint's objects, and
the namespaced rights a tenant must keep (RoleBindings, Roles, NetworkPolicies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcluster_mgr import naming
from vcluster_mgr.verify import (
    analysis,
    catalogue,
    judging,
    report,
    runners,
    session,
)


@runners.runs("block-cluster-resources")
def _block_cluster_resources(s: session.Session) -> runners.Outcome:
    tried = (
        f"SelfSubjectAccessReview for {', '.join(analysis.ALL_VERBS)} on "
        f"{', '.join(analysis.resource_text(g, r) for g, r in analysis.CLUSTER_RESOURCES)} at cluster "
        "scope; then list each of them"
    )
    verdicts = s.denied_matrix(analysis.CLUSTER_RESOURCES, analysis.ALL_VERBS)
    lists: dict[str, Callable[..., Any]] = {
        "nodes": s.core_o.list_node,
        "namespaces": s.core_o.list_namespace,
        "persistentvolumes": s.core_o.list_persistent_volume,
        "clusterroles": s.rbac_o.list_cluster_role,
        "clusterrolebindings": s.rbac_o.list_cluster_role_binding,
        "storageclasses": s.owner.storage.list_storage_class,
        "customresourcedefinitions": s.owner.apiextensions.list_custom_resource_definition,
    }
    for resource, call in lists.items():
        verdicts.append(judging.must_refuse(s.attempt(f"list {resource}", call, limit=1)))
    return tried, judging.combine(
        verdicts,
        f"all {len(analysis.CLUSTER_RESOURCES) * len(analysis.ALL_VERBS)} access reviews denied and "
        f"all {len(lists)} lists refused (403)",
    )


@runners.runs("block-multitenant-resources")
def _block_multitenant_resources(s: session.Session) -> runners.Outcome:
    tried = (
        f"SelfSubjectAccessReview for {', '.join(analysis.WRITE_VERBS)} on "
        ""
        f"{', '.join(analysis.resource_text(g, r) for g, r in analysis.MULTITENANT_RESOURCES)}; dry-run "
        "create of a Namespace, a "
        f"ClusterRole and a PriorityClass; dry-run patch and delete of the tenant's Namespaces and of the "
        f"blueprint's RoleBindings, Roles, ConfigMaps, Secrets and ServiceAccounts in {runners.namespaces_text(s)}"
    )
    verdicts = s.denied_matrix(analysis.MULTITENANT_RESOURCES, analysis.WRITE_VERBS)
    name = f"{catalogue.PROBE_PREFIX}-probe"
    meta = {"name": name}
    creates: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "Namespace": (s.core_o.create_namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}),
        "ClusterRole": (
            s.rbac_o.create_cluster_role,
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta},
        ),
        "PriorityClass": (
            s.owner.scheduling.create_priority_class,
            {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": meta, "value": 1000000},
        ),
    }
    for kind, (create, body) in creates.items():
        verdicts.append(judging.must_refuse(s.attempt(f"create {kind} {name}", create, body, dry_run="All")))
    patch = {"metadata": {"annotations": {f"{catalogue.PROBE_PREFIX}.vcluster-mgr.dev/probe": "modified"}}}
    relabel = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    for ns in s.ns:
        verdicts.append(
            judging.must_refuse(
                s.attempt(
                    f"relabel Namespace {ns} enforce=privileged",
                    s.core_o.patch_namespace,
                    ns,
                    relabel,
                    dry_run="All",
                )
            )
        )
        verdicts.append(
            judging.must_refuse(
                s.attempt(
                    f"delete Namespace {ns}",
                    s.core_o.delete_namespace,
                    ns,
                    dry_run="All",
                )
            )
        )
        kinds: list[tuple[str, Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = [
            (
                "RoleBinding",
                s.rbac_a.list_namespaced_role_binding,
                s.rbac_o.patch_namespaced_role_binding,
                s.rbac_o.delete_namespaced_role_binding,
            ),
            ("Role", s.rbac_a.list_namespaced_role, s.rbac_o.patch_namespaced_role, s.rbac_o.delete_namespaced_role),
            (
                "ConfigMap",
                s.core_a.list_namespaced_config_map,
                s.core_o.patch_namespaced_config_map,
                s.core_o.delete_namespaced_config_map,
            ),
            (
                "Secret",
                s.core_a.list_namespaced_secret,
                s.core_o.patch_namespaced_secret,
                s.core_o.delete_namespaced_secret,
            ),
            (
                "ServiceAccount",
                s.core_a.list_namespaced_service_account,
                s.core_o.patch_namespaced_service_account,
                s.core_o.delete_namespaced_service_account,
            ),
        ]
        for kind, lister, patcher, deleter in kinds:
            for obj in s.blueprint(f"{kind}s", lister, ns):
                obj_name = obj["metadata"]["name"]
                verdicts.append(
                    judging.must_refuse(
                        s.attempt(
                            f"patch {kind} {ns}/{obj_name}",
                            patcher,
                            obj_name,
                            ns,
                            patch,
                            dry_run="All",
                        )
                    )
                )
                verdicts.append(
                    judging.must_refuse(
                        s.attempt(
                            f"delete {kind} {ns}/{obj_name}",
                            deleter,
                            obj_name,
                            ns,
                            dry_run="All",
                        )
                    )
                )
    refused = [t for r, t in verdicts if r == "pass" and ": refused by " in t]
    layers = sorted({t.split(": refused by ", 1)[1].split(" (", 1)[0] for t in refused})
    return tried, judging.combine(
        verdicts, f"no cluster-scoped write allowed; {len(refused)} dry-run changes refused (by {', '.join(layers)})"
    )


@runners.runs("block-other-tenant-resources")
def _block_other_tenants(s: session.Session) -> runners.Outcome:
    owner = {"kind": s.identity.kind, "name": s.identity.name, "namespace": s.identity.namespace}
    targets: list[str] = []
    shared: list[str] = []
    for other in s.others:
        if any(report.same_owner(owner, o) for o in other.owners):
            shared.append(other.name)
        else:
            targets += other.namespaces
    targets.append(naming.SYSTEM_NAMESPACE)
    tried = f"SelfSubjectRulesReview, list pods, list secrets and dry-run create of a ConfigMap in {', '.join(targets)}"
    verdicts: list[judging.Verdict] = []
    for ns in targets:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": ns}}
        status = s.owner_request(
            f"SelfSubjectRulesReview in {ns}", s.authz_o.create_self_subject_rules_review, review
        ).status
        if status is None:
            raise session.CheckFailedError(f"SelfSubjectRulesReview in {ns}: the server sent no status")
        granted = analysis.granted_rules([s.owner.plain(r) for r in status.resource_rules or []], s.cluster_scoped)
        if granted:
            verdicts.append(("fail", f"in {ns} the owner may: {'; '.join(granted)}"))
        elif status.incomplete:
            verdicts.append(("pass", f"{ns}: rules review incomplete ({status.evaluation_error}); attempts decide"))
        verdicts.append(
            judging.must_refuse(
                s.attempt(
                    f"list pods in {ns}",
                    s.core_o.list_namespaced_pod,
                    ns,
                    limit=1,
                )
            )
        )
        verdicts.append(
            judging.must_refuse(
                s.attempt(
                    f"list secrets in {ns}",
                    s.core_o.list_namespaced_secret,
                    ns,
                    limit=1,
                )
            )
        )
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{catalogue.PROBE_PREFIX}-probe"},
            "data": {"probe": "1"},
        }
        verdicts.append(
            judging.must_refuse(
                s.attempt(
                    f"create ConfigMap in {ns}",
                    s.core_o.create_namespaced_config_map,
                    ns,
                    cm,
                    dry_run="All",
                )
            )
        )
    note = f"; not checked: {', '.join(shared)} (same owner)" if shared else ""
    return tried, judging.combine(
        verdicts, f"no access in {len(targets)} namespaces of other tenants and the platform{note}"
    )


@runners.runs("tenant-can-create-rolebindings")
def _create_rolebindings(s: session.Session) -> runners.Outcome:
    tried = (
        f"dry-run create in {runners.namespaces_text(s)} of a RoleBinding of ClusterRole view (must be "
        "accepted) and of "
        "ClusterRole cluster-admin (must be refused)"
    )
    verdicts = []
    refused = []
    subject = {
        "kind": "User",
        "name": f"{catalogue.PROBE_PREFIX}-probe@invalid",
        "apiGroup": "rbac.authorization.k8s.io",
    }
    for ns in s.ns:
        for role, check in (("view", judging.must_allow), ("cluster-admin", judging.must_refuse)):
            body = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{catalogue.PROBE_PREFIX}-{role}"},
                "subjects": [subject],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            }
            attempt = s.attempt(
                f"RoleBinding to {role} in {ns}",
                s.rbac_o.create_namespaced_role_binding,
                ns,
                body,
                dry_run="All",
            )
            verdicts.append(check(attempt))
            refused += [attempt] if check is judging.must_refuse else []
    return tried, judging.combine(
        verdicts,
        f"RoleBinding to view accepted in {runners.namespaces_text(s)}\n"
        + judging.refusal_summary("RoleBinding to cluster-admin", refused),
    )


@runners.runs("tenant-can-create-networkpolicies")
def _create_networkpolicies(s: session.Session) -> runners.Outcome:
    tried = (
        f"dry-run create of a NetworkPolicy in {runners.namespaces_text(s)}; SelfSubjectAccessReview for "
        "get, list, update, patch, delete networkpolicies there"
    )
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{catalogue.PROBE_PREFIX}-probe"},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": catalogue.PROBE_PREFIX}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
            },
        }
        verdicts.append(
            judging.must_allow(
                s.attempt(
                    f"create NetworkPolicy in {ns}",
                    s.net_o.create_namespaced_network_policy,
                    ns,
                    body,
                    dry_run="All",
                )
            )
        )
        denied = [
            v
            for v in ("get", "list", "update", "patch", "delete")
            if not s.can(v, "networking.k8s.io", "networkpolicies", ns)
        ]
        if denied:
            verdicts.append(("fail", f"{ns}: may not {', '.join(denied)} networkpolicies"))
    return tried, judging.combine(
        verdicts, f"NetworkPolicy accepted, and get/list/update/patch/delete allowed, in {runners.namespaces_text(s)}"
    )


@runners.runs("tenant-can-create-roles")
def _create_roles(s: session.Session) -> runners.Outcome:
    tried = (
        f"dry-run create in {runners.namespaces_text(s)} of a Role to read pods (must be accepted) and of a "
        "Role granting "
        "every verb on every resource (must be refused)"
    )
    verdicts = []
    refused = []
    for ns in s.ns:
        for name, rule, check in (
            (
                "pod-reader",
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                judging.must_allow,
            ),
            ("everything", {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, judging.must_refuse),
        ):
            role_body = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": f"{catalogue.PROBE_PREFIX}-{name}"},
                "rules": [rule],
            }
            attempt = s.attempt(
                f"Role {name} in {ns}",
                s.rbac_o.create_namespaced_role,
                ns,
                role_body,
                dry_run="All",
            )
            verdicts.append(check(attempt))
            refused += [attempt] if check is judging.must_refuse else []
    return tried, judging.combine(
        verdicts,
        f"Role pod-reader accepted in {runners.namespaces_text(s)}\n"
        + judging.refusal_summary("Role granting * on *", refused),
    )
