"""The spec commands of the CLI: validate, render, schema, init (Typer's CliRunner, no cluster).

Covers exit codes (0 ok, 2 invalid spec or bad usage), what goes to stdout and stderr, and that
each command's output is what the library functions produce: validate lists every error with its
file and path, render prints a YAML stream of confined objects, schema prints the committed files,
init writes a spec that validates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, render, spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "tenants"
BROKEN = Path(__file__).resolve().parent / "data" / "broken"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_validate_ok_folder() -> None:
    code, out, err = run("validate", EXAMPLES, "--policy", REPO / "examples" / "policy.yaml")
    assert code == 0, err
    assert out.splitlines() == [f"OK {p.stem} ({p})" for p in sorted(EXAMPLES.glob("*.yaml"))]
    assert err == ""


def test_validate_broken_folder_exits_2_with_every_error() -> None:
    code, out, err = run("validate", BROKEN)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    with pytest.raises(errors.SpecError) as caught:
        spec.load_specs([BROKEN])
    expected = [f"error {e}" for e in caught.value.errors]
    assert lines == expected
    for name in ("multi-error.yaml", "yaml-syntax.yaml", "python-tag.yaml", "two-documents.yaml", "bad-role.yaml"):
        assert any(str(BROKEN / name) in line for line in lines), name
    assert any("spec.owners[1].role" in line and '"superuser"' in line for line in lines)
    assert any("line 6, column 5" in line for line in lines)


def test_validate_mixed_prints_errors_and_no_ok() -> None:
    code, out, err = run("validate", EXAMPLES / "payments.yaml", BROKEN / "bad-role.yaml")
    assert code == 2 and out == ""
    assert f"{BROKEN / 'bad-role.yaml'}: spec.owners[1].role" in err


def test_validate_namespace_clash() -> None:
    code, _, err = run("validate", BROKEN / "clash")
    assert code == 2
    assert '"alpha-beta-gamma" is also claimed by tenant "alpha-beta"' in err


def test_validate_bad_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("maxCpu: lots\n")
    code, _, err = run("validate", EXAMPLES, "--policy", policy)
    assert code == 2
    assert f"{policy}: maxCpu:" in err


def test_validate_policy_ceiling(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('maxCpu: "4"\ndefaultQuota: {cpu: "1"}\n')
    code, _, err = run("validate", EXAMPLES / "payments.yaml", "--policy", policy)
    assert code == 2
    assert "spec.quota.cpu: 8 exceeds the policy ceiling maxCpu=4" in err


def test_render_prints_the_yaml_stream() -> None:
    code, out, err = run("render", EXAMPLES / "payments.yaml")
    assert code == 0, err
    assert out == render.dump_manifests(render.render_tenant(spec.load_spec(EXAMPLES / "payments.yaml")))
    objects = list(yaml.safe_load_all(out))
    # every object in the tenant's namespaces, or one of them; and the one cluster-scoped FlowSchema (API fairness)
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects} == {
        "payments-app", "payments-ci", "vcm-tenant-payments"}


def test_render_folder_with_platform_and_policy() -> None:
    code, out, err = run("render", EXAMPLES, "--platform", "--policy", REPO / "examples" / "policy.yaml")
    assert code == 0, err
    objects = list(yaml.safe_load_all(out))
    assert objects[0]["metadata"]["name"] == "vcluster-mgr-system"
    tenants = {o["metadata"]["labels"].get("vcluster-mgr.dev/tenant") for o in objects}
    assert tenants == {None, "analytics", "payments", "search"}


def test_render_with_templates_folder(tmp_path: Path) -> None:
    (tmp_path / "tenant").mkdir()
    original = (REPO / "templates" / "tenant" / "limitrange.yaml.j2").read_text()
    (tmp_path / "tenant" / "limitrange.yaml.j2").write_text(original.replace("vcm-limits", "house-limits"))
    code, out, err = run("render", EXAMPLES / "payments.yaml", "--templates", tmp_path)
    assert code == 0, err
    names = [o["metadata"]["name"] for o in yaml.safe_load_all(out) if o["kind"] == "LimitRange"]
    assert names == ["house-limits", "house-limits"]


def test_render_broken_template_exits_1(tmp_path: Path) -> None:
    (tmp_path / "tenant").mkdir()
    (tmp_path / "tenant" / "limitrange.yaml.j2").write_text("{{ missing }}")
    code, out, err = run("render", EXAMPLES / "payments.yaml", "--templates", tmp_path)
    assert code == 1 and out == ""
    assert "'missing' is undefined" in err


def test_render_invalid_spec_exits_2_and_prints_no_manifests() -> None:
    code, out, err = run("render", BROKEN / "bad-role.yaml")
    assert code == 2 and out == ""
    assert "spec.owners[1].role" in err


def test_render_needs_something_to_render() -> None:
    code, _, err = run("render")
    assert code == 2
    assert "--platform" in err


@pytest.mark.parametrize(("args", "file"), [((), "tenant.schema.json"), (("policy",), "policy.schema.json")])
def test_schema_equals_committed_file(args: tuple[str, ...], file: str) -> None:
    code, out, _ = run("schema", *args)
    assert code == 0
    assert out == (REPO / "schema" / file).read_text()


def test_schema_unknown_kind() -> None:
    code, _, err = run("schema", "cluster")
    assert code == 2 and "tenant, policy" in err


def test_init_prints_a_spec_that_validates(tmp_path: Path) -> None:
    code, out, _ = run("init", "orders")
    assert code == 0
    assert spec.parse_spec_text(out).name == "orders"
    target = tmp_path / "orders.yaml"
    code, out, err = run("init", "orders", "-o", target, "--owner", "olga@example.com")
    assert code == 0 and out == "" and str(target) in err
    code, out, err = run("validate", target)
    assert (code, out) == (0, f"OK orders ({target})\n")
    assert spec.load_spec(target).spec.owners[0].name == "olga@example.com"


def test_init_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    target = tmp_path / "t.yaml"
    target.write_text("keep me")
    code, _, err = run("init", "orders", "-o", target)
    assert code == 2 and "--force" in err
    assert target.read_text() == "keep me"
    assert run("init", "orders", "-o", target, "--force")[0] == 0
    code, _, err = run("init", "Not_A_Name")
    assert code == 2 and "metadata.name" in err


@pytest.mark.parametrize("command", ["validate", "render", "schema", "init"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Example: vcm " + command in " ".join(out.split())


def test_errors_with_markup_like_values_are_printed_literally(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text('apiVersion: vcluster-mgr.dev/v1alpha1\nkind: Tenant\nmetadata: {name: "x[/bold]"}\nspec: {}\n')
    code, _, err = run("validate", bad)
    assert code == 2
    assert 'metadata.name: "x[/bold]" is not a DNS-1123 label' in err
