"""``benchmarks/chart.py``: a results file of the apply benchmark becomes one PNG chart, whatever its modes
and tenant counts (here ones the committed results do not have, and a failed run); a file it cannot chart
is a clear error, not a traceback. Run as the README says, in its own process."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

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
