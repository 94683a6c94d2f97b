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

Nothing here holds credentials: the archive crosses the API server as the exec's stdin and stdout (binary
frames). Neither direction trusts the stream's end. The websocket exec cannot half-close stdin (closing it
raced the data on the local node and cut an archive short), so the command that receives the archive reads
exactly its size (``head -c N``) and ends on its own; and a file read out may end early with the connection. So
each direction is checked, once its one exec has ended, against the file in the pod: its size and its sha256
(``sha256sum`` there, ``hashlib`` here). A mismatch is a ``ProvisionError`` before anything is restored.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import websocket
import yaml
from kubernetes.stream import stream, ws_client

from vcluster_mgr import errors, naming, platformconfig, spec
from vcluster_mgr.cluster import connection, restore_pods

#: where the syncer writes a snapshot and reads a restore: its data volume (the claim ``data-<release>-0``)
SNAPSHOT_PATH = "/data/vcm-snapshot.tar.gz"
RESTORE_PATH = "/data/vcm-restore.tar.gz"
#: bytes per websocket frame when writing the archive
CHUNK = 256 * 1024
#: seconds a command that reads the archive gets to end once its last byte is sent (it waits for bytes that
#: never come when some were lost on the way: better a clear error soon than the whole timeout)
SETTLE = 120.0


def _exec(conn: connection.Connection, namespace: str, pod: str, container: str, command: list[str], *,
          stdin: bytes | None = None, timeout: float = 300.0) -> tuple[int, bytes, bytes]:
    """Run ``command`` in the container: (exit code, stdout, stderr) as bytes; -1 when it did not end within
    ``timeout`` seconds (``SETTLE`` after the last byte of ``stdin``) or ended with no status. ``stdin`` is
    written whole and never closed: the command must end on its own once it has read what it needs (``head -c
    N``), as closing stdin over the websocket can overtake the data on its way to the process. One exec at a
    time per pod: a second one while this one was open broke this one off on the local node."""
    resp = conn.call(f"exec in pod {namespace}/{pod}", stream, conn.core.connect_get_namespaced_pod_exec, pod,
                     namespace, container=container, command=command, stdin=stdin is not None, stdout=True,
                     stderr=True, tty=False, binary=True, _preload_content=False, _request_timeout=timeout)
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        try:
            for start in range(0, len(stdin or b""), CHUNK):
                resp.write_stdin((stdin or b"")[start:start + CHUNK])
        except (OSError, websocket.WebSocketException):
            pass  # the command ended before it took it all (a full volume): its status and stderr say why
        if stdin is not None:
            deadline = min(deadline, time.monotonic() + SETTLE)
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
    except (OSError, websocket.WebSocketException) as exc:
        raise errors.UnreachableError(f"exec in pod {namespace}/{pod} on {conn.server} broke off: {exc}",
                                      server=conn.server, detail=str(exc)) from exc
    finally:
        resp.close()
    # what the last read of the loop left in the buffers
    if resp.peek_stdout():
        out.append(resp.read_stdout())
    if resp.peek_stderr():
        err.append(resp.read_stderr())
    return _returncode(resp), b"".join(out), b"".join(err)


def _returncode(resp: Any) -> int:
    """The exit code the closed exec's status channel carries; -1 when it carries none (the connection ended
    before the process did, or the deadline came first)."""
    status = resp.read_channel(ws_client.ERROR_CHANNEL)
    if not status:
        return -1
    try:
        parsed = yaml.safe_load(status)
        if parsed.get("status") == "Success":
            return 0
        return int(parsed["details"]["causes"][0]["message"])
    except (yaml.YAMLError, AttributeError, KeyError, IndexError, TypeError, ValueError):
        return -1


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
                # exactly the archive's bytes, then the command ends on its own (stdin is never closed)
                code, _, err = _exec(conn, namespace, pod_name, "restore",
                                     ["sh", "-c", f"head -c {len(data)} > {RESTORE_PATH}"], stdin=data,
                                     timeout=timeout)
                if code != 0:
                    raise errors.ProvisionError(
                        f"writing the archive into {namespace}/{pod_name} failed (exit {code}; -1: it had not "
                        f"taken all {len(data)} bytes {SETTLE:.0f}s after the last was sent); nothing was "
                        "restored and the control plane starts again with its store as it was: " + _tail(err))
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
