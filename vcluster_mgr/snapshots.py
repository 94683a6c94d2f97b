"""``vcm snapshot`` and ``vcm restore`` (and ``vcm delete --snapshot-to``): one home for each use case.

Both start from what the tenant's stack recorded (the applied spec names the control plane, its namespace and
whether it has persistence), so they need no spec file. Snapshot: the syncer takes it
(``cluster.take_snapshot``), we check it is an archive of vCluster's format and keep it
(``snapshot_stores.write``). Restore: the archive is read and checked BEFORE anything on the cluster changes
(a wrong file or key stops here, exit 2), then the syncer restores it (``cluster.restore_snapshot``) and we
wait for the control plane and what it synced to be Ready again (``controlplane_health.wait``).
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable
from typing import Any

from vcluster_mgr import (
    cluster,
    controlplane_health,
    errors,
    platformconfig,
    snapshot_archive,
    snapshot_stores,
    spec,
    workspace,
)


@dataclasses.dataclass
class Result:
    """What ``vcm snapshot`` / ``vcm restore`` report (``-o json``): where, what, how long."""

    tenant: str
    cluster: str
    location: str
    kind: str
    keys: int
    bytes: int
    resources: dict[str, int]
    seconds: float
    ready: bool | None = None  # restore: the control plane and its synced pods Ready again in time
    health: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def applied_tenant(settings: workspace.Settings, target: platformconfig.Target, name: str) -> spec.Tenant:
    """The tenant as its stack recorded it; a ``UsageError`` when it has no control plane to snapshot."""
    tenant = workspace.tenant_record(settings, target.name, name).applied_tenant()
    if tenant is None:
        raise errors.UsageError(f"tenant {name} was applied by an older vcm: apply it again first")
    if not tenant.spec.control_plane.enabled:
        raise errors.UsageError(
            f"tenant {name} has no control plane (spec.controlPlane.enabled): its objects live on the host and "
            "are re-created by `vcm apply`; a snapshot holds a virtual cluster's store")
    return tenant


def has_control_plane(settings: workspace.Settings, target: platformconfig.Target, name: str) -> bool:
    """Whether the recorded tenant has a control plane (``vcm delete`` offers a last snapshot only then)."""
    found = workspace.find_tenant_record(settings, target.name, name)
    tenant = found.applied_tenant() if found is not None else None
    return tenant is not None and tenant.spec.control_plane.enabled


def take(settings: workspace.Settings, target: platformconfig.Target, name: str, to: str, *,
         endpoint: str | None = None, now: datetime.datetime | None = None) -> Result:
    """Snapshot the tenant's virtual cluster into ``to`` (a folder, a file, ``s3://BUCKET/KEY`` or a prefix)."""
    started = time.monotonic()
    dest = snapshot_stores.destination(to, tenant=name, now=now or datetime.datetime.now(datetime.UTC),
                                       endpoint=endpoint)
    tenant = applied_tenant(settings, target, name)
    data = cluster.take_snapshot(target, tenant)
    try:
        summary = snapshot_archive.summarize(data, source=f"the snapshot the syncer of {name} wrote")
    except errors.UsageError as exc:  # the syncer's output, not the user's input
        raise errors.ProvisionError(str(exc)) from exc
    snapshot_stores.write(dest, data)
    return Result(tenant=name, cluster=target.name, location=str(dest), kind=summary.kind, keys=summary.keys,
                  bytes=summary.size, resources=summary.resources, seconds=round(time.monotonic() - started, 1))


def read(source: str, *, endpoint: str | None = None) -> tuple[snapshot_stores.Location, bytes,
                                                                  snapshot_archive.Summary]:
    """The archive at ``source``, read and checked (nothing on a cluster is touched)."""
    loc = snapshot_stores.source(source, endpoint=endpoint)
    data = snapshot_stores.read(loc)
    return loc, data, snapshot_archive.summarize(data, source=f"--from {loc}")


def restore(settings: workspace.Settings, target: platformconfig.Target, name: str,
            checked: tuple[snapshot_stores.Location, bytes, snapshot_archive.Summary], *, timeout: float,
            progress: Callable[[str], object] = lambda _: None) -> Result:
    """Replace the tenant's virtual cluster's store with the checked archive; wait up to ``timeout`` seconds for
    it to be Ready again (0: do not wait)."""
    started = time.monotonic()
    loc, data, summary = checked
    tenant = applied_tenant(settings, target, name)
    cluster.restore_snapshot(target, tenant, data, progress=progress)
    result = Result(tenant=name, cluster=target.name, location=str(loc), kind=summary.kind, keys=summary.keys,
                    bytes=summary.size, resources=summary.resources, seconds=0.0)
    if timeout > 0:
        health = controlplane_health.wait(target, tenant, timeout=timeout, progress=progress)
        result.ready, result.health = health.ready, health.summary()
    result.seconds = round(time.monotonic() - started, 1)
    return result
