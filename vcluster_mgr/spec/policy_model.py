"""The admin ``Policy`` document, and how it fills in and caps a tenant.

``Policy`` holds the defaults a spec may leave out (``default_quota``, ``default_limits``) and the
ceilings and allowed levels a spec must stay within; ``resolve_quota`` / ``resolve_limits`` apply the
defaults, ``ceiling`` checks one value against a ceiling.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import (
    Field,
)

from vcluster_mgr import kube, naming
from vcluster_mgr.spec import field_types, tenant_model

# ---------------------------------------------------------------------------------------------
# The admin Policy document
# ---------------------------------------------------------------------------------------------


DEFAULT_OBJECT_COUNTS: dict[str, int] = {
    "configmaps": 100,
    "secrets": 100,
    "persistentvolumeclaims": 20,
    "serviceaccounts": 50,
    "jobs.batch": 50,
    "cronjobs.batch": 20,
}
"""Object counts every tenant gets unless the policy says otherwise: enough for ordinary apps, few enough
that one tenant cannot fill etcd with them."""

MAX_OBJECT_COUNTS: dict[str, int] = {key: value * 10 for key, value in DEFAULT_OBJECT_COUNTS.items()}
"""Default ceilings on a tenant's quota.objects: ten times the default counts."""


class DefaultQuota(field_types.Model):
    """Quota totals a tenant gets for every field its spec leaves out."""

    cpu: field_types.Quantity = Field(default="2", description="Default CPU requests per tenant.")
    memory: field_types.Quantity = Field(default="4Gi", description="Default memory requests per tenant.")
    storage: field_types.Quantity = Field(default="20Gi", description="Default persistent storage per tenant.")
    pods: field_types.Count = Field(default=20, description="Default number of pods per tenant.")
    services: field_types.Count = Field(default=10, description="Default number of Services per tenant.")
    gpu: field_types.Count = Field(default=0, description="Default nvidia.com/gpu per tenant.")
    objects: dict[field_types.ObjectResource, field_types.Count] = Field(
        default_factory=lambda: dict(DEFAULT_OBJECT_COUNTS),
        description="Object counts per tenant (ResourceQuota count/<resource>), keyed by resource: configmaps, "
        "secrets, persistentvolumeclaims, serviceaccounts, jobs.batch, cronjobs.batch and any other resource the "
        "admin names (such as widgets.example.com). Replaces the built-in map as a whole; tenants may set "
        "only the resources named here.",
    )


class DefaultResources(field_types.Model):
    """A complete CPU and memory pair."""

    cpu: field_types.Quantity = Field(description="CPU.")
    memory: field_types.Quantity = Field(description="Memory.")


class DefaultLimits(field_types.Model):
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


class Prices(field_types.Model):
    """Monthly list prices for showback (``vcm usage``): what a tenant's quota reserves and its requests use.

    Prices are per month, in ``currency``; a resource without a price costs nothing.
    """

    currency: field_types.PrintableName = Field(default="USD", description="Currency the prices are in.")
    cpu_core_month: float = Field(default=0.0, ge=0, description="Price of one CPU core (requests.cpu) per month.")
    memory_gib_month: float = Field(
        default=0.0, ge=0, description="Price of one GiB of memory (requests.memory) per month."
    )
    storage_gib_month: float = Field(
        default=0.0, ge=0, description="Price of one GiB of persistent storage (requests.storage) per month."
    )
    gpu_month: dict[field_types.PrintableName, float] = Field(
        default_factory=dict,
        description="Price of one GPU per month, by extended resource name (nvidia.com/gpu, amd.com/gpu, ...).",
    )


_POD_SECURITY_LEVELS: tuple[field_types.PodSecurityLevel, ...] = ("restricted", "baseline")
_DEFAULT_ISOLATION: tuple[field_types.IsolationLevel, ...] = ("strict", "namespace")
_DEFAULT_EXPOSURES: tuple[tenant_model.ControlPlaneExposure, ...] = ("ClusterIP",)
_DEFAULT_SYNC: tuple[tenant_model.ControlPlaneSyncResource, ...] = ("ingresses", "storageClasses")


class ApiFairness(field_types.Model):
    """API Priority and Fairness for tenants: one shared priority level, one flow per tenant."""

    enabled: bool = Field(
        default=True,
        description="Give every tenant a FlowSchema (vcm-tenant-<name>) classifying its owners and its namespaces' "
        "ServiceAccounts into one flow of the shared priority level vcm-tenants, so a tenant flooding the API "
        "server waits behind its own requests (on by default: without it, a flooding tenant pushed another's p95 "
        "latency to 8 to 18 times its unloaded value, with it 3 to 7 times). It costs one cluster-scoped object per "
        "tenant; it takes effect where API Priority and Fairness is enabled on the API server (the default "
        "since 1.20).",
    )
    nominal_concurrency_shares: Annotated[int, Field(ge=1, le=10000)] = Field(
        default=30,
        description="Shares of the API server's concurrency for all tenants together (the built-in workload-low "
        "has 100, global-default 20).",
    )
    lendable_percent: Annotated[int, Field(ge=0, le=100)] = Field(
        default=0, description="Percent of the level's seats other levels may borrow while tenants leave them idle."
    )
    queues: Annotated[int, Field(ge=1, le=512)] = Field(
        default=128, description="Queues of the level (shuffle sharding: more queues, fewer tenants per queue)."
    )
    hand_size: Annotated[int, Field(ge=1, le=64)] = Field(
        default=6, description="Queues each tenant's flow is dealt; at most queues."
    )
    queue_length_limit: Annotated[int, Field(ge=1, le=10000)] = Field(
        default=50, description="Requests waiting per queue before the API server answers 429."
    )
    matching_precedence: Annotated[int, Field(ge=1000, le=9899)] = Field(
        default=5000,
        description="Precedence of the tenants' FlowSchemas: after the built-in system schemas (below 1000), "
        "before service-accounts (9000) and global-default (9900).",
    )


class Policy(field_types.Model):
    """What a platform admin allows tenants to ask for, and what they get when they ask for nothing."""

    api_version: Literal["vcluster-mgr.dev/v1alpha1"] = Field(
        default="vcluster-mgr.dev/v1alpha1", description="Always vcluster-mgr.dev/v1alpha1."
    )
    kind: Literal["Policy"] = Field(default="Policy", description="Always Policy.")
    max_cpu: field_types.Quantity = Field(default="32", description="Ceiling on a tenant's quota.cpu.")
    max_limits_cpu: field_types.Quantity | None = Field(
        default=None, description="Ceiling on a tenant's quota.limitsCpu; null means the same as maxCpu."
    )
    max_memory: field_types.Quantity = Field(default="128Gi", description="Ceiling on a tenant's quota.memory.")
    max_limits_memory: field_types.Quantity | None = Field(
        default=None, description="Ceiling on a tenant's quota.limitsMemory; null means the same as maxMemory."
    )
    max_storage: field_types.Quantity = Field(default="1Ti", description="Ceiling on a tenant's quota.storage.")
    max_gpu: field_types.Count = Field(default=4, description="Ceiling on a tenant's quota.gpu.")
    max_pods: field_types.Count = Field(default=500, description="Ceiling on a tenant's quota.pods.")
    max_services: field_types.Count = Field(default=100, description="Ceiling on a tenant's quota.services.")
    extended_resources: dict[field_types.LabelKey, field_types.Count] = Field(
        default_factory=dict,
        description="Extended resources tenants may request besides nvidia.com/gpu (MIG profiles such as "
        "nvidia.com/mig-1g.10gb), each with its ceiling per tenant. Every tenant's quota names each of them "
        "(0 unless its spec gives a count), so none is unlimited.",
    )
    device_classes: dict[field_types.ObjectResource, field_types.Count] = Field(
        default_factory=dict,
        description="DRA DeviceClasses tenants may claim devices of, each with its ceiling per tenant. Every "
        "tenant's quota names each of them (0 unless its spec gives a count).",
    )
    gpu_placement: tenant_model.GpuPlacement = Field(
        default_factory=tenant_model.GpuPlacement,
        description="GPU pods' node pool (nodeSelector, for tenants that set none) and the GPU taint tolerations "
        "tenants may use (tolerations; also what tenants that set none get). Pods without a GPU may never "
        "tolerate these taint keys.",
    )
    max_objects: dict[field_types.ObjectResource, field_types.Count] = Field(
        default_factory=lambda: dict(MAX_OBJECT_COUNTS),
        description="Ceilings on a tenant's quota.objects, keyed by resource; a resource without a ceiling here is "
        "capped at its defaultQuota.objects count.",
    )
    pod_security_levels: list[field_types.PodSecurityLevel] = Field(
        default_factory=lambda: list(_POD_SECURITY_LEVELS), description="Pod security levels tenants may choose."
    )
    isolation_levels: list[field_types.IsolationLevel] = Field(
        default_factory=lambda: list(_DEFAULT_ISOLATION), description="Network isolation levels tenants may choose."
    )
    egress_cidrs: list[field_types.Cidr] = Field(
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
    allowed_control_plane_exposures: list[tenant_model.ControlPlaneExposure] = Field(
        default_factory=lambda: list(_DEFAULT_EXPOSURES),
        description="How a tenant's control plane may be exposed: its Service type (ClusterIP, NodePort, "
        "LoadBalancer) and Ingress for controlPlane.exposure.ingressHost. NodePort and LoadBalancer also need "
        "allowNodePorts / allowLoadBalancers (the tenant's ResourceQuota allows none otherwise).",
    )
    max_control_plane_cpu: field_types.Quantity = Field(
        default="2", description="Ceiling on controlPlane.resources requests.cpu and limits.cpu."
    )
    max_control_plane_memory: field_types.Quantity = Field(
        default="4Gi", description="Ceiling on controlPlane.resources requests.memory and limits.memory."
    )
    allow_control_plane_values: bool = Field(
        default=True,
        description="Allow controlPlane.values, the free-form Helm values merged last. Keys that would reach "
        "outside the tenant (rbac, experimental, plugins, integrations, ...) are refused either way.",
    )
    allowed_control_plane_sync: list[tenant_model.ControlPlaneSyncResource] = Field(
        default_factory=lambda: list(_DEFAULT_SYNC),
        description="Which controlPlane.sync switches tenants may turn on. nodes is left out by default: it "
        "shows tenants the host's nodes (names, labels, capacity).",
    )
    allowed_chart_sources: list[field_types.PrintableName] = Field(
        default_factory=lambda: [naming.CONTROL_PLANE_CHART_REPOSITORY],
        description="Where the vcluster chart may come from: each entry is a repository URL, an oci:// reference "
        "or a local path, and allows itself and everything below it (entry + '/...'). Local paths are "
        "normalised first, so '..' cannot climb out.",
    )
    control_plane_coredns_image: field_types.PrintableName = Field(
        default="coredns/coredns:1.11.3",
        description="Image of the CoreDNS that runs inside every tenant's virtual cluster (the blueprint writes its "
        "whole manifest, controlPlane.coredns.overwriteManifests, so that it is pulled Always and meets the "
        "restricted profile). The default is vcluster's own; an air-gapped host names its registry's copy.",
    )
    control_plane_dns_upstreams: list[field_types.Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="Where the CoreDNS of a strict tenant's virtual cluster may send its upstream queries (UDP and "
        "TCP 53): it runs with dnsPolicy Default, so this is the nodes' resolver. Only the virtual cluster's "
        "kube-system pods get this rule, never the tenant's other pods; narrow it to your nodes' resolvers.",
    )
    allow_licensed_control_plane_features: bool = Field(
        default=False,
        description="Allow spec fields that only a licensed vCluster image honours (controlPlane.sleepAfter, "
        "vCluster's sleep mode). The open-source image ignores them without a word, so they are refused "
        "unless the admin says the tenants' control planes run a licensed image.",
    )
    allow_no_ttl: bool = Field(default=True, description="Allow tenants without a ttl (that never expire).")
    max_ttl: field_types.Duration | None = Field(
        default=None, description="Longest ttl a tenant may ask for; null for no limit."
    )
    trusted_peer_tenants: list[field_types.DnsLabel] = Field(
        default_factory=list,
        description="Tenants whose namespaces other tenants may name in network.allowIngressFrom. Any other "
        "tenant's namespace never matches a peer: the NetworkPolicy also requires the absence of the "
        "vcluster-mgr.dev/tenant label (which owners cannot set), and vcm validate refuses the spec.",
    )
    api_fairness: ApiFairness = Field(
        default_factory=ApiFairness, description="API Priority and Fairness for tenants (FlowSchemas, priority level)."
    )
    protect_tenants: bool = Field(
        default=False,
        description="Deletion protection for tenants whose spec leaves protect out (see the tenant's spec.protect).",
    )
    default_quota: DefaultQuota = Field(
        default_factory=DefaultQuota, description="Quota for fields a tenant's spec leaves out."
    )
    default_limits: DefaultLimits = Field(
        default_factory=DefaultLimits, description="Container limits for fields a tenant's spec leaves out."
    )
    prices: Prices | None = Field(
        default=None, description="Monthly prices for showback in `vcm usage`; null shows no costs."
    )

    def cidr_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``egress_cidrs`` as network objects."""
        return [ipaddress.ip_network(c) for c in self.egress_cidrs]


DEFAULT_POLICY = Policy()
"""The policy used when none is given: every default above."""


def as_quantity(text: str) -> kube.Quantity:
    return kube.parse_quantity(text)


def over_ceiling(path: str, value: str | int, ceiling: str | int, setting: str) -> tuple[str, str] | None:
    """A problem if ``value`` (a quantity text or a count) is above the policy's ``ceiling``."""
    over = (
        as_quantity(value).value > as_quantity(str(ceiling)).value if isinstance(value, str) else value > int(ceiling)
    )
    return (path, f"{value} exceeds the policy ceiling {setting}={ceiling}") if over else None


def resolve_quota(quota: tenant_model.Quota, policy: Policy) -> tenant_model.Quota:
    """``quota`` with every missing field filled from the policy; limits default to the requests."""
    d = policy.default_quota
    fields = ("cpu", "memory", "storage", "pods", "services", "gpu")
    filled = quota.model_copy(update={f: getattr(d, f) for f in fields if getattr(quota, f) is None})
    filled = filled.model_copy(
        update={
            "objects": {**d.objects, **quota.objects},
            "extended_resources": {**dict.fromkeys(policy.extended_resources, 0), **quota.extended_resources},
            "device_classes": {**dict.fromkeys(policy.device_classes, 0), **quota.device_classes},
        }
    )
    return filled.model_copy(
        update={
            "limits_cpu": filled.limits_cpu if filled.limits_cpu is not None else filled.cpu,
            "limits_memory": filled.limits_memory if filled.limits_memory is not None else filled.memory,
        }
    )


def object_ceiling(policy: Policy, resource: str) -> int | None:
    """The most of ``resource`` a tenant may ask for; None if the policy does not name it."""
    if resource in policy.max_objects:
        return policy.max_objects[resource]
    return policy.default_quota.objects.get(resource)


def resolve_limits(limits: tenant_model.Limits, policy: Policy) -> tenant_model.Limits:
    """``limits`` with every missing value filled from the policy's defaultLimits."""
    update = {}
    for section in ("default_request", "default", "max"):
        given: tenant_model.ContainerResources = getattr(limits, section) or tenant_model.ContainerResources()
        fallback: DefaultResources = getattr(policy.default_limits, section)
        update[section] = tenant_model.ContainerResources.model_validate(
            {"cpu": given.cpu or fallback.cpu, "memory": given.memory or fallback.memory}
        )
    return limits.model_copy(update=update)
