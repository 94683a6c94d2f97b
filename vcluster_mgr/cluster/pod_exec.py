"""A command run in a pod's container through the API server (``kubectl exec``'s websocket): its exit code and
what it printed. The one place that reads an exec's stream, for the traffic probes and a virtual cluster's
snapshots alike."""

from __future__ import annotations

import time
from typing import Any

import websocket
import yaml
from kubernetes.stream import stream, ws_client

from vcluster_mgr import errors
from vcluster_mgr.cluster import connection


def run_bytes(conn: connection.Connection, namespace: str, pod: str, command: list[str], *,
              container: str | None = None, timeout: float = 300.0) -> tuple[int, bytes, bytes]:
    """Run ``command`` in the container (the pod's first when ``container`` is None), with no stdin: (exit code,
    stdout, stderr) as bytes; -1 when it did not end within ``timeout`` seconds or ended with no status. Raises
    the funnel's typed errors when the server refuses the exec, ``UnreachableError`` when the stream breaks off.
    One exec at a time per pod: a second one while this one was open broke this one off on the local node."""
    extra: dict[str, Any] = {"container": container} if container else {}
    resp = conn.call(f"exec in pod {namespace}/{pod}", stream, conn.core.connect_get_namespaced_pod_exec, pod,
                     namespace, command=command, stdin=False, stdout=True, stderr=True, tty=False, binary=True,
                     _preload_content=False, _request_timeout=timeout, **extra)
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
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


def run(conn: connection.Connection, namespace: str, pod: str, command: list[str], *,
        timeout: float = 20.0) -> tuple[int, str]:
    """``run_bytes`` in the pod's first container, for the traffic probes: (exit code, stdout then stderr as
    text)."""
    code, out, err = run_bytes(conn, namespace, pod, command, timeout=timeout)
    return code, (out + err).decode(errors="replace")


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
