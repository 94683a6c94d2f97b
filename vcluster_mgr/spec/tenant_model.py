"""The ``Tenant`` document: metadata, owners, namespaces, quota, limits, network, placement, control plane.

These models check shape and syntax only (pass 1); what spans fields or needs the admin policy is in
``rules`` and ``control_plane_rules`` (pass 2).

It stays one module above 400 lines because it is one document: the models nest into ``Tenant`` in the
order the JSON Schema shows them, and a reader follows one field's description from here to the schema.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
)
from pydantic_core import PydanticCustomError

from vcluster_mgr import kube, naming
from vcluster_mgr.spec import field_types, messages

# ---------------------------------------------------------------------------------------------
# The Tenant document
# ---------------------------------------------------------------------------------------------


class Metadata(field_types.Model):
    """Who the tenant is."""

    name: field_types.DnsLabel = Field(
        description="Tenant name, a DNS-1123 label. Prefixes every namespace of the tenant (<name>-<namespace>)."
    )
    labels: dict[field_types.SpecLabelKey, field_types.LabelValue] = Field(
        default_factory=dict,
        description="Labels copied onto every object of the tenant. Keys under kubernetes.io, k8s.io and "
        "vcluster-mgr.dev are reserved (app.kubernetes.io/* is allowed except managed-by).",
    )


class Owner(field_types.Model):
    """Someone who may use the tenant: bound to a built-in ClusterRole in every namespace of the tenant."""

    kind: Literal["User", "Group", "ServiceAccount"] = Field(description="Kind of RBAC subject.")
    name: field_types.PrintableName = Field(
        description="User or group name as the API server's authenticator reports it, or the ServiceAccount name."
    )
    namespace: field_types.DnsLabel | None = Field(
        default=None,
        description="ServiceAccount owners only: the namespace of the ServiceAccount, which must be one of "
        "the tenant's own namespaces (e.g. payments-ci).",
    )
    role: field_types.Role = Field(
        description="Built-in ClusterRole bound in each tenant namespace: admin, edit or view."
    )


class Quota(field_types.Model):
    """Resource totals for the whole tenant. Fields left out come from the policy's defaultQuota."""

    cpu: field_types.Quantity | None = Field(
        default=None, description=f"CPU requests (requests.cpu). {field_types.SPLIT_QUANTITY}"
    )
    limits_cpu: field_types.Quantity | None = Field(
        default=None, description=f"CPU limits (limits.cpu); defaults to cpu. {field_types.SPLIT_QUANTITY}"
    )
    memory: field_types.Quantity | None = Field(
        default=None, description=f"Memory requests (requests.memory). {field_types.SPLIT_QUANTITY}"
    )
    limits_memory: field_types.Quantity | None = Field(
        default=None, description=f"Memory limits (limits.memory); defaults to memory. {field_types.SPLIT_QUANTITY}"
    )
    storage: field_types.Quantity | None = Field(
        default=None, description=f"Requested persistent storage (requests.storage). {field_types.SPLIT_QUANTITY}"
    )
    pods: field_types.Count | None = Field(default=None, description=f"Number of pods. {field_types.SPLIT_COUNT}")
    services: field_types.Count | None = Field(
        default=None, description=f"Number of Services. {field_types.SPLIT_COUNT}"
    )
    gpu: field_types.Count | None = Field(
        default=None, description=f"nvidia.com/gpu requests. {field_types.SPLIT_COUNT}"
    )
    extended_resources: dict[field_types.LabelKey, field_types.Count] = Field(
        default_factory=dict,
        description="GPU and other extended resources other than nvidia.com/gpu (quota.gpu), such as MIG "
        "profiles (nvidia.com/mig-1g.10gb): requests.<name> in the ResourceQuota. Only names the policy's "
        "extendedResources lists, each within its ceiling there; a listed name left out here gets 0. "
        f"{field_types.SPLIT_COUNT}",
    )
    device_classes: dict[field_types.ObjectResource, field_types.Count] = Field(
        default_factory=dict,
        description="DRA devices per DeviceClass (ResourceQuota <class>.deviceclass.resource.k8s.io/devices): "
        "how many devices of that class the tenant's ResourceClaims may ask for in total. Only classes the "
        "policy's deviceClasses lists, each within its ceiling there; a listed class left out here gets 0. "
        f"{field_types.SPLIT_COUNT}",
    )
    objects: dict[field_types.ObjectResource, field_types.Count] = Field(
        default_factory=dict,
        description="Object counts (ResourceQuota count/<resource>), keyed by resource as the quota names it: "
        "configmaps, secrets, persistentvolumeclaims, serviceaccounts, jobs.batch, cronjobs.batch, or any "
        "resource the policy's defaultQuota.objects names. Left-out keys come from the policy; each value must "
        "stay within the policy's maxObjects. Each namespace's count includes what Kubernetes itself "
        f"creates there (the kube-root-ca.crt ConfigMap, the default ServiceAccount). {field_types.SPLIT_COUNT}",
    )
    shares: dict[field_types.DnsLabel, field_types.Count] | None = Field(
        default=None,
        description="How the totals are split across the tenant's namespaces: a weight per namespace, keyed as in "
        "spec.namespaces (e.g. {cp: 3, apps: 1} gives cp three quarters). Every namespace must be named; a weight "
        "of 0 gives that namespace a quota of 0. Left out: even shares, except with a control plane, where the "
        "first namespace (which holds everything the virtual cluster runs or syncs) gets all of it.",
    )


class ContainerResources(field_types.Model):
    """A CPU and memory pair for one container."""

    cpu: field_types.Quantity | None = Field(default=None, description="CPU, e.g. 500m or 2.")
    memory: field_types.Quantity | None = Field(default=None, description="Memory, e.g. 512Mi or 2Gi.")


class Limits(field_types.Model):
    """Per-container defaults and ceiling (a LimitRange of type Container in each namespace).

    Values left out come from the policy's defaultLimits. defaultRequest <= default <= max must hold.
    """

    default_request: ContainerResources | None = Field(
        default=None, description="Requests given to containers that set none."
    )
    default: ContainerResources | None = Field(default=None, description="Limits given to containers that set none.")
    max: ContainerResources | None = Field(default=None, description="Largest limit any container may set.")


class IngressPeer(field_types.Model):
    """A source outside the tenant allowed to reach every pod of the tenant."""

    namespace: field_types.DnsLabel = Field(description="Namespace whose pods may connect (e.g. ingress-nginx).")


class EgressRule(field_types.Model):
    """A destination outside the cluster the tenant's pods may reach (strict isolation only)."""

    cidr: field_types.Cidr = Field(description="Destination network; must lie inside one of the policy's egressCidrs.")
    ports: list[field_types.Port] = Field(
        default_factory=list, description="Destination ports; empty means every port."
    )
    protocol: Literal["TCP", "UDP", "SCTP"] = Field(default="TCP", description="Protocol of the ports.")


class Network(field_types.Model):
    """Network isolation of the tenant's namespaces (NetworkPolicies)."""

    isolation: field_types.IsolationLevel = Field(
        default="strict",
        description="strict: deny all ingress and egress except cluster DNS, the tenant's own namespaces and "
        "the allow-lists. namespace: deny ingress except from the tenant's own namespaces and "
        "allowIngressFrom; egress open. none: no NetworkPolicies (only if the policy allows it).",
    )
    allow_ingress_from: list[IngressPeer] = Field(
        default_factory=list, description="Other namespaces allowed to connect to the tenant (strict, namespace)."
    )
    allow_egress_to: list[EgressRule] = Field(
        default_factory=list, description="Networks the tenant may connect to (strict only)."
    )


class Toleration(field_types.Model):
    """A toleration of a node taint, as in a pod's spec.tolerations."""

    key: field_types.LabelKey = Field(description="Taint key, such as nvidia.com/gpu.")
    operator: Literal["Exists", "Equal"] = Field(default="Exists", description="Exists (any value) or Equal.")
    value: field_types.LabelValue | None = Field(default=None, description="Taint value, for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect; null tolerates every effect."
    )


class GpuPlacement(field_types.Model):
    """Where pods that request a GPU (nvidia.com/gpu or a policy's extendedResources name) run."""

    node_selector: dict[field_types.LabelKey, field_types.LabelValue] = Field(
        default_factory=dict,
        description="The GPU pool: every pod requesting a GPU must carry these key=value pairs in spec.nodeSelector "
        "(vcm-placement admission policy). Empty: the policy's gpuPlacement.nodeSelector.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Tolerations of GPU taints that the tenant's GPU pods may carry; each must be one of the policy's "
        "gpuPlacement.tolerations. Pods without a GPU may not tolerate those taint keys at all. Empty: the "
        "policy's.",
    )


class Placement(field_types.Model):
    """Where the tenant's pods run."""

    node_selector: dict[field_types.LabelKey, field_types.LabelValue] = Field(
        default_factory=dict,
        description="Every pod of the tenant must carry these key=value pairs in spec.nodeSelector "
        "(enforced by the vcm-placement admission policy).",
    )
    cluster: field_types.DnsLabel | None = Field(
        default=None, description="Name of the host cluster (from the admin config) the tenant lives on."
    )
    gpu: GpuPlacement = Field(
        default_factory=GpuPlacement, description="Node pool and taint tolerations of the tenant's GPU pods."
    )


ControlPlaneExposureType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
ControlPlaneExposure = Literal["ClusterIP", "NodePort", "LoadBalancer", "Ingress"]
ControlPlaneSyncResource = Literal["ingresses", "storageClasses", "nodes"]
Hostname = Annotated[
    str,
    AfterValidator(field_types.checked(kube.check_dns_subdomain)),
    Field(**field_types.json_schema_extra(maxLength=kube.DNS1123_SUBDOMAIN_MAX)),
]
KubernetesVersion = Annotated[
    str,
    AfterValidator(field_types.checked(naming.check_kubernetes_version)),
    Field(**field_types.json_schema_extra(pattern=f"^{naming.KUBERNETES_VERSION_PATTERN}$")),
]
ChartVersion = Annotated[
    str,
    AfterValidator(field_types.checked(naming.check_chart_version)),
    Field(**field_types.json_schema_extra(pattern=f"^{naming.CHART_VERSION_PATTERN}$")),
]


def _json_value(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not plain JSON data (mappings with string keys, lists, strings, numbers, booleans,
    null), or None if it is. YAML can also give dates, binary and sets, which Helm values cannot hold."""
    if depth > 64:
        return "is nested more than 64 levels deep"
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"holds {value}, which JSON cannot represent"
    if isinstance(value, list):
        return next((r for r in (_json_value(v, depth + 1) for v in value) if r), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has the key {messages.show(key)}; keys must be strings"
            reason = _json_value(item, depth + 1)
            if reason:
                return reason
        return None
    return f"holds a {type(value).__name__} value ({messages.show(value)}); only JSON data (no dates, binary or sets)"


def _helm_values(value: dict[str, Any]) -> dict[str, Any]:
    reason = _json_value(value)
    if reason:
        raise PydanticCustomError("vcm", "{reason}", {"reason": reason})
    return value


HelmValues = Annotated[dict[str, Any], AfterValidator(_helm_values)]


class ControlPlaneResources(field_types.Model):
    """CPU and memory of the control plane container (the vcluster syncer with its API server)."""

    requests: ContainerResources | None = Field(
        default=None,
        description="Requests; left out: cpu 200m and memory 256Mi, lowered to the limits if those are smaller.",
    )
    limits: ContainerResources | None = Field(
        default=None,
        description="Limits; left out: cpu 1 and memory 2Gi, lowered to the tenant's limits.max and the policy's "
        "maxControlPlaneCpu / maxControlPlaneMemory (and raised to a request given above them). Must fit "
        "limits.max, or the namespace's LimitRange refuses the pod.",
    )


class Persistence(field_types.Model):
    """Where the control plane keeps its data (the embedded database, or the deployed etcd)."""

    enabled: bool = Field(
        default=True,
        description="A PersistentVolumeClaim for the data; false keeps it in an emptyDir, lost with the pod "
        "(fine for short-lived CI tenants).",
    )
    size: field_types.Quantity | None = Field(
        default=None, description="Size of the volume; 5Gi if left out. Counts against quota.storage."
    )
    storage_class: Hostname | None = Field(
        default=None, description="StorageClass of the volume; the cluster's default class if left out."
    )


class Exposure(field_types.Model):
    """How the control plane's API server is reached from outside the tenant's namespaces."""

    type: ControlPlaneExposureType = Field(
        default="ClusterIP",
        description="Type of the control plane Service: ClusterIP (inside the cluster only), NodePort or "
        "LoadBalancer. Must be in the policy's allowedControlPlaneExposures.",
    )
    ingress_host: Hostname | None = Field(
        default=None,
        description="Also expose the API server through an Ingress at this host name (TLS passthrough); the "
        "policy's allowedControlPlaneExposures must list Ingress.",
    )


class ControlPlaneSync(field_types.Model):
    """Which extra resources the virtual cluster syncs with the host. Each must be in allowedControlPlaneSync."""

    ingresses: bool = Field(
        default=False,
        description="Sync Ingresses created in the virtual cluster to the tenant's namespace, and show the host's "
        "IngressClasses inside.",
    )
    storage_classes: bool = Field(
        default=False,
        description="Show the host's StorageClasses inside the virtual cluster (read-only; the virtual cluster "
        "never creates StorageClasses on the host).",
    )
    nodes: bool = Field(
        default=False,
        description="Show the real host nodes the tenant's pods run on (read-only, image lists cleared) instead "
        "of fake nodes. With placement.nodeSelector, only nodes carrying it.",
    )


class Chart(field_types.Model):
    """Which vcluster Helm chart installs the control plane. Give at most one source; none means repository."""

    version: ChartVersion = Field(
        default=naming.CONTROL_PLANE_CHART_VERSION,
        description=f"Exact chart version. vcluster-mgr generates values for {naming.CONTROL_PLANE_CHART_VERSION}.",
    )
    repository: field_types.PrintableName | None = Field(
        default=None,
        description=f"Helm repository URL (http:// or https://); {naming.CONTROL_PLANE_CHART_REPOSITORY} if no "
        "source is given.",
    )
    oci: field_types.PrintableName | None = Field(
        default=None, description="OCI reference of the chart, such as oci://registry.example.com/charts/vcluster."
    )
    path: field_types.PrintableName | None = Field(
        default=None,
        description="Local chart folder or .tgz archive on the machine running vcm (air-gapped installs).",
    )

    def source(self) -> tuple[Literal["repository", "oci", "path"], str]:
        """The one source of the chart as (kind, reference); the public repository when none is given."""
        if self.oci is not None:
            return "oci", self.oci
        if self.path is not None:
            return "path", self.path
        return "repository", self.repository or naming.CONTROL_PLANE_CHART_REPOSITORY


class ControlPlane(field_types.Model):
    """An optional virtual control plane (a vcluster) for the tenant, installed in its first namespace.

    Everything the virtual cluster runs or syncs lands in the tenant's first namespace, so the tenant's
    quota, limits, NetworkPolicies, pod security level and nodeSelector apply to it as to any other pod.
    """

    enabled: bool = Field(default=False, description="Give the tenant its own virtual control plane.")
    version: KubernetesVersion | None = Field(
        default=None,
        description="Kubernetes release of the virtual cluster, such as 1.33.4; the chart's default if left out.",
    )
    backing_store: Literal["embedded", "etcd"] = Field(
        default="embedded",
        description="embedded: a database inside the control plane pod (SQLite through kine). etcd: an etcd "
        "StatefulSet beside it.",
    )
    resources: ControlPlaneResources = Field(
        default_factory=ControlPlaneResources, description="CPU and memory of the control plane container."
    )
    persistence: Persistence = Field(default_factory=Persistence, description="Volume for the control plane's data.")
    exposure: Exposure = Field(default_factory=Exposure, description="How the API server is reached.")
    sync: ControlPlaneSync = Field(
        default_factory=ControlPlaneSync, description="Extra resources synced between virtual cluster and host."
    )
    sleep_after: field_types.Duration | None = Field(
        default=None,
        description="Scale the virtual cluster's workloads down after this long without activity, such as 30m "
        "(vCluster's sleep mode, a licensed vCluster feature). Null: never.",
    )
    values: HelmValues = Field(
        default_factory=dict,
        description="Helm values merged LAST into the generated ones (maps merge key by key, anything else "
        "replaces; null removes a generated key). Only if the policy has allowControlPlaneValues; keys that "
        "would reach outside the tenant (rbac, experimental, plugins, ...) are always refused.",
    )
    chart: Chart = Field(default_factory=Chart, description="Source and version of the vcluster Helm chart.")


Namespaces = Annotated[list[field_types.DnsLabel], Field(min_length=1)]
Owners = Annotated[list[Owner], Field(min_length=1)]


class TenantSpec(field_types.Model):
    """What the tenant gets."""

    owners: Owners = Field(description="Users, groups and ServiceAccounts given a role in every tenant namespace.")
    namespaces: Namespaces = Field(
        description="Namespace suffixes; each becomes a namespace <tenant>-<suffix> of at most 63 characters."
    )
    quota: Quota | None = Field(default=None, description="Resource totals for the whole tenant.")
    limits: Limits | None = Field(default=None, description="Per-container defaults and ceiling.")
    network: Network = Field(default_factory=Network, description="Network isolation.")
    pod_security: field_types.PodSecurityLevel = Field(
        default="restricted", description="Pod Security Standard enforced, audited and warned in every namespace."
    )
    placement: Placement = Field(
        default_factory=Placement, description="Node selection and host cluster of the tenant's pods."
    )
    control_plane: ControlPlane = Field(default_factory=ControlPlane, description="Optional virtual control plane.")
    ttl: field_types.Duration | None = Field(
        default=None,
        description="Lifetime of the tenant, such as 30m, 2h, 1d or 1h30m; null means no expiry.",
    )
    protect: bool | None = Field(
        default=None,
        description="Deletion protection: the tenant's namespaces carry Pulumi's protect flag, so a GitOps removal "
        "fails, and vcm delete / vcm gc refuse the tenant unless given --unprotect. Null: the policy's "
        "protectTenants. To lift it, set false and apply, or pass --unprotect.",
    )


class Tenant(field_types.Model):
    """A tenant of vcluster-mgr: an isolated slice of a shared Kubernetes cluster."""

    api_version: Literal["vcluster-mgr.dev/v1alpha1"] = Field(description="Always vcluster-mgr.dev/v1alpha1.")
    kind: Literal["Tenant"] = Field(description="Always Tenant.")
    metadata: Metadata = Field(description="Name and labels of the tenant.")
    spec: TenantSpec = Field(description="Owners, namespaces, quota, limits, network, placement and lifetime.")

    _source: str | None = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        """The tenant's name (``metadata.name``)."""
        return self.metadata.name

    @property
    def labels(self) -> dict[str, str]:
        """The spec's own labels (``metadata.labels``), copied onto every object."""
        return dict(self.metadata.labels)

    @property
    def source(self) -> str | None:
        """The file this tenant was read from, if any."""
        return self._source

    def namespace_names(self) -> list[str]:
        """The tenant's real namespaces in spec order: ``['payments-app', 'payments-ci']``."""
        return [naming.namespace_name(self.name, ns) for ns in self.spec.namespaces]

    def ttl_duration(self) -> timedelta | None:
        """``spec.ttl`` as a timedelta, or None for no expiry."""
        return None if self.spec.ttl is None else kube.parse_duration(self.spec.ttl)
