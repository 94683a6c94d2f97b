"""The built wheel, installed the way a user installs it: into a fresh virtualenv, away from the checkout.

Builds the wheel from a copy of the source tree (so nothing untracked can leak in), installs it with its
dependencies from the package index into a new virtualenv without access to this one's packages, and runs
the offline commands from a folder outside the checkout: ``vcm validate``, ``vcm render`` (whose output must
equal the golden files, so the blueprint templates really ship as package data), ``vcm init``, ``vcm ci
init`` and ``vcm schema`` (equal to the committed schemas). The blueprint lives in the checkout's top-level
``templates/`` (``vcluster_mgr/templates`` is a link to it): the wheel must carry every file of it, as files.
Needs the package index (PyPI), as ``make test`` does; pip's cache keeps reruns short.
Building and installing print no warning (the license is an SPDX string, which needs setuptools 77 or later).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "tenants"
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".vcm-state")


#: what the build and the install printed, for the test that they warn of nothing
LOGS: list[str] = []


def _run(argv: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # PYTHONDONTWRITEBYTECODE (set on some machines) makes setuptools warn that it does not byte-compile:
    # a warning about the machine, not the package
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    merged = {k: v for k, v in os.environ.items() if k not in drop} | env
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=merged, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtualenv with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=SKIP, symlinks=True)  # as checked out: vcluster_mgr/templates a link
    built = _run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", src], cwd=tmp)
    LOGS.append(built.stdout + built.stderr)
    (wheel,) = (tmp / "dist").glob("vcluster_mgr-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert (src / "vcluster_mgr" / "templates").is_symlink()
    # the blueprint lives at the top of the checkout; the wheel carries every file of it, as files
    blueprint = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "templates").rglob("*.j2"))
    assert len(blueprint) > 10
    shipped = sorted(n for n in names if n.startswith("vcluster_mgr/templates/"))
    assert shipped == [f"vcluster_mgr/{p}" for p in blueprint]
    assert "vcluster_mgr/py.typed" in names
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp)
    install = _run([venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
                    wheel], cwd=tmp)
    LOGS.append(install.stdout + install.stderr)
    return venv / "bin"


def test_building_and_installing_warn_of_nothing(installed: Path) -> None:
    assert len(LOGS) == 2 and "Successfully installed" in LOGS[1]
    for log in LOGS:
        warnings = [ln for ln in log.splitlines() if "warn" in ln.lower() or "deprecat" in ln.lower()]
        assert not warnings, "\n".join(warnings)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder that is not the checkout (nothing of the source tree is importable from it)."""
    return tmp_path


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, outside: Path) -> None:
    where = _run([installed / "python", "-c", "import vcluster_mgr; print(vcluster_mgr.__file__)"], cwd=outside)
    assert str(installed.parent) in where.stdout, where.stdout
    assert str(REPO) not in where.stdout


def test_validate_from_the_wheel(installed: Path, outside: Path) -> None:
    proc = _run([installed / "vcm", "validate", EXAMPLES], cwd=outside)
    assert [line.split()[:2] for line in proc.stdout.splitlines()] == [
        ["OK", "analytics"],
        ["OK", "payments"],
        ["OK", "search"],
    ]


def test_render_from_the_wheel_matches_the_golden_files(installed: Path, outside: Path) -> None:
    for name in ("analytics", "payments", "search"):
        proc = _run([installed / "vcm", "render", EXAMPLES / f"{name}.yaml"], cwd=outside)
        assert proc.stdout == (REPO / "tests" / "golden" / f"{name}.yaml").read_text()
    proc = _run([installed / "vcm", "render", "--platform"], cwd=outside)
    assert proc.stdout == (REPO / "tests" / "golden" / "platform.yaml").read_text()


def test_schema_from_the_wheel_matches_the_committed_one(installed: Path, outside: Path) -> None:
    for kind in ("tenant", "policy", "platform"):
        proc = _run([installed / "vcm", "schema", kind], cwd=outside)
        assert proc.stdout == (REPO / "schema" / f"{kind}.schema.json").read_text()


def test_the_installed_blueprint_is_package_data_not_the_checkout(installed: Path, outside: Path) -> None:
    code = "from vcluster_mgr import render; print(render.BUILTIN_TEMPLATES)"
    where = Path(_run([installed / "python", "-c", code], cwd=outside).stdout.strip())
    assert where.is_dir() and not where.is_symlink() and str(installed.parent) in str(where)
    shipped = where / "tenant" / "namespace.yaml.j2"
    assert shipped.read_text() == (REPO / "templates" / "tenant" / "namespace.yaml.j2").read_text()


def test_init_and_ci_init_from_the_wheel(installed: Path, outside: Path) -> None:
    """The other commands that read the blueprint: the starter spec and the CI pipelines."""
    spec_text = _run([installed / "vcm", "init", "orders"], cwd=outside).stdout
    (outside / "orders.yaml").write_text(spec_text)
    assert _run([installed / "vcm", "validate", "orders.yaml"], cwd=outside).stdout.startswith("OK orders")
    pipeline = _run([installed / "vcm", "ci", "init", "github"], cwd=outside).stdout
    assert "vcm" in pipeline and yaml.safe_load(pipeline)


def test_an_admin_templates_folder_still_overrides_the_shipped_blueprint(installed: Path, outside: Path) -> None:
    own = outside / "templates" / "tenant"
    own.mkdir(parents=True)
    shipped = REPO / "templates" / "tenant" / "limitrange.yaml.j2"
    (own / "limitrange.yaml.j2").write_text(shipped.read_text().replace("vcm-limits", "house-limits"))
    argv = [installed / "vcm", "render", EXAMPLES / "payments.yaml", "--templates", outside / "templates"]
    objects = list(yaml.safe_load_all(_run(argv, cwd=outside).stdout))
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "LimitRange"] == ["house-limits", "house-limits"]
    assert any(o["kind"] == "NetworkPolicy" for o in objects), "the other templates still come from the wheel"
