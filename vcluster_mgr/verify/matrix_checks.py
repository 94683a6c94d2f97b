"""``vcm verify --check traffic-matches-policy-engine``: the tenant's traffic, cell for cell, against cyclonus's
policy engine (opt-in; needs a node).

Probe pods (``traffic.pod_manifest``, role server: each serves HTTP and can connect) start in the tenant's first
and last namespaces and in another tenant's first namespace, with the namespaces' placement. The expected side
of every cell (pod to pod, ``traffic.SERVER_PORTS``) is what ``netpol_matrix.engine_matrix`` (cyclonus's engine)
says the live NetworkPolicies of those namespaces allow, given the live namespace labels and the probe pods'
labels and addresses; the actual side is what ``nc`` got. The report lists expected and actual per cell and
marks each difference; any difference fails the check. The pods are deleted at the end.

The runner registers in ``runners.RUNNERS`` when ``verify`` imports this module.
"""

from __future__ import annotations

import contextlib
import uuid
from concurrent import futures
from typing import Any

from vcluster_mgr import errors, traffic
from vcluster_mgr.verify import catalogue, netpol_matrix, runners, session, traffic_checks

CHECK_ID = "traffic-matches-policy-engine"
#: seconds a cell may take to show the engine's verdict (policies and new pods take a moment to be enforced)
SETTLE_SECONDS = 20.0
#: probes in flight at once (each is one exec through the API server)
PARALLEL = 4


@runners.runs(CHECK_ID)
def _matches_engine(s: session.Session) -> runners.Outcome:
    tried = ("cyclonus's policy engine on the live NetworkPolicies and labels, against HTTP between probe pods in "
             "the tenant's first and last namespaces and another tenant's")
    others = [t for t in s.others if t.namespaces]
    if not others:
        return tried, ("skip", "needs another tenant on the cluster to send traffic to")
    image = traffic_checks.probe_image(s.admin)
    if image is None:
        return tried, ("skip", "needs a probe image: set VCM_PROBE_IMAGE; the local cluster's node provides one")
    spots = list(dict.fromkeys([s.ns[0], s.ns[-1], others[0].namespaces[0]]))
    for ns in spots:
        s.placement.setdefault(ns, traffic_checks.placement_of(s, ns))
        if not traffic_checks.schedulable(s, s.placement[ns]):
            return tried, ("skip", f"needs a node: no Ready, schedulable node matches the placement of {ns}")
    tried += f" ({others[0].name})"
    name = f"{catalogue.PROBE_PREFIX}-matrix-{uuid.uuid4().hex[:6]}"
    made: list[str] = []
    try:
        pods = []
        for ns in spots:
            manifest = traffic.pod_manifest(name, image, role="server", node_selector=s.placement[ns])
            made.append(ns)
            ip = traffic.start(s.admin, ns, manifest)
            pods.append(netpol_matrix.Pod(ns, name, manifest["metadata"]["labels"], ip))
        expected = netpol_matrix.engine_matrix(_engine_doc(s, spots, pods))
        actual = _probe(s, pods, expected)
        lines = netpol_matrix.table(expected, actual)
        if netpol_matrix.mismatches(expected, actual):
            return tried, ("fail", "\n".join(line for line in lines if line.startswith("!!"))
                           + "\n" + "\n".join(line for line in lines if not line.startswith("!!")))
        return tried, ("pass", "\n".join(lines))
    except errors.VerifyError as exc:
        return tried, ("error", str(exc))
    finally:
        for ns in made:
            with contextlib.suppress(errors.ClusterError):
                traffic.delete(s.admin, ns, name)


def _engine_doc(s: session.Session, spots: list[str], pods: list[netpol_matrix.Pod]) -> dict[str, Any]:
    policies: list[dict[str, Any]] = []
    labels: dict[str, dict[str, str]] = {}
    for ns in spots:
        policies += s.items(f"NetworkPolicies in {ns}", s.net_a.list_namespaced_network_policy, ns)
        obj = s.read(f"namespace {ns}", s.core_a.read_namespace, ns)
        labels[ns] = dict((obj.metadata.labels if obj.metadata else None) or {})
    ports = [(p, "TCP") for p in traffic.SERVER_PORTS]
    return netpol_matrix.engine_input([netpol_matrix.engine_policy(p) for p in policies], labels, pods, ports)


def _probe(s: session.Session, pods: list[netpol_matrix.Pod],
           expected: dict[netpol_matrix.Cell, bool]) -> dict[netpol_matrix.Cell, bool]:
    """Each cell's answer: polled until it shows the engine's verdict or ``SETTLE_SECONDS`` pass."""
    by_key = {p.key: p for p in pods}

    def one(cell: netpol_matrix.Cell) -> bool:
        src, dst, port, _ = cell
        origin, target = by_key[src], by_key[dst]
        # a connection of its own: the kubernetes client's exec swaps its ApiClient's request function while it
        # runs, so exec from several threads on one client leaves it swapped for every later call
        with s.admin.sibling() as conn:

            def connects() -> bool:
                return traffic.connects(conn, origin.namespace, origin.name, target.ip, port)

            seen = traffic.eventually(connects, expected[cell], seconds=SETTLE_SECONDS)
        return expected[cell] if seen else not expected[cell]

    cells = sorted(expected)
    with futures.ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(cells, pool.map(one, cells), strict=True))
