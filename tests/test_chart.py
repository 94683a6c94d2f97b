"""``benchmarks/chart.py``: a results file of the apply benchmark becomes one PNG chart, whatever its modes
and tenant counts (here ones the committed results do not have, and a failed run); a file it cannot chart
is a clear error, not a traceback. Run as the README says, in its own process."""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "benchmarks" / "chart.py"


def _row(n: int, mode: str, phase: str, ratio: float, rc: int = 0) -> dict[str, object]:
    return {"tenants": n, "mode": mode, "phase": phase, "seconds": ratio, "rc": rc, "ratio": ratio}


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_small_results_file_becomes_one_png(tmp_path: Path) -> None:
    rows = []
    for n in (3, 1000):
        rows += [_row(n, "kubectl --server-side", "apply", 1.0), _row(n, "kubectl diff --server-side", "reapply", 1.0),
                 _row(n, "vcm apply --parallel 8", "apply", 12.5), _row(n, "vcm apply --parallel 8", "reapply", 9.0),
                 _row(n, "vcm apply folder path", "apply", 3.2, rc=1 if n == 1000 else 0)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    out = tmp_path / "charts" / "chart.png"
    proc = subprocess.run([sys.executable, CHART, results, "-o", out], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    width, height = _png_size(out)
    assert width >= 800 and height >= 600, (width, height)


def test_a_file_with_nothing_to_chart_is_a_clear_error(tmp_path: Path) -> None:
    results = tmp_path / "baselines.json"
    results.write_text(json.dumps([_row(10, "kubectl --server-side", "apply", 1.0)]))
    proc = subprocess.run([sys.executable, CHART, results], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot chart"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not results.with_suffix(".png").exists()


def _chart_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_chart", CHART)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratios_under_one_are_inside_the_axis_and_each_panel_has_its_own_modes() -> None:
    """The no-change paths are faster than kubectl (0.09x at 1000 tenants): the axis goes below them, where a
    fixed floor of 0.8 left their panel empty; a panel lists only the modes measured in its phase."""
    chart = _chart_module()
    low, high = chart.y_range([0.09, 0.43, 8.47])
    assert low <= 0.09 / 1.5 and high >= 8.47 * 1.5 and low < 1 < high
    assert chart.y_range([2.0, 3.0]) == (0.1, 10)  # kubectl's line stays inside
    rows = [_row(10, "vcm apply", "apply", 8.0), _row(10, "vcm drift --all", "drift", 3.4),
            _row(10, "folder", "apply", 3.5), _row(10, "vcm apply", "drifted1", 1.4)]
    assert chart.panel_modes(rows, "apply") == ["vcm apply", "folder"]
    assert chart.panel_modes(rows, "drift") == ["vcm drift --all"]
