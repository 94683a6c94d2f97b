"""Pure rendering: a checked tenant (and the admin policy) -> plain Kubernetes manifests.

The blueprint lives in ``templates/`` as jinja2 templates, one per kind of object, so a platform
admin can read it and override any file by pointing ``templates_dir`` at a folder of their own
(templates missing there fall back to the built-in ones). Values enter the templates only as JSON
(``| tojson``, which is valid YAML) under ``StrictUndefined``; the rendered text is parsed back and
every object is checked: its kind and apiVersion are ones the blueprint declares, it carries the
blueprint's labels, and a tenant's objects stay inside the tenant's own namespaces. A failed check
is a ``RenderError`` (a template bug), never a silently wrong object.

Nothing here talks to a cluster; the only I/O is reading templates.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml

from vcluster_mgr import errors, naming, spec

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
"""The built-in blueprint (``templates/`` at the top of the repository)."""

TENANT_TEMPLATES = (
    "tenant/namespace.yaml.j2",
    "tenant/resourcequota.yaml.j2",
    "tenant/limitrange.yaml.j2",
    "tenant/networkpolicies.yaml.j2",
    "tenant/rolebindings.yaml.j2",
    "tenant/placement.yaml.j2",
)
PLATFORM_TEMPLATES = (
    "platform/namespace.yaml.j2",
    "platform/clusterrole.yaml.j2",
    "platform/image-pull-always.yaml.j2",
    "platform/placement.yaml.j2",
    "platform/protect-blueprint.yaml.j2",
)
INIT_TEMPLATE = "init/tenant.yaml.j2"

TENANT_KINDS: dict[str, str] = {
    "Namespace": "v1",
    "ResourceQuota": "v1",
    "LimitRange": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ServiceAccount": "v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ConfigMap": "v1",
    "Secret": "v1",
}
"""Kinds a tenant blueprint may produce, in output order, with their apiVersion.

Only Namespace is cluster-scoped (and only the tenant's own); the rest are namespaced kinds an
admin's templates may add (ServiceAccount, Role, Secret) beside the built-in ones.
"""

PLATFORM_KINDS: dict[str, str] = {
    "Namespace": "v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io/v1",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io/v1",
}
"""Kinds the platform blueprint may produce, in output order; all cluster-scoped."""

CLUSTER_DNS = {"namespace": "kube-system", "podLabels": {"k8s-app": "kube-dns"}}
"""Where strict isolation lets pods resolve names: the cluster DNS pods (CoreDNS keeps the kube-dns label)."""

CPU_RESOLUTION = Decimal("0.001")
BYTE_RESOLUTION = Decimal(1)


class RenderError(errors.VcmError):
    """A template could not be rendered, or rendered something the blueprint does not allow (a template bug)."""


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def _json_dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` for ``| tojson``: keeps non-ASCII text as is, escapes what YAML would misread.

    Characters in ``naming.UNPRINTABLE`` become ``\\uXXXX`` escapes, which YAML and JSON both read
    back as the same character (``ensure_ascii`` would split astral characters into surrogate pairs,
    which PyYAML does not join again).
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return naming.UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@functools.lru_cache(maxsize=16)
def _environment(templates_dir: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_function"] = _json_dumps
    env.policies["json.dumps_kwargs"] = {"sort_keys": True}
    return env


def _template_text(name: str, context: dict[str, Any], templates_dir: str | Path | None) -> str:
    folder = None
    if templates_dir is not None:
        if not Path(templates_dir).is_dir():
            raise RenderError(f"templates folder {templates_dir} does not exist")
        folder = str(Path(templates_dir).resolve())
    try:
        return _environment(folder).get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise RenderError(f"template {name}{where}: {exc.message or exc}") from exc


def _documents(name: str, text: str) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"template {name} rendered invalid YAML: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Checks on rendered objects
# ---------------------------------------------------------------------------------------------


def _check(
    name: str,
    obj: Any,
    *,
    kinds: dict[str, str],
    namespaces: list[str],
    cluster_names: dict[str, list[str]],
    labels: dict[str, str],
) -> tuple[str, str, str]:
    """Check one rendered object; return its (kind, namespace, name) or raise ``RenderError``.

    ``cluster_names`` maps each cluster-scoped kind to the names it may have (a missing kind: any
    name); every other kind is namespaced and must sit in one of ``namespaces``.
    """

    def fail(problem: str) -> RenderError:
        return RenderError(f"template {name} rendered an object the blueprint does not allow: {problem}")

    if not isinstance(obj, dict):
        raise fail(f"expected a mapping, got {spec.show(obj)}")
    kind, api_version, metadata = obj.get("kind"), obj.get("apiVersion"), obj.get("metadata")
    if not isinstance(kind, str) or kind not in kinds:
        raise fail(f"kind {spec.show(kind)} is not one of {', '.join(kinds)}")
    if api_version != kinds[kind]:
        raise fail(f"{kind} has apiVersion {spec.show(api_version)}, expected {kinds[kind]}")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise fail(f"{kind} has no metadata.name")
    object_name, namespace = metadata["name"], metadata.get("namespace")
    try:
        naming.check_dns_subdomain(object_name)
    except ValueError as exc:
        raise fail(f"{kind} name {spec.show(object_name)} {exc}") from None
    if kind in cluster_names:
        if namespace is not None:
            raise fail(f"{kind} {object_name} is cluster-scoped but has metadata.namespace")
        allowed = cluster_names[kind]
        if allowed and object_name not in allowed:
            raise fail(f"{kind} {object_name} is not one of {', '.join(allowed)}")
        namespace = ""
    elif namespace not in namespaces:
        raise fail(f"{kind} {object_name} is in namespace {spec.show(namespace)}, not one of {', '.join(namespaces)}")
    found = metadata.get("labels")
    missing = [k for k, v in labels.items() if not isinstance(found, dict) or found.get(k) != v]
    if missing:
        raise fail(f"{kind} {object_name} lacks the labels {', '.join(f'{k}={labels[k]}' for k in missing)}")
    return kind, namespace, object_name


def _render(
    templates: Iterable[str],
    context: dict[str, Any],
    templates_dir: str | Path | None,
    *,
    kinds: dict[str, str],
    namespaces: list[str],
    cluster_names: dict[str, list[str]],
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """Render ``templates``, check every object, and return them sorted by kind order, namespace, name."""
    order = {kind: i for i, kind in enumerate(kinds)}
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name in templates:
        for obj in _documents(name, _template_text(name, context, templates_dir)):
            key = _check(name, obj, kinds=kinds, namespaces=namespaces, cluster_names=cluster_names, labels=labels)
            if key in keyed:
                raise RenderError(f"template {name} rendered {key[0]} {key[2]} in {key[1] or 'the cluster'} twice")
            keyed[key] = obj
    return [keyed[key] for key in sorted(keyed, key=lambda k: (order[k[0]], k[1], k[2]))]


# ---------------------------------------------------------------------------------------------
# Tenant
# ---------------------------------------------------------------------------------------------


def tenant_labels(tenant: spec.Tenant) -> dict[str, str]:
    """Labels on every object of a tenant: the spec's own, managed-by, and the tenant's name."""
    return {**tenant.labels, naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE, naming.TENANT_LABEL: tenant.name}


def _share(total: int, parts: int) -> int:
    return max(1, total // parts) if total > 0 else 0


def split_quota(quota: spec.Quota, parts: int) -> dict[str, str]:
    """One namespace's share of a resolved tenant quota, as canonical quantity strings.

    Quantities are divided exactly and rounded down (to 1m for CPU, 1 byte for memory and
    storage), so the shares never exceed the total; counts are floor-divided but stay at least 1
    unless the total is 0.
    """
    values = {
        "requestsCpu": (quota.cpu, CPU_RESOLUTION),
        "limitsCpu": (quota.limits_cpu or quota.cpu, CPU_RESOLUTION),
        "requestsMemory": (quota.memory, BYTE_RESOLUTION),
        "limitsMemory": (quota.limits_memory or quota.memory, BYTE_RESOLUTION),
        "requestsStorage": (quota.storage, BYTE_RESOLUTION),
    }
    out = {}
    for key, (text, resolution) in values.items():
        if text is None:
            raise RenderError(f"quota.{key} is unset; resolve the tenant with a policy first")
        out[key] = str(naming.parse_quantity(text).split(parts, resolution))
    for key in ("pods", "services", "gpu"):
        count = getattr(quota, key)
        if count is None:
            raise RenderError(f"quota.{key} is unset; resolve the tenant with a policy first")
        out[key] = str(_share(count, parts))
    return out


def _subject(owner: spec.Owner) -> dict[str, str]:
    if owner.kind == "ServiceAccount":
        return {"kind": "ServiceAccount", "name": owner.name, "namespace": owner.namespace or ""}
    return {"kind": owner.kind, "apiGroup": "rbac.authorization.k8s.io", "name": owner.name}


def tenant_context(tenant: spec.Tenant, policy: spec.Policy) -> dict[str, Any]:
    """Everything the tenant templates see, as plain JSON-able data (documented in each template)."""
    tenant = spec.resolve(tenant, policy=policy)
    namespaces = tenant.namespace_names()
    s = tenant.spec
    assert s.quota is not None and s.limits is not None  # resolve() fills both
    return {
        "tenant": {"name": tenant.name, "namespaces": namespaces},
        "namespaces": namespaces,
        "labels": tenant_labels(tenant),
        "pod_security": s.pod_security,
        "quota": split_quota(s.quota, len(namespaces)),
        "limits": s.limits.model_dump(mode="json"),
        "network": {
            "isolation": s.network.isolation,
            "tenantNamespaces": sorted(namespaces),
            "ingressFrom": sorted({peer.namespace for peer in s.network.allow_ingress_from}),
            "egressTo": [
                {"cidr": rule.cidr, "ports": [{"protocol": rule.protocol, "port": port} for port in rule.ports]}
                for rule in s.network.allow_egress_to
            ],
        },
        "dns": CLUSTER_DNS,
        "namespaceNameLabel": naming.NAMESPACE_NAME_LABEL,
        "owners": [
            {
                "bindingName": naming.owner_binding_name(owner.role, owner.kind, owner.name, owner.namespace),
                "role": owner.role,
                "subject": _subject(owner),
            }
            for owner in s.owners
        ],
        "placement": {"nodeSelector": dict(s.placement.node_selector)},
        # ConfigMap keys cannot hold a "/" (label keys can): one entry per pair, "key=value" in the value
        "placementData": {
            f"selector-{i}": f"{key}={value}" for i, (key, value) in enumerate(sorted(s.placement.node_selector.items()))
        },
        "placementConfigMap": naming.PLACEMENT_CONFIGMAP,
        "policy": policy.model_dump(mode="json"),
    }


def render_tenant(
    tenant: spec.Tenant, *, policy: spec.Policy | None = None, templates_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """The manifests of one tenant: its Namespaces first, then the rest by kind, namespace and name.

    Deterministic for a given tenant, policy and templates. Raises ``RenderError`` if a template
    fails or renders an object outside the tenant's namespaces, of an undeclared kind, or without
    the blueprint's labels.
    """
    policy = policy or spec.DEFAULT_POLICY
    context = tenant_context(tenant, policy)
    namespaces = context["namespaces"]
    return _render(
        TENANT_TEMPLATES,
        context,
        templates_dir,
        kinds=TENANT_KINDS,
        namespaces=namespaces,
        cluster_names={"Namespace": namespaces},
        labels=context["labels"],
    )


# ---------------------------------------------------------------------------------------------
# Platform
# ---------------------------------------------------------------------------------------------


def platform_context(policy: spec.Policy) -> dict[str, Any]:
    """Everything the platform templates see (documented in each template)."""
    return {
        "labels": {naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE},
        "systemNamespace": naming.SYSTEM_NAMESPACE,
        "tenantLabel": naming.TENANT_LABEL,
        "placementConfigMap": naming.PLACEMENT_CONFIGMAP,
        "policy": policy.model_dump(mode="json"),
    }


def render_platform(
    *, policy: spec.Policy | None = None, templates_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """The cluster-wide objects every tenant relies on: vcluster-mgr's namespace, admission policies, ClusterRole."""
    context = platform_context(policy or spec.DEFAULT_POLICY)
    return _render(
        PLATFORM_TEMPLATES,
        context,
        templates_dir,
        kinds=PLATFORM_KINDS,
        namespaces=[],
        cluster_names={kind: [] for kind in PLATFORM_KINDS} | {"Namespace": [naming.SYSTEM_NAMESPACE]},
        labels=context["labels"],
    )


# ---------------------------------------------------------------------------------------------
# Output and the starter spec
# ---------------------------------------------------------------------------------------------


def dump_manifests(objects: Iterable[dict[str, Any]]) -> str:
    """Objects as one YAML stream (each document starting with ``---``), keys in template order."""
    return str(yaml.safe_dump_all(list(objects), sort_keys=False, allow_unicode=True, explicit_start=True, width=120))


def starter_spec(name: str, *, owner: str = "you@example.com", templates_dir: str | Path | None = None) -> str:
    """The commented starter spec ``vcm init NAME`` writes; checked to be a valid tenant before it is returned.

    Raises ``SpecError`` if ``name`` (or ``owner``) makes an invalid tenant.
    """
    try:
        naming.check_dns_label(name)
    except ValueError as exc:
        raise errors.SpecError([errors.FieldError("metadata.name", f"{spec.show(name)} {exc}")]) from None
    text = _template_text(INIT_TEMPLATE, {"name": name, "owner": owner}, templates_dir)
    spec.parse_spec_text(text)  # a reserved or too long name is a SpecError like any other
    return text


# ---------------------------------------------------------------------------------------------
# Virtual control plane: Helm values for the vcluster chart
# ---------------------------------------------------------------------------------------------

CONTROL_PLANE_VALUES_TEMPLATE = "controlplane/values.yaml.j2"

DEFAULT_PERSISTENCE_SIZE = "5Gi"
"""Size of the control plane's data volume when spec.controlPlane.persistence.size is left out (the chart's)."""

CHART_CONTAINER_RESOURCES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "distro": ({"cpu": "40m", "memory": "64Mi"}, {"cpu": "100m", "memory": "256Mi"}),
    "coredns": ({"cpu": "20m", "memory": "64Mi"}, {"cpu": "1", "memory": "170Mi"}),
    "etcd": ({"cpu": "20m", "memory": "150Mi"}, {"cpu": "1", "memory": "1Gi"}),
}
"""(requests, limits) of the chart's other containers: its own defaults (etcd gets limits it lacks), lowered
to the tenant's limits.max so the namespace's LimitRange accepts them."""


def _smallest(*quantities: str) -> str:
    return min(quantities, key=lambda text: naming.parse_quantity(text).value)


def _largest(*quantities: str) -> str:
    return max(quantities, key=lambda text: naming.parse_quantity(text).value)


def _fitted(requests: dict[str, str], limits: dict[str, str], ceiling: dict[str, str]) -> dict[str, Any]:
    """Requests and limits with every limit lowered to ``ceiling`` and every request to its limit."""
    capped = {r: _smallest(limits[r], ceiling[r]) for r in ("cpu", "memory")}
    return {
        "requests": {r: _smallest(requests[r], capped[r]) for r in ("cpu", "memory")},
        "limits": capped,
    }


def _control_plane_resources(cp: spec.ControlPlane, tenant_max: dict[str, str], policy: spec.Policy) -> dict[str, Any]:
    """The control plane container's requests and limits: the spec's, or defaults that fit the tenant and policy."""
    policy_max = {"cpu": policy.max_control_plane_cpu, "memory": policy.max_control_plane_memory}
    given_requests = cp.resources.requests or spec.ContainerResources()
    given_limits = cp.resources.limits or spec.ContainerResources()
    limits, requests = {}, {}
    for r in ("cpu", "memory"):
        request, limit = getattr(given_requests, r), getattr(given_limits, r)
        if limit is None:
            limit = _smallest(spec.DEFAULT_CONTROL_PLANE_LIMITS[r], tenant_max[r], policy_max[r])
            limit = _largest(limit, request) if request is not None else limit
        limits[r] = limit
        requests[r] = request if request is not None else _smallest(spec.DEFAULT_CONTROL_PLANE_REQUESTS[r], limit)
    return {"requests": requests, "limits": limits}


def control_plane_context(tenant: spec.Tenant, policy: spec.Policy) -> dict[str, Any]:
    """Everything the control plane values template sees, as plain JSON-able data (documented in the template)."""
    tenant = spec.resolve(tenant, policy=policy)
    s = tenant.spec
    cp = s.control_plane
    assert s.limits is not None and s.limits.max is not None  # resolve() fills both
    tenant_max = {"cpu": s.limits.max.cpu or "", "memory": s.limits.max.memory or ""}
    resources = {
        name: _fitted(requests, limits, tenant_max)
        for name, (requests, limits) in CHART_CONTAINER_RESOURCES.items()
    }
    resources["controlPlane"] = _control_plane_resources(cp, tenant_max, policy)
    volume_claim: dict[str, Any] = {"enabled": cp.persistence.enabled}
    if cp.persistence.enabled:
        volume_claim["size"] = cp.persistence.size or DEFAULT_PERSISTENCE_SIZE
        if cp.persistence.storage_class:
            volume_claim["storageClass"] = cp.persistence.storage_class
    return {
        "release": naming.control_plane_release(tenant.name),
        "namespace": tenant.namespace_names()[0],
        "podSecurity": s.pod_security,
        "kubernetesImageTag": naming.kubernetes_image_tag(cp.version) if cp.version else None,
        "backingStore": cp.backing_store,
        "resources": resources,
        "volumeClaim": volume_claim,
        "exposure": {"type": cp.exposure.type, "ingressHost": cp.exposure.ingress_host},
        "sync": {
            "ingresses": cp.sync.ingresses,
            "storageClasses": cp.sync.storage_classes,
            "nodes": cp.sync.nodes,
        },
        "sleepAfter": naming.go_duration(naming.parse_duration(cp.sleep_after)) if cp.sleep_after else None,
        "nodeSelector": dict(sorted(s.placement.node_selector.items())),
    }


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` deep-merged over ``base`` as Helm merges values files: mappings key by key, anything
    else (lists included) replaces; a null removes the key. Neither input is changed."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_CHART_POLICIES_OFF = ("resourceQuota", "limitRange", "networkPolicy")


def _check_values(name: str, values: Any) -> dict[str, Any]:
    """The generated values (before spec.controlPlane.values): one mapping that keeps the chart's policies off."""
    if not isinstance(values, dict):
        raise RenderError(f"template {name} must render one mapping of Helm values, got {spec.show(values)}")
    policies = values.get("policies")
    for key in _CHART_POLICIES_OFF:
        section = policies.get(key) if isinstance(policies, dict) else None
        if not isinstance(section, dict) or section.get("enabled") is not False:
            raise RenderError(
                f"template {name} must set policies.{key}.enabled: false; the tenant's own objects on the "
                "host namespace apply instead"
            )
    return values


def control_plane_values(
    tenant: spec.Tenant, *, policy: spec.Policy | None = None, templates_dir: str | Path | None = None
) -> dict[str, Any]:
    """Helm values for the vcluster chart that installs ``tenant``'s virtual control plane.

    Rendered from ``templates/controlplane/values.yaml.j2`` (an admin's ``templates_dir`` may override it),
    parsed back and checked, then ``spec.controlPlane.values`` is merged over it LAST (``merge_values``).
    Works whether or not ``spec.controlPlane.enabled`` is set (it shows what enabling would install), but
    always under the policy's control plane rules: raises ``SpecError`` if the policy forbids the control
    plane as specified, ``RenderError`` for a broken template. Deterministic.
    """
    policy = policy or spec.DEFAULT_POLICY
    spec.check_control_plane(tenant, policy=policy)
    context = control_plane_context(tenant, policy)
    name = CONTROL_PLANE_VALUES_TEMPLATE
    documents = _documents(name, _template_text(name, context, templates_dir))
    if len(documents) != 1:
        raise RenderError(f"template {name} must render exactly one YAML document, got {len(documents)}")
    return merge_values(_check_values(name, documents[0]), tenant.spec.control_plane.values)


def control_plane_chart(tenant: spec.Tenant) -> dict[str, str]:
    """Where and how the control plane's chart is installed: release, namespace, chart, version and the one
    source (``repository``, ``oci`` or ``path``). For the component that runs Helm."""
    cp = tenant.spec.control_plane
    kind, reference = cp.chart.source()
    return {
        "release": naming.control_plane_release(tenant.name),
        "namespace": tenant.namespace_names()[0],
        "chart": naming.CONTROL_PLANE_CHART,
        "version": cp.chart.version,
        kind: reference,
    }


def dump_values(values: dict[str, Any]) -> str:
    """Helm values as a YAML document, keys in order (the template's, then the overrides')."""
    return str(yaml.safe_dump(values, sort_keys=False, allow_unicode=True, width=120))


# ---------------------------------------------------------------------------------------------
# CI pipelines with an ephemeral tenant
# ---------------------------------------------------------------------------------------------

CI_TEMPLATES: dict[str, str] = {"github": "ci/github.yml.j2", "gitlab": "ci/gitlab.yml.j2"}
"""The pipeline template of each CI system ``vcm ci init`` knows."""

HOST_KUBECONFIG_SECRET = "VCM_HOST_KUBECONFIG"
"""Name of the CI secret (variable) holding the host cluster's kubeconfig."""


def _check_pipeline(kind: str, text: str) -> None:
    """The rendered pipeline parses as YAML and deletes the tenant even when the job fails."""
    name = CI_TEMPLATES[kind]
    documents = _documents(name, text)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise RenderError(f"template {name} must render one YAML mapping")
    doc = documents[0]
    if kind == "github":
        jobs = doc.get("jobs")
        steps = [step for job in (jobs or {}).values() if isinstance(job, dict) for step in job.get("steps") or []]
        deletes = [s for s in steps if isinstance(s, dict) and "vcm ephemeral delete" in str(s.get("run", ""))]
        if not deletes or any(str(s.get("if", "")).strip() != "always()" for s in deletes):
            raise RenderError(f"template {name} must delete the tenant in a step with if: always()")
    else:
        jobs = [job for key, job in doc.items() if isinstance(job, dict) and "script" in job]
        if not jobs or not all("vcm ephemeral delete" in str(job.get("after_script", "")) for job in jobs):
            raise RenderError(f"template {name} must delete the tenant in every job's after_script")


def _check_ci_path(path: str) -> None:
    naming.check_printable(path)
    if "$" in path or "`" in path:
        raise ValueError("must not contain '$' or '`' (CI systems would expand them)")


def ci_pipeline(
    kind: Literal["github", "gitlab"],
    *,
    spec_path: str = "tenant.yaml",
    ttl: str = "2h",
    name_prefix: str = "ci-",
    templates_dir: str | Path | None = None,
) -> str:
    """A CI pipeline (GitHub Actions workflow or .gitlab-ci.yml) that tests against an ephemeral tenant.

    It installs vcluster-mgr, writes the host kubeconfig from the CI secret ``VCM_HOST_KUBECONFIG`` to a
    mode-600 file (never printing it), creates a tenant from ``spec_path`` named ``name_prefix`` + random
    that expires after ``ttl``, runs the tests (``make test``, a placeholder to edit) with KUBECONFIG
    pointing at the tenant, and deletes the tenant even when the job fails; ``ttl`` is the backstop if
    even that fails. Raises ``UsageError`` for an unknown kind or a bad ttl, prefix or path.
    """
    if kind not in CI_TEMPLATES:
        raise errors.UsageError(f"unknown CI system {kind!r}; choose one of: {', '.join(CI_TEMPLATES)}")
    checks: list[tuple[str, str, Any]] = [
        ("--ttl", ttl, naming.parse_duration),
        ("--name-prefix", name_prefix, naming.check_name_prefix),
        ("--spec", spec_path, _check_ci_path),
    ]
    for option, value, check in checks:
        try:
            if not value:
                raise ValueError("must not be empty")
            check(value)
        except ValueError as exc:
            raise errors.UsageError(f"{option} {spec.show(value)} {exc}") from None
    context = {
        "specPath": spec_path,
        "ttl": ttl,
        "namePrefix": name_prefix,
        "hostKubeconfigSecret": HOST_KUBECONFIG_SECRET,
    }
    text = _template_text(CI_TEMPLATES[kind], context, templates_dir)
    _check_pipeline(kind, text)
    return text
