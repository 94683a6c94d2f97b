"""The folder path: every tenant of a folder in one stack and one engine run, fast and crash-safe.

A stack per tenant pays a fixed engine cost per tenant (``stacks``); a folder of hundreds of tenants is
cheaper as one stack (the program of the top-level ``Pulumi.yaml``, ``program.folder_program``). Three
settings make that stack fast, all chosen from measurements on 2 cores (see the README's benchmark):

- ``PULUMI_SKIP_CHECKPOINTS``: the file backend rewrites the whole snapshot after every step, so a run
  of n objects writes O(n^2) bytes (357 MiB for 200 objects); skipped, the state is written once, at the
  end. A run killed before that end has recorded nothing, and that is safe here: the provider creates
  with server-side apply, which upserts, so the next run takes over whatever the killed one made (it
  re-applies the same names; nothing is duplicated), and ``--refresh`` drops what the state holds but
  the cluster lost. The SIGKILL drill (``tests/integration/test_folder_drill.py``) proves it at several
  kill points. One thing does not converge this way: a Helm release (a control plane) made by a killed
  run is refused by name on the next; ``FOLDER_REFUSES_CONTROL_PLANES`` keeps such tenants out.
- ``PULUMI_K8S_CLIENT_QPS`` / ``PULUMI_K8S_CLIENT_BURST``: the provider's client is limited to 50
  requests/s (burst 120) by default, which alone makes 20,000 objects take 400 s or more.
- ``--parallel``: the engine's default of 4 per CPU leaves the API server idle between requests.

Plain ``pulumi up`` of the top-level program takes the same settings from the environment (the README
shows the line); this module is how ``vcm``, the benchmark and the drill run it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vcluster_mgr import errors, hostcluster, platformconfig, program, spec
from vcluster_mgr.workspace import backend, stacks

PROJECT = "vcm-folder"

#: the engine's environment for the folder stack, on top of ``backend.engine_env``
FOLDER_ENV = {
    "PULUMI_SKIP_CHECKPOINTS": "true",
    # measured: above ~200/s the 2-core API server is the limit, not the client
    "PULUMI_K8S_CLIENT_QPS": "400",
    "PULUMI_K8S_CLIENT_BURST": "800",
}

#: engine parallelism for the folder stack (``pulumi up --parallel``)
FOLDER_PARALLEL = 32

#: see the module docstring: a control plane is a Helm release, which a killed run would strand
FOLDER_REFUSES_CONTROL_PLANES = True


@dataclasses.dataclass(frozen=True)
class FolderOutcome:
    """What one folder run did: the engine's change counts and how many tenants it holds."""

    stack: str
    tenants: int
    changes: dict[str, int]


def folder_up(s: backend.Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint,
              tenants: Sequence[spec.Tenant], *, stack_name: str | None = None, with_platform: bool = True,
              parallel: int = FOLDER_PARALLEL, on_event: stacks.EventCallback | None = None) -> FolderOutcome:
    """Apply every tenant of ``tenants`` (and the platform objects) in one stack of project ``vcm-folder``.

    The live objects are read first (refresh), so drift and the leftovers of a killed run are taken back.
    """
    if FOLDER_REFUSES_CONTROL_PLANES:
        with_cp = sorted(t.name for t in tenants if t.spec.control_plane.enabled)
        if with_cp:
            raise errors.UsageError(
                "the folder stack does not take tenants with a control plane (a Helm release made by a run "
                f"that was killed cannot be taken over by the next): {', '.join(with_cp)}; apply those with "
                "a stack each (`vcm apply FILE`)")
    name = stack_name or target.name
    uid = hostcluster.cluster_uid(target)
    recorded = stacks.recorded_outputs(s, PROJECT, name)
    stacks.check_cluster_identity(target, name, recorded, uid)
    fn = program.folder_program(tenants, target, blueprint, with_platform=with_platform, cluster_uid=uid)
    st = stacks.stack(s, name, fn, project=PROJECT, target=target, exists=recorded is not None,
                      extra_env=FOLDER_ENV)
    res = stacks.up(st, on_event=on_event, parallel=parallel)
    changes: dict[str, int] = dict(res.summary.resource_changes or {})  # type: ignore[arg-type]  # str enum keys
    return FolderOutcome(name, len(tenants), changes)
