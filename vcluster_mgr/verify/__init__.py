"""``vcm verify``: show, against the live cluster, that a tenant's isolation holds.

The checks are those of the Kubernetes multi-tenancy working group's benchmark, re-stated for what this
project builds: Pod Security admission, RBAC, ResourceQuota/LimitRange, NetworkPolicies and the platform's
ValidatingAdmissionPolicies. ``docs/verify.md`` lists every check, its benchmark id and the JSON output.

Every behavioural check acts AS THE TENANT'S OWNER: the admin's credentials impersonate the owner
(``Impersonate-User`` / ``Impersonate-Group``), and every request that could create, change or
delete is sent with server-side dry-run (``dryRun=All``), so nothing is left behind.

The parts, top to bottom:

* ``live`` - ``verify_live`` (stack outputs + a host cluster target -> ``Report``) and ``verify_tenant``
  (the selected checks for explicit inputs, so tests can drive it with any cluster);
* ``runners`` - one function per check; ``session`` - the requests they send, as the owner;
* pure parts - the ``catalogue`` and its selection, ``report`` (identity, results), ``probe_objects``,
  ``judging`` (refusal classification), ``analysis`` (label selectors, NetworkPolicies, quotas, RBAC).

Nothing here prints or exits; problems that stop a whole run raise ``errors.VerifyError``.
"""

from __future__ import annotations

from vcluster_mgr.errors import VerifyError

# Each registers its checks in runners.RUNNERS when imported.
from vcluster_mgr.verify import access_checks, policy_checks, traffic_checks, workload_checks  # isort: skip
from vcluster_mgr.verify import matrix_checks, port_checks  # isort: skip
from vcluster_mgr.verify.analysis import (
    ALL_VERBS,
    CLUSTER_RESOURCES,
    COUNT_KEYS,
    CPU_KEYS,
    MEMORY_KEYS,
    MULTITENANT_RESOURCES,
    READ_VERBS,
    STORAGE_KEYS,
    UNCAPPED_HINTS,
    WRITE_VERBS,
    admitted_namespaces,
    cluster_scoped_resources,
    granted_rules,
    is_default_deny,
    missing_object_limits,
    missing_resource_quota,
    quota_hard,
    selector_matches,
)
from vcluster_mgr.verify.catalogue import (
    CHECKS,
    CHECKS_BY_ID,
    LEVELS,
    MAX_DETAIL_LINES,
    PROBE_PREFIX,
    SCOPE,
    Check,
    Result,
    select_checks,
)
from vcluster_mgr.verify.judging import (
    Attempt,
    Verdict,
    combine,
    must_allow,
    must_refuse,
    refusal_summary,
    refused_by,
    short_message,
)
from vcluster_mgr.verify.live import (
    discover_tenants,
    tenant_from_record,
    verify_live,
    verify_tenant,
)
from vcluster_mgr.verify.probe_objects import (
    FALLBACK_RESOURCES,
    POD_PROBES,
    PROBE_IMAGE,
    PodProbe,
    compliant_pod,
    container_resources,
    placement_selector,
    probe_service,
)
from vcluster_mgr.verify.report import (
    CheckResult,
    Identity,
    Report,
    TenantInfo,
    choose_identity,
    identity_for,
    reports_data,
    scope_note,
    table_rows,
)
from vcluster_mgr.verify.runners import (
    Outcome,
)
from vcluster_mgr.verify.session import (
    ClientFactory,
    client_factory,
)

__all__ = [
    "access_checks",
    "matrix_checks",
    "port_checks",
    "traffic_checks",
    "policy_checks",
    "workload_checks",
    "ALL_VERBS",
    "Attempt",
    "CHECKS",
    "CHECKS_BY_ID",
    "CLUSTER_RESOURCES",
    "COUNT_KEYS",
    "CPU_KEYS",
    "Check",
    "CheckResult",
    "ClientFactory",
    "FALLBACK_RESOURCES",
    "Identity",
    "LEVELS",
    "MAX_DETAIL_LINES",
    "MEMORY_KEYS",
    "MULTITENANT_RESOURCES",
    "Outcome",
    "POD_PROBES",
    "PROBE_IMAGE",
    "PROBE_PREFIX",
    "PodProbe",
    "READ_VERBS",
    "Report",
    "Result",
    "SCOPE",
    "STORAGE_KEYS",
    "TenantInfo",
    "UNCAPPED_HINTS",
    "Verdict",
    "VerifyError",
    "WRITE_VERBS",
    "admitted_namespaces",
    "choose_identity",
    "client_factory",
    "cluster_scoped_resources",
    "combine",
    "compliant_pod",
    "container_resources",
    "discover_tenants",
    "granted_rules",
    "identity_for",
    "is_default_deny",
    "missing_object_limits",
    "missing_resource_quota",
    "must_allow",
    "must_refuse",
    "placement_selector",
    "probe_service",
    "quota_hard",
    "refusal_summary",
    "refused_by",
    "reports_data",
    "scope_note",
    "select_checks",
    "selector_matches",
    "short_message",
    "table_rows",
    "tenant_from_record",
    "verify_live",
    "verify_tenant",
]
