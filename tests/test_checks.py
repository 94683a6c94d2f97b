"""The checks that keep the house as it is built, run as part of the test suite (so ``make test`` and CI run them).

* ``ruff check`` with the rule set stated in ``pyproject.toml`` ([tool.ruff]);
* ``mypy --strict`` on the package and on the benchmark scripts, zero errors ([tool.mypy]);
* ``lint-imports``: the layers contract (imports run one way) and the contract that keeps the offline layers
  and the CLI's offline commands free of the Pulumi SDK and the kubernetes client ([tool.importlinter]);
* and, at run time, that the offline commands really start without those SDKs (lazy imports stay lazy).

The tools run from the same virtualenv as pytest, at the versions pinned in the ``test`` extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    proc = _tool("ruff", "check", "--no-cache", "vcluster_mgr", "tests", "benchmarks", "stacks")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict() -> None:
    proc = _tool("mypy")  # packages, strict and plugins come from [tool.mypy]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_mypy_strict_benchmarks() -> None:
    """The benchmark scripts (not a package: checked as files, with the same strict settings and plugins)."""
    scripts = sorted(str(p.relative_to(REPO)) for p in (REPO / "benchmarks").glob("*.py"))
    assert scripts
    proc = _tool("mypy", *scripts)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Success: no issues found in {len(scripts)} source files" in proc.stdout


def test_import_contracts() -> None:
    proc = _tool("lint-imports", "--no-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


# Runs the CLI in this process, then prints which of the heavy SDKs it imported.
_PROBE = """
import json, sys
from vcluster_mgr import cli
sys.argv = ["vcm", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
heavy = {"pulumi", "pulumi_kubernetes", "kubernetes"}
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["validate", "examples/tenants"],
        ["render", "examples/tenants/payments.yaml", "--platform"],
        ["render", "examples/controlplane/vteam.yaml", "--control-plane-values"],
        ["schema"],
        ["init", "demo"],
        ["ci", "init", "github"],
        ["apply", "--help"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_offline_commands_import_neither_pulumi_nor_kubernetes(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    imported = json.loads(proc.stderr.strip().splitlines()[-1])
    assert imported == [], f"vcm {' '.join(argv)} imported {imported}"
