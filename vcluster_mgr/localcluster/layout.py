"""Where a local cluster lives and what it records: its folder, ``state.json`` as ``Cluster``, loading it.

Each cluster lives in ``<cache>/local/<name>/`` (``state.json``, ``pki/``, ``etcd/``, ``logs/``,
``admin.kubeconfig``); ``state.json`` is the only record of its processes, so ``down`` stops exactly those.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from vcluster_mgr import errors, toolchain
from vcluster_mgr.localcluster import processes

DEFAULT_NAME = "default"
#: how long ``up`` waits for ``/readyz`` before giving up, seconds
READY_TIMEOUT = 90.0
SERVICE_CIDR = "10.96.0.0/16"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


def clusters_dir() -> Path:
    return toolchain.cache_dir() / "local"


def cluster_dir(name: str) -> Path:
    if not _NAME_RE.match(name):
        raise errors.UsageError(f"local cluster name {name!r} must be a DNS label of at most 32 characters")
    return clusters_dir() / name


@dataclasses.dataclass
class Cluster:
    """What ``state.json`` records about a running local cluster."""

    name: str
    server: str
    etcd_client_port: int
    etcd_peer_port: int
    apiserver_port: int
    pids: dict[str, int]
    started_at: float
    ready_seconds: float
    #: each process's command line, so one can be restarted alone (fault drills)
    commands: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: the node (``--nodes 1``): name, registry, image references; empty for a control plane only
    node: dict[str, object] = dataclasses.field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return cluster_dir(self.name)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    def running(self) -> dict[str, bool]:
        return {proc: processes.alive(pid, self.dir) for proc, pid in self.pids.items()}


def save(c: Cluster) -> None:
    (c.dir / "state.json").write_text(json.dumps(dataclasses.asdict(c), indent=2))


def load(name: str = DEFAULT_NAME) -> Cluster:
    """The recorded state of a local cluster; ``LocalClusterError`` if there is none."""
    path = cluster_dir(name) / "state.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise errors.LocalClusterError(
            f"no local cluster named {name!r} is running (start one with `vcm local up --name {name}`)") from None
    except ValueError as exc:
        raise errors.LocalClusterError(f"{path} is damaged ({exc}); run `vcm local down --name {name}`") from exc
    try:
        return Cluster(**data)
    except TypeError as exc:  # a state file of another vcm version (other fields)
        raise errors.LocalClusterError(f"{path} was written by another version of vcm ({exc})") from exc


def list_clusters() -> list[Cluster]:
    if not clusters_dir().exists():
        return []
    found = []
    for d in sorted(clusters_dir().iterdir()):
        try:
            found.append(load(d.name))
        except errors.VcmError:
            continue
    return found

