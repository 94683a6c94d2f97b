"""The platform config file (``--config``, ``VCM_CONFIG``), offline: a strict model like the tenant spec.

Covers: unknown keys at every depth are errors (a misspelt ``kubconfig:`` inside a cluster entry must not
fall back to ``KUBECONFIG``), every problem of the file reported at once with its dotted path, duplicate
cluster names and an unknown ``defaultCluster`` refused, a wrong type anywhere (``clusters: 7``) a clear
error and never a traceback (exit 2 through the CLI), the paths it names resolved against its folder, and
the committed JSON Schema equal to the one generated from the model (``vcm schema platform``).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, platformconfig

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "tenants" / "payments.yaml"

GOOD = """\
clusters:
  - name: west
    kubeconfig: west.kubeconfig
    context: prod-west
  - name: east
defaultCluster: east
policy: policy.yaml
templatesDir: my-templates
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a config's neighbours: a kubeconfig, a policy, a templates folder; no KUBECONFIG."""
    (tmp_path / "west.kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "policy.yaml").write_text((REPO / "examples" / "policy.yaml").read_text())
    (tmp_path / "my-templates").mkdir()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "west.kubeconfig"))
    monkeypatch.delenv("VCM_CONFIG", raising=False)
    return tmp_path


def _config(folder: Path, text: str) -> Path:
    path = folder / "platform.yaml"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(errors.SpecError) as caught:
        platformconfig.load(path)
    assert all(e.file == str(path) for e in caught.value.errors), caught.value.errors
    return [f"{e.path}: {e.message}" for e in caught.value.errors]


def test_a_good_config_names_its_clusters_and_resolves_paths_against_its_folder(folder: Path) -> None:
    cfg = platformconfig.load(_config(folder, GOOD))
    assert list(cfg.clusters) == ["west", "east"] and cfg.default_cluster == "east"
    assert cfg.clusters["west"] == platformconfig.Target("west", str(folder / "west.kubeconfig"), "prod-west")
    assert cfg.clusters["east"] == platformconfig.Target("east", None, None)
    assert cfg.blueprint.templates_dir == str(folder / "my-templates")
    assert cfg.blueprint.policy.trusted_peer_tenants is not None


def test_a_misspelt_key_inside_a_cluster_entry_is_an_error_not_a_fallback(folder: Path) -> None:
    path = _config(folder, "clusters:\n  - name: west\n    kubconfig: west.kubeconfig\n")
    assert _problems(path) == [
        'clusters[0].kubconfig: unknown key "kubconfig"; valid keys here: name, kubeconfig, context'
    ]


def test_every_problem_is_reported_at_once_with_its_dotted_path(folder: Path) -> None:
    text = (
        "clusters:\n"
        "  - {name: west, kubconfig: a}\n"
        "  - {name: west}\n"
        "  - {name: Not_A_Label, context: 5}\n"
        "  - just-a-string\n"
        "defaultCluster: north\n"
        "templates: x\n"
    )
    problems = _problems(_config(folder, text))
    assert [p.split(":")[0] for p in problems] == [
        "clusters[0].kubconfig",
        "clusters[2].name",
        "clusters[2].context",
        "clusters[3]",
        "templates",
        "clusters[1].name",
        "defaultCluster",
    ]
    assert 'clusters[1].name: "west" is also the name of clusters[0]' in problems[5]
    assert "north" in problems[6] and "west" in problems[6]


def test_duplicate_cluster_names_are_refused(folder: Path) -> None:
    """They used to overwrite each other: the second entry silently replaced the first."""
    path = _config(folder, "clusters:\n  - {name: a, context: one}\n  - {name: a, context: two}\n")
    assert _problems(path) == ['clusters[1].name: "a" is also the name of clusters[0]; each cluster needs its own']


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clusters: 7\n", "clusters: expected a list, got 7"),
        ("clusters: [7]\n", "clusters[0]: expected a mapping, got 7"),
        ("clusters: [{name: 7}]\n", "clusters[0].name: expected a string, got 7"),
        ("defaultCluster: [a]\n", 'defaultCluster: expected a string, got ["a"]'),
        ("policy: ''\n", "policy: String should have at least 1 character"),
        ("- a list\n", "(document): expected a platform config mapping"),
    ],
)
def test_a_wrong_type_anywhere_is_a_clear_error(folder: Path, text: str, expected: str) -> None:
    (problem,) = _problems(_config(folder, text))
    assert problem.startswith(expected), problem


def test_the_policy_and_templates_folder_it_names_are_checked_too(folder: Path) -> None:
    (folder / "policy.yaml").write_text("apiVersion: vcluster-mgr.dev/v1alpha1\nkind: Policy\nnope: 1\n")
    path = _config(folder, "policy: policy.yaml\ntemplatesDir: missing\n")
    with pytest.raises(errors.SpecError) as caught:
        platformconfig.load(path)
    found = {(e.file, e.path) for e in caught.value.errors}
    assert (str(path), "templatesDir") in found
    assert (str(folder / "policy.yaml"), "nope") in found


def test_a_kubeconfig_it_names_must_be_a_regular_file(folder: Path) -> None:
    path = _config(folder, "clusters:\n  - {name: a, kubeconfig: /dev/zero}\n")
    assert _problems(path) == ["clusters[0].kubeconfig: /dev/zero is a character device, not a regular file"]


def test_without_a_file_there_is_one_default_cluster(folder: Path) -> None:
    cfg = platformconfig.load(None, kubeconfig=str(folder / "west.kubeconfig"), context="c")
    assert cfg.clusters == {"default": platformconfig.Target("default", str(folder / "west.kubeconfig"), "c")}


def test_through_the_cli_a_bad_config_exits_2_with_every_error_and_no_traceback(folder: Path) -> None:
    path = _config(folder, "clusters: 7\ndefaultCluster: [x]\n")
    result = CliRunner().invoke(cli.app, ["plan", str(SPEC), "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    assert f"{path}: clusters: expected a list, got 7" in result.stderr
    assert f"{path}: defaultCluster: expected a string" in result.stderr


def test_committed_schema_equals_generated_and_the_cli_prints_it() -> None:
    committed = (REPO / "schema" / "platform.schema.json").read_text()
    assert committed == platformconfig.schema_text()
    result = CliRunner().invoke(cli.app, ["schema", "platform"])
    assert result.exit_code == 0 and result.stdout == committed


def test_the_schema_is_closed_and_describes_every_field(folder: Path) -> None:
    schema = json.loads((REPO / "schema" / "platform.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(yaml.safe_load(GOOD))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"clusters": [{"name": "west", "kubconfig": "a"}]})
    assert schema["additionalProperties"] is False
    assert all(d["additionalProperties"] is False for d in schema["$defs"].values())
    described = [*schema["properties"].values(), *schema["$defs"]["ClusterEntry"]["properties"].values()]
    assert all(p.get("description") for p in described)
