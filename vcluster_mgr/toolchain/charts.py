"""The vcluster Helm chart as a local directory, taken from the Go module the syncer is built from.

The chart lives in the vcluster repository (``chart/``), so the module the Go module proxy serves carries it: on a
machine that reaches only package registries this is how the chart is had at all, and it is the air-gapped route a
user takes (``spec.controlPlane.chart.path`` and their own registry). Outside a release the chart's ``Chart.yaml``
says ``version: 0.0.1`` (the release pipeline stamps the real one); the copy here is stamped with the module's
version, as a release is, so Helm records the version that runs. Online, the chart still comes from
https://charts.loft.sh by default.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from vcluster_mgr import errors
from vcluster_mgr.toolchain import gobuild, pins, probing

#: the Go module whose ``chart/`` directory is the vcluster chart
MODULE = "github.com/loft-sh/vcluster"


def chart_dir(version: str = pins.VCLUSTER_VERSION) -> Path:
    """The chart of vcluster ``version`` (``0.36.1``) as a directory under the cache (``charts/vcluster-<version>``),
    downloading its module through the Go module proxy the first time."""
    dest = probing.cache_dir() / "charts" / f"vcluster-{version}"
    if (dest / "Chart.yaml").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([str(gobuild.find_go()), "mod", "download", "-json", f"{MODULE}@v{version}"],
                          cwd=dest.parent, env=gobuild.go_env(), capture_output=True, text=True, check=False)
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        info = {}
    if not isinstance(info, dict) or "Dir" not in info:
        said = info.get("Error") if isinstance(info, dict) else None
        raise errors.ToolchainError(f"cannot download {MODULE}@v{version} through the Go module proxy: "
                                    f"{said or proc.stderr.strip() or 'no answer'}")
    source = Path(str(info["Dir"])) / "chart"
    if not (source / "Chart.yaml").is_file():
        raise errors.ToolchainError(f"{MODULE}@v{version} carries no chart/Chart.yaml")
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("tests"))
    tmp.chmod(0o755)
    for path in tmp.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the module cache is read-only; the copy need not be
    chart = yaml.safe_load((tmp / "Chart.yaml").read_text())
    chart["version"] = version
    chart["appVersion"] = version
    (tmp / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return dest
