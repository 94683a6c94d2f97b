"""The tenant spec and the admin policy: models, loading, every check, and the JSON Schema.

A ``Tenant`` document is checked in two passes, and both always run so a file's errors are all
reported at once:

1. the pydantic models check shape and syntax (unknown keys, types, DNS names, quantities, CIDRs,
   durations, label keys and values);
2. ``_semantic_errors`` checks what spans fields or needs the admin ``Policy`` (derived namespace
   names, ServiceAccount owners, limits ordering, policy ceilings and allowed levels). When pass 1
   failed, pass 2 still runs on every part of the spec that is valid on its own.

Every problem becomes an ``errors.FieldError`` with a dotted path (``spec.owners[1].role``), the bad
value and what would be valid; ``load_spec`` and friends raise one ``errors.SpecError`` holding them all.

Values the spec leaves out are filled in from the policy (``Policy.default_quota``,
``Policy.default_limits``), so a ``Tenant`` returned by this module is complete.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError

from vcluster_mgr import errors, naming

MAX_EXPANDED_NODES = 100_000
"""Most YAML nodes a document may expand to once anchors/aliases are followed (guards against alias bombs)."""

# ---------------------------------------------------------------------------------------------
# Field types: each wraps one check from ``naming`` so pydantic reports it at the field's path
# ---------------------------------------------------------------------------------------------


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        try:
            check(value)
        except ValueError as exc:
            raise PydanticCustomError("vcm", "{reason}", {"reason": str(exc)}) from None
        return value

    return validate


def _quantity(raw: object) -> str:
    """Parse a quantity (string or number), refuse negatives, and keep its canonical text."""
    try:
        quantity = naming.parse_quantity(raw)
    except ValueError as exc:
        raise PydanticCustomError("vcm", "{reason}", {"reason": str(exc)}) from None
    if quantity.value < 0:
        raise PydanticCustomError("vcm", "{reason}", {"reason": "must not be negative"})
    return str(quantity)


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise PydanticCustomError(
            "vcm", "{reason}", {"reason": f"is not a network in CIDR notation such as 10.20.0.0/16 ({exc})"}
        ) from None


def _duration(value: str) -> str:
    _checked(naming.parse_duration)(value)
    return value


def _schema(**schema: Any) -> dict[str, Any]:
    return {"json_schema_extra": schema}


DnsLabel = Annotated[
    str,
    AfterValidator(_checked(naming.check_dns_label)),
    Field(**_schema(pattern=f"^{naming.DNS1123_LABEL_PATTERN}$", maxLength=naming.DNS1123_LABEL_MAX)),
]
SpecLabelKey = Annotated[str, AfterValidator(_checked(naming.check_spec_label_key))]
LabelKey = Annotated[str, AfterValidator(_checked(naming.check_label_key))]
LabelValue = Annotated[
    str,
    AfterValidator(_checked(naming.check_label_value)),
    Field(**_schema(maxLength=naming.DNS1123_LABEL_MAX)),
]
Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^{naming.QUANTITY_PATTERN}$"},
                {"type": "number", "minimum": 0},
            ]
        }
    ),
]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Port = Annotated[int, Field(ge=1, le=65535)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Duration = Annotated[
    str, AfterValidator(_duration), Field(**_schema(pattern=f"^{naming.DURATION_PATTERN}$", minLength=2))
]
PrintableName = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_checked(naming.check_printable))]
Role = Literal["admin", "edit", "view"]
PodSecurityLevel = Literal["restricted", "baseline"]
IsolationLevel = Literal["strict", "namespace", "none"]

_QUOTA_SPLIT = (
    "The tenant total is split evenly across the tenant's namespaces: each namespace's ResourceQuota "
    "gets total / number-of-namespaces"
)
_SPLIT_QUANTITY = f"{_QUOTA_SPLIT}, rounded down to 1m (CPU) or 1 byte (memory, storage)."
_SPLIT_COUNT = f"{_QUOTA_SPLIT}, rounded down to a whole number but at least 1 unless the total is 0."


class _Model(BaseModel):
    """Strict: unknown keys are errors, no type coercion, camelCase keys in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        validate_default=True,
    )


# ---------------------------------------------------------------------------------------------
# The Tenant document
# ---------------------------------------------------------------------------------------------


class Metadata(_Model):
    """Who the tenant is."""

    name: DnsLabel = Field(
        description="Tenant name, a DNS-1123 label. Prefixes every namespace of the tenant (<name>-<namespace>)."
    )
    labels: dict[SpecLabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Labels copied onto every object of the tenant. Keys under kubernetes.io, k8s.io and "
        "vcluster-mgr.dev are reserved (app.kubernetes.io/* is allowed except managed-by).",
    )


class Owner(_Model):
    """Someone who may use the tenant: bound to a built-in ClusterRole in every namespace of the tenant."""

    kind: Literal["User", "Group", "ServiceAccount"] = Field(description="Kind of RBAC subject.")
    name: PrintableName = Field(
        description="User or group name as the API server's authenticator reports it, or the ServiceAccount name."
    )
    namespace: DnsLabel | None = Field(
        default=None,
        description="ServiceAccount owners only: the namespace of the ServiceAccount, which must be one of "
        "the tenant's own namespaces (e.g. payments-ci).",
    )
    role: Role = Field(description="Built-in ClusterRole bound in each tenant namespace: admin, edit or view.")


class Quota(_Model):
    """Resource totals for the whole tenant. Fields left out come from the policy's defaultQuota."""

    cpu: Quantity | None = Field(default=None, description=f"CPU requests (requests.cpu). {_SPLIT_QUANTITY}")
    limits_cpu: Quantity | None = Field(
        default=None, description=f"CPU limits (limits.cpu); defaults to cpu. {_SPLIT_QUANTITY}"
    )
    memory: Quantity | None = Field(default=None, description=f"Memory requests (requests.memory). {_SPLIT_QUANTITY}")
    limits_memory: Quantity | None = Field(
        default=None, description=f"Memory limits (limits.memory); defaults to memory. {_SPLIT_QUANTITY}"
    )
    storage: Quantity | None = Field(
        default=None, description=f"Requested persistent storage (requests.storage). {_SPLIT_QUANTITY}"
    )
    pods: Count | None = Field(default=None, description=f"Number of pods. {_SPLIT_COUNT}")
    services: Count | None = Field(default=None, description=f"Number of Services. {_SPLIT_COUNT}")
    gpu: Count | None = Field(default=None, description=f"nvidia.com/gpu requests. {_SPLIT_COUNT}")


class ContainerResources(_Model):
    """A CPU and memory pair for one container."""

    cpu: Quantity | None = Field(default=None, description="CPU, e.g. 500m or 2.")
    memory: Quantity | None = Field(default=None, description="Memory, e.g. 512Mi or 2Gi.")


class Limits(_Model):
    """Per-container defaults and ceiling (a LimitRange of type Container in each namespace).

    Values left out come from the policy's defaultLimits. defaultRequest <= default <= max must hold.
    """

    default_request: ContainerResources | None = Field(
        default=None, description="Requests given to containers that set none."
    )
    default: ContainerResources | None = Field(default=None, description="Limits given to containers that set none.")
    max: ContainerResources | None = Field(default=None, description="Largest limit any container may set.")


class IngressPeer(_Model):
    """A source outside the tenant allowed to reach every pod of the tenant."""

    namespace: DnsLabel = Field(description="Namespace whose pods may connect (e.g. ingress-nginx).")


class EgressRule(_Model):
    """A destination outside the cluster the tenant's pods may reach (strict isolation only)."""

    cidr: Cidr = Field(description="Destination network; must lie inside one of the policy's egressCidrs.")
    ports: list[Port] = Field(default_factory=list, description="Destination ports; empty means every port.")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field(default="TCP", description="Protocol of the ports.")


class Network(_Model):
    """Network isolation of the tenant's namespaces (NetworkPolicies)."""

    isolation: IsolationLevel = Field(
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


class Placement(_Model):
    """Where the tenant's pods run."""

    node_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Every pod of the tenant must carry these key=value pairs in spec.nodeSelector "
        "(enforced by the vcm-placement admission policy).",
    )
    cluster: DnsLabel | None = Field(
        default=None, description="Name of the host cluster (from the admin config) the tenant lives on."
    )


ControlPlaneExposureType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
ControlPlaneExposure = Literal["ClusterIP", "NodePort", "LoadBalancer", "Ingress"]
ControlPlaneSyncResource = Literal["ingresses", "storageClasses", "nodes"]
Hostname = Annotated[
    str,
    AfterValidator(_checked(naming.check_dns_subdomain)),
    Field(**_schema(maxLength=naming.DNS1123_SUBDOMAIN_MAX)),
]
KubernetesVersion = Annotated[
    str,
    AfterValidator(_checked(naming.check_kubernetes_version)),
    Field(**_schema(pattern=f"^{naming.KUBERNETES_VERSION_PATTERN}$")),
]
ChartVersion = Annotated[
    str,
    AfterValidator(_checked(naming.check_chart_version)),
    Field(**_schema(pattern=f"^{naming.CHART_VERSION_PATTERN}$")),
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
                return f"has the key {show(key)}; keys must be strings"
            reason = _json_value(item, depth + 1)
            if reason:
                return reason
        return None
    return f"holds a {type(value).__name__} value ({show(value)}); only JSON data (no dates, binary or sets)"


def _helm_values(value: dict[str, Any]) -> dict[str, Any]:
    reason = _json_value(value)
    if reason:
        raise PydanticCustomError("vcm", "{reason}", {"reason": reason})
    return value


HelmValues = Annotated[dict[str, Any], AfterValidator(_helm_values)]


class ControlPlaneResources(_Model):
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


class Persistence(_Model):
    """Where the control plane keeps its data (the embedded database, or the deployed etcd)."""

    enabled: bool = Field(
        default=True,
        description="A PersistentVolumeClaim for the data; false keeps it in an emptyDir, lost with the pod "
        "(fine for short-lived CI tenants).",
    )
    size: Quantity | None = Field(
        default=None, description="Size of the volume; 5Gi if left out. Counts against quota.storage."
    )
    storage_class: Hostname | None = Field(
        default=None, description="StorageClass of the volume; the cluster's default class if left out."
    )


class Exposure(_Model):
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


class ControlPlaneSync(_Model):
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


class Chart(_Model):
    """Which vcluster Helm chart installs the control plane. Give at most one source; none means repository."""

    version: ChartVersion = Field(
        default=naming.CONTROL_PLANE_CHART_VERSION,
        description=f"Exact chart version. vcluster-mgr generates values for {naming.CONTROL_PLANE_CHART_VERSION}.",
    )
    repository: PrintableName | None = Field(
        default=None,
        description=f"Helm repository URL (http:// or https://); {naming.CONTROL_PLANE_CHART_REPOSITORY} if no "
        "source is given.",
    )
    oci: PrintableName | None = Field(
        default=None, description="OCI reference of the chart, such as oci://registry.example.com/charts/vcluster."
    )
    path: PrintableName | None = Field(
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


class ControlPlane(_Model):
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
    sleep_after: Duration | None = Field(
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


Namespaces = Annotated[list[DnsLabel], Field(min_length=1)]
Owners = Annotated[list[Owner], Field(min_length=1)]


class TenantSpec(_Model):
    """What the tenant gets."""

    owners: Owners = Field(description="Users, groups and ServiceAccounts given a role in every tenant namespace.")
    namespaces: Namespaces = Field(
        description="Namespace suffixes; each becomes a namespace <tenant>-<suffix> of at most 63 characters."
    )
    quota: Quota | None = Field(default=None, description="Resource totals for the whole tenant.")
    limits: Limits | None = Field(default=None, description="Per-container defaults and ceiling.")
    network: Network = Field(default_factory=Network, description="Network isolation.")
    pod_security: PodSecurityLevel = Field(
        default="restricted", description="Pod Security Standard enforced, audited and warned in every namespace."
    )
    placement: Placement = Field(
        default_factory=Placement, description="Node selection and host cluster of the tenant's pods."
    )
    control_plane: ControlPlane = Field(default_factory=ControlPlane, description="Optional virtual control plane.")
    ttl: Duration | None = Field(
        default=None,
        description="Lifetime of the tenant, such as 30m, 2h, 1d or 1h30m; null means no expiry.",
    )


class Tenant(_Model):
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
        return None if self.spec.ttl is None else naming.parse_duration(self.spec.ttl)


# ---------------------------------------------------------------------------------------------
# The admin Policy document
# ---------------------------------------------------------------------------------------------


class DefaultQuota(_Model):
    """Quota totals a tenant gets for every field its spec leaves out."""

    cpu: Quantity = Field(default="2", description="Default CPU requests per tenant.")
    memory: Quantity = Field(default="4Gi", description="Default memory requests per tenant.")
    storage: Quantity = Field(default="20Gi", description="Default persistent storage per tenant.")
    pods: Count = Field(default=20, description="Default number of pods per tenant.")
    services: Count = Field(default=10, description="Default number of Services per tenant.")
    gpu: Count = Field(default=0, description="Default nvidia.com/gpu per tenant.")


class DefaultResources(_Model):
    """A complete CPU and memory pair."""

    cpu: Quantity = Field(description="CPU.")
    memory: Quantity = Field(description="Memory.")


class DefaultLimits(_Model):
    """Container defaults and ceiling a tenant gets for every field its spec leaves out."""

    default_request: DefaultResources = Field(
        default_factory=lambda: DefaultResources.model_validate({"cpu": "100m", "memory": "128Mi"}),
        description="Default container requests.",
    )
    default: DefaultResources = Field(
        default_factory=lambda: DefaultResources.model_validate({"cpu": "500m", "memory": "512Mi"}),
        description="Default container limits.",
    )
    max: DefaultResources = Field(
        default_factory=lambda: DefaultResources.model_validate({"cpu": "2", "memory": "4Gi"}),
        description="Default largest container limit.",
    )


_POD_SECURITY_LEVELS: tuple[PodSecurityLevel, ...] = ("restricted", "baseline")
_DEFAULT_ISOLATION: tuple[IsolationLevel, ...] = ("strict", "namespace")
_DEFAULT_EXPOSURES: tuple[ControlPlaneExposure, ...] = ("ClusterIP",)
_DEFAULT_SYNC: tuple[ControlPlaneSyncResource, ...] = ("ingresses", "storageClasses")


class Policy(_Model):
    """What a platform admin allows tenants to ask for, and what they get when they ask for nothing."""

    api_version: Literal["vcluster-mgr.dev/v1alpha1"] = Field(
        default="vcluster-mgr.dev/v1alpha1", description="Always vcluster-mgr.dev/v1alpha1."
    )
    kind: Literal["Policy"] = Field(default="Policy", description="Always Policy.")
    max_cpu: Quantity = Field(default="32", description="Ceiling on a tenant's quota.cpu.")
    max_limits_cpu: Quantity | None = Field(
        default=None, description="Ceiling on a tenant's quota.limitsCpu; null means the same as maxCpu."
    )
    max_memory: Quantity = Field(default="128Gi", description="Ceiling on a tenant's quota.memory.")
    max_limits_memory: Quantity | None = Field(
        default=None, description="Ceiling on a tenant's quota.limitsMemory; null means the same as maxMemory."
    )
    max_storage: Quantity = Field(default="1Ti", description="Ceiling on a tenant's quota.storage.")
    max_gpu: Count = Field(default=4, description="Ceiling on a tenant's quota.gpu.")
    max_pods: Count = Field(default=500, description="Ceiling on a tenant's quota.pods.")
    max_services: Count = Field(default=100, description="Ceiling on a tenant's quota.services.")
    pod_security_levels: list[PodSecurityLevel] = Field(
        default_factory=lambda: list(_POD_SECURITY_LEVELS), description="Pod security levels tenants may choose."
    )
    isolation_levels: list[IsolationLevel] = Field(
        default_factory=lambda: list(_DEFAULT_ISOLATION), description="Network isolation levels tenants may choose."
    )
    egress_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        description="Every allowEgressTo cidr of a tenant must lie inside one of these networks.",
    )
    allow_node_ports: bool = Field(
        default=False, description="Allow NodePort Services (otherwise quota services.nodeports is 0)."
    )
    allow_load_balancers: bool = Field(
        default=False, description="Allow LoadBalancer Services (otherwise quota services.loadbalancers is 0)."
    )
    allow_control_planes: bool = Field(default=True, description="Allow tenants to enable controlPlane.")
    allowed_control_plane_exposures: list[ControlPlaneExposure] = Field(
        default_factory=lambda: list(_DEFAULT_EXPOSURES),
        description="How a tenant's control plane may be exposed: its Service type (ClusterIP, NodePort, "
        "LoadBalancer) and Ingress for controlPlane.exposure.ingressHost. NodePort and LoadBalancer also need "
        "allowNodePorts / allowLoadBalancers (the tenant's ResourceQuota allows none otherwise).",
    )
    max_control_plane_cpu: Quantity = Field(
        default="2", description="Ceiling on controlPlane.resources requests.cpu and limits.cpu."
    )
    max_control_plane_memory: Quantity = Field(
        default="4Gi", description="Ceiling on controlPlane.resources requests.memory and limits.memory."
    )
    allow_control_plane_values: bool = Field(
        default=True,
        description="Allow controlPlane.values, the free-form Helm values merged last. Keys that would reach "
        "outside the tenant (rbac, experimental, plugins, integrations, ...) are refused either way.",
    )
    allowed_control_plane_sync: list[ControlPlaneSyncResource] = Field(
        default_factory=lambda: list(_DEFAULT_SYNC),
        description="Which controlPlane.sync switches tenants may turn on. nodes is left out by default: it "
        "shows tenants the host's nodes (names, labels, capacity).",
    )
    allowed_chart_sources: list[PrintableName] = Field(
        default_factory=lambda: [naming.CONTROL_PLANE_CHART_REPOSITORY],
        description="Where the vcluster chart may come from: each entry is a repository URL, an oci:// reference "
        "or a local path, and allows itself and everything below it (entry + '/...'). Local paths are "
        "normalised first, so '..' cannot climb out.",
    )
    allow_no_ttl: bool = Field(default=True, description="Allow tenants without a ttl (that never expire).")
    max_ttl: Duration | None = Field(default=None, description="Longest ttl a tenant may ask for; null for no limit.")
    default_quota: DefaultQuota = Field(
        default_factory=DefaultQuota, description="Quota for fields a tenant's spec leaves out."
    )
    default_limits: DefaultLimits = Field(
        default_factory=DefaultLimits, description="Container limits for fields a tenant's spec leaves out."
    )

    def cidr_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``egress_cidrs`` as network objects."""
        return [ipaddress.ip_network(c) for c in self.egress_cidrs]


DEFAULT_POLICY = Policy()
"""The policy used when none is given: every default above."""


# ---------------------------------------------------------------------------------------------
# Turning pydantic's errors into FieldErrors
# ---------------------------------------------------------------------------------------------


def format_path(loc: Iterable[str | int]) -> str:
    """``('spec', 'owners', 1, 'role')`` -> ``spec.owners[1].role``; odd keys are quoted: ``labels["a/b"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("-", "").replace("_", "").isalnum() and part.isascii() and not part[:1].isdigit():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out or "(document)"


def show(value: object, limit: int = 80) -> str:
    """A short, one-line rendering of a bad value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # e.g. a recursive structure
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(annotation: Any) -> Any:
    """Strip ``X | None``, ``Optional`` and ``Annotated`` down to the one interesting type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class found at ``loc`` inside ``root``, used to list the keys valid there."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) and get_origin(current) is list:
            current = get_args(current)[0]
        elif isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or name: f for name, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_SIMPLE = {
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "bool_type": "expected true or false",
}


def _field_errors(exc: ValidationError, root: type[BaseModel], source: str | None) -> list[errors.FieldError]:
    out = []
    for item in exc.errors(include_url=False):
        loc = list(item["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc.pop()
        kind, value = item["type"], item.get("input")
        if kind == "extra_forbidden":
            model = _model_at(root, loc[:-1])
            valid = ", ".join(f.alias or n for n, f in model.model_fields.items()) if model else ""
            message = f"unknown key {show(loc[-1])}" + (f"; valid keys here: {valid}" if valid else "")
        elif kind == "missing":
            message = "is required but missing"
        elif kind == "vcm":
            message = f"{show(value)} {item['ctx']['reason']}"
        elif kind == "invalid_key":
            message = f"key {show(value)} must be a string"
            is_key = False
        else:
            message = f"{_SIMPLE.get(kind, item['msg'])}, got {show(value)}"
        if is_key:
            message = f"key {message}"
        out.append(errors.FieldError(format_path(loc), message, source))
    return out


# ---------------------------------------------------------------------------------------------
# Pass 2: what spans fields or needs the policy
# ---------------------------------------------------------------------------------------------


_INVALID: Any = object()
"""Marks a part of a raw document that failed pass 1 (its errors are already reported)."""


@dataclass(frozen=True)
class _Parts:
    """The parts of a tenant for pass 2; ``_INVALID`` where a part failed pass 1.

    ``namespaces`` and ``owners`` hold (index, value) for the list items that are valid on their own,
    so their paths stay right; ``namespaces_complete`` is False if some namespace entry was invalid.
    """

    name: Any
    namespaces: list[tuple[int, str]]
    namespaces_complete: bool
    owners: list[tuple[int, Owner]]
    quota: Any
    limits: Any
    network: Any
    pod_security: Any
    control_plane: Any
    ttl: Any


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "name": TypeAdapter(DnsLabel),
    "namespace": TypeAdapter(DnsLabel),
    "owner": TypeAdapter(Owner),
    "quota": TypeAdapter(Quota | None),
    "limits": TypeAdapter(Limits | None),
    "network": TypeAdapter(Network),
    "podSecurity": TypeAdapter(PodSecurityLevel),
    "controlPlane": TypeAdapter(ControlPlane),
    "ttl": TypeAdapter(Duration | None),
}


def _valid(key: str, mapping: dict[Any, Any], field: str, default: Any = _INVALID) -> Any:
    """``mapping[field]`` checked with the adapter ``key``; ``default`` if absent, ``_INVALID`` if bad."""
    if field not in mapping:
        return default
    try:
        return _ADAPTERS[key].validate_python(mapping[field])
    except ValidationError:
        return _INVALID


def _valid_items(key: str, raw: Any) -> tuple[list[tuple[int, Any]], bool]:
    """The items of a raw list that are valid on their own, with their index; and whether all were."""
    if not isinstance(raw, list):
        return [], False
    items = [(i, _valid(key, {"item": item}, "item")) for i, item in enumerate(raw)]
    valid = [(i, value) for i, value in items if value is not _INVALID]
    return valid, len(valid) == len(raw)


def _pruned(data: Any, locs: Iterable[tuple[str | int, ...]]) -> Any:
    """A copy of ``data`` without the mapping keys where pass 1 failed.

    Each failed location is cut at its first list index (``spec.owners[1].role`` drops
    ``spec.owners``; lists are checked item by item anyway), so the sections around a bad field
    still validate and pass 2 can check them.
    """

    def cut(node: Any, path: tuple[str | int, ...]) -> Any:
        if not isinstance(node, dict) or not path or path[0] not in node:
            return node
        copy = dict(node)
        if len(path) == 1 or not isinstance(path[1], str):
            del copy[path[0]]
        else:
            copy[path[0]] = cut(node[path[0]], path[1:])
        return copy

    for loc in locs:
        data = cut(data, loc)
    return data


def _parts_of_raw(data: Any, failed: Iterable[tuple[str | int, ...]]) -> _Parts:
    """Validate each part of a raw document on its own, so pass 2 can check whatever is valid.

    ``failed`` are the locations pass 1 reported; sections are checked without them, the
    namespaces and owners lists item by item.
    """

    def section(doc: Any, key: str) -> dict[Any, Any]:
        found = doc.get(key) if isinstance(doc, dict) else None
        return found if isinstance(found, dict) else {}

    whole = section(data, "spec")
    namespaces, complete = _valid_items("namespace", whole.get("namespaces"))
    owners, _ = _valid_items("owner", whole.get("owners"))
    data = _pruned(data, failed)
    meta, spec = section(data, "metadata"), section(data, "spec")
    quota = _valid("quota", spec, "quota", None)
    limits = _valid("limits", spec, "limits", None)
    return _Parts(
        name=_valid("name", meta, "name"),
        namespaces=namespaces,
        namespaces_complete=complete,
        owners=owners,
        quota=Quota() if quota is None else quota,
        limits=Limits() if limits is None else limits,
        network=_valid("network", spec, "network", Network()),
        pod_security=_valid("podSecurity", spec, "podSecurity", "restricted"),
        control_plane=_valid("controlPlane", spec, "controlPlane", ControlPlane()),
        ttl=_valid("ttl", spec, "ttl", None),
    )


def _parts_of(tenant: Tenant) -> _Parts:
    s = tenant.spec
    return _Parts(
        name=tenant.name,
        namespaces=list(enumerate(s.namespaces)),
        namespaces_complete=True,
        owners=list(enumerate(s.owners)),
        quota=s.quota or Quota(),
        limits=s.limits or Limits(),
        network=s.network,
        pod_security=s.pod_security,
        control_plane=s.control_plane,
        ttl=s.ttl,
    )


def _q(text: str) -> naming.Quantity:
    return naming.parse_quantity(text)


def _ceiling(path: str, value: str | int, ceiling: str | int, setting: str) -> tuple[str, str] | None:
    """A problem if ``value`` (a quantity text or a count) is above the policy's ``ceiling``."""
    over = _q(value).value > _q(str(ceiling)).value if isinstance(value, str) else value > int(ceiling)
    return (path, f"{value} exceeds the policy ceiling {setting}={ceiling}") if over else None


def _semantic_errors(p: _Parts, policy: Policy) -> list[tuple[str, str]]:
    """Every cross-field and policy problem of the valid parts, as (dotted path, message)."""
    out: list[tuple[str, str]] = []
    if p.name is not _INVALID:
        reason = naming.reserved_reason(p.name)
        if reason:
            out.append(("metadata.name", f"{show(p.name)} is reserved: {reason}"))
    out += _namespace_errors(p.name, p.namespaces)
    own = None
    if p.name is not _INVALID and p.namespaces_complete:
        own = [naming.namespace_name(p.name, suffix) for _, suffix in p.namespaces]
    out += _owner_errors(p.owners, own)
    if p.quota is not _INVALID:
        out += _quota_errors(_resolve_quota(p.quota, policy), p.quota, policy)
    if p.limits is not _INVALID:
        out += _limits_errors(_resolve_limits(p.limits, policy))
    if p.network is not _INVALID:
        out += _network_errors(p.network, policy)
    if p.pod_security is not _INVALID and p.pod_security not in policy.pod_security_levels:
        allowed = ", ".join(policy.pod_security_levels)
        out.append(("spec.podSecurity", f"{show(p.pod_security)} is not allowed by the policy; allowed: {allowed}"))
    if p.control_plane is not _INVALID:
        limits = None if p.limits is _INVALID else _resolve_limits(p.limits, policy)
        out += _control_plane_errors(p.control_plane, limits, policy)
    if p.ttl is not _INVALID:
        out += _ttl_errors(p.ttl, policy)
    return out


def _namespace_errors(name: Any, suffixes: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """Duplicate entries, and derived names (``<tenant>-<suffix>``) too long or reserved."""
    out = []
    seen: set[str] = set()
    for i, suffix in suffixes:
        path = f"spec.namespaces[{i}]"
        if suffix in seen:
            out.append((path, f"{show(suffix)} is listed twice"))
        seen.add(suffix)
        if name is _INVALID:
            continue
        full = naming.namespace_name(name, suffix)
        if len(full) > naming.DNS1123_LABEL_MAX:
            limit = naming.DNS1123_LABEL_MAX
            message = f"{show(suffix)} makes namespace {show(full)} of {len(full)} characters; namespace names have"
            out.append((path, f"{message} at most {limit} (shorten the tenant name or this entry)"))
        reason = naming.reserved_reason(full)
        if reason:
            out.append((path, f"{show(suffix)} makes namespace {show(full)}, which is reserved: {reason}"))
    return out


def _owner_errors(owners: list[tuple[int, Owner]], own: list[str] | None) -> list[tuple[str, str]]:
    """Duplicates, and ServiceAccount owners: a DNS name, in one of the tenant's own namespaces (if known)."""
    out = []
    seen: set[tuple[str, str, str | None]] = set()
    where = ", ".join(dict.fromkeys(own)) if own else "the tenant's namespaces"
    for i, owner in owners:
        path = f"spec.owners[{i}]"
        key = (owner.kind, owner.name, owner.namespace)
        if key in seen:
            out.append((path, f"{owner.kind} {show(owner.name)} is listed twice"))
        seen.add(key)
        if owner.kind != "ServiceAccount":
            if owner.namespace is not None:
                message = f"{show(owner.namespace)} is only for ServiceAccount owners; remove it for a {owner.kind}"
                out.append((f"{path}.namespace", message))
            continue
        try:
            naming.check_dns_subdomain(owner.name)
        except ValueError as exc:
            out.append((f"{path}.name", f"{show(owner.name)} {exc}"))
        if owner.namespace is None:
            out.append((f"{path}.namespace", f"is required for a ServiceAccount owner: one of {where}"))
        elif own is not None and owner.namespace not in own:
            message = f"{show(owner.namespace)} is not one of the tenant's namespaces ({where})"
            out.append((f"{path}.namespace", message + "; a ServiceAccount owner must live in one of them"))
    return out


def _resolve_quota(quota: Quota, policy: Policy) -> Quota:
    """``quota`` with every missing field filled from the policy; limits default to the requests."""
    d = policy.default_quota
    fields = ("cpu", "memory", "storage", "pods", "services", "gpu")
    filled = quota.model_copy(update={f: getattr(d, f) for f in fields if getattr(quota, f) is None})
    return filled.model_copy(
        update={
            "limits_cpu": filled.limits_cpu if filled.limits_cpu is not None else filled.cpu,
            "limits_memory": filled.limits_memory if filled.limits_memory is not None else filled.memory,
        }
    )


def _resolve_limits(limits: Limits, policy: Policy) -> Limits:
    """``limits`` with every missing value filled from the policy's defaultLimits."""
    update = {}
    for section in ("default_request", "default", "max"):
        given: ContainerResources = getattr(limits, section) or ContainerResources()
        fallback: DefaultResources = getattr(policy.default_limits, section)
        update[section] = ContainerResources.model_validate(
            {"cpu": given.cpu or fallback.cpu, "memory": given.memory or fallback.memory}
        )
    return limits.model_copy(update=update)


def _quota_errors(q: Quota, given: Quota, policy: Policy) -> list[tuple[str, str]]:
    """Limits below requests (on the resolved quota ``q``), and ceilings (on the values ``given``)."""
    out = []
    for requests, limits, alias in (("cpu", "limits_cpu", "limitsCpu"), ("memory", "limits_memory", "limitsMemory")):
        low, high = getattr(q, requests), getattr(q, limits)
        if _q(high).value < _q(low).value:
            out.append((f"spec.quota.{alias}", f"{high} is less than {requests} ({low}); limits must be >= requests"))
    limits_cpu = ("maxLimitsCpu", policy.max_limits_cpu) if policy.max_limits_cpu else ("maxCpu", policy.max_cpu)
    limits_memory = (
        ("maxLimitsMemory", policy.max_limits_memory) if policy.max_limits_memory else ("maxMemory", policy.max_memory)
    )
    checks: list[tuple[str, str, tuple[str, str | int]]] = [
        ("cpu", "cpu", ("maxCpu", policy.max_cpu)),
        ("limits_cpu", "limitsCpu", limits_cpu),
        ("memory", "memory", ("maxMemory", policy.max_memory)),
        ("limits_memory", "limitsMemory", limits_memory),
        ("storage", "storage", ("maxStorage", policy.max_storage)),
        ("pods", "pods", ("maxPods", policy.max_pods)),
        ("services", "services", ("maxServices", policy.max_services)),
        ("gpu", "gpu", ("maxGpu", policy.max_gpu)),
    ]
    for field, alias, (setting, ceiling) in checks:
        value = getattr(given, field)
        problem = None if value is None else _ceiling(f"spec.quota.{alias}", value, ceiling, setting)
        if problem:
            out.append(problem)
    return out


def _limits_errors(limits: Limits, prefix: str = "spec.limits") -> list[tuple[str, str]]:
    """defaultRequest <= default <= max, for cpu and memory, on resolved limits."""
    out = []
    order = (("default_request", "defaultRequest"), ("default", "default"), ("max", "max"))
    for resource in ("cpu", "memory"):
        for (low_field, low_alias), (high_field, high_alias) in itertools.pairwise(order):
            low = getattr(getattr(limits, low_field), resource)
            high = getattr(getattr(limits, high_field), resource)
            if _q(low).value > _q(high).value:
                message = f"{low} is more than {high_alias}.{resource} ({high}); defaultRequest <= default <= max"
                out.append((f"{prefix}.{low_alias}.{resource}", message))
    return out


def _network_errors(network: Network, policy: Policy) -> list[tuple[str, str]]:
    """Isolation allowed by the policy, allow-lists that mean something, egress inside the policy's CIDRs."""
    out = []
    if network.isolation not in policy.isolation_levels:
        allowed = ", ".join(policy.isolation_levels)
        out.append(
            ("spec.network.isolation", f"{show(network.isolation)} is not allowed by the policy; allowed: {allowed}")
        )
    if network.isolation == "none" and network.allow_ingress_from:
        out.append(
            (
                "spec.network.allowIngressFrom",
                "has no effect with isolation none (all traffic is open); remove it or choose strict or namespace",
            )
        )
    if network.isolation != "strict" and network.allow_egress_to:
        out.append(
            (
                "spec.network.allowEgressTo",
                f"has no effect with isolation {network.isolation} (egress is open); remove it or choose strict",
            )
        )
    allowed_networks = policy.cidr_networks()
    for i, rule in enumerate(network.allow_egress_to):
        net = ipaddress.ip_network(rule.cidr)
        if not any(net.version == a.version and net.subnet_of(a) for a in allowed_networks):  # type: ignore[arg-type]
            inside = ", ".join(policy.egress_cidrs) or "none allowed"
            out.append(
                (f"spec.network.allowEgressTo[{i}].cidr", f"{rule.cidr} is outside the policy's egressCidrs ({inside})")
            )
        if len(set(rule.ports)) != len(rule.ports):
            out.append((f"spec.network.allowEgressTo[{i}].ports", f"{show(rule.ports)} lists a port twice"))
    return out


def _ttl_errors(ttl: str | None, policy: Policy) -> list[tuple[str, str]]:
    """A TTL when the policy requires one, and no longer than maxTtl."""
    if ttl is None:
        if policy.allow_no_ttl:
            return []
        hint = f" (at most maxTtl={policy.max_ttl})" if policy.max_ttl else ""
        return [("spec.ttl", f"is required: the policy has allowNoTtl=false{hint}")]
    if policy.max_ttl and naming.parse_duration(ttl) > naming.parse_duration(policy.max_ttl):
        return [("spec.ttl", f"{ttl} exceeds the policy ceiling maxTtl={policy.max_ttl}")]
    return []


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
            path = format_path(["spec", "controlPlane", "values", *keys])
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


def _chart_errors(chart: Chart, policy: Policy, *, enabled: bool) -> list[tuple[str, str]]:
    out = []
    base = "spec.controlPlane.chart"
    given = [kind for kind in ("repository", "oci", "path") if getattr(chart, kind) is not None]
    if len(given) > 1:
        out.append((base, f"gives {' and '.join(given)}; give exactly one chart source: repository, oci or path"))
    if chart.repository is not None and not chart.repository.startswith(("https://", "http://")):
        out.append((f"{base}.repository", f"{show(chart.repository)} is not an http:// or https:// URL"))
    if chart.oci is not None and not chart.oci.startswith("oci://"):
        message = f"{show(chart.oci)} is not an OCI reference such as oci://registry.example.com/charts/vcluster"
        out.append((f"{base}.oci", message))
    if not enabled or len(given) > 1:
        return out
    kind, reference = chart.source()
    if not chart_source_allowed(kind, reference, policy.allowed_chart_sources):
        allowed = ", ".join(policy.allowed_chart_sources) or "none"
        what = show(reference) if given else f"the default {reference}"
        message = f"{what} is not allowed by the policy's allowedChartSources ({allowed})"
        out.append((f"{base}.{kind}", message))
    return out


def _control_plane_resource_errors(
    cp: ControlPlane, limits: Limits | None, policy: Policy, *, enabled: bool
) -> list[tuple[str, str]]:
    """Requests within limits; when enabled, within the policy's ceilings and the tenant's limits.max."""
    out = []
    base = "spec.controlPlane.resources"
    requests, caps = cp.resources.requests, cp.resources.limits
    for resource in ("cpu", "memory"):
        low = getattr(requests, resource) if requests else None
        high = getattr(caps, resource) if caps else None
        if low is not None and high is not None and _q(low).value > _q(high).value:
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
            problem = _ceiling(f"{base}.{section}.{resource}", value, ceiling, setting)
            if problem:
                out.append(problem)
            elif tenant_max is not None and _q(value).value > _q(tenant_max).value:
                message = (
                    f"{value} is more than spec.limits.max.{resource} ({tenant_max}); the namespace's LimitRange "
                    "would refuse the control plane pod"
                )
                out.append((f"{base}.{section}.{resource}", message))
    return out


def _control_plane_errors(
    cp: ControlPlane, limits: Limits | None, policy: Policy, *, as_enabled: bool = False
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
        message = f"{show(exposure.type)} is not allowed by the policy; allowedControlPlaneExposures: {allowed}"
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
        message = f"{show(exposure.ingress_host)} is not allowed: the policy's allowedControlPlaneExposures ({allowed})"
        out.append((f"{base}.exposure.ingressHost", f"{message} does not list Ingress"))
    for field, alias in (("ingresses", "ingresses"), ("storage_classes", "storageClasses"), ("nodes", "nodes")):
        if getattr(cp.sync, field) and alias not in policy.allowed_control_plane_sync:
            allowed_sync = ", ".join(policy.allowed_control_plane_sync) or "none"
            message = f"true is not allowed by the policy; allowedControlPlaneSync: {allowed_sync}"
            out.append((f"{base}.sync.{alias}", message))
    if cp.values and not policy.allow_control_plane_values:
        out.append((f"{base}.values", "is not allowed: the policy has allowControlPlaneValues=false"))
    out += _protected_values(cp.values)
    return out


def check_control_plane(tenant: Tenant, *, policy: Policy | None = None) -> None:
    """Raise ``SpecError`` if the policy forbids ``tenant``'s control plane as specified, even when disabled.

    ``parse_spec`` applies these rules only to enabled control planes; values generation applies them
    always, so generated values never hold what the policy forbids.
    """
    policy = policy or DEFAULT_POLICY
    limits = _resolve_limits(tenant.spec.limits or Limits(), policy)
    problems = _control_plane_errors(tenant.spec.control_plane, limits, policy, as_enabled=True)
    if problems:
        raise errors.SpecError([errors.FieldError(path, message, tenant.source) for path, message in problems])


def resolve(tenant: Tenant, *, policy: Policy | None = None) -> Tenant:
    """``tenant`` with every quota and limits value the spec left out filled from ``policy``.

    Idempotent; ``parse_spec`` already returns resolved tenants, so this matters only for tenants
    built in code (``render`` calls it to be sure).
    """
    policy = policy or DEFAULT_POLICY
    spec = tenant.spec.model_copy(
        update={
            "quota": _resolve_quota(tenant.spec.quota or Quota(), policy),
            "limits": _resolve_limits(tenant.spec.limits or Limits(), policy),
        }
    )
    return tenant.model_copy(update={"spec": spec})


# ---------------------------------------------------------------------------------------------
# Reading documents
# ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]  # Any without types-PyYAML
    """``yaml.SafeLoader`` (no custom tags) whose value errors carry the position of the bad node.

    PyYAML's safe constructors raise plain ``ValueError``/``KeyError`` for values that do not fit
    an explicit tag (``!!int abc``, ``!!bool null``); here they become ``ConstructorError``s with a mark.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            value = show(node.value) if isinstance(node, yaml.ScalarNode) else "the value"
            problem = f"{value} does not fit the tag {tag}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _node_count(doc: Any) -> int:
    """How many nodes ``doc`` has once every alias is expanded; raises ``ValueError`` on a cycle."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def count(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise ValueError("an alias refers to a node that contains it (a recursive structure)")
        active.add(key)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1 + sum(count(c) for c in children)
        active.discard(key)
        memo[key] = total
        return total

    return count(doc)


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _load_document(text: str, source: str | None, what: str) -> Any:
    """The one YAML document in ``text``; SpecError for syntax errors, tags, several documents, bombs."""

    def fail(path: str, message: str) -> errors.SpecError:
        return errors.SpecError([errors.FieldError(path, message, source)])

    try:
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        context = exc.context or ""
        if context and exc.context_mark and exc.problem_mark:
            context += f" (started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        problem = "; ".join(p for p in (context, exc.problem) if p)
        raise fail(where, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise fail(_position(text, exc.position), f"invalid YAML: {exc.reason} (character {exc.character!r})") from None
    except yaml.YAMLError as exc:
        raise fail("(document)", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise fail("(document)", "invalid YAML: nested too deeply") from None
    if not docs:
        raise fail("(document)", f"is empty; expected one {what} document")
    if len(docs) > 1:
        message = f"holds {len(docs)} YAML documents; a file holds exactly one {what} (put each in its own file)"
        raise fail("(document)", message)
    try:
        size = _node_count(docs[0])
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise fail("(document)", f"invalid YAML: {message}") from None
    if size > MAX_EXPANDED_NODES:
        message = f"expands to {size} YAML nodes once aliases are followed; at most {MAX_EXPANDED_NODES} are allowed"
        raise fail("(document)", message)
    if not isinstance(docs[0], dict):
        raise fail("(document)", f"expected a {what} mapping (apiVersion, kind, ...), got {show(docs[0])}")
    return docs[0]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise errors.SpecError([errors.FieldError("(file)", f"is not UTF-8 text ({exc.reason})", str(path))]) from None
    except OSError as exc:
        raise errors.SpecError(
            [errors.FieldError("(file)", f"cannot be read: {exc.strerror or exc}", str(path))]
        ) from None


def parse_spec(data: Any, *, source: str | None = None, policy: Policy | None = None) -> Tenant:
    """Check one Tenant document (already parsed YAML) against the model and ``policy``.

    Returns the tenant with every value the spec left out filled from the policy; raises
    ``SpecError`` with every problem found (both passes), each naming ``source`` as its file.
    """
    policy = policy or DEFAULT_POLICY

    def located(problems: list[tuple[str, str]]) -> list[errors.FieldError]:
        return [errors.FieldError(path, message, source) for path, message in problems]

    try:
        tenant = Tenant.model_validate(data)
    except ValidationError as exc:
        failed = [tuple(p for p in item["loc"] if p != "[key]") for item in exc.errors(include_url=False)]
        parts = _parts_of_raw(data, failed)
        raise errors.SpecError(_field_errors(exc, Tenant, source) + located(_semantic_errors(parts, policy))) from None
    except RecursionError:
        raise errors.SpecError([errors.FieldError("(document)", "is nested too deeply", source)]) from None
    problems = located(_semantic_errors(_parts_of(tenant), policy))
    if problems:
        raise errors.SpecError(problems)
    tenant = resolve(tenant, policy=policy)
    tenant._source = source
    return tenant


def parse_spec_text(text: str, *, source: str | None = None, policy: Policy | None = None) -> Tenant:
    """``parse_spec`` for YAML text: one document, loaded with ``yaml.safe_load`` (no custom tags)."""
    return parse_spec(_load_document(text, source, "Tenant"), source=source, policy=policy)


def load_spec(path: str | Path, *, policy: Policy | None = None) -> Tenant:
    """Read and check one tenant file; raises ``SpecError`` with every problem in it."""
    path = Path(path)
    return parse_spec_text(_read(path), source=str(path), policy=policy)


def spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named by ``paths``: files as given, folders as their ``*.yaml``/``*.yml`` (not recursive)."""
    found: list[Path] = []
    problems: list[errors.FieldError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not inside:
                problems.append(errors.FieldError("(file)", "is a folder without *.yaml or *.yml files", str(path)))
            found += inside
        elif path.exists():
            found.append(path)
        else:
            problems.append(errors.FieldError("(file)", "does not exist", str(path)))
    if problems:
        raise errors.SpecError(problems)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def load_specs(paths: Iterable[str | Path], *, policy: Policy | None = None) -> list[Tenant]:
    """Read and check every tenant file in ``paths`` (files or folders), then check them against each other.

    Collects the problems of ALL files (and namespace clashes between tenants) before raising one
    ``SpecError``; returns the tenants in file order otherwise.
    """
    tenants: list[Tenant] = []
    problems: list[errors.FieldError] = []
    for path in spec_files(paths):
        try:
            tenants.append(load_spec(path, policy=policy))
        except errors.SpecError as exc:
            problems += exc.errors
    problems += namespace_clashes(tenants)
    if problems:
        raise errors.SpecError(problems)
    return tenants


def namespace_clashes(tenants: Sequence[Tenant]) -> list[errors.FieldError]:
    """Problems where two tenants share a name or claim the same namespace (``a``+``b-c`` vs ``a-b``+``c``)."""
    out = []
    names: dict[str, Tenant] = {}
    claimed: dict[str, Tenant] = {}
    for tenant in tenants:
        first = names.setdefault(tenant.name, tenant)
        if first is not tenant:
            message = f"tenant {show(tenant.name)} is also defined in {first.source or 'another spec'}"
            out.append(errors.FieldError("metadata.name", message, tenant.source))
        for i, namespace in enumerate(tenant.namespace_names()):
            holder = claimed.setdefault(namespace, tenant)
            if holder is not tenant:
                message = (
                    f"namespace {show(namespace)} is also claimed by tenant {show(holder.name)} "
                    f"({holder.source or 'another spec'})"
                )
                out.append(errors.FieldError(f"spec.namespaces[{i}]", message, tenant.source))
    return out


def check_namespace_clashes(tenants: Sequence[Tenant]) -> None:
    """Raise ``SpecError`` if ``namespace_clashes`` finds anything."""
    problems = namespace_clashes(tenants)
    if problems:
        raise errors.SpecError(problems)


# ---------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------


def _policy_errors(policy: Policy) -> list[tuple[str, str]]:
    """A policy that contradicts itself: no levels allowed, defaults above its own ceilings."""
    out = []
    if not policy.pod_security_levels:
        out.append(("podSecurityLevels", "must allow at least one level"))
    if not policy.isolation_levels:
        out.append(("isolationLevels", "must allow at least one level"))
    if policy.allow_control_planes and not policy.allowed_control_plane_exposures:
        message = "must allow at least one exposure while allowControlPlanes is true (ClusterIP is the safe one)"
        out.append(("allowedControlPlaneExposures", message))
    if policy.allow_control_planes and not policy.allowed_chart_sources:
        example = naming.CONTROL_PLANE_CHART_REPOSITORY
        message = f"must allow at least one chart source while allowControlPlanes is true, such as {example}"
        out.append(("allowedChartSources", message))
    for setting, low, high in (
        ("maxLimitsCpu", policy.max_cpu, policy.max_limits_cpu),
        ("maxLimitsMemory", policy.max_memory, policy.max_limits_memory),
    ):
        if high is not None and _q(high).value < _q(low).value:
            out.append((setting, f"{high} is less than the requests ceiling ({low}); limits must be >= requests"))
    d = policy.default_quota
    checks: list[tuple[str, str | int, str | int, str]] = [
        ("cpu", d.cpu, policy.max_cpu, "maxCpu"),
        ("memory", d.memory, policy.max_memory, "maxMemory"),
        ("storage", d.storage, policy.max_storage, "maxStorage"),
        ("pods", d.pods, policy.max_pods, "maxPods"),
        ("services", d.services, policy.max_services, "maxServices"),
        ("gpu", d.gpu, policy.max_gpu, "maxGpu"),
    ]
    for field, value, ceiling, setting in checks:
        problem = _ceiling(f"defaultQuota.{field}", value, ceiling, setting)
        if problem:
            out.append(problem)
    limits = Limits.model_validate(policy.default_limits.model_dump())
    return out + _limits_errors(limits, prefix="defaultLimits")


def parse_policy(data: Any, *, source: str | None = None) -> Policy:
    """Check one Policy document (already parsed YAML); raises ``SpecError`` with every problem."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise errors.SpecError(_field_errors(exc, Policy, source)) from None
    problems = _policy_errors(policy)
    if problems:
        raise errors.SpecError([errors.FieldError(path, message, source) for path, message in problems])
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and check an admin policy file; raises ``SpecError`` with every problem in it."""
    path = Path(path)
    return parse_policy(_load_document(_read(path), str(path), "Policy"), source=str(path))


# ---------------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------------


class _Schema(GenerateJsonSchema):
    """Pydantic's generator without the auto-made per-field titles (descriptions say it better)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _json_schema(model: type[BaseModel], schema_id: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, **schema}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a Tenant document, generated from the model (committed as schema/tenant.schema.json)."""
    return _json_schema(Tenant, "https://vcluster-mgr.dev/schema/v1alpha1/tenant.schema.json")


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a Policy document (committed as schema/policy.schema.json)."""
    return _json_schema(Policy, "https://vcluster-mgr.dev/schema/v1alpha1/policy.schema.json")


def schema_text(kind: Literal["tenant", "policy"] = "tenant") -> str:
    """The schema as the exact text committed under schema/ (2-space JSON, trailing newline)."""
    schema = json_schema() if kind == "tenant" else policy_json_schema()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
