"""One tenant, no change: the whole `vcm apply tenant.yaml` as a user runs it, against `kubectl diff --server-side`.

    .venv/bin/python benchmarks/bench_no_change.py [--runs 10] [--tenant examples/tenants/payments.yaml] [--json F]

It starts a fresh node-less local host cluster, applies the tenant once (the engine creates it), then runs, one
after the other and ``--runs`` times each: ``vcm apply FILE --yes`` (a fresh process each time: Python's
start-up, the imports, the fast path's proof) and the baseline ``kubectl diff --server-side`` of the same
rendered manifests. Reported: the median and the spread of the wall time, the median CPU time of the process
(user + system, which the machine's load moves less than the wall time), the ratio of the medians, and the
1-minute load average before and after. The package's bytecode is compiled first (``compileall``), as an
installed wheel's is: a shell that sets ``PYTHONDONTWRITEBYTECODE`` would otherwise make every run compile
the package's modules again.

A benchmark, not a test: it asserts nothing (but that each command succeeded) and prints a table.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vcluster_mgr import localcluster, render, spec, toolchain  # noqa: E402


def timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    """The wall time of one run of ``cmd`` (which must exit with one of ``ok``)."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    said = (proc.stdout + proc.stderr)[-800:]
    assert proc.returncode in ok, f"{' '.join(cmd[:4])} exited {proc.returncode}: {said!r}"
    return wall


def run_many(cmd: list[str], env: dict[str, str], runs: int, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(runs):
        before = os.times()
        wall = timed(cmd, env, ok)
        after = os.times()  # the children's CPU: the process just waited for
        walls.append(wall)
        cpus.append((after.children_user - before.children_user) + (after.children_system - before.children_system))
    return {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3), "median_cpu_s": round(statistics.median(cpus), 3), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tenant", type=Path, default=REPO / "examples" / "tenants" / "payments.yaml")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    compileall.compile_dir(str(REPO / "vcluster_mgr"), quiet=1)
    bin_dir = toolchain.require()
    load_before = os.getloadavg()
    cluster = localcluster.up(f"bench-nc-{os.getpid()}", nodes=0, timeout=600)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="vcm-bench-nc-") as tmp:
            [tenant] = spec.load_specs([args.tenant])
            manifests = Path(tmp) / "manifests.yaml"
            manifests.write_text(render.dump_manifests(render.render_tenant(tenant)))
            env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "VCM_STATE_DIR": str(Path(tmp) / "state")}
            vcm = [sys.executable, "-m", "vcluster_mgr", "apply", str(args.tenant.resolve()), "--yes"]
            first = run_many(vcm, env, 1)
            print(f"first apply (the engine creates it): {first['median_s']} s", file=sys.stderr)
            kubectl = [str(bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", "diff", "--server-side",
                       "--field-manager=bench", "-f", str(manifests)]
            # 1: differences found (the field manager is not the engine's): the dry-run was made all the same
            base = run_many(kubectl, env, args.runs, ok=(0, 1))
            rows.append({"command": "kubectl diff --server-side", **base, "ratio": 1.0})
            found = run_many(vcm, env, args.runs)
            rows.append({"command": f"vcm apply {args.tenant.name} --yes (no change)", **found,
                         "ratio": round(found["median_s"] / base["median_s"], 2)})
    finally:
        localcluster.down(cluster.name)
    load_after = os.getloadavg()
    print(f"load average before {load_before}, after {load_after}", file=sys.stderr)
    print("| command | median s | min s | max s | median CPU s | x kubectl diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['command']} | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['median_cpu_s']} "
              f"| {r['ratio']} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load_before": load_before, "load_after": load_after},
                                        indent=2))


if __name__ == "__main__":
    main()
