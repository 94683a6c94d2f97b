"""``vcm verify`` check ``tenant-policy-ports-declared``: tenant-written NetworkPolicies that name a port no container
declares.

The local node's enforcer (kube-router 2.1.0) resolves a named port from the containers that declare it; a rule
whose named port no selected container declares, or declares with another protocol, fails OPEN: the rule's
peers get every port and protocol (cyclonus's ``pathological`` cases, ``tests/integration/test_conformance.py``).
Upstream semantics say such a rule allows nothing. Our blueprint names no ports; the tenant's own policies may.
So the check reads every NetworkPolicy in the tenant's namespaces that the blueprint did not write, and for each
named port of an ingress rule looks for a container that declares it, with that protocol, among the pods the
policy selects; for an egress rule, among every pod the admin can list (the peers may live anywhere). A port
named and declared nowhere is reported with the policy, the rule and the remedy. Numbered ports are left alone:
enforcers filter them as written, declared or not.

The pure part (``undeclared_named_ports``) is tested offline; the runner registers in ``runners.RUNNERS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vcluster_mgr import naming
from vcluster_mgr.verify import analysis, runners, session

CHECK_ID = "tenant-policy-ports-declared"


def declared_ports(pods: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Every (port name, protocol) some container of ``pods`` declares (init containers too)."""
    out = set()
    for pod in pods:
        spec = pod.get("spec") or {}
        for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            for p in c.get("ports") or []:
                if p.get("name"):
                    out.add((str(p["name"]), str(p.get("protocol") or "TCP")))
    return out


def _named(rule: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(str(p["port"]), str(p.get("protocol") or "TCP")) for p in rule.get("ports") or []
            if isinstance(p.get("port"), str) and not p["port"].isdigit()]


def undeclared_named_ports(policies: Sequence[Mapping[str, Any]], pods: Mapping[str, Sequence[Mapping[str, Any]]],
                           everywhere: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per named port of a tenant policy that no matching container declares.

    ``pods`` are the pods of each namespace (ingress: those the policy selects are searched), ``everywhere`` every
    pod (egress). Blueprint policies (managed by vcluster-mgr) are skipped: they name no ports.
    """
    problems = []
    anywhere = declared_ports(everywhere)
    for pol in policies:
        meta = pol.get("metadata") or {}
        if (meta.get("labels") or {}).get(naming.MANAGED_BY_KEY) == naming.MANAGED_BY_VALUE:
            continue
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        spec = pol.get("spec") or {}
        selected = [p for p in pods.get(ns, ())
                    if analysis.selector_matches(spec.get("podSelector") or {}, (p.get("metadata") or {}).get("labels")
                                                 or {})]
        for direction, key, known in (("ingress", "ingress", declared_ports(selected)), ("egress", "egress", anywhere)):
            for i, rule in enumerate(spec.get(key) or []):
                for port, protocol in _named(rule):
                    if (port, protocol) in known:
                        continue
                    where = "the pods it selects" if direction == "ingress" else "any pod"
                    problems.append(f"NetworkPolicy {ns}/{name} {key}[{i}] names port {port!r}/{protocol}, which no "
                                    f"container of {where} declares: kube-router then opens every port to the "
                                    "rule's peers")
    return problems


@runners.runs(CHECK_ID)
def _ports_declared(s: session.Session) -> runners.Outcome:
    tried = f"named ports of the tenant's own NetworkPolicies in {runners.namespaces_text(s)}, against the containers"
    policies: list[dict[str, Any]] = []
    pods: dict[str, list[dict[str, Any]]] = {}
    for ns in s.ns:
        policies += s.items(f"NetworkPolicies in {ns}", s.net_a.list_namespaced_network_policy, ns)
        pods[ns] = s.items(f"pods in {ns}", s.core_a.list_namespaced_pod, ns)
    egress_named = any(_named(r) for p in policies for r in (p.get("spec") or {}).get("egress") or [])
    everywhere = (s.items("pods of every namespace", s.core_a.list_pod_for_all_namespaces) if egress_named
                  else [])
    problems = undeclared_named_ports(policies, pods, everywhere)
    if problems:
        return tried, ("fail", "\n".join(problems))
    own = sum(1 for p in policies
              if ((p.get("metadata") or {}).get("labels") or {}).get(naming.MANAGED_BY_KEY) != naming.MANAGED_BY_VALUE)
    return tried, ("pass", f"{own} tenant-written NetworkPolicies; every named port is declared by a container")
