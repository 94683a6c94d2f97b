"""The tenant spec and the admin policy: models, loading, every check, and the JSON Schema.

A ``Tenant`` document is checked in two passes, and both always run so a file's errors are all
reported at once:

1. the pydantic models (``tenant_model``, ``policy_model``, on the types of ``field_types``) check shape
   and syntax (unknown keys, types, DNS names, quantities, CIDRs, durations, label keys and values);
2. ``rules`` and ``control_plane_rules`` check what spans fields or needs the admin ``Policy`` (derived
   namespace names, ServiceAccount owners, limits ordering, policy ceilings and allowed levels). When
   pass 1 failed, pass 2 still runs on every part of the spec that is valid on its own.

Every problem becomes an ``errors.FieldError`` with a dotted path (``spec.owners[1].role``), the bad
value and what would be valid (``messages``); ``documents.load_spec`` and friends raise one
``errors.SpecError`` holding them all. ``schema`` exports the JSON Schema.

Values the spec leaves out are filled in from the policy (``Policy.default_quota``,
``Policy.default_limits``), so a ``Tenant`` returned by this package is complete.

This module is the package's public face: other packages use ``spec.Tenant``, ``spec.load_spec`` and so on.
Pure: no cluster, no Pulumi; the only I/O is reading spec files.
"""

from __future__ import annotations

from vcluster_mgr.spec.control_plane_rules import (
    DEFAULT_CONTROL_PLANE_LIMITS,
    DEFAULT_CONTROL_PLANE_REQUESTS,
    PROTECTED_VALUES,
    chart_source_allowed,
)
from vcluster_mgr.spec.documents import (
    MAX_EXPANDED_NODES,
    check_namespace_clashes,
    load_document,
    load_policy,
    load_spec,
    load_specs,
    namespace_clashes,
    parse_policy,
    parse_spec,
    parse_spec_text,
    read_document,
    read_text,
    spec_files,
    spoofed_peers,
)
from vcluster_mgr.spec.field_types import (
    Cidr,
    Count,
    DnsLabel,
    Duration,
    IsolationLevel,
    LabelKey,
    LabelValue,
    PodSecurityLevel,
    Port,
    PrintableName,
    Quantity,
    Role,
    SpecLabelKey,
)
from vcluster_mgr.spec.field_types import (
    Model as StrictModel,
)
from vcluster_mgr.spec.messages import (
    field_errors,
    format_path,
    show,
)
from vcluster_mgr.spec.policy_model import (
    DEFAULT_POLICY,
    DefaultLimits,
    DefaultQuota,
    DefaultResources,
    Policy,
    Prices,
)
from vcluster_mgr.spec.rules import (
    check_control_plane,
    resolve,
)
from vcluster_mgr.spec.schema import (
    json_schema,
    model_json_schema,
    model_schema_text,
    policy_json_schema,
    schema_text,
)
from vcluster_mgr.spec.tenant_model import (
    Chart,
    ChartVersion,
    ContainerResources,
    ControlPlane,
    ControlPlaneExposure,
    ControlPlaneExposureType,
    ControlPlaneResources,
    ControlPlaneSync,
    ControlPlaneSyncResource,
    EgressRule,
    Exposure,
    HelmValues,
    Hostname,
    IngressPeer,
    KubernetesVersion,
    Limits,
    Metadata,
    Namespaces,
    Network,
    Owner,
    Owners,
    Persistence,
    Placement,
    Quota,
    Tenant,
    TenantSpec,
)

__all__ = [
    "load_document",
    "read_document",
    "read_text",
    "Chart",
    "ChartVersion",
    "Cidr",
    "ContainerResources",
    "ControlPlane",
    "ControlPlaneExposure",
    "ControlPlaneExposureType",
    "ControlPlaneResources",
    "ControlPlaneSync",
    "ControlPlaneSyncResource",
    "Count",
    "DEFAULT_CONTROL_PLANE_LIMITS",
    "DEFAULT_CONTROL_PLANE_REQUESTS",
    "DEFAULT_POLICY",
    "DefaultLimits",
    "DefaultQuota",
    "DefaultResources",
    "DnsLabel",
    "Duration",
    "EgressRule",
    "Exposure",
    "HelmValues",
    "Hostname",
    "IngressPeer",
    "IsolationLevel",
    "KubernetesVersion",
    "LabelKey",
    "LabelValue",
    "Limits",
    "MAX_EXPANDED_NODES",
    "Metadata",
    "Namespaces",
    "Network",
    "Owner",
    "Owners",
    "PROTECTED_VALUES",
    "Persistence",
    "Placement",
    "PodSecurityLevel",
    "Policy",
    "Prices",
    "Port",
    "PrintableName",
    "Quantity",
    "Quota",
    "Role",
    "SpecLabelKey",
    "Tenant",
    "TenantSpec",
    "chart_source_allowed",
    "check_control_plane",
    "check_namespace_clashes",
    "field_errors",
    "format_path",
    "model_json_schema",
    "model_schema_text",
    "StrictModel",
    "json_schema",
    "load_policy",
    "load_spec",
    "load_specs",
    "namespace_clashes",
    "spoofed_peers",
    "parse_policy",
    "parse_spec",
    "parse_spec_text",
    "policy_json_schema",
    "resolve",
    "schema_text",
    "show",
    "spec_files",
]
