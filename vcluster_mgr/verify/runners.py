"""One function per check of the catalogue, registered in ``RUNNERS`` by id; each acts as the tenant's owner
through a ``session.Session`` and returns its verdict.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors, naming
from vcluster_mgr.verify import (
    analysis,
    catalogue,
    judging,
    probe_objects,
    report,
    session,
)

Outcome = tuple[str, judging.Verdict]
"""What a check tried, and its verdict."""

RUNNERS: dict[str, Callable[[session.Session], Outcome]] = {}


def _runs(check_id: str) -> Callable[[Callable[[session.Session], Outcome]], Callable[[session.Session], Outcome]]:
    def register(fn: Callable[[session.Session], Outcome]) -> Callable[[session.Session], Outcome]:
        RUNNERS[check_id] = fn
        return fn

    return register


def _in(s: session.Session) -> str:
    return ", ".join(s.ns)


@_runs("block-cluster-resources")
def _block_cluster_resources(s: session.Session) -> Outcome:
    tried = (f"SelfSubjectAccessReview for {', '.join(analysis.ALL_VERBS)} on "
             f"{', '.join(analysis.resource_text(g, r) for g, r in analysis.CLUSTER_RESOURCES)} at cluster scope; then list each of them")
    verdicts = s.denied_matrix(analysis.CLUSTER_RESOURCES, analysis.ALL_VERBS)
    lists: dict[str, Callable[[], Any]] = {
        "nodes": s.core_o.list_node, "namespaces": s.core_o.list_namespace,
        "persistentvolumes": s.core_o.list_persistent_volume,
        "clusterroles": s.rbac_o.list_cluster_role, "clusterrolebindings": s.rbac_o.list_cluster_role_binding,
        "storageclasses": client.StorageV1Api(s.owner).list_storage_class,
        "customresourcedefinitions": client.ApiextensionsV1Api(s.owner).list_custom_resource_definition,
    }
    for resource, call in lists.items():
        verdicts.append(judging.must_refuse(s.attempt(f"list {resource}", functools.partial(
            call, limit=1, _request_timeout=catalogue.REQUEST_TIMEOUT))))
    return tried, judging.combine(verdicts, f"all {len(analysis.CLUSTER_RESOURCES) * len(analysis.ALL_VERBS)} access reviews denied and "
                                    f"all {len(lists)} lists refused (403)")


@_runs("block-multitenant-resources")
def _block_multitenant_resources(s: session.Session) -> Outcome:
    tried = (f"SelfSubjectAccessReview for {', '.join(analysis.WRITE_VERBS)} on "
             f"{', '.join(analysis.resource_text(g, r) for g, r in analysis.MULTITENANT_RESOURCES)}; dry-run create of a Namespace, a "
             f"ClusterRole and a PriorityClass; dry-run patch and delete of the tenant's Namespaces and of the "
             f"blueprint's RoleBindings, Roles, ConfigMaps, Secrets and ServiceAccounts in {_in(s)}")
    verdicts = s.denied_matrix(analysis.MULTITENANT_RESOURCES, analysis.WRITE_VERBS)
    name = f"{catalogue.PROBE_PREFIX}-probe"
    meta = client.V1ObjectMeta(name=name)
    creates: dict[str, Callable[[], Any]] = {
        "Namespace": lambda: s.core_o.create_namespace(client.V1Namespace(metadata=meta), dry_run="All"),
        "ClusterRole": lambda: s.rbac_o.create_cluster_role(client.V1ClusterRole(metadata=meta), dry_run="All"),
        "PriorityClass": lambda: client.SchedulingV1Api(s.owner).create_priority_class(
            client.V1PriorityClass(metadata=meta, value=1000000), dry_run="All"),
    }
    for kind, call in creates.items():
        verdicts.append(judging.must_refuse(s.attempt(f"create {kind} {name}", call)))
    patch = {"metadata": {"annotations": {f"{catalogue.PROBE_PREFIX}.vcluster-mgr.dev/probe": "modified"}}}
    relabel = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    for ns in s.ns:
        verdicts.append(judging.must_refuse(s.attempt(f"relabel Namespace {ns} enforce=privileged", lambda ns=ns: (
            s.core_o.patch_namespace(ns, relabel, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))))
        verdicts.append(judging.must_refuse(s.attempt(f"delete Namespace {ns}", lambda ns=ns: (
            s.core_o.delete_namespace(ns, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))))
        kinds: list[tuple[str, Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = [
            ("RoleBinding", s.rbac_a.list_namespaced_role_binding, s.rbac_o.patch_namespaced_role_binding,
             s.rbac_o.delete_namespaced_role_binding),
            ("Role", s.rbac_a.list_namespaced_role, s.rbac_o.patch_namespaced_role, s.rbac_o.delete_namespaced_role),
            ("ConfigMap", s.core_a.list_namespaced_config_map, s.core_o.patch_namespaced_config_map,
             s.core_o.delete_namespaced_config_map),
            ("Secret", s.core_a.list_namespaced_secret, s.core_o.patch_namespaced_secret,
             s.core_o.delete_namespaced_secret),
            ("ServiceAccount", s.core_a.list_namespaced_service_account, s.core_o.patch_namespaced_service_account,
             s.core_o.delete_namespaced_service_account),
        ]
        for kind, lister, patcher, deleter in kinds:
            for obj in s.blueprint(f"{kind}s", lister, ns):
                obj_name = obj["metadata"]["name"]
                verdicts.append(judging.must_refuse(s.attempt(f"patch {kind} {ns}/{obj_name}", functools.partial(
                    patcher, obj_name, ns, patch, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT))))
                verdicts.append(judging.must_refuse(s.attempt(f"delete {kind} {ns}/{obj_name}", functools.partial(
                    deleter, obj_name, ns, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT))))
    refused = [t for r, t in verdicts if r == "pass" and ": refused by " in t]
    layers = sorted({t.split(": refused by ", 1)[1].split(" (", 1)[0] for t in refused})
    return tried, judging.combine(verdicts, f"no cluster-scoped write allowed; {len(refused)} dry-run changes refused "
                                    f"(by {', '.join(layers)})")


def _pod_check(check_id: str) -> Callable[[session.Session], Outcome]:
    probes = probe_objects.POD_PROBES[check_id]

    def run(s: session.Session) -> Outcome:
        tried = (f"dry-run create, in {_in(s)}, of a pod otherwise compliant (Pod Security restricted, "
                 f"imagePullPolicy Always, the tenant's nodeSelector and limits) with "
                 + " / with ".join(p.property for p in probes))
        verdicts = []
        refusals: dict[str, list[judging.Attempt]] = {p.name: [] for p in probes}
        for ns in s.ns:
            control = s.compliant(ns)
            for probe in probes:
                attempt = s.create_pod(ns, s.pod(ns, probe), f"pod with {probe.property} in {ns}")
                verdicts.append(judging.must_refuse(attempt, control))
                refusals[probe.name].append(attempt)
        summary = "\n".join(judging.refusal_summary(p.property, refusals[p.name]) for p in probes)
        return tried, judging.combine(verdicts, summary)

    return run


for _check_id in probe_objects.POD_PROBES:
    RUNNERS[_check_id] = _pod_check(_check_id)


@_runs("tenant-can-run-compliant-pod")
def _compliant_pod(s: session.Session) -> Outcome:
    tried = (f"dry-run create, in {_in(s)}, of a pod compliant with Pod Security restricted, imagePullPolicy "
             "Always, the tenant's nodeSelector (vcm-placement) and resources inside its LimitRange")
    return tried, judging.combine([judging.must_allow(s.compliant(ns)) for ns in s.ns], f"accepted in {_in(s)}")


@_runs("block-modification-of-resource-quotas")
def _block_quota_modification(s: session.Session) -> Outcome:
    tried = (f"dry-run patch and delete of every ResourceQuota, LimitRange and blueprint NetworkPolicy in "
             f"{_in(s)}, and dry-run create of a ResourceQuota")
    patch = {"metadata": {"annotations": {f"{catalogue.PROBE_PREFIX}.vcluster-mgr.dev/probe": "modified"}}}
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        targets: list[tuple[str, list[dict[str, Any]], Callable[..., Any], Callable[..., Any]]] = [
            ("ResourceQuota", s.quotas[ns], s.core_o.patch_namespaced_resource_quota,
             s.core_o.delete_namespaced_resource_quota),
            ("LimitRange", s.limit_ranges[ns], s.core_o.patch_namespaced_limit_range,
             s.core_o.delete_namespaced_limit_range),
            ("NetworkPolicy", s.blueprint("NetworkPolicies", s.net_a.list_namespaced_network_policy, ns),
             s.net_o.patch_namespaced_network_policy, s.net_o.delete_namespaced_network_policy),
        ]
        for kind, objects, patcher, deleter in targets:
            for obj in objects:
                name = obj["metadata"]["name"]
                verdicts.append(judging.must_refuse(s.attempt(f"patch {kind} {ns}/{name}", functools.partial(
                    patcher, name, ns, patch, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT))))
                verdicts.append(judging.must_refuse(s.attempt(f"delete {kind} {ns}/{name}", functools.partial(
                    deleter, name, ns, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT))))
        quota = client.V1ResourceQuota(metadata=client.V1ObjectMeta(name=f"{catalogue.PROBE_PREFIX}-probe"),
                                       spec=client.V1ResourceQuotaSpec(hard={"pods": "1000"}))
        verdicts.append(judging.must_refuse(s.attempt(f"create ResourceQuota in {ns}", lambda ns=ns, q=quota: (
            s.core_o.create_namespaced_resource_quota(ns, q, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))))
    refused = [t for r, t in verdicts if r == "pass"]
    by_layer: dict[str, int] = {}
    for t in refused:
        layer = t.split(": refused by ", 1)[1].split(" (", 1)[0]
        by_layer[layer] = by_layer.get(layer, 0) + 1
    layers = ", ".join(f"{n} by {layer}" for layer, n in sorted(by_layer.items()))
    return tried, judging.combine(verdicts, f"all {len(refused)} dry-run changes refused ({layers})")


@_runs("block-other-tenant-resources")
def _block_other_tenants(s: session.Session) -> Outcome:
    owner = {"kind": s.identity.kind, "name": s.identity.name, "namespace": s.identity.namespace}
    targets: list[str] = []
    shared: list[str] = []
    for other in s.others:
        if any(report.same_owner(owner, o) for o in other.owners):
            shared.append(other.name)
        else:
            targets += other.namespaces
    targets.append(naming.SYSTEM_NAMESPACE)
    tried = (f"SelfSubjectRulesReview, list pods, list secrets and dry-run create of a ConfigMap in "
             f"{', '.join(targets)}")
    verdicts: list[judging.Verdict] = []
    for ns in targets:
        review = client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=ns))
        try:
            status = s.authz_o.create_self_subject_rules_review(review, _request_timeout=catalogue.REQUEST_TIMEOUT).status
        except ApiException as exc:
            raise session.CheckFailed(f"SelfSubjectRulesReview in {ns}: {exc.status} {session.api_message(exc)}") from exc
        except (HTTPError, OSError) as exc:
            raise s._unreachable(exc) from exc
        granted = analysis.granted_rules([s.owner.sanitize_for_serialization(r) for r in status.resource_rules or []],
                                s.cluster_scoped)
        if granted:
            verdicts.append(("fail", f"in {ns} the owner may: {'; '.join(granted)}"))
        elif status.incomplete:
            verdicts.append(("pass", f"{ns}: rules review incomplete ({status.evaluation_error}); attempts decide"))
        verdicts.append(judging.must_refuse(s.attempt(f"list pods in {ns}", lambda ns=ns: s.core_o.list_namespaced_pod(
            ns, limit=1, _request_timeout=catalogue.REQUEST_TIMEOUT))))
        verdicts.append(judging.must_refuse(s.attempt(f"list secrets in {ns}", lambda ns=ns: s.core_o.list_namespaced_secret(
            ns, limit=1, _request_timeout=catalogue.REQUEST_TIMEOUT))))
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"{catalogue.PROBE_PREFIX}-probe"), data={"probe": "1"})
        verdicts.append(judging.must_refuse(s.attempt(f"create ConfigMap in {ns}", lambda ns=ns, cm=cm: (
            s.core_o.create_namespaced_config_map(ns, cm, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))))
    note = f"; not checked: {', '.join(shared)} (same owner)" if shared else ""
    return tried, judging.combine(verdicts, f"no access in {len(targets)} namespaces of other tenants and the platform{note}")


@_runs("configure-namespace-resource-quotas")
def _configure_quotas(s: session.Session) -> Outcome:
    tried = f"as admin, read the ResourceQuotas of {_in(s)}"
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        hard = analysis.quota_hard(s.quotas[ns])
        missing = analysis.missing_resource_quota(hard)
        if not s.quotas[ns]:
            verdicts.append(("fail", f"{ns}: no ResourceQuota"))
        elif missing:
            verdicts.append(("fail", f"{ns}: no quota on {', '.join(missing)}"))
        else:
            shown = ", ".join(f"{k}={hard[k]}" for k in (*analysis.CPU_KEYS, "limits.cpu", *analysis.MEMORY_KEYS, "limits.memory",
                                                         *analysis.STORAGE_KEYS) if k in hard)
            verdicts.append(("pass", f"{ns}: {shown}"))
    return tried, judging.combine(verdicts)


@_runs("configure-namespace-object-limits")
def _configure_object_limits(s: session.Session) -> Outcome:
    tried = f"as admin, read the LimitRanges and ResourceQuotas of {_in(s)}"
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        hard = analysis.quota_hard(s.quotas[ns])
        missing = analysis.missing_object_limits(hard, s.limit_ranges[ns])
        if missing:
            verdicts.append(("fail", f"{ns}: missing {', '.join(missing)}"))
            continue
        counts = ", ".join(f"{k}={hard[k]}" for k in hard if "." not in k or k.startswith(("count/", "services.")))
        uncapped = [k for k in analysis.UNCAPPED_HINTS if analysis.count_key(hard, k) is None]
        note = f" (not capped: {', '.join(uncapped)})" if uncapped else ""
        lr = ", ".join(lr["metadata"]["name"] for lr in s.limit_ranges[ns])
        verdicts.append(("pass", f"{ns}: LimitRange {lr}; counts {counts}{note}"))
    return tried, judging.combine(verdicts)


@_runs("block-nodeport-services")
def _block_nodeports(s: session.Session) -> Outcome:
    tried = f"dry-run create of a NodePort Service in {_in(s)} (control: the same Service as ClusterIP)"
    verdicts = []
    attempts = []
    for ns in s.ns:
        def create(body: dict[str, Any], ns: str = ns) -> Any:
            return s.core_o.create_namespaced_service(ns, body, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)

        control = s.attempt(f"ClusterIP Service in {ns}", functools.partial(create, probe_objects.probe_service("ClusterIP")))
        attempts.append(s.attempt(f"NodePort Service in {ns}", functools.partial(create, probe_objects.probe_service("NodePort"))))
        verdicts.append(judging.must_refuse(attempts[-1], control))
    return tried, judging.combine(verdicts, judging.refusal_summary("NodePort Service", attempts) + "; ClusterIP control accepted")


def _pv_body() -> client.V1PersistentVolume:
    return client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name=f"{catalogue.PROBE_PREFIX}-probe"),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "1Gi"}, access_modes=["ReadWriteOnce"],
            csi=client.V1CSIPersistentVolumeSource(driver="vcm-verify.invalid", volume_handle="probe")))


@_runs("require-pvc-for-storage")
def _require_pvc(s: session.Session) -> Outcome:
    tried = (f"SelfSubjectAccessReview for {', '.join(analysis.WRITE_VERBS)} persistentvolumes; dry-run create of a "
             f"PersistentVolume (must be refused) and of a 1Mi PersistentVolumeClaim in {_in(s)} (must be accepted)")
    verdicts = s.denied_matrix([("", "persistentvolumes")], analysis.WRITE_VERBS)
    verdicts.append(judging.must_refuse(s.attempt("create PersistentVolume", lambda: s.core_o.create_persistent_volume(
        _pv_body(), dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT))))
    for ns in s.ns:
        pvc = client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=f"{catalogue.PROBE_PREFIX}-probe"),
            spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                    resources=client.V1VolumeResourceRequirements(
                                                        requests={"storage": "1Mi"})))
        verdicts.append(judging.must_allow(s.attempt(f"create PersistentVolumeClaim in {ns}", lambda ns=ns, pvc=pvc: (
            s.core_o.create_namespaced_persistent_volume_claim(ns, pvc, dry_run="All",
                                                               _request_timeout=catalogue.REQUEST_TIMEOUT)))))
    return tried, judging.combine(verdicts, "PersistentVolumes may not be written; PersistentVolumeClaims accepted in "
                                    + _in(s))


@_runs("block-existing-persistent-volumes")
def _block_existing_pvs(s: session.Session) -> Outcome:
    tried = f"SelfSubjectAccessReview for {', '.join(analysis.READ_VERBS)} persistentvolumes; list persistentvolumes"
    verdicts = s.denied_matrix([("", "persistentvolumes")], analysis.READ_VERBS)
    verdicts.append(judging.must_refuse(s.attempt("list persistentvolumes", lambda: s.core_o.list_persistent_volume(
        limit=1, _request_timeout=catalogue.REQUEST_TIMEOUT))))
    return tried, judging.combine(verdicts, "PersistentVolumes can be neither listed nor read (403)")


@_runs("block-network-access-across-tenants")
def _block_network_access(s: session.Session) -> Outcome:
    tried = (f"as admin, read the blueprint's NetworkPolicies in {_in(s)}: one must select every pod "
             "(podSelector {}) for Ingress and Egress and allow nothing, and none may admit other tenants' namespaces")
    others = {ns for o in s.others for ns in o.namespaces}
    labels = {}
    for ns in sorted(others):
        obj = s.read(f"Namespace {ns}", functools.partial(s.core_a.read_namespace, ns,
                                                          _request_timeout=catalogue.REQUEST_TIMEOUT))
        labels[ns] = dict(obj.metadata.labels or {})
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        policies = s.blueprint("NetworkPolicies", s.net_a.list_namespaced_network_policy, ns)
        deny = [p["metadata"]["name"] for p in policies if analysis.is_default_deny(p)]
        if deny:
            verdicts.append(("pass", f"{ns}: default deny {', '.join(deny)}"))
        else:
            verdicts.append(("fail", f"{ns}: no blueprint NetworkPolicy denies all Ingress and Egress "
                                     f"(found: {', '.join(p['metadata']['name'] for p in policies) or 'none'})"))
        for policy in policies:
            for other_ns, why in analysis.admitted_namespaces(policy, labels).items():
                verdicts.append(("fail", f"{ns}: {why} of another tenant"))
    return tried, judging.combine(verdicts, "; ".join(t for _, t in verdicts)
                          + f"; no blueprint policy admits the {len(others)} other tenant namespaces")


@_runs("tenant-can-create-rolebindings")
def _create_rolebindings(s: session.Session) -> Outcome:
    tried = (f"dry-run create in {_in(s)} of a RoleBinding of ClusterRole view (must be accepted) and of "
             "ClusterRole cluster-admin (must be refused)")
    verdicts = []
    refused = []
    subject = client.RbacV1Subject(kind="User", name=f"{catalogue.PROBE_PREFIX}-probe@invalid",
                                   api_group="rbac.authorization.k8s.io")
    for ns in s.ns:
        for role, check in (("view", judging.must_allow), ("cluster-admin", judging.must_refuse)):
            body = client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{catalogue.PROBE_PREFIX}-{role}"), subjects=[subject],
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role))
            attempt = s.attempt(f"RoleBinding to {role} in {ns}", lambda ns=ns, body=body: (
                s.rbac_o.create_namespaced_role_binding(ns, body, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))
            verdicts.append(check(attempt))
            refused += [attempt] if check is judging.must_refuse else []
    return tried, judging.combine(verdicts, f"RoleBinding to view accepted in {_in(s)}\n"
                          + judging.refusal_summary("RoleBinding to cluster-admin", refused))


@_runs("tenant-can-create-networkpolicies")
def _create_networkpolicies(s: session.Session) -> Outcome:
    tried = (f"dry-run create of a NetworkPolicy in {_in(s)}; SelfSubjectAccessReview for "
             "get, list, update, patch, delete networkpolicies there")
    verdicts: list[judging.Verdict] = []
    for ns in s.ns:
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": f"{catalogue.PROBE_PREFIX}-probe"},
                "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": catalogue.PROBE_PREFIX}},
                         "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]}}
        verdicts.append(judging.must_allow(s.attempt(f"create NetworkPolicy in {ns}", lambda ns=ns, body=body: (
            s.net_o.create_namespaced_network_policy(ns, body, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))))
        denied = [v for v in ("get", "list", "update", "patch", "delete")
                  if not s.can(v, "networking.k8s.io", "networkpolicies", ns)]
        if denied:
            verdicts.append(("fail", f"{ns}: may not {', '.join(denied)} networkpolicies"))
    return tried, judging.combine(verdicts, f"NetworkPolicy accepted, and get/list/update/patch/delete allowed, in {_in(s)}")


@_runs("tenant-can-create-roles")
def _create_roles(s: session.Session) -> Outcome:
    tried = (f"dry-run create in {_in(s)} of a Role to read pods (must be accepted) and of a Role granting "
             "every verb on every resource (must be refused)")
    verdicts = []
    refused = []
    for ns in s.ns:
        for name, rule, check in (
            ("pod-reader", client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"]), judging.must_allow),
            ("everything", client.V1PolicyRule(api_groups=["*"], resources=["*"], verbs=["*"]), judging.must_refuse),
        ):
            body = client.V1Role(metadata=client.V1ObjectMeta(name=f"{catalogue.PROBE_PREFIX}-{name}"), rules=[rule])
            attempt = s.attempt(f"Role {name} in {ns}", lambda ns=ns, body=body: (
                s.rbac_o.create_namespaced_role(ns, body, dry_run="All", _request_timeout=catalogue.REQUEST_TIMEOUT)))
            verdicts.append(check(attempt))
            refused += [attempt] if check is judging.must_refuse else []
    return tried, judging.combine(verdicts, f"Role pod-reader accepted in {_in(s)}\n"
                          + judging.refusal_summary("Role granting * on *", refused))


def whoami(s: session.Session) -> dict[str, Any] | None:
    """How the API server sees the impersonated owner (SelfSubjectReview); None if the server cannot say."""
    api = client.AuthenticationV1Api(s.owner)
    try:
        review = api.create_self_subject_review(client.V1SelfSubjectReview(), _request_timeout=catalogue.REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 403 and "impersonate" in session.api_message(exc):
            raise errors.VerifyError(f"the admin credentials for {s.server} may not impersonate {s.identity.describe()}: "
                              f"{session.api_message(exc)}") from exc
        return None
    except (HTTPError, OSError) as exc:
        raise s._unreachable(exc) from exc
    info = review.status.user_info
    return {"username": info.username, "groups": list(info.groups or [])}
