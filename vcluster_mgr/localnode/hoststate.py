"""What the local node changes on the host, recorded before ``up`` and put back by ``down``.

The kubelet sets kernel sysctls (``vm.overcommit_memory``, ``kernel.panic``, ``kernel.panic_on_oops``,
``kernel.keys.*``), the CNI bridge plugin turns on ``net.ipv4.ip_forward`` and per-device settings,
kube-proxy writes nftables tables, kube-router iptables chains and ipsets, containerd and the kubelet
mount overlays, tmpfs volumes and network namespaces and create cgroups, and the kubelet writes log
directories under ``/var/log``. A ``Snapshot`` holds the state of each of those before the node starts;
``restore`` removes what is new and writes back what changed. ``diff`` says what differs between two
snapshots (tests compare the one before ``up`` with one after ``down``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

#: sysctl subtrees (under /proc/sys) whose values are recorded; per-device trees are left out (devices of
#: ours are deleted, others are not touched)
SYSCTL_TREES = ("vm", "kernel/panic", "kernel/panic_on_oops", "kernel/panic_on_warn", "kernel/keys",
                "net/ipv4", "net/ipv6/conf/all", "net/ipv6/conf/default", "net/bridge", "net/netfilter",
                "net/core")
#: values that change by themselves and are no setting
SYSCTL_VOLATILE = ("net/netfilter/nf_conntrack_count", "vm/stat_refresh", "vm/drop_caches",
                   "vm/compact_memory", "net/ipv4/route/flush", "net/ipv4/neigh", "net/ipv4/conf/",
                   "net/ipv6/conf/all/stable_secret", "net/ipv6/conf/default/stable_secret",
                   "net/core/bpf_jit_kallsyms", "kernel/keys/gc_delay", "net/ipv4/tcp_fastopen_key")
#: directories outside the node's own folder that the kubelet, containerd or the CNI plugins write into
TRACKED_DIRS = ("/var/log/pods", "/var/log/containers", "/var/lib/cni", "/run/netns", "/run/containerd",
                "/var/lib/kubelet", "/etc/cni", "/opt/cni", "/opt/containerd", "/var/lib/containerd",
                "/var/lib/kube-router", "/run/runc", "/run/xtables.lock")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclasses.dataclass
class Snapshot:
    sysctls: dict[str, str]
    devices: list[str]
    nft_tables: dict[str, str]
    ipsets: list[str]
    mounts: list[str]
    cgroups: dict[str, list[str]]
    paths: dict[str, list[str] | None]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        return cls(**json.loads(path.read_text()))


def _run(*args: str, check: bool = False) -> str:
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    if check and proc.returncode != 0:
        raise OSError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    base = Path("/proc/sys")
    for tree in SYSCTL_TREES:
        root = base / tree
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for f in files:
            key = str(f.relative_to(base))
            if any(key.startswith(v) for v in SYSCTL_VOLATILE) and not key.startswith(
                    ("net/ipv4/conf/all/", "net/ipv4/conf/default/")):
                continue
            if not os.access(f, os.W_OK):
                continue
            try:
                values[key] = f.read_text().strip()
            except OSError:
                continue
    return values


def _nft_tables() -> dict[str, str]:
    tables = {}
    for line in _run("nft", "list", "tables").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            key = f"{parts[1]} {parts[2]}"
            tables[key] = _run("nft", "list", "table", parts[1], parts[2])
    return tables


def _mounts() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(fields[4])
    return points


def _cgroups() -> dict[str, list[str]]:
    result = {}
    for hierarchy in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.exists() else []:
        if hierarchy.is_dir() and not hierarchy.is_symlink():
            result[hierarchy.name] = sorted(p.name for p in hierarchy.iterdir() if p.is_dir())
    return result


def _paths() -> dict[str, list[str] | None]:
    result: dict[str, list[str] | None] = {}
    for d in TRACKED_DIRS:
        p = Path(d)
        if p.is_dir():
            result[d] = sorted(c.name for c in p.iterdir())
        else:
            result[d] = [] if p.exists() else None
    return result


def take() -> Snapshot:
    """The host's state now."""
    return Snapshot(
        sysctls=_sysctls(), devices=sorted(os.listdir("/sys/class/net")), nft_tables=_nft_tables(),
        ipsets=sorted(_run("ipset", "list", "-n").split()), mounts=_mounts(), cgroups=_cgroups(),
        paths=_paths())


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences (empty when the host is as it was)."""
    out = []
    for key in sorted(set(before.sysctls) | set(after.sysctls)):
        if before.sysctls.get(key) != after.sysctls.get(key):
            out.append(f"sysctl {key}: {before.sysctls.get(key)!r} -> {after.sysctls.get(key)!r}")
    for label, b, a in (("device", before.devices, after.devices), ("ipset", before.ipsets, after.ipsets),
                        ("mount", before.mounts, after.mounts)):
        out += [f"{label} added: {x}" for x in sorted(set(a) - set(b))]
        out += [f"{label} removed: {x}" for x in sorted(set(b) - set(a))]
    for key in sorted(set(before.nft_tables) | set(after.nft_tables)):
        if before.nft_tables.get(key) != after.nft_tables.get(key):
            out.append(f"nftables table {key} differs")
    for h in sorted(set(before.cgroups) | set(after.cgroups)):
        added = set(after.cgroups.get(h, [])) - set(before.cgroups.get(h, []))
        out += [f"cgroup added: {h}/{c}" for c in sorted(added)]
    for d in TRACKED_DIRS:
        was, now = before.paths.get(d), after.paths.get(d)
        if was != now:
            out.append(f"path {d}: {was} -> {now}")
    return out


def _rm_cgroup(path: Path) -> None:
    """Remove a cgroup directory and its children (rmdir, deepest first; cgroup files cannot be unlinked)."""
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            child.rmdir()
        except OSError:
            pass
    try:
        path.rmdir()
    except OSError:
        pass


def unmount_new(before: Snapshot) -> None:
    """Unmount every mount point that was not there before, deepest first (lazily if busy)."""
    old = set(before.mounts)
    new = [m for m in _mounts() if m not in old]
    for point in sorted(set(new), key=lambda p: -len(p)):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def restore(before: Snapshot) -> list[str]:
    """Put the host back as ``before`` recorded it; returns what could not be put back."""
    unmount_new(before)
    for d, children in before.paths.items():
        p = Path(d)
        if children is None:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                p.unlink(missing_ok=True)
        elif p.is_dir():
            for c in p.iterdir():
                if c.name not in children:
                    if c.is_dir() and not c.is_symlink():
                        shutil.rmtree(c, ignore_errors=True)
                    else:
                        c.unlink(missing_ok=True)
    for dev in sorted(set(os.listdir("/sys/class/net")) - set(before.devices)):
        _run("ip", "link", "delete", dev)
    now = _nft_tables()
    for key, text in now.items():
        if key not in before.nft_tables:
            _run("nft", "delete", "table", *key.split())
        elif text != before.nft_tables[key]:
            _run("nft", "delete", "table", *key.split())
            subprocess.run(["nft", "-f", "-"], input=before.nft_tables[key], text=True, capture_output=True,
                           check=False)
    for name in sorted(set(_run("ipset", "list", "-n").split()) - set(before.ipsets)):
        _run("ipset", "destroy", name)
    for hierarchy, children in _cgroups().items():
        for child in set(children) - set(before.cgroups.get(hierarchy, [])):
            _rm_cgroup(CGROUP_ROOT / hierarchy / child)
    for key, value in before.sysctls.items():
        f = Path("/proc/sys") / key
        try:
            if f.read_text().strip() != value:
                f.write_text(value + "\n")
        except OSError:
            pass
    return diff(before, take())
