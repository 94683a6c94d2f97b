"""Traffic probes: pods that serve and pods that try to connect, on a cluster that can run pods.

Isolation claimed by NetworkPolicies is only as good as the enforcer on the node, so these probes send
real packets: a *server* pod runs busybox ``httpd`` on ``SERVER_PORTS`` and a *client* pod runs
``nc``/``nslookup`` through the API server's exec. Both are built from the local node's probe image
(``localnode.images``), satisfy the restricted Pod Security profile and ``imagePullPolicy: Always``, and
carry a node selector the caller chooses (a tenant's placement).

Policy changes take effect a moment after the API server accepts them (the enforcer watches), so the
probe helpers poll until the expected outcome appears or a deadline passes (``eventually``).
Everything here takes its ``cluster.Connection`` explicitly and raises nothing but ``VerifyError`` (and
``errors.UnreachableError`` when the server does not answer at all).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from vcluster_mgr import cluster, errors
from vcluster_mgr.cluster import pod_exec

#: ports every server pod listens on (two, so a rule can allow one and not the other)
SERVER_PORTS = (8080, 8081)
#: label that marks every probe pod (cleanup deletes by it)
PROBE_LABEL = "vcluster-mgr.dev/traffic-probe"
#: seconds one connection attempt may take
CONNECT_TIMEOUT = 2
#: seconds ``eventually`` waits for policies to take effect
SETTLE_SECONDS = 40.0


def pod_manifest(name: str, image: str, *, role: str, node_selector: Mapping[str, str] | None = None,
                 labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A restricted-profile pod of the probe image: ``role`` ``server`` serves, ``client`` only waits."""
    if role == "server":
        serve = " && ".join(f"httpd -p {p} -h /srv" for p in SERVER_PORTS)
        command = ["/bin/sh", "-c", serve + " && exec sleep 2147483647"]
    else:
        command = ["/bin/sleep", "2147483647"]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {PROBE_LABEL: role, **(labels or {})}},
        "spec": {
            "nodeSelector": dict(node_selector or {}),
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "Always", "command": command,
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def start(conn: cluster.Connection, namespace: str, pod: dict[str, Any], *, timeout: float = 90.0) -> str:
    """Create ``pod`` in ``namespace`` and wait until it runs; returns its IP."""
    name = pod["metadata"]["name"]
    try:
        conn.call(f"creating probe pod {namespace}/{name}", conn.core.create_namespaced_pod, namespace, pod)
    except errors.UnreachableError:
        raise
    except errors.ClusterError as exc:
        raise errors.VerifyError(f"probe pod {namespace}/{name} was refused: {exc.status} {exc.detail}") from exc
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = conn.call(f"reading probe pod {namespace}/{name}", conn.core.read_namespaced_pod, name,
                           namespace).status
        if status is None:
            time.sleep(0.3)
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
        if status.phase == "Running" and ready and status.pod_ip:
            return str(status.pod_ip)
        time.sleep(0.3)
    raise errors.VerifyError(f"probe pod {namespace}/{name} did not run within {timeout:.0f}s "
                             f"(phase {status.phase if status else '?'}, "
                             f"{[c.state for c in (status.container_statuses or [])] if status else ''})")


def delete(conn: cluster.Connection, namespace: str, name: str) -> None:
    """Delete a probe pod at once; one already gone is fine."""
    conn.read(f"deleting probe pod {namespace}/{name}", conn.core.delete_namespaced_pod, name, namespace,
              grace_period_seconds=0)


def run(conn: cluster.Connection, namespace: str, pod: str, command: list[str], *,
        timeout: float = 20.0) -> tuple[int, str]:
    """Run ``command`` in the pod's first container; (exit code, stdout+stderr)."""
    try:
        return pod_exec.run(conn, namespace, pod, command, timeout=timeout)
    except errors.UnreachableError:
        raise
    except errors.ClusterError as exc:
        raise errors.VerifyError(f"exec in {namespace}/{pod} failed: {exc.status} {exc.detail}") from exc


def connects(conn: cluster.Connection, namespace: str, pod: str, host: str, port: int) -> bool:
    """Whether an HTTP GET from the pod to ``host:port`` gets an answer (one attempt).

    The request goes through busybox ``nc`` (Debian's static busybox ``wget`` crashes on every request).
    """
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w {CONNECT_TIMEOUT} {host} {port}"
    code, out = run(conn, namespace, pod, ["sh", "-c", request], timeout=CONNECT_TIMEOUT + 10)
    return code == 0 and "200 OK" in out


def resolves(conn: cluster.Connection, namespace: str, pod: str, name: str) -> bool:
    """Whether the pod's resolver (the cluster DNS) answers for ``name`` (one attempt)."""
    code, out = run(conn, namespace, pod, ["timeout", "5", "nslookup", name], timeout=15)
    return code == 0 and "Address" in out.split("Name:", 1)[-1]


def eventually(probe: Callable[[], bool], wanted: bool, *, seconds: float = SETTLE_SECONDS) -> bool:
    """Poll ``probe`` until it returns ``wanted`` (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while True:
        if probe() == wanted:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)
