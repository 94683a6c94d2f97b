"""Rendering: spec -> plain manifest dicts and Helm values, from the jinja2 blueprint.

The blueprint lives in ``templates/`` at the top of the repository (the wheel carries it as package data,
``vcluster_mgr/templates/``) as one template per kind of object, so a platform admin can read it and
override any file by pointing ``templates_dir`` at a folder of their own (``templating``). Every
rendered object is checked: its kind and apiVersion are ones the blueprint declares, it carries the
blueprint's labels, and a tenant's objects stay inside the tenant's own namespaces. A failed check is an
``errors.RenderError`` (a template bug), never a silently wrong object.

``tenant``, ``platform`` and ``control_plane`` render what a tenant, a host cluster and a virtual control
plane need; ``scaffolds`` writes the starter files of ``vcm init`` and ``vcm ci init``.
Nothing here talks to a cluster; the only I/O is reading templates.
"""

from __future__ import annotations

from vcluster_mgr.errors import RenderError
from vcluster_mgr.render.control_plane import (
    CHART_CONTAINER_RESOURCES,
    CONTROL_PLANE_VALUES_TEMPLATE,
    DEFAULT_PERSISTENCE_SIZE,
    control_plane_chart,
    control_plane_context,
    control_plane_values,
    dump_values,
    merge_values,
)
from vcluster_mgr.render.platform import (
    PLATFORM_KINDS,
    PLATFORM_TEMPLATES,
    platform_context,
    render_platform,
)
from vcluster_mgr.render.scaffolds import (
    CI_MAX_SHARDS,
    CI_TEMPLATES,
    HOST_KUBECONFIG_SECRET,
    INIT_TEMPLATE,
    SHARDED_CI_TEMPLATES,
    ci_pipeline,
    starter_spec,
)
from vcluster_mgr.render.templating import (
    BUILTIN_TEMPLATES,
    dump_manifests,
)
from vcluster_mgr.render.tenant import (
    BYTE_RESOLUTION,
    CLUSTER_DNS,
    CPU_RESOLUTION,
    TENANT_KINDS,
    TENANT_TEMPLATES,
    apportion,
    render_tenant,
    split_objects_by_weight,
    split_quota,
    split_quota_by_weight,
    tenant_context,
    tenant_labels,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "BYTE_RESOLUTION",
    "apportion",
    "CHART_CONTAINER_RESOURCES",
    "CI_MAX_SHARDS",
    "CI_TEMPLATES",
    "CLUSTER_DNS",
    "CONTROL_PLANE_VALUES_TEMPLATE",
    "CPU_RESOLUTION",
    "DEFAULT_PERSISTENCE_SIZE",
    "HOST_KUBECONFIG_SECRET",
    "INIT_TEMPLATE",
    "PLATFORM_KINDS",
    "PLATFORM_TEMPLATES",
    "RenderError",
    "TENANT_KINDS",
    "TENANT_TEMPLATES",
    "SHARDED_CI_TEMPLATES",
    "ci_pipeline",
    "control_plane_chart",
    "control_plane_context",
    "control_plane_values",
    "dump_manifests",
    "dump_values",
    "merge_values",
    "platform_context",
    "render_platform",
    "render_tenant",
    "split_objects_by_weight",
    "split_quota",
    "split_quota_by_weight",
    "starter_spec",
    "tenant_context",
    "tenant_labels",
]
