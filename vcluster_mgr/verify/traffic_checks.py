"""``vcm verify`` checks that send traffic: they need a node that runs the tenant's pods.

Each check starts real probe pods (``traffic.pod_manifest``: restricted, ``imagePullPolicy: Always``, the
namespace's placement) as the admin, in the tenant's namespaces and another tenant's, sends HTTP between
them and deletes them again. A check is ``skip`` - with the reason - when the cluster cannot run them:
no Ready, schedulable node matches the tenant's placement, or no probe image is known (``VCM_PROBE_IMAGE``,
else the local cluster's own probe image). Every verdict has a control: a path that must be open is tried
first, so "blocked" is not mistaken for "the probe does not work".

The runners register themselves in ``runners.RUNNERS`` when ``verify`` imports this module.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping

from vcluster_mgr import cluster, errors, localcluster, naming, traffic
from vcluster_mgr.verify import catalogue, judging, probe_objects, runners, session

#: the checks of this module: ``catalogue.CHECKS`` lists them, marked as needing a node
NEEDS_NODE = ("traffic-blocked-across-tenants",)
#: how long a path that must be closed may stay open after the probe pods run (the enforcer reacts to the
#: new pods within seconds), seconds
BLOCK_SECONDS = 20.0


def probe_image(admin: cluster.Connection) -> str | None:
    """``VCM_PROBE_IMAGE``, else the probe image of the running local cluster this connection talks to."""
    if os.environ.get("VCM_PROBE_IMAGE"):
        return os.environ["VCM_PROBE_IMAGE"]
    for c in localcluster.list_clusters():
        if c.server == admin.server and c.node:
            images = c.node.get("images")
            if isinstance(images, Mapping) and images.get("probe"):
                return str(images["probe"])
    return None


def schedulable(s: session.Session, selector: Mapping[str, str]) -> bool:
    """Whether some Ready, schedulable node carries every label of ``selector``."""
    for n in s.read("Nodes", s.core_a.list_node).items:
        labels = (n.metadata.labels if n.metadata else None) or {}
        conditions = (n.status.conditions if n.status else None) or []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        unschedulable = bool(n.spec.unschedulable) if n.spec else False
        if ready and not unschedulable and all(labels.get(k) == v for k, v in selector.items()):
            return True
    return False


def _skip_reason(s: session.Session, namespaces: list[str]) -> tuple[str | None, str | None]:
    """(probe image, None) when the check can run, else (None, why not)."""
    image = probe_image(s.admin)
    if image is None:
        return None, ("needs a probe image (busybox with httpd, nc and nslookup): set VCM_PROBE_IMAGE; "
                      "the local cluster's node provides one (`vcm local up --nodes 1`)")
    for ns in namespaces:
        if not schedulable(s, s.placement.get(ns) or {}):
            return None, f"needs a node: no Ready, schedulable node matches the placement of {ns}"
    return image, None


@runners.runs("traffic-blocked-across-tenants")
def _blocked_across_tenants(s: session.Session) -> runners.Outcome:
    tried = "HTTP between probe pods: within the tenant (control), and both ways with another tenant"
    others = [t for t in s.others if t.namespaces]
    if not others:
        return tried, ("skip", "needs another tenant on the cluster to send traffic to")
    mine = s.ns[0]
    image, why = _skip_reason(s, [mine, s.ns[-1]])
    if image is None:
        return tried, ("skip", why or "")
    # the first other tenant whose pods can run here too
    for t in others:
        s.placement.setdefault(t.namespaces[0], placement_of(s, t.namespaces[0]))
    other = next((t for t in others if schedulable(s, s.placement[t.namespaces[0]])), None)
    if other is None:
        return tried, ("skip", "needs a node: no other tenant's placement matches a Ready, schedulable node")
    theirs = other.namespaces[0]
    tried += f" ({other.name})"
    suffix = uuid.uuid4().hex[:6]
    made: list[tuple[str, str]] = []
    try:
        ips = {}
        for ns, role in ((mine, "server"), (s.ns[-1], "client"), (theirs, "server"), (theirs, "client")):
            name = f"{catalogue.PROBE_PREFIX}-{role}-{suffix}"
            if (ns, name) in made:
                continue
            pod = traffic.pod_manifest(name, image, role=role, node_selector=s.placement.get(ns) or {})
            made.append((ns, name))
            ips[(ns, role)] = traffic.start(s.admin, ns, pod)
        client_name = f"{catalogue.PROBE_PREFIX}-client-{suffix}"
        port = traffic.SERVER_PORTS[0]
        control = traffic.eventually(lambda: traffic.connects(
            s.admin, s.ns[-1], client_name, ips[(mine, "server")], port), True)
        if not control:
            return tried, ("error", f"the control failed: a pod in {s.ns[-1]} cannot reach one in {mine}")
        verdicts: list[judging.Verdict] = [("pass", f"{s.ns[-1]} reaches {mine} (control)")]
        for src, dst in ((theirs, mine), (s.ns[-1], theirs)):
            def connects(src: str = src, dst: str = dst) -> bool:
                return traffic.connects(s.admin, src, client_name, ips[(dst, "server")], port)

            blocked = traffic.eventually(connects, False, seconds=BLOCK_SECONDS)
            verdicts.append(("pass", f"{src} cannot reach {dst}") if blocked
                            else ("fail", f"a pod in {src} reaches a pod in {dst} (tenant {other.name})"))
        return tried, judging.combine(verdicts)
    except errors.VerifyError as exc:
        return tried, ("error", str(exc))
    finally:
        for ns, name in made:
            with contextlib.suppress(errors.ClusterError):
                traffic.delete(s.admin, ns, name)


def placement_of(s: session.Session, ns: str) -> dict[str, str]:
    """The nodeSelector pods of ``ns`` must carry (its vcm-placement ConfigMap; none: any node)."""
    try:
        found = s.admin.call(f"reading ConfigMap {ns}/{naming.PLACEMENT_CONFIGMAP}",
                             s.core_a.read_namespaced_config_map, naming.PLACEMENT_CONFIGMAP, ns)
    except errors.UnreachableError:
        raise
    except errors.ClusterError:
        found = None
    return probe_objects.placement_selector(None if found is None else s.admin.plain(found))
