"""A tenant's virtual control plane: Helm values for the vcluster chart (sized to the tenant's limits,
the chart's own policies switched off) and the chart reference. Pure.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from vcluster_mgr import errors, kube, naming, spec
from vcluster_mgr.render import control_plane_dns, templating

# ---------------------------------------------------------------------------------------------
# Virtual control plane: Helm values for the vcluster chart
# ---------------------------------------------------------------------------------------------

CONTROL_PLANE_VALUES_TEMPLATE = "controlplane/values.yaml.j2"

RUN_AS = 12345
"""The non-root user and group the control plane, its init container, etcd and CoreDNS run as."""

DEFAULT_PERSISTENCE_SIZE = "5Gi"
"""Size of the control plane's data volume when spec.controlPlane.persistence.size is left out (the chart's)."""

CHART_CONTAINER_RESOURCES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "distro": ({"cpu": "40m", "memory": "64Mi"}, {"cpu": "100m", "memory": "256Mi"}),
    "coredns": ({"cpu": "20m", "memory": "64Mi"}, {"cpu": "1", "memory": "170Mi"}),
    "etcd": ({"cpu": "20m", "memory": "150Mi"}, {"cpu": "1", "memory": "1Gi"}),
}
"""(requests, limits) of the chart's other containers: its own defaults (etcd gets limits it lacks), lowered
to the tenant's limits.max so the namespace's LimitRange accepts them."""


SYNCER_REPOSITORY = "loft-sh/vcluster-oss"
"""The open-source build of the syncer image; the chart's default, ``loft-sh/vcluster-pro``, is the licensed one."""

CONTROLLERS_WITHOUT_CLOUD_NODE_LIFECYCLE = (
    "--controllers=*,-nodeipam,-nodelifecycle,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ttl"
)
"""The controller list the syncer gives the virtual kube-controller-manager, without ``-cloud-node-lifecycle``:
Kubernetes 1.37 no longer knows that controller and exits on its name (vcluster 0.36 is released for 1.36)."""


def controller_manager_args(kubernetes_tag: str | None) -> list[str]:
    """Extra flags of the virtual kube-controller-manager for the distro version ``v1.37.2`` (None: the chart's
    default, 1.36): the controller list it accepts from 1.37 on, nothing before."""
    if kubernetes_tag is None:
        return []
    major, minor = (int(part) for part in kubernetes_tag.lstrip("v").split(".")[:2])
    return [CONTROLLERS_WITHOUT_CLOUD_NODE_LIFECYCLE] if (major, minor) >= (1, 37) else []


def _smallest(*quantities: str) -> str:
    return min(quantities, key=lambda text: kube.parse_quantity(text).value)


def _largest(*quantities: str) -> str:
    return max(quantities, key=lambda text: kube.parse_quantity(text).value)


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
        name: _fitted(requests, limits, tenant_max) for name, (requests, limits) in CHART_CONTAINER_RESOURCES.items()
    }
    resources["controlPlane"] = _control_plane_resources(cp, tenant_max, policy)
    volume_claim: dict[str, Any] = {"enabled": cp.persistence.enabled}
    if cp.persistence.enabled:
        volume_claim["size"] = cp.persistence.size or DEFAULT_PERSISTENCE_SIZE
        if cp.persistence.storage_class:
            volume_claim["storageClass"] = cp.persistence.storage_class
    kubernetes_tag = naming.kubernetes_image_tag(cp.version) if cp.version else None
    return {
        "release": naming.control_plane_release(tenant.name),
        "namespace": tenant.namespace_names()[0],
        "podSecurity": s.pod_security,
        "kubernetesImageTag": kubernetes_tag,
        "controllerManagerArgs": controller_manager_args(kubernetes_tag),
        # the chart's Chart.yaml outside a release says 0.0.1 (its pipeline stamps the real one), so the tag is set
        "syncerImage": {"repository": SYNCER_REPOSITORY, "tag": cp.chart.version},
        "backingStore": cp.backing_store,
        "resources": resources,
        "volumeClaim": volume_claim,
        "exposure": {"type": cp.exposure.type, "ingressHost": cp.exposure.ingress_host},
        "sync": {
            "ingresses": cp.sync.ingresses,
            "storageClasses": cp.sync.storage_classes,
            "nodes": cp.sync.nodes,
        },
        "sleepAfter": kube.go_duration(kube.parse_duration(cp.sleep_after)) if cp.sleep_after else None,
        "nodeSelector": dict(sorted(s.placement.node_selector.items())),
        "runAs": RUN_AS,
        "corednsManifest": control_plane_dns.coredns_manifest(
            image=policy.control_plane_coredns_image, node_selector=dict(sorted(s.placement.node_selector.items())),
            resources=resources["coredns"], run_as=RUN_AS),
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
        raise errors.RenderError(f"template {name} must render one mapping of Helm values, got {spec.show(values)}")
    policies = values.get("policies")
    for key in _CHART_POLICIES_OFF:
        section = policies.get(key) if isinstance(policies, dict) else None
        if not isinstance(section, dict) or section.get("enabled") is not False:
            raise errors.RenderError(
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
    documents = templating.parse_documents(name, templating.template_text(name, context, templates_dir))
    if len(documents) != 1:
        raise errors.RenderError(f"template {name} must render exactly one YAML document, got {len(documents)}")
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
