"""Connectivity matrices judged by an engine we did not write: cyclonus's NetworkPolicy engine.

Our traffic checks used to decide both what should be allowed and what happened; if our reading of
NetworkPolicy semantics were wrong, both would be wrong together. Here the expected side comes from
cyclonus's policy engine (``github.com/mattfenwick/cyclonus`` ``pkg/matcher``), run by ``vcm-netpol-matrix``
(``gomod/cyclonus``, built by ``vcm toolchain ensure --conformance``) on the policies and the labels of
namespaces and pods: no cluster, no code of ours deciding semantics. The actual side is whatever the probes
saw; ``mismatches`` lists every cell where the two differ.

A cell is one ordered pair of pods and one port: ``(from "ns/pod", to "ns/pod", port, protocol)``.
Pure functions build the engine's input and compare matrices; ``engine_matrix`` is the one that runs a binary.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vcluster_mgr import errors, toolchain

#: one cell of a matrix: (source "ns/pod", destination "ns/pod", port, protocol)
Cell = tuple[str, str, int, str]
#: the label the API server puts on every namespace (the engine needs it to match namespace selectors)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: seconds the engine may take (it answers thousands of cells in well under a second)
ENGINE_TIMEOUT = 60


@dataclasses.dataclass(frozen=True)
class Pod:
    """A pod as the engine sees it: where it is, its labels and its address."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """A cell where the engine's verdict and the probe's differ."""

    cell: Cell
    expected: bool
    actual: bool

    def describe(self) -> str:
        src, dst, port, protocol = self.cell
        def word(allowed: bool) -> str:
            return "open" if allowed else "closed"
        return f"{src} -> {dst} {port}/{protocol}: engine says {word(self.expected)}, probe saw {word(self.actual)}"


def engine_policy(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One NetworkPolicy reduced to what the engine reads (the items of a list call carry no ``kind``)."""
    meta = obj.get("metadata") or {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "spec": obj.get("spec") or {}}


def network_policies(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The NetworkPolicies among rendered objects, reduced to what the engine reads."""
    return [engine_policy(obj) for obj in objects if obj.get("kind") == "NetworkPolicy"]


def namespace_labels(objects: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Labels of the rendered Namespaces, with the name label the API server adds to every namespace."""
    out = {}
    for obj in objects:
        if obj.get("kind") == "Namespace":
            name = str((obj.get("metadata") or {}).get("name"))
            labels = dict((obj.get("metadata") or {}).get("labels") or {})
            out[name] = {**labels, NAMESPACE_NAME_LABEL: name}
    return out


def plain_namespace(name: str) -> dict[str, str]:
    """The labels of a namespace nobody labelled: only the API server's name label."""
    return {NAMESPACE_NAME_LABEL: name}


def engine_input(policies: Sequence[Mapping[str, Any]], namespaces: Mapping[str, Mapping[str, str]],
                 pods: Sequence[Pod], ports: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The document ``vcm-netpol-matrix`` reads; every pod's namespace must have its labels in ``namespaces``."""
    missing = sorted({p.namespace for p in pods} - set(namespaces))
    if missing:
        raise errors.VerifyError(f"no labels known for the namespaces {', '.join(missing)}")
    return {
        "policies": [dict(p) for p in policies],
        "namespaces": {ns: dict(labels) for ns, labels in namespaces.items()},
        "pods": [{"namespace": p.namespace, "name": p.name, "labels": dict(p.labels), "ip": p.ip} for p in pods],
        "ports": [{"port": port, "protocol": protocol} for port, protocol in ports],
    }


def parse_cells(data: Mapping[str, Any]) -> dict[Cell, bool]:
    """The engine's answer as ``{cell: allowed}``."""
    return {(c["from"], c["to"], int(c["port"]), str(c["protocol"])): bool(c["allowed"]) for c in data["cells"]}


def engine_matrix(doc: Mapping[str, Any], *, binary: Path | None = None) -> dict[Cell, bool]:
    """Run cyclonus's engine (``vcm-netpol-matrix``) on ``doc`` (``engine_input``); ``{cell: allowed}``."""
    path = binary or toolchain.bin_dir() / toolchain.NETPOL_MATRIX.name
    if not path.exists():
        raise errors.VerifyError(f"{path} is missing: the policy engine is built by "
                                 "`vcm toolchain ensure --conformance`")
    proc = subprocess.run([str(path)], input=json.dumps(doc), capture_output=True, text=True,
                          timeout=ENGINE_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise errors.VerifyError(f"the policy engine refused its input: {proc.stderr.strip()}")
    try:
        return parse_cells(json.loads(proc.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.VerifyError(f"the policy engine's answer is not a matrix: {exc}") from exc


def mismatches(expected: Mapping[Cell, bool], actual: Mapping[Cell, bool]) -> list[Mismatch]:
    """Every cell of ``actual`` whose verdict differs from ``expected`` (a cell ``expected`` lacks is an error:
    the probe tried something the engine was not asked about)."""
    unknown = sorted(set(actual) - set(expected))
    if unknown:
        raise errors.VerifyError(f"probed cells the engine was not asked about: {unknown[:3]}")
    return [Mismatch(cell, expected[cell], actual[cell]) for cell in sorted(actual) if expected[cell] != actual[cell]]


def table(expected: Mapping[Cell, bool], actual: Mapping[Cell, bool]) -> list[str]:
    """One line per probed cell: ``expected/actual`` as open or closed, marked where they differ."""
    lines = []
    for cell in sorted(actual):
        src, dst, port, protocol = cell
        exp, act = expected.get(cell), actual[cell]
        mark = "  " if exp == act else "!!"
        lines.append(f"{mark} {src} -> {dst} {port}/{protocol}: expected "
                     f"{'open' if exp else 'closed'}, actual {'open' if act else 'closed'}")
    return lines
