"""Snapshots of a tenant's virtual cluster, taken and restored by vCluster's own syncer on the host.

Why this route: the open-source syncer (``/vcluster`` in the control plane's image) has ``vcluster snapshot`` and
``vcluster restore``, which read and write vCluster's snapshot format from and to its backing store; the user CLI
(``vclusterctl``) only drives them (it makes a snapshot *request* that the running syncer serves, or runs a pod
with the syncer's image). We drive them the same way, with no new binary:

* **snapshot**: run ``/vcluster snapshot`` in the running control plane's ``syncer`` container (an exec through
  the API server), writing to ``container:///data/vcm-snapshot.tar.gz`` on its own volume; read the file back
  through the same exec and empty it. The control plane keeps running (the embedded store is read as a
  consistent list of its keys).
* **restore**, as upstream's ``vcluster restore`` does: scale the control plane's StatefulSet to zero, delete the
  pods it synced to the host, start one pod from the StatefulSet's own pod template (same image, init container,
  volumes, the data volume's claim, environment and security context; pull policy Always, no ``release``
  label) that sleeps, write the archive into its data volume, run ``/vcluster restore --new-vcluster`` in it,
  delete it and scale the StatefulSet back. ``--new-vcluster`` drops the snapshot's name mappings and
  ``kube-root-ca.crt`` ConfigMaps, which the new control plane makes afresh: right for a re-created tenant
  (new certificates), harmless for the same one. The syncer backs the store up first and puts it back when the
  restore fails.

Nothing here holds credentials: the archive crosses the API server as the exec's stdin and stdout.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import websocket
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream, ws_client
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors, hostcluster, naming, platformconfig, spec

#: the syncer's container in the chart's pod template
SYNCER = "syncer"
#: where the syncer writes a snapshot and reads a restore (on the control plane's data volume, which is the
#: claim ``data-<release>-0`` with persistence)
SNAPSHOT_PATH = "/data/vcm-snapshot.tar.gz"
RESTORE_PATH = "/data/vcm-restore.tar.gz"
#: vCluster's environment variable for the snapshot options (base64 of their JSON)
OPTIONS_ENV = "VCLUSTER_STORAGE_OPTIONS"
#: the label of the restore pod
RESTORE_LABEL = "vcluster-mgr.dev/restore"
#: bytes per websocket frame when writing the archive
CHUNK = 256 * 1024


def options_value(path: str) -> str:
    """The syncer's snapshot options for a file on its own filesystem (``container://`` in vCluster's URLs)."""
    return base64.b64encode(json.dumps({"type": "container", "container": {"path": path}}).encode()).decode()


class _Api:
    """The host's core and apps clients for one command, closed at the end; errors become ``ProvisionError``."""

    def __init__(self, target: platformconfig.Target) -> None:
        self.api = hostcluster.api_client(target)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.server = hostcluster.server_of(self.api)


@contextlib.contextmanager
def _connected(target: platformconfig.Target, doing: str) -> Iterator[_Api]:
    api = _Api(target)
    try:
        yield api
    except ApiException as exc:
        raise errors.ProvisionError(f"{doing} on {api.server}: {exc.status} {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise errors.ProvisionError(f"{doing}: the API server {api.server} is not reachable: {exc}") from exc
    finally:
        api.api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client


def _exec(api: _Api, namespace: str, pod: str, container: str, command: list[str], *,
          stdin: bytes | None = None, timeout: float = 300.0) -> tuple[int, bytes, bytes]:
    """Run ``command`` in the container: (exit code, stdout, stderr) as bytes; -1 when it did not end within
    ``timeout`` seconds. ``stdin`` is written whole and then closed (the v5 exec protocol)."""
    resp = stream(api.core.connect_get_namespaced_pod_exec, pod, namespace, container=container, command=command,
                  stdin=stdin is not None, stdout=True, stderr=True, tty=False, binary=True,
                  _preload_content=False, _request_timeout=timeout)
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        if stdin is not None:
            if resp.subprotocol != ws_client.V5_CHANNEL_PROTOCOL:
                raise errors.ProvisionError(
                    f"the API server {api.server} does not speak the v5 exec protocol (Kubernetes 1.30 or later), "
                    "which writing a file into a pod needs")
            for start in range(0, len(stdin), CHUNK):
                resp.write_stdin(stdin[start:start + CHUNK])
            resp.close_channel(ws_client.STDIN_CHANNEL)
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
    except (OSError, websocket.WebSocketException) as exc:
        raise errors.ProvisionError(f"exec in pod {namespace}/{pod} on {api.server} broke off: {exc}") from exc
    finally:
        resp.close()
    code = resp.returncode
    return (code if code is not None else -1), b"".join(out), b"".join(err)


def _tail(data: bytes, lines: int = 15) -> str:
    return "\n".join(data.decode(errors="replace").rstrip().splitlines()[-lines:])


def _control_plane_pod(api: _Api, tenant: spec.Tenant) -> str:
    namespace = tenant.namespace_names()[0]
    release = naming.control_plane_release(tenant.name)
    pods: list[Any] = api.core.list_namespaced_pod(
        namespace, label_selector=naming.control_plane_pod_selector(release), _request_timeout=15).items
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
    with _connected(target, f"taking a snapshot of {tenant.name}'s virtual cluster") as api:
        pod = _control_plane_pod(api, tenant)
        command = ["sh", "-c", f"{OPTIONS_ENV}={options_value(SNAPSHOT_PATH)} exec /vcluster snapshot"]
        code, out, err = _exec(api, namespace, pod, SYNCER, command, timeout=timeout)
        if code != 0:
            raise errors.ProvisionError(
                f"the syncer of {tenant.name} ({namespace}/{pod}) could not take the snapshot (exit {code}):\n"
                + _tail(err + out))
        code, data, err = _exec(api, namespace, pod, SYNCER, ["cat", SNAPSHOT_PATH], timeout=timeout)
        if code != 0:
            raise errors.ProvisionError(f"reading the snapshot back from {namespace}/{pod} (exit {code}): "
                                        + _tail(err))
        # empty it: the data volume counts against the tenant's storage (the shell's own redirection)
        _exec(api, namespace, pod, SYNCER, ["sh", "-c", f": > {SNAPSHOT_PATH}"], timeout=60)
        return data


def _statefulset(api: _Api, tenant: spec.Tenant) -> Any:
    namespace = tenant.namespace_names()[0]
    release = naming.control_plane_release(tenant.name)
    try:
        return api.apps.read_namespaced_stateful_set(release, namespace, _request_timeout=15)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.UsageError(
                f"tenant {tenant.name} has no control plane StatefulSet {namespace}/{release}: a restore needs "
                "the control plane with persistence (spec.controlPlane.persistence.enabled), applied") from exc
        raise


def _scale(api: _Api, tenant: spec.Tenant, replicas: int) -> None:
    api.apps.patch_namespaced_stateful_set_scale(
        naming.control_plane_release(tenant.name), tenant.namespace_names()[0], {"spec": {"replicas": replicas}},
        _request_timeout=15)


def restore_pod(sts: Any, release: str, options: str) -> dict[str, Any]:
    """The restore pod made from the control plane StatefulSet's pod template (a dict of it, camelCase), as
    upstream's snapshot pod is: the ``syncer`` container's image, environment, mounts and security context; the
    init containers and volumes; the data volume's claim; pulled Always (``vcm-image-pull-always``), with none
    of the template's labels (``release`` is the control plane's own, ``vcm-control-plane-labels``)."""
    template = sts["spec"]["template"]["spec"]
    syncer = next((c for c in template.get("containers", []) if c.get("name") == SYNCER), None)
    if syncer is None:
        raise errors.ProvisionError(f"the control plane StatefulSet {release} has no {SYNCER!r} container")
    env = [e for e in syncer.get("env", []) if e.get("name") not in {"POD_NAME", OPTIONS_ENV}]
    env += [{"name": "POD_NAME", "value": f"{release}-0"}, {"name": OPTIONS_ENV, "value": options}]
    volumes = list(template.get("volumes", []))
    if not any(v.get("name") == "data" for v in volumes):
        claims = sts["spec"].get("volumeClaimTemplates") or []
        claim = f"{claims[0]['metadata']['name']}-{release}-0" if claims else f"data-{release}-0"
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
    inits = [{**c, "imagePullPolicy": "Always"} for c in template.get("initContainers", [])]
    container = {
        "name": "restore", "image": syncer["image"], "imagePullPolicy": "Always",
        "command": ["sleep", "86400"], "env": env, "volumeMounts": syncer.get("volumeMounts", []),
    }
    for key in ("envFrom", "securityContext", "resources", "workingDir"):
        if syncer.get(key):
            container[key] = syncer[key]
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                "volumes": volumes, "initContainers": inits, "containers": [container]}
    for key in ("serviceAccountName", "automountServiceAccountToken", "nodeSelector", "affinity", "tolerations",
                "securityContext", "imagePullSecrets", "priorityClassName", "enableServiceLinks"):
        if template.get(key) is not None:
            pod_spec[key] = template[key]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"{release}-restore-",
                         "labels": {"app": "vcluster-restore", RESTORE_LABEL: release}},
            "spec": pod_spec}


def _wait_running(api: _Api, namespace: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pod: Any = api.core.read_namespaced_pod(name, namespace, _request_timeout=15)
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


def _wait_gone(api: _Api, tenant: spec.Tenant, timeout: float) -> None:
    namespace = tenant.namespace_names()[0]
    selector = naming.control_plane_pod_selector(naming.control_plane_release(tenant.name))
    deadline = time.monotonic() + timeout
    while api.core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=15).items:
        if time.monotonic() >= deadline:
            raise errors.ProvisionError(f"the control plane pods of {tenant.name} were still there {timeout:.0f}s "
                                        "after scaling to zero")
        time.sleep(1.0)


def restore(target: platformconfig.Target, tenant: spec.Tenant, data: bytes, *,
            progress: Callable[[str], object] = lambda _: None, timeout: float = 600.0) -> None:
    """Replace the virtual cluster's whole store with the archive ``data`` (already checked to be one), the
    control plane stopped meanwhile and scaled back after, whatever happened."""
    namespace = tenant.namespace_names()[0]
    release = naming.control_plane_release(tenant.name)
    with _connected(target, f"restoring {tenant.name}'s virtual cluster") as api:
        sts = _statefulset(api, tenant)
        if not sts.spec.volume_claim_templates:
            raise errors.UsageError(
                f"tenant {tenant.name}'s control plane has no persistent volume: a restore writes the store on it "
                "(enable spec.controlPlane.persistence and apply)")
        replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
        manifest = restore_pod(api.api.sanitize_for_serialization(sts), release,  # type: ignore[no-untyped-call]
                               options_value(RESTORE_PATH))
        progress(f"stopping the control plane of {tenant.name} (StatefulSet {namespace}/{release} to 0)")
        _scale(api, tenant, 0)
        pod_name = ""
        try:
            _wait_gone(api, tenant, 180.0)
            synced: list[Any] = api.core.list_namespaced_pod(
                namespace, label_selector=f"{naming.SYNCED_BY_LABEL}={release}", _request_timeout=15).items
            for pod in synced:
                with contextlib.suppress(ApiException):
                    api.core.delete_namespaced_pod(pod.metadata.name, namespace, _request_timeout=15)
            progress(f"deleted {len(synced)} pod(s) the virtual cluster had synced; starting the restore pod")
            created: Any = api.core.create_namespaced_pod(namespace, manifest,  # type: ignore[arg-type]  # a dict is sent as is
                                                          _request_timeout=15)
            pod_name = str(created.metadata.name)
            _wait_running(api, namespace, pod_name, 180.0)
            code, _, err = _exec(api, namespace, pod_name, "restore", ["sh", "-c", f"cat > {RESTORE_PATH}"],
                                 stdin=data, timeout=timeout)
            if code != 0:
                raise errors.ProvisionError(f"writing the archive into {namespace}/{pod_name} (exit {code}): "
                                            + _tail(err))
            progress(f"restoring {len(data)} bytes with /vcluster restore in {namespace}/{pod_name}")
            code, out, err = _exec(api, namespace, pod_name, "restore", ["/vcluster", "restore", "--new-vcluster"],
                                   timeout=timeout)
            _exec(api, namespace, pod_name, "restore", ["sh", "-c", f": > {RESTORE_PATH}"], timeout=60)
            if code != 0:
                raise errors.ProvisionError(
                    f"the syncer's restore failed in {namespace}/{pod_name} (exit {code}); it puts the previous store "
                    "back on failure:\n" + _tail(err + out))
        finally:
            if pod_name:
                # its data volume is the control plane's (ReadWriteOnce): wait until it is gone (a 404 ends the
                # wait), at most a minute
                with contextlib.suppress(ApiException, HTTPError, OSError):
                    api.core.delete_namespaced_pod(pod_name, namespace, grace_period_seconds=1, _request_timeout=15)
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        api.core.read_namespaced_pod(pod_name, namespace, _request_timeout=15)
                        time.sleep(1.0)
            progress(f"starting the control plane of {tenant.name} again ({replicas} replica(s))")
            _scale(api, tenant, replicas)
