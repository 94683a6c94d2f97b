"""The sharded CI pipelines of ``vcm ci init github|gitlab --apply-folder DIR --shards N``.

Covers: both parse as YAML; the GitHub workflow is a matrix of N jobs (shards 1..N), the GitLab job runs N
copies (``parallel: N``) and each runs ``vcm apply "$VCM_FOLDER" --shard I/N`` (GitLab's 1-based
``CI_NODE_INDEX/CI_NODE_TOTAL``); all share one backend (``VCM_BACKEND_URL``), its credentials and one
``VCM_PASSPHRASE`` from the CI system's variables and secrets, which the file names but never holds; the
folder enters as data; a template that loses the shard is refused; bad options exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, render, sharding

REPO = Path(__file__).resolve().parent.parent

runner = CliRunner()


def github(**kwargs: Any) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(render.ci_pipeline("github", apply_folder="tenants", **kwargs))
    return doc


def gitlab(**kwargs: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(render.ci_pipeline("gitlab", apply_folder="tenants", **kwargs))
    return doc


def test_github_matrix_applies_one_shard_per_job() -> None:
    doc = github(shards=3, parallel=4)
    job = doc["jobs"]["apply"]
    assert job["strategy"] == {"fail-fast": False, "matrix": {"shard": [1, 2, 3]}}
    env = job["env"]
    assert env["VCM_FOLDER"] == "tenants" and env["VCM_SHARDS"] == "3" and env["VCM_PARALLEL"] == "4"
    assert env["VCM_BACKEND_URL"] == "${{ vars.VCM_BACKEND_URL }}"
    assert env["AWS_ACCESS_KEY_ID"] == "${{ secrets.VCM_STATE_ACCESS_KEY_ID }}"
    assert env["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.VCM_STATE_SECRET_ACCESS_KEY }}"
    assert env["VCM_PASSPHRASE"] == "${{ secrets.VCM_PASSPHRASE }}"
    steps = {s.get("name", s.get("uses")): s for s in job["steps"]}
    apply = steps["Apply this job's share of the tenants"]
    assert apply["env"] == {"VCM_SHARD": "${{ matrix.shard }}"}
    assert 'vcm apply "$VCM_FOLDER"' in apply["run"]
    assert '--shard "$VCM_SHARD/$VCM_SHARDS"' in apply["run"] and "--yes" in apply["run"]
    assert "vcm toolchain ensure" in steps["Install vcluster-mgr and its engine"]["run"]
    assert steps["Remove the host kubeconfig"]["if"] == "always()"
    assert doc["concurrency"] == {"group": "apply-tenants", "cancel-in-progress": False}


def test_gitlab_parallel_copies_take_their_node_index() -> None:
    doc = gitlab(shards=5)
    job = doc["apply-tenants"]
    assert job["parallel"] == 5
    assert job["variables"]["VCM_FOLDER"] == "tenants"
    script = "\n".join(job["script"])
    assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in script and 'vcm apply "$VCM_FOLDER"' in script
    assert "vcm toolchain ensure" in "\n".join(job["before_script"])
    assert job["cache"]["paths"] == [".vcm-cache/"] and job["variables"]["VCM_CACHE_DIR"].endswith(".vcm-cache")


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_secrets_are_named_never_held(kind: str) -> None:
    text = render.ci_pipeline(kind, apply_folder="tenants")  # type: ignore[arg-type]
    assert "set -x" not in text
    for line in text.splitlines():
        if "VCM_HOST_KUBECONFIG" in line and ("echo" in line or "printf" in line):
            assert ">" in line.split("VCM_HOST_KUBECONFIG", 1)[1], line
    for name in ("VCM_BACKEND_URL", "AWS_SECRET_ACCESS_KEY", "VCM_PASSPHRASE"):
        assert name in text  # named in the header: the CI system holds the values


@pytest.mark.parametrize("kind", ["github", "gitlab"])
@pytest.mark.parametrize("folder", ['te"nants', "a b/c", "x: {y: 1}", "#not-a-comment", "--help"])
def test_folder_stays_data(kind: str, folder: str) -> None:
    doc = yaml.safe_load(render.ci_pipeline(kind, apply_folder=folder))  # type: ignore[arg-type]
    env = doc["jobs"]["apply"]["env"] if kind == "github" else doc["apply-tenants"]["variables"]
    assert env["VCM_FOLDER"] == folder


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"apply_folder": ""}, "--apply-folder"),
    ({"apply_folder": "$HOME/t"}, "must not contain '$'"),
    ({"apply_folder": "t", "shards": 1}, "--shards 1: must be between 2 and 200"),
    ({"apply_folder": "t", "shards": 201}, "--shards 201"),
    ({"apply_folder": "t", "parallel": 0}, "--parallel 0"),
])
def test_bad_options_are_usage_errors(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(errors.UsageError) as info:
        render.ci_pipeline("github", **kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_template_without_the_shard_is_refused(kind: str, tmp_path: Path) -> None:
    src = REPO / "templates" / render.SHARDED_CI_TEMPLATES[kind]
    (tmp_path / "ci").mkdir()
    text = src.read_text().replace("--shard", "--parallel 1 #")
    (tmp_path / render.SHARDED_CI_TEMPLATES[kind]).write_text(text)
    with pytest.raises(errors.RenderError, match="--shard I/N"):
        render.ci_pipeline(kind, apply_folder="tenants", templates_dir=tmp_path)  # type: ignore[arg-type]


def test_every_shard_number_is_one_the_option_takes() -> None:
    for n in (2, 7, 200):
        for i in github(shards=n)["jobs"]["apply"]["strategy"]["matrix"]["shard"]:
            assert sharding.parse_shard(f"{i}/{n}") == sharding.Shard(i, n)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_ci_init_writes_the_sharded_pipeline(kind: str, tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yml"
    res = runner.invoke(cli.app, ["ci", "init", kind, "--apply-folder", "tenants", "--shards", "3",
                                  "--output-file", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == render.ci_pipeline(kind, apply_folder="tenants", shards=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "fragment"), [(["--shards", "0"], "--shards 0"),
                                                (["--parallel", "0"], "--parallel 0")])
def test_ci_init_bad_usage_exits_2(args: list[str], fragment: str) -> None:
    res = runner.invoke(cli.app, ["ci", "init", "github", "--apply-folder", "tenants", *args])
    assert res.exit_code == 2, res.output
    assert fragment in res.output and "Traceback" not in res.output
