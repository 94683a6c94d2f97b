"""The apply benchmark's results as one picture: each mode's time as a ratio to kubectl, measured in the same
run, per tenant count, for each phase measured (the first apply, the no-change re-apply, `vcm drift --all`, a
re-apply with one tenant drifted).

    .venv/bin/python benchmarks/chart.py benchmarks/results-2026-11-24.json -o benchmarks/apply-ratios.png

``bench_apply.py --json FILE`` calls ``render`` at its end (the PNG beside the JSON). Nothing here knows the
modes or tenant counts: they are read from the rows (``tenants``, ``mode``, ``phase``, ``ratio``, ``rc``), so
new modes and sizes show up as they are measured. The baselines (modes that start with ``kubectl``) are the
line at 1; a run that failed (``rc`` not 0) is drawn hatched and labelled, not left out. Needs matplotlib
(the ``bench`` extra: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BASELINE_PREFIX = "kubectl"
TITLE = "vcm apply against kubectl apply --server-side of the same manifests"
PHASES = (("apply", "first apply (everything created)"), ("reapply", "re-apply, nothing changed"),
          ("drift", "vcm drift --all, nothing changed (against one kubectl get of their objects)"),
          ("drifted1", "re-apply, one tenant's namespace relabelled by someone else"))


def _ordered(values: Sequence[Any]) -> list[Any]:
    """Distinct values in the order they first appear (the order the benchmark ran them)."""
    return list(dict.fromkeys(values))


def y_range(ratios: Sequence[float]) -> tuple[float, float]:
    """The log axis's limits: whole decades around every ratio with room for its label, and 1 (kubectl's line)
    always inside: a mode faster than kubectl (a ratio under 1: the no-change paths) is drawn, not cut off."""
    low = min(min(ratios) / 1.5, 0.8)
    high = max(max(ratios) * 1.5, 1.5)
    return 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))


def panel_modes(rows: Sequence[dict[str, Any]], phase: str) -> list[str]:
    """The modes measured in ``phase``, in the order they ran (a panel shows no empty slot for the others)."""
    return _ordered([r["mode"] for r in rows if r.get("phase") == phase])


def render(rows: Sequence[dict[str, Any]], output: Path, *, title: str | None = None) -> Path:
    """Draw ``rows`` (bench_apply.py's JSON rows) as a PNG at ``output``; returns ``output``.

    One panel per phase; in each, a group of bars per mode measured in it, a bar per tenant count, the height
    the ratio to kubectl (log scale: ratios span a tenth to 100s).
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    measured = [r for r in rows if not str(r.get("mode", "")).startswith(BASELINE_PREFIX) and r.get("ratio")]
    if not measured:
        raise ValueError("no measured mode in the results (only baselines, or no rows)")
    counts = sorted(_ordered([int(r["tenants"]) for r in measured]))
    phases = [p for p in PHASES if any(r.get("phase") == p[0] for r in measured)]
    phases += [(ph, ph) for ph in _ordered([r.get("phase") for r in measured]) if ph not in dict(PHASES)]
    width = 0.8 / len(counts)
    colours = plt.get_cmap("viridis")
    widest = max(len(panel_modes(measured, phase)) for phase, _ in phases)
    fig, axes = plt.subplots(len(phases), 1, figsize=(max(8.0, 1.6 * widest + 2), 3.6 * len(phases)),
                             squeeze=False)
    limits = y_range([float(r["ratio"]) for r in measured])
    for ax, (phase, label) in zip(axes[:, 0], phases, strict=True):
        modes = panel_modes(measured, phase)
        labelled: set[int] = set()
        for j, n in enumerate(counts):
            for i, mode in enumerate(modes):
                row = next((r for r in measured if r["mode"] == mode and r.get("phase") == phase
                            and int(r["tenants"]) == n), None)
                if row is None:
                    continue
                x = i - 0.4 + width * (j + 0.5)
                failed = row.get("rc", 0) != 0
                ax.bar(x, float(row["ratio"]), width * 0.92, color=colours(j / max(len(counts) - 1, 1) * 0.85),
                       hatch="//" if failed else None, edgecolor="black" if failed else None,
                       label=None if n in labelled else f"{n} tenants")
                labelled.add(n)
                ax.annotate(f"x{float(row['ratio']):g}" + (" failed" if failed else ""),
                            (x, float(row["ratio"])), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.text(0.995, 1.0, "kubectl = 1", ha="right", va="bottom", fontsize=8, color="grey",
                transform=ax.get_yaxis_transform())
        ax.set_yscale("log")
        ax.set_ylim(*limits)
        ax.set_xlim(-0.6, len(modes) - 0.4)
        ax.set_xticks(range(len(modes)), [m.replace(", ", ",\n").replace(" --", "\n--") for m in modes], fontsize=8)
        ax.set_ylabel("time / kubectl's (same run)")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title or TITLE, fontsize=11)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="a results JSON file of bench_apply.py (--json)")
    ap.add_argument("-o", "--output", type=Path, help="the PNG to write (default: the results file's, .png)")
    args = ap.parse_args()
    try:
        rows = json.loads(args.results.read_text())
        print(render(rows, args.output or args.results.with_suffix(".png"), title=f"{TITLE} ({args.results.name})"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"error: cannot chart {args.results}: {exc}") from None


if __name__ == "__main__":
    main()
