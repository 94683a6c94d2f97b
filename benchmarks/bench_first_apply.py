"""A new tenant's first apply and a changed re-apply through the engine, with this round's savings off and on.

    .venv/bin/python benchmarks/bench_first_apply.py [--runs 3] [--json F]

On a fresh node-less local host cluster, each run applies a new tenant (the engine creates its 20 objects),
then the same tenant with its quota changed (the engine updates one object), with ``parallel=1`` so that
everything runs in this process and its waited-for children: once as before (every run refreshed first,
a second copy of the checkpoint kept after each update) and once as now (a stack this process has just made
is not refreshed; ``PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS``), the two interleaved so that the machine's
load falls on both alike. Reported per variant and phase: the median wall time, the median CPU time of this
process and its children (the engine, the provider, the keeper; less moved by the load than the wall time)
and the median bytes written to storage. A benchmark, not a test: it prints a table and asserts nothing but
that each apply succeeded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vcluster_mgr import localcluster, operations, platformconfig, spec, workspace  # noqa: E402
from vcluster_mgr.workspace import backend, stacks  # noqa: E402

SPEC = {"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": ""},
        "spec": {"owners": [{"kind": "User", "name": "lead@example.com", "role": "admin"},
                            {"kind": "Group", "name": "devs", "role": "edit"}],
                 "namespaces": ["app", "ci"], "quota": {"cpu": "4", "memory": "8Gi", "pods": 40},
                 "network": {"isolation": "strict"}, "podSecurity": "restricted"}}


def _written() -> int:
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["write_bytes"]) - int(io["cancelled_write_bytes"])


def _measured(fn: Callable[[], workspace.Outcome]) -> dict[str, float]:
    before, written, started = os.times(), _written(), time.perf_counter()
    outcome = fn()
    wall = time.perf_counter() - started
    after = os.times()
    assert outcome.ok and outcome.path == workspace.ENGINE_PATH, (outcome.error, outcome.path)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "children_user", "children_system"))
    return {"wall_s": wall, "cpu_s": cpu, "written_mib": (_written() - written) / 2**20}


def _apply_one(s: workspace.Settings, job: operations.Job) -> workspace.Outcome:
    return operations.run_jobs(s, [job], "apply")[0]


#: the variant being run: ``before`` (this round's two savings off) or ``now``
VARIANT = {"name": "now"}


def _install_switches() -> None:
    real_up, real_env = stacks.up, backend.engine_env

    def up(st: Any, **kwargs: Any) -> Any:
        if VARIANT["name"] == "before":
            st.created = False  # as before: refreshed, new or not
        return real_up(st, **kwargs)

    def engine_env(s: workspace.Settings, target: platformconfig.Target | None = None) -> dict[str, str]:
        env = real_env(s, target)
        if VARIANT["name"] == "before":
            env.pop("PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS", None)
        return env

    stacks.up = up
    backend.engine_env = engine_env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--kubeconfig", type=Path, help="a running node-less cluster to use instead of a fresh one")
    args = ap.parse_args()
    _install_switches()
    load_before = os.getloadavg()
    cluster = None if args.kubeconfig else localcluster.up(f"bench-fa-{os.getpid()}", nodes=0, timeout=600)
    kubeconfig = args.kubeconfig or cluster.kubeconfig  # type: ignore[union-attr]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="vcm-bench-fa-") as tmp:
            target = platformconfig.Target("default", str(kubeconfig))
            for run in range(args.runs):
                for variant in ("before", "now"):
                    VARIANT["name"] = variant
                    s = workspace.settings(state_dir=Path(tmp) / variant, kubeconfig=str(kubeconfig))
                    doc = json.loads(json.dumps(SPEC))
                    doc["metadata"]["name"] = name = f"fa{run}{variant[0]}"
                    path = Path(tmp) / f"{name}.yaml"
                    path.write_text(json.dumps(doc))
                    job = operations.Job(spec.load_specs([path])[0], target, platformconfig.Blueprint())
                    results.setdefault((variant, "first apply"), []).append(_measured(
                        functools.partial(_apply_one, s, job)))
                    doc["spec"]["quota"]["pods"] = 41
                    path.write_text(json.dumps(doc))
                    changed = operations.Job(spec.load_specs([path])[0], target, platformconfig.Blueprint())
                    results.setdefault((variant, "changed"), []).append(_measured(
                        functools.partial(_apply_one, s, changed)))
                    operations.delete_tenant(s, target, name)
                    walls = [f"{p} {results[(variant, p)][-1]['wall_s']:.1f} s" for p in ("first apply", "changed")]
                    print(f"run {run + 1} {variant}: {', '.join(walls)}", file=sys.stderr)
    finally:
        if cluster is not None:
            localcluster.down(cluster.name)
    rows = [{"variant": v, "phase": p, "runs": len(found),
             **{k: round(statistics.median(r[k] for r in found), 3) for k in ("wall_s", "cpu_s", "written_mib")}}
            for (v, p), found in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
    print(f"load average before {load_before}, after {os.getloadavg()}", file=sys.stderr)
    print("| phase | variant | median wall s | median CPU s | median MiB written |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['phase']} | {r['variant']} | {r['wall_s']} | {r['cpu_s']} | {r['written_mib']} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load_before": load_before, "load_after": os.getloadavg()},
                                        indent=2))


if __name__ == "__main__":
    main()
