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


class ControlPlane(_Model):
    """An optional virtual control plane for the tenant."""

    enabled: bool = Field(default=False, description="Give the tenant its own virtual control plane.")


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
    if p.control_plane is not _INVALID and p.control_plane.enabled and not policy.allow_control_planes:
        out.append(("spec.controlPlane.enabled", "true is not allowed: the policy has allowControlPlanes=false"))
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
