"""A command run in a pod's first container through the API server (``kubectl exec``'s websocket), for the
traffic probes: its exit code and what it printed."""

from __future__ import annotations

import time

from kubernetes.stream import stream

from vcluster_mgr.cluster import connection


def run(conn: connection.Connection, namespace: str, pod: str, command: list[str], *,
        timeout: float = 20.0) -> tuple[int, str]:
    """Run ``command`` in the pod; (exit code, stdout+stderr), -1 when it did not end within ``timeout`` seconds.
    Raises the funnel's typed errors when the server refuses the exec."""
    resp = conn.call(f"exec in pod {namespace}/{pod}", stream, conn.core.connect_get_namespaced_pod_exec, pod,
                     namespace, command=command, stderr=True, stdin=False, stdout=True, tty=False,
                     _preload_content=False)
    out: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                out.append(resp.read_stderr())
    finally:
        resp.close()
    code = resp.returncode
    return (code if code is not None else -1), "".join(out)
