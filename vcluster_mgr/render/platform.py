"""The cluster-wide objects every tenant relies on: vcluster-mgr's namespace, its ClusterRole and the
ValidatingAdmissionPolicies. Pure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vcluster_mgr import naming, spec
from vcluster_mgr.render import templating

PLATFORM_TEMPLATES = (
    "platform/namespace.yaml.j2",
    "platform/clusterrole.yaml.j2",
    "platform/image-pull-always.yaml.j2",
    "platform/placement.yaml.j2",
    "platform/protect-blueprint.yaml.j2",
    "platform/control-plane-labels.yaml.j2",
    "platform/prioritylevel.yaml.j2",
)

PLATFORM_KINDS: dict[str, str] = {
    "Namespace": "v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "PriorityLevelConfiguration": "flowcontrol.apiserver.k8s.io/v1",
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io/v1",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io/v1",
}
"""Kinds the platform blueprint may produce, in output order; all cluster-scoped."""


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
        "gpuResources": sorted({"nvidia.com/gpu", *policy.extended_resources}),
        "gpuTaintKeys": sorted({t.key for t in policy.gpu_placement.tolerations}),
        "apiFairness": {
            **policy.api_fairness.model_dump(mode="json"),
            "priorityLevel": naming.TENANT_PRIORITY_LEVEL,
        },
        "policy": policy.model_dump(mode="json"),
    }


def render_platform(
    *, policy: spec.Policy | None = None, templates_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """The cluster-wide objects every tenant relies on: vcluster-mgr's namespace, admission policies, ClusterRole."""
    context = platform_context(policy or spec.DEFAULT_POLICY)
    return templating.render_checked(
        PLATFORM_TEMPLATES,
        context,
        templates_dir,
        kinds=PLATFORM_KINDS,
        namespaces=[],
        cluster_names={kind: [] for kind in PLATFORM_KINDS} | {"Namespace": [naming.SYSTEM_NAMESPACE]},
        labels=context["labels"],
    )
