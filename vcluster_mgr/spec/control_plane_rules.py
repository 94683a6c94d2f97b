"""The rules of ``spec.controlPlane``: chart sources, resources within the tenant's limits and the
policy's ceilings, exposures and sync the policy allows, and Helm values that may never be set.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

from vcluster_mgr.spec import messages, policy_model, tenant_model

PROTECTED_VALUES: dict[str, str] = {
    "rbac": "it sets the Roles and ClusterRoles the control plane gets on the host",
    "experimental": "it can apply manifests to the host cluster and change how objects are synced",
    "plugins": "plugins run extra containers with extra permissions on the host",
    "plugin": "plugins run extra containers with extra permissions on the host",
    "integrations": "integrations sync host-wide resources and add RBAC on the host",
    "privateNodes": "private nodes join machines that are not the host cluster's nodes",
    "networking.replicateServices": "it copies Services across host namespaces",
    "policies.resourceQuota": "the tenant's own ResourceQuota on the host namespace applies instead",
    "policies.limitRange": "the tenant's own LimitRange on the host namespace applies instead",
    "policies.networkPolicy": "the chart's NetworkPolicies would add allow rules beside the tenant's own",
    "sync.toHost.namespaces": "it creates namespaces on the host",
    "sync.toHost.storageClasses": "it creates cluster-wide StorageClasses on the host",
    "sync.toHost.persistentVolumes": "it creates cluster-wide PersistentVolumes on the host",
    "sync.toHost.priorityClasses": "it creates cluster-wide PriorityClasses on the host",
    "sync.toHost.volumeSnapshotContents": "it creates cluster-wide VolumeSnapshotContents on the host",
    "sync.toHost.customResources": "it syncs arbitrary resources, cluster-wide ones included, to the host",
    "sync.fromHost.secrets": "it reads Secrets of other host namespaces",
    "sync.fromHost.configMaps": "it reads ConfigMaps of other host namespaces",
    "sync.fromHost.customResources": "it reads arbitrary host resources",
    "sync.fromHost.nodes": "use spec.controlPlane.sync.nodes (it keeps the tenant's nodeSelector and hides images)",
    "controlPlane.advanced.serviceAccount": "the control plane must run as the ServiceAccount the chart makes for it",
    "controlPlane.hostPathMapper": "it mounts host paths of the nodes",
    "exportKubeConfig.secret": "it writes the kubeconfig Secret to other namespaces",
    "exportKubeConfig.additionalSecrets": "it writes kubeconfig Secrets to other namespaces",
}
"""Keys of ``controlPlane.values`` refused whatever the policy says, with why: each would let the virtual
cluster act outside the tenant's namespaces on the host, or undo what vcluster-mgr generates to keep it in."""

DEFAULT_CONTROL_PLANE_REQUESTS = {"cpu": "200m", "memory": "256Mi"}
"""Requests of the control plane container when the spec gives none (the chart's own defaults)."""

DEFAULT_CONTROL_PLANE_LIMITS = {"cpu": "1", "memory": "2Gi"}
"""Limits of the control plane container when the spec gives none (lowered to the tenant's limits.max and the
policy's maxControlPlaneCpu / maxControlPlaneMemory)."""


def _protected_values(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, message) for every protected key ``values`` sets."""
    out = []
    for dotted, why in PROTECTED_VALUES.items():
        node: Any = values
        keys = dotted.split(".")
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            path = messages.format_path(["spec", "controlPlane", "values", *keys])
            out.append((path, f"may not be set: {why}"))
    return out


def chart_source_allowed(kind: str, reference: str, allowed: Iterable[str]) -> bool:
    """Whether a chart source is one of ``allowed`` or below one of them (``entry`` + ``/...``).

    Local paths are normalised first (``/opt/charts/../etc`` is ``/etc``); URLs and OCI references are
    compared as written, so ``https://charts.example.com.evil`` is not below ``https://charts.example.com``.
    """
    if kind == "path":
        reference = posixpath.normpath(reference)
    for entry in allowed:
        if kind == "path":
            entry = posixpath.normpath(entry)
        if reference == entry or reference.startswith(entry.rstrip("/") + "/"):
            return True
    return False


def _chart_errors(chart: tenant_model.Chart, policy: policy_model.Policy, *, enabled: bool) -> list[tuple[str, str]]:
    out = []
    base = "spec.controlPlane.chart"
    given = [kind for kind in ("repository", "oci", "path") if getattr(chart, kind) is not None]
    if len(given) > 1:
        out.append((base, f"gives {' and '.join(given)}; give exactly one chart source: repository, oci or path"))
    if chart.repository is not None and not chart.repository.startswith(("https://", "http://")):
        out.append((f"{base}.repository", f"{messages.show(chart.repository)} is not an http:// or https:// URL"))
    if chart.oci is not None and not chart.oci.startswith("oci://"):
        message = (
            f"{messages.show(chart.oci)} is not an OCI reference such as oci://registry.example.com/charts/vcluster"
        )
        out.append((f"{base}.oci", message))
    if not enabled or len(given) > 1:
        return out
    kind, reference = chart.source()
    if not chart_source_allowed(kind, reference, policy.allowed_chart_sources):
        allowed = ", ".join(policy.allowed_chart_sources) or "none"
        what = messages.show(reference) if given else f"the default {reference}"
        message = f"{what} is not allowed by the policy's allowedChartSources ({allowed})"
        out.append((f"{base}.{kind}", message))
    return out


def _control_plane_resource_errors(
    cp: tenant_model.ControlPlane, limits: tenant_model.Limits | None, policy: policy_model.Policy, *, enabled: bool
) -> list[tuple[str, str]]:
    """Requests within limits; when enabled, within the policy's ceilings and the tenant's limits.max."""
    out = []
    base = "spec.controlPlane.resources"
    requests, caps = cp.resources.requests, cp.resources.limits
    for resource in ("cpu", "memory"):
        low = getattr(requests, resource) if requests else None
        high = getattr(caps, resource) if caps else None
        if (
            low is not None
            and high is not None
            and policy_model.as_quantity(low).value > policy_model.as_quantity(high).value
        ):
            message = f"{low} is more than limits.{resource} ({high}); requests must be <= limits"
            out.append((f"{base}.requests.{resource}", message))
        if not enabled:
            continue
        ceiling = policy.max_control_plane_cpu if resource == "cpu" else policy.max_control_plane_memory
        setting = "maxControlPlaneCpu" if resource == "cpu" else "maxControlPlaneMemory"
        tenant_max = getattr(limits.max, resource) if limits is not None and limits.max is not None else None
        for section, value in (("requests", low), ("limits", high)):
            if value is None:
                continue
            problem = policy_model.over_ceiling(f"{base}.{section}.{resource}", value, ceiling, setting)
            if problem:
                out.append(problem)
            elif (
                tenant_max is not None
                and policy_model.as_quantity(value).value > policy_model.as_quantity(tenant_max).value
            ):
                message = (
                    f"{value} is more than spec.limits.max.{resource} ({tenant_max}); the namespace's LimitRange "
                    "would refuse the control plane pod"
                )
                out.append((f"{base}.{section}.{resource}", message))
    return out


def control_plane_errors(
    cp: tenant_model.ControlPlane,
    limits: tenant_model.Limits | None,
    policy: policy_model.Policy,
    *,
    as_enabled: bool = False,
) -> list[tuple[str, str]]:
    """Problems of spec.controlPlane: its own consistency always; the policy's rules when it is enabled.

    ``limits`` are the tenant's resolved limits (None if they are invalid); ``as_enabled`` applies the
    policy's rules even when ``enabled`` is false (render does, before generating values).
    """
    base = "spec.controlPlane"
    enabled = cp.enabled or as_enabled
    out = _chart_errors(cp.chart, policy, enabled=enabled)
    if not cp.persistence.enabled:
        for field, alias in (("size", "size"), ("storage_class", "storageClass")):
            if getattr(cp.persistence, field) is not None:
                message = "has no effect with enabled: false (the data lives in an emptyDir); remove it"
                out.append((f"{base}.persistence.{alias}", message))
    out += _control_plane_resource_errors(cp, limits, policy, enabled=enabled)
    if not enabled:
        return out
    if not policy.allow_control_planes:
        what = "true is not allowed" if cp.enabled else "a control plane is not allowed"
        out.append((f"{base}.enabled", f"{what}: the policy has allowControlPlanes=false"))
    exposure = cp.exposure
    allowed = ", ".join(policy.allowed_control_plane_exposures) or "none"
    if exposure.type not in policy.allowed_control_plane_exposures:
        message = (
            f"{messages.show(exposure.type)} is not allowed by the policy; allowedControlPlaneExposures: {allowed}"
        )
        out.append((f"{base}.exposure.type", message))
    elif exposure.type == "NodePort" and not policy.allow_node_ports:
        message = "NodePort needs the policy's allowNodePorts=true (the tenant's ResourceQuota allows no NodePort)"
        out.append((f"{base}.exposure.type", message))
    elif exposure.type == "LoadBalancer" and not policy.allow_load_balancers:
        message = (
            "LoadBalancer needs the policy's allowLoadBalancers=true "
            "(the tenant's ResourceQuota allows no LoadBalancer Service)"
        )
        out.append((f"{base}.exposure.type", message))
    if exposure.ingress_host is not None and "Ingress" not in policy.allowed_control_plane_exposures:
        message = (
            f"{messages.show(exposure.ingress_host)} is not allowed: the policy's "
            f"allowedControlPlaneExposures ({allowed})"
        )
        out.append((f"{base}.exposure.ingressHost", f"{message} does not list Ingress"))
    for field, alias in (("ingresses", "ingresses"), ("storage_classes", "storageClasses"), ("nodes", "nodes")):
        if getattr(cp.sync, field) and alias not in policy.allowed_control_plane_sync:
            allowed_sync = ", ".join(policy.allowed_control_plane_sync) or "none"
            message = f"true is not allowed by the policy; allowedControlPlaneSync: {allowed_sync}"
            out.append((f"{base}.sync.{alias}", message))
    if cp.sleep_after is not None and not policy.allow_licensed_control_plane_features:
        message = (
            "needs vCluster's sleep mode, a licensed feature that the open-source image ignores without a word; "
            "use `vcm sleep`, or set the policy's allowLicensedControlPlaneFeatures if the image is licensed"
        )
        out.append((f"{base}.sleepAfter", message))
    if cp.values and not policy.allow_control_plane_values:
        out.append((f"{base}.values", "is not allowed: the policy has allowControlPlaneValues=false"))
    out += _protected_values(cp.values)
    return out
