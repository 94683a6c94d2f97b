"""Snapshots of a tenant's virtual cluster, taken and restored by vCluster's own syncer on the host.

Why this route: the open-source syncer (``/vcluster`` in the control plane's image) has ``vcluster snapshot`` and
``vcluster restore``, which read and write vCluster's snapshot format from and to its backing store; the user CLI
(``vclusterctl``) only drives them (it makes a snapshot *request* that the running syncer serves, or runs a pod
with the syncer's image). We drive them the same way, with no new binary:

* **snapshot** (``take``): run ``/vcluster snapshot`` in the running control plane's ``syncer`` container (an
  exec through the API server), writing to ``container:///data/vcm-snapshot.tar.gz`` on its own volume; read the
  file back through the same exec and empty it. The control plane keeps running (the embedded store is read as
  a consistent list of its keys).
* **restore** (``restore``), as upstream's ``vcluster restore`` does: scale the control plane's StatefulSet to
  zero, delete the pods it synced to the host, start one pod from the StatefulSet's own pod template
  (``restore_pods.restore_pod``) that sleeps, write the archive into its data volume, run ``/vcluster restore
  --new-vcluster`` in it, delete it and scale the StatefulSet back, whatever happened. ``--new-vcluster`` drops
  the snapshot's name mappings and ``kube-root-ca.crt`` ConfigMaps, which the new control plane makes afresh:
  right for a re-created tenant (new certificates), harmless for the same one. The syncer backs the store up
  first and puts it back when the restore fails.

Nothing here holds credentials: the archive crosses the API server inside the exec requests and their
output. Out of the control plane it is the output of ``cat``; into the restore pod it goes with NO stdin at
all: exec stdin over the websocket was cut short on the local node (closing it raced the data; and with the
close left out, ``head -c N`` still met an end of input after 32 KiB and wrote that much), so each part of the
archive (``PART`` bytes) travels base64-encoded as an argument of its own exec (``base64 -d`` writes it, the
first part creating the file and the others appending), whose status says it was written. Neither direction
trusts the stream: once the execs have ended, the file in the pod is checked against the archive here, its
size and its sha256 (``sha256sum`` there, ``hashlib`` here). A mismatch is a ``ProvisionError`` before
anything is restored.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

from vcluster_mgr import errors, naming, platformconfig, spec
from vcluster_mgr.cluster import connection, pod_exec, restore_pods

#: where the syncer writes a snapshot and reads a restore: its data volume (the claim ``data-<release>-0``)
SNAPSHOT_PATH = "/data/vcm-snapshot.tar.gz"
RESTORE_PATH = "/data/vcm-restore.tar.gz"
#: bytes of the archive per exec that writes it into the restore pod: base64 makes them 64 KiB, one argument
#: of the command, well inside Linux's 128 KiB per argument and the API server's 1 MiB request line
PART = 48 * 1024


def _exec(conn: connection.Connection, namespace: str, pod: str, container: str, command: list[str], *,
          timeout: float = 300.0) -> tuple[int, bytes, bytes]:
    """``pod_exec.run_bytes`` in the named container: (exit code, stdout, stderr), -1 with no status."""
    return pod_exec.run_bytes(conn, namespace, pod, command, container=container, timeout=timeout)


def write_command(path: str, part: bytes, first: bool) -> list[str]:
    """The exec that writes one part of the archive into ``path``: the part base64-encoded as the shell's ``$1``
    (an argument, never stdin), decoded by ``base64 -d``; the first part creates the file, the others append."""
    script = f'printf %s "$1" | base64 -d {">" if first else ">>"} {path}'
    return ["sh", "-c", script, "sh", base64.b64encode(part).decode()]


def _write(conn: connection.Connection, namespace: str, pod: str, path: str, data: bytes, timeout: float) -> None:
    """Write ``data`` into ``path`` in the pod, part by part (``write_command``), each exec's status checked."""
    for start in range(0, len(data), PART):
        code, _, err = _exec(conn, namespace, pod, "restore", write_command(path, data[start:start + PART],
                                                                             start == 0), timeout=timeout)
        if code != 0:
            raise errors.ProvisionError(
                f"writing the archive into {namespace}/{pod} failed at byte {start} of {len(data)} (exit {code}; "
                "-1: the exec ended with no status); nothing was restored and the control plane starts again "
                "with its store as it was: " + _tail(err))


def _size(conn: connection.Connection, namespace: str, pod: str, path: str, container: str = "restore") -> int:
    """The size of a file in the pod (``ls -ln``'s fifth field), -1 when there is none."""
    code, out, _ = _exec(conn, namespace, pod, container, ["ls", "-ln", path], timeout=30)
    fields = out.split()
    return int(fields[4]) if code == 0 and len(fields) > 4 and fields[4].isdigit() else -1


def _sha256(conn: connection.Connection, namespace: str, pod: str, path: str, container: str = "restore") -> str:
    """The sha256 of a file in the pod (``sha256sum``, hex), "" when it could not be read."""
    code, out, _ = _exec(conn, namespace, pod, container, ["sha256sum", path], timeout=120)
    fields = out.split()
    return fields[0].decode() if code == 0 and fields and len(fields[0]) == 64 else ""


def _mismatch(conn: connection.Connection, namespace: str, pod: str, path: str, data: bytes,
              container: str = "restore") -> str:
    """How the file in the pod differs from ``data`` (its size, then its sha256), "" when it is the same."""
    size = _size(conn, namespace, pod, path, container)
    if size != len(data):
        return f"{size} bytes in the pod, {len(data)} here"
    digest, ours = _sha256(conn, namespace, pod, path, container), hashlib.sha256(data).hexdigest()
    return "" if digest == ours else f"sha256 {digest or '(none)'} in the pod, {ours} here"


def _tail(data: bytes, lines: int = 15) -> str:
    return "\n".join(data.decode(errors="replace").rstrip().splitlines()[-lines:])


def _control_plane_pod(conn: connection.Connection, tenant: spec.Tenant) -> str:
    namespace = tenant.namespace_names()[0]
    release = naming.control_plane_release(tenant.name)
    pods: list[Any] = conn.call(f"listing the control plane pods of {tenant.name}", conn.core.list_namespaced_pod,
                                namespace, label_selector=naming.control_plane_pod_selector(release)).items
    ready = sorted(str(p.metadata.name) for p in pods if p.status and p.status.phase == "Running"
                   and not p.metadata.deletion_timestamp
                   and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))
    if not ready:
        raise errors.ProvisionError(
            f"tenant {tenant.name} has no running control plane pod in {namespace} to take the snapshot "
            "(is it asleep? `vcm wake` it first; `vcm status` shows its pods)")
    return ready[0]


def take(target: platformconfig.Target, tenant: spec.Tenant, *, timeout: float = 600.0) -> bytes:
    """The virtual cluster's snapshot archive, written by its running syncer (``/vcluster snapshot``)."""
    namespace = tenant.namespace_names()[0]
    with connection.connect(target) as conn:
        pod = _control_plane_pod(conn, tenant)
        options = restore_pods.options_value(SNAPSHOT_PATH)
        command = ["sh", "-c", f"{restore_pods.OPTIONS_ENV}={options} exec /vcluster snapshot"]
        code, out, err = _exec(conn, namespace, pod, restore_pods.SYNCER, command, timeout=timeout)
        if code != 0:
            raise errors.ProvisionError(
                f"the syncer of {tenant.name} ({namespace}/{pod}) could not take the snapshot (exit {code}):\n"
                + _tail(err + out))
        size = _size(conn, namespace, pod, SNAPSHOT_PATH, restore_pods.SYNCER)
        digest = _sha256(conn, namespace, pod, SNAPSHOT_PATH, restore_pods.SYNCER)
        for _ in range(3):  # all of it, or read it again
            code, data, err = _exec(conn, namespace, pod, restore_pods.SYNCER, ["cat", SNAPSHOT_PATH],
                                    timeout=timeout)
            if code == 0 and size >= 0 and len(data) == size and digest == hashlib.sha256(data).hexdigest():
                break
        else:
            raise errors.ProvisionError(
                f"reading the snapshot back from {namespace}/{pod} (exit {code}, {len(data)} of {size} bytes, "
                f"sha256 {hashlib.sha256(data).hexdigest()} read, {digest or '(none)'} in the pod): " + _tail(err))
        # empty it: the data volume counts against the tenant's storage (the shell's own redirection)
        _exec(conn, namespace, pod, restore_pods.SYNCER, ["sh", "-c", f": > {SNAPSHOT_PATH}"], timeout=60)
        return data


def _statefulset(conn: connection.Connection, tenant: spec.Tenant) -> Any:
    namespace = tenant.namespace_names()[0]
    release = naming.control_plane_release(tenant.name)
    sts = conn.read(f"reading the control plane StatefulSet {namespace}/{release}",
                    conn.apps.read_namespaced_stateful_set, release, namespace)
    if sts is None or not sts.spec.volume_claim_templates:
        raise errors.UsageError(
            f"tenant {tenant.name} has no control plane StatefulSet with a persistent volume in {namespace}: a "
            "restore writes the store on it (enable spec.controlPlane.persistence and apply)")
    return sts


def _scale(conn: connection.Connection, tenant: spec.Tenant, replicas: int) -> None:
    release = naming.control_plane_release(tenant.name)
    conn.call(f"scaling the control plane StatefulSet {release} to {replicas}",
              conn.apps.patch_namespaced_stateful_set_scale, release, tenant.namespace_names()[0],
              {"spec": {"replicas": replicas}})


def _wait_running(conn: connection.Connection, namespace: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pod: Any = conn.call(f"reading the restore pod {namespace}/{name}", conn.core.read_namespaced_pod, name,
                             namespace)
        phase = pod.status.phase if pod.status else None
        running = [s for s in (pod.status.container_statuses or []) if s.state and s.state.running]
        if phase == "Running" and running:
            return
        if phase in {"Failed", "Succeeded"} or time.monotonic() >= deadline:
            waiting = [f"{s.name}: {s.state.waiting.reason}" for s in (pod.status.container_statuses or [])
                       + (pod.status.init_container_statuses or []) if s.state and s.state.waiting]
            raise errors.ProvisionError(f"the restore pod {namespace}/{name} did not start ({phase}"
                                        + (f"; {', '.join(waiting)}" if waiting else "") + ")")
        time.sleep(1.0)


def _wait_gone(conn: connection.Connection, namespace: str, selector: str, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while conn.call(f"listing {what}", conn.core.list_namespaced_pod, namespace, label_selector=selector).items:
        if time.monotonic() >= deadline:
            raise errors.ProvisionError(f"{what} in {namespace} were still there after {timeout:.0f}s")
        time.sleep(1.0)


def restore(target: platformconfig.Target, tenant: spec.Tenant, data: bytes, *,
            progress: Callable[[str], object] = lambda _: None, timeout: float = 600.0) -> None:
    """Replace the virtual cluster's whole store with the archive ``data`` (already checked to be one), the
    control plane stopped meanwhile and scaled back after, whatever happened."""
    namespace = tenant.namespace_names()[0]
    release = naming.control_plane_release(tenant.name)
    with connection.connect(target) as conn:
        sts = _statefulset(conn, tenant)
        replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
        manifest = restore_pods.restore_pod(conn.plain(sts), release,
                                            restore_pods.options_value(RESTORE_PATH))
        progress(f"stopping the control plane of {tenant.name} (StatefulSet {namespace}/{release} to 0)")
        _scale(conn, tenant, 0)
        pod_name = ""
        try:
            _wait_gone(conn, namespace, naming.control_plane_pod_selector(release),
                       f"the control plane pods of {tenant.name}", 180.0)
            synced: list[Any] = conn.call(f"listing the pods synced by {tenant.name}'s control plane",
                                          conn.core.list_namespaced_pod, namespace,
                                          label_selector=f"{naming.SYNCED_BY_LABEL}={release}").items
            for pod in synced:
                # gone already is as good as deleted
                conn.read(f"deleting pod {namespace}/{pod.metadata.name}", conn.core.delete_namespaced_pod,
                          pod.metadata.name, namespace)
            progress(f"deleted {len(synced)} pod(s) the virtual cluster had synced; starting the restore pod")
            created: Any = conn.call(f"creating the restore pod in {namespace}", conn.core.create_namespaced_pod,
                                     namespace, manifest)
            pod_name = str(created.metadata.name)
            _wait_running(conn, namespace, pod_name, 180.0)
            try:
                _write(conn, namespace, pod_name, RESTORE_PATH, data, timeout)
                differs = _mismatch(conn, namespace, pod_name, RESTORE_PATH, data)
                if differs:
                    raise errors.ProvisionError(
                        f"the archive written into {namespace}/{pod_name} is not the one read ({differs}); nothing "
                        "was restored and the control plane starts again with its store as it was")
                progress(f"restoring {len(data)} bytes with /vcluster restore in {namespace}/{pod_name}")
                code, out, err = _exec(conn, namespace, pod_name, "restore",
                                       ["/vcluster", "restore", "--new-vcluster"], timeout=timeout)
                if code != 0:
                    raise errors.ProvisionError(
                        f"the syncer's restore failed in {namespace}/{pod_name} (exit {code}); it puts the "
                        "previous store back on failure:\n" + _tail(err + out))
            finally:
                # the data volume counts against the tenant's storage: empty the archive, whatever happened
                try:
                    _exec(conn, namespace, pod_name, "restore", ["sh", "-c", f": > {RESTORE_PATH}"], timeout=60)
                except errors.VcmError:
                    pass
        finally:
            try:
                if pod_name:
                    # its data volume is the control plane's (ReadWriteOnce): wait until the pod is gone
                    conn.read(f"deleting the restore pod {namespace}/{pod_name}", conn.core.delete_namespaced_pod,
                              pod_name, namespace, grace_period_seconds=1)
                    _wait_gone(conn, namespace, f"{restore_pods.RESTORE_LABEL}={release}", "the restore pod", 60.0)
            finally:
                # whatever happened, the control plane runs again (with the restored store, or the one the
                # syncer put back)
                progress(f"starting the control plane of {tenant.name} again ({replicas} replica(s))")
                _scale(conn, tenant, replicas)
