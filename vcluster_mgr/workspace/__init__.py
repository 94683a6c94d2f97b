"""The only package that touches ``pulumi.automation``: backend, secrets, up / preview / destroy.

Offline by construction: a local file backend in a state directory (any backend URL is accepted), the
passphrase secrets provider, no update check, no plugin download, and the engine's binaries taken from
the toolchain's bin directory (first on ``PATH``), so nothing the engine does reaches beyond loopback.

The parts, bottom to top: ``backend`` (``Settings``, the state dir and passphrase, the engine's environment),
``stacks`` (one stack: open, up / preview / destroy, recorded outputs, the cluster identity check), ``jobs``
(stacks in parallel worker processes, one tenant stack's engine run, the platform apply), ``folder`` (every
tenant of a folder in one fast, crash-safe stack), ``state`` (listing, the tenant records, deletion and the
applied objects of tenant stacks). This module is their public face: Automation API plumbing only; what a
tenant operation checks before the engine runs is ``vcluster_mgr.operations``.
"""

from __future__ import annotations

from vcluster_mgr.workspace.backend import Settings, default_state_dir, engine_env, provider_kubeconfig, settings
from vcluster_mgr.workspace.folder import FolderOutcome, folder_up
from vcluster_mgr.workspace.jobs import (
    ENGINE_PATH,
    FINGERPRINT_PATH,
    Outcome,
    Progress,
    StackRun,
    platform_apply,
    run_jobs,
    run_stack,
)
from vcluster_mgr.workspace.stacks import (
    PLATFORM_PROJECT,
    PROJECT,
    TENANT_PROJECT,
    EventCallback,
    break_lock,
    check_cluster_identity,
    clear_stale_locks,
    destroy,
    preview,
    recorded_outputs,
    stack,
    tenant_stack_name,
    up,
)
from vcluster_mgr.workspace.state import (
    applied_objects,
    delete_tenant,
    find_tenant_record,
    last_operations,
    list_tenant_stacks,
    tenant_record,
    tenant_settled,
    tenant_stacks,
)

__all__ = [
    "ENGINE_PATH",
    "FINGERPRINT_PATH",
    "PLATFORM_PROJECT",
    "PROJECT",
    "TENANT_PROJECT",
    "EventCallback",
    "FolderOutcome",
    "Outcome",
    "Progress",
    "Settings",
    "StackRun",
    "applied_objects",
    "break_lock",
    "check_cluster_identity",
    "clear_stale_locks",
    "default_state_dir",
    "delete_tenant",
    "destroy",
    "engine_env",
    "find_tenant_record",
    "folder_up",
    "last_operations",
    "list_tenant_stacks",
    "platform_apply",
    "preview",
    "provider_kubeconfig",
    "recorded_outputs",
    "run_jobs",
    "run_stack",
    "settings",
    "stack",
    "tenant_record",
    "tenant_settled",
    "tenant_stack_name",
    "tenant_stacks",
    "up",
]
