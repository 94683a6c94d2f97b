"""The folder path: every tenant of a folder in a few batch stacks, one engine run each, fast and crash-safe.

A stack per tenant pays a fixed engine cost per tenant (``stacks``); a folder of hundreds of tenants is
cheaper as a few stacks of many tenants each (the program of the top-level ``Pulumi.yaml``,
``program.folder_program``). Not one stack: the engine's memory grows with the objects of a run (about
0.45 MiB per object on a no-change run, measured), so 1,000 tenants in one run would need 9 GiB; a
batch of at most ``TENANTS_PER_BATCH`` tenants stays near 1 GiB. Tenants go to batches by the stable
split of ``sharding``, with the count fixed once the stacks exist. What makes each run fast, all chosen
from measurements on 2 cores (README, "Apply"):

- ``PULUMI_SKIP_CHECKPOINTS``: the file backend rewrites the whole snapshot after every step, so a run
  of n objects writes O(n^2) bytes (357 MiB for 200 objects); skipped, the state is written once, at the
  end. A run killed before that end has recorded nothing, and that is safe here: the provider creates
  with server-side apply, which upserts, so the next run takes over whatever the killed one made (it
  re-applies the same names; nothing is duplicated), and refresh drops what the state holds but the
  cluster lost. The SIGKILL drill (``tests/integration/test_folder_drill.py``) proves it at several kill
  points. One thing does not converge this way: a Helm release (a control plane) made by a killed run
  is refused by name on the next; ``FOLDER_REFUSES_CONTROL_PLANES`` keeps such tenants out.
- the provider's client limits (``program.FOLDER_CLIENT``, a provider input, so plain ``pulumi up`` of
  the GitOps program has them too): 50 requests/s by default, where a run reads and dry-runs each object.
- ``--parallel`` (``FOLDER_PARALLEL``): more engine steps in flight than the default 4 per CPU.

- the fingerprint: a batch stack records one (``program.folder_program``, as a tenant stack does), and a
  batch whose fingerprint holds is not run at all (``_batch_reason``): a no-change run of the whole folder
  costs one LIST per kind instead of an engine run per batch.

Plain ``pulumi up`` of the top-level program takes the same checkpoint setting from the environment and
the split from ``vcluster-mgr:batch`` (the README shows both); this module is how the benchmark
(``benchmarks/``) and the SIGKILL drill run it. No ``vcm`` command runs it: ``vcm apply`` runs a stack per
tenant (``jobs``).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Any

import pydantic

from vcluster_mgr import cluster, errors, fingerprint, naming, platformconfig, program, sharding, spec
from vcluster_mgr.workspace import backend, checkpoints, locks, stacks

PROJECT = "vcm-folder"

#: the engine's environment for the folder stack, on top of ``backend.engine_env``
FOLDER_ENV = {
    "PULUMI_SKIP_CHECKPOINTS": "true",
}

#: engine parallelism for the folder stack (``pulumi up --parallel``)
FOLDER_PARALLEL = 16

#: see the module docstring: a control plane is a Helm release, which a killed run would strand
FOLDER_REFUSES_CONTROL_PLANES = True


#: tenants per batch stack at most, by default (``batches_for``): a no-change run of 100 tenants (2,000
#: objects) peaks at about 0.9 GiB in the engine, 0.2 in the provider and 0.2 in the program
TENANTS_PER_BATCH = 100


@dataclasses.dataclass(frozen=True)
class FolderOutcome:
    """What one folder run did: the engine's change counts over all batches, and per batch stack."""

    stack: str
    tenants: int
    changes: dict[str, int]
    batches: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    #: what the runs did besides applying (a dead process's lock removed)
    notices: list[str] = dataclasses.field(default_factory=list)
    #: batch stack -> why the engine ran for it; a batch whose fingerprint held is not here
    why: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the batch stacks whose fingerprint held: no change, and no engine started
    proven: list[str] = dataclasses.field(default_factory=list)


def batches_for(count: int) -> int:
    """A batch count for a folder of ``count`` tenants: at most ``TENANTS_PER_BATCH`` each, rounded up
    to a power of two so that a growing folder seldom needs another (the count is fixed once chosen)."""
    need = max(1, -(-count // TENANTS_PER_BATCH))
    return 1 << (need - 1).bit_length()


def batch_stack_name(base: str, index: int, count: int) -> str:
    return base if count == 1 else f"{base}.{index}of{count}"


def _batch_count_of(base: str, name: str) -> int | None:
    """The batch count a stack ``name`` was made for, if it is one of ``base``'s batch stacks
    (``batch_stack_name``), else None."""
    if name == base:
        return 1
    rest = name[len(base) + 1:] if name.startswith(base + ".") else ""
    index, sep, of = rest.partition("of")
    return int(of) if sep and index.isdigit() and of.isdigit() else None


def _refuse_other_batch_counts(s: backend.Settings, base: str, count: int) -> None:
    """The split of a folder into batches is fixed once its stacks exist: another count would give every
    tenant a new stack while the old ones still hold its objects."""
    names = checkpoints.stack_names(s.backend_url, PROJECT) or []
    other = sorted(n for n in names if _batch_count_of(base, n) not in (None, count))
    if other:
        raise errors.UsageError(
            f"the folder stacks of {base!r} were made with another batch count ({', '.join(other)}); "
            f"keep that count, or delete those stacks first (their objects with them)")


def folder_up(s: backend.Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint,
              tenants: Sequence[spec.Tenant], *, stack_name: str | None = None, batches: int | None = None,
              with_platform: bool = True, parallel: int = FOLDER_PARALLEL,
              on_event: stacks.EventCallback | None = None, full: bool = False) -> FolderOutcome:
    """Apply every tenant of ``tenants`` (and the platform objects, with batch 1) in ``batches`` stacks of
    project ``vcm-folder``, one after another (default: ``batches_for`` the folder, or the count the
    folder's stacks already have). Tenants are split by the stable hash of ``sharding``, so adding or
    removing one never moves another; a tenant removed from the folder is deleted by its batch's run.

    The live objects are read first (refresh), so drift and the leftovers of a killed run are taken back.
    A batch whose fingerprint holds (``_batch_reason``) is not run at all, unless ``full``.
    """
    if FOLDER_REFUSES_CONTROL_PLANES:
        with_cp = sorted(t.name for t in tenants if t.spec.control_plane.enabled)
        if with_cp:
            raise errors.UsageError(
                "the folder stacks do not take tenants with a control plane (a Helm release made by a run "
                f"that was killed cannot be taken over by the next): {', '.join(with_cp)}; apply those with "
                "a stack each (`vcm apply FILE`)")
    base = stack_name or target.name
    count = batches or _existing_count(s, base) or batches_for(len(tenants))
    _refuse_other_batch_counts(s, base, count)
    with cluster.connect(target) as conn:
        uid = cluster.cluster_uid(conn)
    total: collections.Counter[str] = collections.Counter()
    per_batch: dict[str, dict[str, int]] = {}
    notices: list[str] = []
    whys: dict[str, str] = {}
    proven: list[str] = []
    live = _LiveObjects(target)
    for index in range(1, count + 1):
        part = sharding.select(tenants, sharding.Shard(index, count) if count > 1 else None, key=lambda t: t.name)
        name = batch_stack_name(base, index, count)
        platform_here = with_platform and index == 1
        recorded = stacks.recorded_outputs(s, PROJECT, name)
        if not part and not platform_here and recorded is None:
            continue  # an empty batch that never had a stack
        stacks.check_cluster_identity(target, name, (recorded or {}).get(program.CLUSTER_UID_OUTPUT), uid)
        why = "--full" if full else _batch_reason(s, target, blueprint, name, recorded, part, platform_here, uid, live)
        if why is None:
            held = _fingerprint_of(recorded) or fingerprint.Fingerprint(format=0, desired="", objects={})
            # counted as the engine counts a run that changes nothing: objects, components, stack, provider
            per_batch[name] = {"same": len(held.objects) + len(part) + int(platform_here) + 2}
            total.update(per_batch[name])
            proven.append(name)
            continue
        whys[name] = why
        fn = program.folder_program(part, target, blueprint, with_platform=platform_here, cluster_uid=uid)
        st = stacks.stack(s, name, fn, project=PROJECT, target=target, exists=recorded is not None,
                          extra_env=FOLDER_ENV)
        notices.extend(st.notices)
        res = stacks.up(st, on_event=on_event, parallel=parallel)
        changes = {str(k): int(v) for k, v in (res.summary.resource_changes or {}).items()}
        per_batch[name] = changes
        total.update(changes)
    return FolderOutcome(base, len(tenants), dict(total), per_batch, notices, whys, proven)


class _LiveObjects:
    """The live objects vcluster-mgr manages on one host cluster, digested, read once per kind for all batches
    (one LIST each, selected by the managed-by label every object we render carries)."""

    def __init__(self, target: platformconfig.Target) -> None:
        self.target = target
        self.digests: dict[str, str] = {}
        self.read: set[tuple[str, str]] = set()

    def of(self, kinds: set[tuple[str, str]]) -> dict[str, str]:
        missing = kinds - self.read
        if missing:
            with cluster.connect(self.target) as conn:
                self.digests |= cluster.live_digests(conn, missing,
                                                     f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}")
            self.read |= missing
        return self.digests


def _fingerprint_of(recorded: dict[str, Any] | None) -> fingerprint.Fingerprint | None:
    try:
        return fingerprint.Fingerprint.model_validate((recorded or {}).get("fingerprint"))
    except pydantic.ValidationError:
        return None


def _batch_reason(s: backend.Settings, target: platformconfig.Target, blueprint: platformconfig.Blueprint,
                  name: str, recorded: dict[str, Any] | None, part: Sequence[spec.Tenant], platform_here: bool,
                  uid: str, live: _LiveObjects) -> str | None:
    """Why batch stack ``name`` must run the engine, or None when its fingerprint holds (as for a tenant
    stack, ``operations.prove``): recorded, settled (checkpoint, history, locks), its state holding exactly
    the fingerprinted objects, the desired digest of ``part`` the recorded one, and the live objects' content
    that of the last apply. A plain ``pulumi up`` of the GitOps program records a fingerprint too, which holds
    here only if it applied exactly what this run would."""
    if recorded is None:
        return "a new stack"
    held = _fingerprint_of(recorded)
    if held is None:
        return "no fingerprint recorded"
    why = fingerprint.provable(held.objects)
    if why:
        return why
    settled = checkpoints.settled(s.backend_url, PROJECT, name)
    if not isinstance(settled, checkpoints.Settled):
        return "this backend's run history is not read here"
    if settled.why:
        return settled.why
    held_locks = locks.held(s.backend_url, PROJECT, name)
    if held_locks is None:
        return "this backend's locks are not read here"
    if held_locks:
        return f"its stack is locked ({held_locks[0].describe()})"
    if settled.objects != fingerprint.state_objects(held.objects):
        return "its state holds other objects than were fingerprinted (the state was edited)"
    desired = program.folder_desired_digest(part, target, blueprint, with_platform=platform_here, cluster_uid=uid)
    if desired != held.desired:
        return "the desired state changed"
    try:
        digests = live.of({fingerprint.kind_of(key) for key in held.objects})
    except errors.VcmError as exc:
        return f"the live objects could not be read ({exc})"
    return fingerprint.verdict(held, desired, digests)


def _existing_count(s: backend.Settings, base: str) -> int | None:
    """The batch count of the folder's existing stacks (file backends), else None."""
    counts = (_batch_count_of(base, n) for n in checkpoints.stack_names(s.backend_url, PROJECT) or [])
    return next((c for c in counts if c is not None), None)
