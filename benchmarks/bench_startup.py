"""Start-up cost of the offline commands: wall time and peak memory of `vcm validate` and `vcm --help`.

Each command runs as a fresh process (as a user would run it) ``--runs`` times; the table shows the median
wall time, the peak resident set size (the child's own ``ru_maxrss``) and whether the process imported the
Pulumi SDK or the kubernetes client. The baseline, measured in the same run, is a bare ``python -c pass``
of the same interpreter, so the ratios say how much the command adds to Python's own start-up.

    .venv/bin/python benchmarks/bench_startup.py [--runs 7] [--json] [--compare OLD_CHECKOUT]

``--compare DIR`` also runs each command in another checkout (for example ``git worktree add /tmp/before
<commit>``), whose package is then the one imported, with the same interpreter and virtualenv, and prints
after/before ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI in-process, then reports which heavy SDKs the command pulled in (on stderr, last line).
_PROBE = """\
import sys
from vcluster_mgr import cli
try:
    sys.argv = ["vcm", *sys.argv[1:]]
    cli.main()
except SystemExit:
    pass
finally:
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pulumi", "pulumi_kubernetes", "kubernetes"})
    print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def _run(argv: list[str], source: Path | None) -> tuple[float, int, str]:
    """Run one process (importing the package from ``source`` if given); return (wall s, peak RSS KiB, stderr)."""
    # `python -c` puts its working folder first on sys.path, ahead of the editable install's finder
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=source or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, stderr


def measure(name: str, argv: list[str], runs: int, source: Path | None = None) -> dict[str, object]:
    walls, peaks, heavy = [], [], ""
    for _ in range(runs):
        wall, peak, stderr = _run(argv, source)
        walls.append(wall)
        peaks.append(peak)
        for line in stderr.splitlines():
            if line.startswith("HEAVY="):
                heavy = line.removeprefix("HEAVY=") or "none"
    return {
        "command": name,
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "peak_mib": max(peaks) / 1024,
        "heavy_imports": heavy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--compare", type=Path, help="another checkout to measure the same commands against")
    args = parser.parse_args()
    py = sys.executable
    cases = [
        ("python -c pass (baseline)", [py, "-c", "pass"]),
        ("vcm --help", [py, "-c", _PROBE, "--help"]),
        ("vcm validate examples/tenants", [py, "-c", _PROBE, "validate", "examples/tenants"]),
    ]
    rows = [measure(name, argv, args.runs) for name, argv in cases]
    if args.compare is not None:
        rows += [
            measure(f"{name} [{args.compare}]", argv, args.runs, args.compare.resolve()) for name, argv in cases[1:]
        ]
    base = rows[0]["median_s"]
    assert isinstance(base, float)
    for row in rows:
        assert isinstance(row["median_s"], float)
        row["x_baseline"] = row["median_s"] / base
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(str(r["command"])) for r in rows)
    print(
        f"{'command':{width}} {'median s':>9} {'min s':>7} {'x python':>9} {'peak MiB':>9}  imports pulumi/kubernetes"
    )
    for r in rows:
        print(
            f"{r['command']:{width}} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['x_baseline']:9.1f} "
            f"{r['peak_mib']:9.1f}  {r['heavy_imports']}"
        )
    if args.compare is not None:
        n = len(cases) - 1
        for new, old in zip(rows[1 : 1 + n], rows[1 + n :], strict=True):
            assert isinstance(new["median_s"], float) and isinstance(old["median_s"], float)
            assert isinstance(new["peak_mib"], float) and isinstance(old["peak_mib"], float)
            print(
                f"{new['command']}: {new['median_s'] / old['median_s']:.2f}x the wall time and "
                f"{new['peak_mib'] / old['peak_mib']:.2f}x the peak memory of {args.compare}"
            )


if __name__ == "__main__":
    main()
