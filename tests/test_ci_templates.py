"""CI pipelines with an ephemeral tenant (render.ci_pipeline, templates/ci, ``vcm ci init``).

Covers: the GitHub Actions workflow and the .gitlab-ci.yml parse as YAML and have the expected structure
(install, host kubeconfig written mode 600 from VCM_HOST_KUBECONFIG and never printed, create with every
flag, tests with KUBECONFIG on the tenant, delete in an if: always() step / after_script); the spec path,
ttl and prefix enter as data, hostile paths included; bad inputs are usage errors; and the ``vcm ci init``
command (stdout, -o, --force, exit codes) with Typer's CliRunner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, render

runner = CliRunner()
CREATE_FLAGS = [
    '--ttl "$VCM_TTL"',
    '--name-prefix "$VCM_NAME_PREFIX"',
    "--wait",
    "--kubeconfig-out tenant.kubeconfig",
    "-o json",
]


def github(**kwargs: Any) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(render.ci_pipeline("github", **kwargs))
    return doc


def gitlab(**kwargs: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(render.ci_pipeline("gitlab", **kwargs))
    return doc


def _no_secret_leaks(script: str) -> None:
    """The secret is only ever redirected into a file, never echoed or traced."""
    assert "set -x" not in script
    for line in script.splitlines():
        if "VCM_HOST_KUBECONFIG" in line and ("echo" in line or "printf" in line):
            assert ">" in line.split("VCM_HOST_KUBECONFIG", 1)[1], line


# ---------------------------------------------------------------------------------------------
# GitHub Actions
# ---------------------------------------------------------------------------------------------


def test_github_structure() -> None:
    doc = github()
    # YAML 1.1 reads the key `on` as true; GitHub reads it as "on"
    assert doc[True] == {"pull_request": None, "workflow_dispatch": None}
    assert doc["permissions"] == {"contents": "read"}
    job = doc["jobs"]["test"]
    assert job["env"] == {"VCM_SPEC": "tenant.yaml", "VCM_TTL": "2h", "VCM_NAME_PREFIX": "ci-"}
    steps = job["steps"]
    names = [s.get("name") or s.get("uses") for s in steps]
    assert names == [
        "actions/checkout@v4",
        "actions/setup-python@v5",
        "Install vcluster-mgr",
        "Write the host cluster's kubeconfig (mode 600, never printed)",
        "Create the ephemeral tenant",
        "Run the tests against the tenant",
        "Delete the ephemeral tenant",
    ]
    install, secret, create, test, delete = steps[2:]
    assert install["run"] == "python -m pip install vcluster-mgr"
    assert secret["env"] == {"VCM_HOST_KUBECONFIG": "${{ secrets.VCM_HOST_KUBECONFIG }}"}
    assert "umask 077" in secret["run"] and 'chmod 600 "$RUNNER_TEMP/host.kubeconfig"' in secret["run"]
    assert 'vcm ephemeral create "$VCM_SPEC"' in create["run"]
    for flag in CREATE_FLAGS:
        assert flag in create["run"], flag
    assert create["id"] == "tenant" and "$GITHUB_OUTPUT" in create["run"]
    assert test["run"].startswith("make test")
    assert test["env"] == {"KUBECONFIG": "${{ github.workspace }}/tenant.kubeconfig"}
    assert delete["if"] == "always()"
    assert delete["env"] == {"VCM_TENANT": "${{ steps.tenant.outputs.name }}"}
    assert 'vcm ephemeral delete "$VCM_TENANT"' in delete["run"]
    assert 'rm -f "$RUNNER_TEMP/host.kubeconfig"' in delete["run"]
    for step in steps:
        _no_secret_leaks(step.get("run", ""))
    assert sum("secrets." in str(step) for step in steps) == 1, "the secret reaches exactly one step"


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_vcm_commands_run_against_the_host_cluster(kind: str) -> None:
    text = render.ci_pipeline(kind)  # type: ignore[arg-type]  # a str from parametrize
    lines = [line.strip() for line in text.splitlines() if "vcm ephemeral" in line]
    assert len(lines) == 2
    host = '"$RUNNER_TEMP/host.kubeconfig"' if kind == "github" else '"$VCM_HOST_FILE"'
    assert all(line.startswith(f"KUBECONFIG={host} vcm ephemeral ") for line in lines), lines


def test_github_header_comment_names_the_secret() -> None:
    text = render.ci_pipeline("github")
    assert text.startswith("# Tests against an ephemeral vcluster-mgr tenant")
    assert "VCM_HOST_KUBECONFIG" in text.split("name:", 1)[0]


# ---------------------------------------------------------------------------------------------
# GitLab
# ---------------------------------------------------------------------------------------------


def test_gitlab_structure() -> None:
    doc = gitlab()
    assert doc["stages"] == ["test"]
    job = doc["ephemeral-tenant-test"]
    assert job["stage"] == "test"
    assert job["variables"]["VCM_SPEC"] == "tenant.yaml"
    assert job["variables"]["VCM_TTL"] == "2h"
    assert job["variables"]["VCM_NAME_PREFIX"] == "ci-"
    before = "\n".join(job["before_script"])
    assert "python -m pip install vcluster-mgr" in before
    assert "umask 077" in before and 'chmod 600 "$VCM_HOST_FILE"' in before
    assert '[ -f "$VCM_HOST_KUBECONFIG" ]' in before, "a File variable is copied, a plain one written"
    script = "\n".join(job["script"])
    assert 'KUBECONFIG="$VCM_HOST_FILE" vcm ephemeral create "$VCM_SPEC"' in script
    for flag in CREATE_FLAGS:
        assert flag in script, flag
    assert job["script"][-2:] == [
        'export KUBECONFIG="$CI_PROJECT_DIR/tenant.kubeconfig"',
        "make test",  # the comment after it tells the user to replace it
    ]
    after = "\n".join(job["after_script"])
    assert 'KUBECONFIG="$VCM_HOST_FILE" vcm ephemeral delete "$name"' in after
    assert 'rm -f "$VCM_HOST_FILE"' in after
    for text in (before, script, after):
        _no_secret_leaks(text)


def test_gitlab_test_runs_after_kubeconfig_export() -> None:
    script = gitlab()["ephemeral-tenant-test"]["script"]
    export = next(i for i, line in enumerate(script) if line.startswith("export KUBECONFIG="))
    test = next(i for i, line in enumerate(script) if line.startswith("make test"))
    assert export < test


# ---------------------------------------------------------------------------------------------
# Inputs are data
# ---------------------------------------------------------------------------------------------


def test_options_reach_both_pipelines() -> None:
    options = {"spec_path": "ci/tenants/e2e.yaml", "ttl": "45m", "name_prefix": "pr-"}
    assert github(**options)["jobs"]["test"]["env"] == {
        "VCM_SPEC": "ci/tenants/e2e.yaml",
        "VCM_TTL": "45m",
        "VCM_NAME_PREFIX": "pr-",
    }
    variables = gitlab(**options)["ephemeral-tenant-test"]["variables"]
    assert (variables["VCM_SPEC"], variables["VCM_TTL"], variables["VCM_NAME_PREFIX"]) == (
        "ci/tenants/e2e.yaml",
        "45m",
        "pr-",
    )


HOSTILE_PATHS = [
    "my tenant.yaml",
    'a"b.yaml',
    "a'b.yaml",
    "#x.yaml",
    "x: y.yaml",
    "- x",
    "{{ x }}",
    "ünï.yaml",
    "a\\b.yaml",
    "---",
    "null",
    "true",
    "x; rm -rf /",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_spec_paths_stay_data(path: str) -> None:
    assert github(spec_path=path)["jobs"]["test"]["env"]["VCM_SPEC"] == path
    assert gitlab(spec_path=path)["ephemeral-tenant-test"]["variables"]["VCM_SPEC"] == path


@settings(max_examples=100, deadline=None)
@given(path=st.text(min_size=1, max_size=40).filter(lambda p: "$" not in p and "`" not in p))
def test_any_printable_spec_path_reads_back(path: str) -> None:
    try:
        text = render.ci_pipeline("github", spec_path=path)
    except errors.UsageError:
        return  # control characters and line breaks are refused
    assert yaml.safe_load(text)["jobs"]["test"]["env"]["VCM_SPEC"] == path


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ttl": "2 hours"}, "--ttl"),
        ({"ttl": ""}, "--ttl"),
        ({"name_prefix": "CI"}, "--name-prefix"),
        ({"name_prefix": "kube-"}, "reserved"),
        ({"spec_path": ""}, "--spec"),
        ({"spec_path": "a\nb.yaml"}, "line breaks"),
        ({"spec_path": "${{ secrets.X }}.yaml"}, "'$'"),
        ({"spec_path": "$HOME/t.yaml"}, "'$'"),
    ],
)
def test_bad_inputs_are_usage_errors(kwargs: dict[str, str], fragment: str) -> None:
    with pytest.raises(errors.UsageError) as caught:
        render.ci_pipeline("github", **kwargs)
    assert fragment in str(caught.value)


def test_unknown_ci_system() -> None:
    with pytest.raises(errors.UsageError, match="github, gitlab"):
        render.ci_pipeline("jenkins")  # type: ignore[arg-type]  # an unknown kind on purpose


def test_pipelines_are_deterministic() -> None:
    for kind in ("github", "gitlab"):
        assert render.ci_pipeline(kind) == render.ci_pipeline(kind)


def test_a_template_without_the_always_delete_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    builtin = (render.BUILTIN_TEMPLATES / "ci" / "github.yml.j2").read_text()
    (tmp_path / "ci" / "github.yml.j2").write_text(builtin.replace("if: always()", "if: success()"))
    with pytest.raises(render.RenderError, match="always"):
        render.ci_pipeline("github", templates_dir=tmp_path)
    builtin = (render.BUILTIN_TEMPLATES / "ci" / "gitlab.yml.j2").read_text()
    (tmp_path / "ci" / "gitlab.yml.j2").write_text(builtin.replace("after_script:", "post_script:"))
    with pytest.raises(render.RenderError, match="after_script"):
        render.ci_pipeline("gitlab", templates_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# vcm ci init
# ---------------------------------------------------------------------------------------------


def run(*args: Any) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_ci_init_prints_the_pipeline(kind: str) -> None:
    code, out, err = run("ci", "init", kind)
    assert code == 0, err
    assert out == render.ci_pipeline(kind)  # type: ignore[arg-type]  # a str from parametrize
    assert err == ""


def test_ci_init_options() -> None:
    code, out, _ = run("ci", "init", "gitlab", "--spec", "e2e/tenant.yaml", "--ttl", "30m", "--name-prefix", "mr-")
    assert code == 0
    assert out == render.ci_pipeline("gitlab", spec_path="e2e/tenant.yaml", ttl="30m", name_prefix="mr-")


def test_ci_init_writes_a_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / ".github" / "workflows" / "ephemeral.yml"
    code, out, err = run("ci", "init", "github", "-o", target)
    assert code == 0 and out == ""
    assert target.read_text() == render.ci_pipeline("github")
    assert f"wrote {target}" in err
    code, _, err = run("ci", "init", "github", "-o", target)
    assert code == 2 and "--force" in err
    code, _, _ = run("ci", "init", "github", "-o", target, "--force", "--ttl", "1h")
    assert code == 0 and "VCM_TTL: \"1h\"" in target.read_text()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["jenkins"], "jenkins"), (["github", "--ttl", "forever"], "--ttl"), (["gitlab", "--name-prefix", "X"], "prefix")],
)
def test_ci_init_bad_usage_exits_2(args: list[str], fragment: str) -> None:
    code, out, err = run("ci", "init", *args)
    assert code == 2 and out == ""
    assert fragment in err
