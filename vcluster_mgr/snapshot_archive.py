"""What a vCluster snapshot archive holds, read without a cluster: so a restore refuses a file that is not one
before it stops anything, and ``vcm snapshot`` can say what it took.

The archive is vCluster's own format, written and read by the syncer's ``/vcluster snapshot`` and ``/vcluster
restore`` (``pkg/snapshot`` of vcluster 0.36): a gzip-compressed tar. For the embedded database (SQLite through
kine) and a deployed etcd it is a key-value snapshot: one tar entry per key of the virtual cluster's store
(``/registry/<resource>/<namespace>/<name>``, the value the API server wrote), optionally preceded by the Helm
release (``/vcluster/snapshot/release``) and the snapshot request (``/vcluster/snapshot/request/...``). For
embedded etcd (a licensed feature) it is one etcd database file (``/vcluster/snapshot/db``). We only read it: the
bytes go back to the syncer unchanged.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import tarfile
import zlib

from vcluster_mgr import errors

#: the entry that marks an embedded-etcd snapshot (vcluster's DBStoreKey)
ETCD_DB_KEY = "/vcluster/snapshot/db"
#: vcluster's own entries, not keys of the virtual cluster's store
META_PREFIX = "/vcluster/snapshot/"
#: the store's keys of Kubernetes objects
REGISTRY_PREFIX = "/registry/"


@dataclasses.dataclass(frozen=True)
class Summary:
    """What an archive holds: its kind, how many keys, and how many objects of each resource."""

    kind: str  # "key-value" | "etcd"
    keys: int
    size: int  # bytes of the compressed archive
    resources: dict[str, int]

    def line(self) -> str:
        """One line for a person: ``key-value, 312 keys, 41.2 KiB: 3 deployments, 5 pods, ...``."""
        top = sorted(self.resources.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{n} {r}" for r, n in top[:8]) + (", ..." if len(top) > 8 else "")
        return f"{self.kind}, {self.keys} keys, {self.size / 1024:.1f} KiB" + (f": {shown}" if shown else "")


def _resource(key: str) -> str | None:
    """``/registry/pods/default/web-1`` -> ``pods``, ``/registry/deployments/default/web`` -> ``deployments``
    (the API server keys built-in kinds by resource); a custom resource's key starts with its group."""
    if not key.startswith(REGISTRY_PREFIX):
        return None
    parts = key[len(REGISTRY_PREFIX):].split("/")
    return parts[0] or None


def summarize(data: bytes, *, source: str) -> Summary:
    """Read the archive; a ``UsageError`` naming ``source`` when it is not a vCluster snapshot (not gzip, not a
    tar, or holding no key of a store and no etcd database)."""
    resources: dict[str, int] = {}
    keys = 0
    etcd = False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = member.name
                if name == ETCD_DB_KEY:
                    etcd = True
                    continue
                if name.startswith(META_PREFIX):
                    continue
                keys += 1
                resource = _resource(name)
                if resource is not None:
                    resources[resource] = resources.get(resource, 0) + 1
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
        raise errors.UsageError(f"{source} is not a vCluster snapshot (a gzip-compressed tar): {exc}") from exc
    if not etcd and not resources:
        raise errors.UsageError(f"{source} is not a vCluster snapshot: it holds no key of a virtual cluster's "
                                f"store (/registry/...) and no etcd database")
    return Summary(kind="etcd" if etcd else "key-value", keys=keys, size=len(data), resources=resources)
