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

import functools
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

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
