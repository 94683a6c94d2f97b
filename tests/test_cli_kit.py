"""The CLI's command kit (``cli.kit``, ``cli.options``), offline: what every command gets without writing it.

Covers, over the whole command tree Typer builds: the access options as one bundle (every command that takes
it has all five, each showing its environment variable in ``--help``, read at the edge and not below); a new
shared option being one field; ``-o`` a format wherever it exists and ``--wait`` a flag wherever it exists;
the old spellings (``-o FILE``, ``--wait SECONDS``, ``--wait-healthy SECONDS``) still accepted with a
deprecation message; error handling opened once, by the kit; and command summaries of one short line.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import cli_tree
import pytest
import typer
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, progress_events, toolchain, workspace
from vcluster_mgr.cli import kit, options, printing

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()
ACCESS_OPTIONS = {"--kubeconfig", "--context", "--config", "--state-dir", "--backend-url"}


COMMANDS = dict(cli_tree.commands())


def _option(command: Any, name: str) -> Any:
    return next((p for p in command.params if name in getattr(p, "opts", ()) + getattr(p, "secondary_opts", ())),
                None)


# -- the access bundle -------------------------------------------------------------------------------------


def test_every_command_that_reaches_a_cluster_takes_the_whole_access_bundle() -> None:
    with_access = {path for path, command in COMMANDS.items()
                   if {o for p in command.params for o in getattr(p, "opts", ())} & ACCESS_OPTIONS}
    assert len(with_access) >= 15, with_access
    for path in with_access:
        opts = {o for p in COMMANDS[path].params for o in getattr(p, "opts", ())}
        has_host = {"--kubeconfig", "--context", "--config"} <= opts
        has_state = {"--state-dir", "--backend-url"} <= opts
        assert has_host or has_state, path
        # a command has a bundle whole or not at all
        assert has_host or not {"--kubeconfig", "--context", "--config"} & opts, path
        assert has_state or not {"--state-dir", "--backend-url"} & opts, path


@pytest.mark.parametrize(("option", "variable"), [
    ("--state-dir", "VCM_STATE_DIR"), ("--backend-url", "VCM_BACKEND_URL"), ("--config", "VCM_CONFIG"),
])
def test_help_shows_the_variable_of_each_access_option(option: str, variable: str) -> None:
    for path, command in COMMANDS.items():
        param = _option(command, option)
        if param is not None:
            assert variable in (param.envvar if isinstance(param.envvar, list) else [param.envvar]), path
    res = runner.invoke(cli.app, ["apply", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and variable in res.output


def test_root_help_shows_the_cache_dir_variable() -> None:
    res = runner.invoke(cli.app, ["--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--cache-dir" in res.output and "VCM_CACHE_DIR" in res.output


def test_the_cache_dir_option_reaches_the_toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCM_CACHE_DIR", str(toolchain.cache_dir()))  # restored after the test
    res = runner.invoke(cli.app, ["--cache-dir", str(tmp_path / "empty"), "toolchain", "status", "-o", "json"])
    assert res.exit_code == 1 and "vcm toolchain ensure" in res.stderr
    assert toolchain.cache_dir() == (tmp_path / "empty").resolve()
    assert all(row["found"] is None for row in json.loads(res.stdout))


def test_the_state_dir_variable_is_read_at_the_edge_and_not_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "from-variable"))
    monkeypatch.setenv("VCM_PASSPHRASE", "kit-test")
    monkeypatch.delenv("VCM_BACKEND_URL", raising=False)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    # below the CLI the variable means nothing: the default is the XDG one
    assert workspace.settings().state_dir == (tmp_path / "xdg" / "vcluster-mgr").resolve()
    # the CLI's option reads it and passes it down
    seen: list[options.StateAccess] = []
    app = kit.App()

    @app.command()
    def show(*, state: options.StateAccess) -> None:
        seen.append(state)

    assert runner.invoke(app, []).exit_code == 0
    assert seen == [options.StateAccess(state_dir=tmp_path / "from-variable", backend_url=None)]


# -- a new shared option is one field ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Host(options.HostAccess):
    """``options.HostAccess`` with one more option, as adding it there would be."""

    namespace: Annotated[str | None, typer.Option("--namespace", envvar="VCM_NAMESPACE")] = None  # the one line


@dataclasses.dataclass(frozen=True)
class Access(options.Access):
    host: Host = Host()


def test_a_new_shared_option_is_one_field_and_every_command_that_takes_the_bundle_gets_it() -> None:
    got: dict[str, Any] = {}
    app = kit.App()

    @app.command()
    def one(name: str, *, access: Access) -> None:
        got["one"] = (name, access)

    @app.command()
    def two(*, access: Access) -> None:
        got["two"] = access

    for command in ("one", "two"):
        res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--namespace" in res.output and "VCM_NAMESPACE" in res.output and "--state-dir" in res.output
    assert runner.invoke(app, ["one", "x", "--namespace", "ns1", "--context", "c"]).exit_code == 0
    assert got["one"] == ("x", Access(host=Host(context="c", namespace="ns1")))
    assert runner.invoke(app, ["two"], env={"VCM_NAMESPACE": "ns2"}).exit_code == 0
    assert got["two"].host.namespace == "ns2"


def test_a_command_stays_callable_with_its_bundle() -> None:
    """``ephemeral delete`` calls ``delete`` as a function: the kit registers a wrapper, not a replacement."""
    assert "access" in inspect.signature(cli.tenant_commands.delete).parameters


def test_two_bundles_may_not_give_one_option_twice() -> None:
    app = kit.App()
    with pytest.raises(TypeError, match="given twice: context"):
        @app.command()
        def clash(context: str = "", *, access: options.Access) -> None:
            del context, access


# -- error handling, once ----------------------------------------------------------------------------------


def test_no_command_opens_the_error_handling_itself() -> None:
    opened = [p.name for p in (REPO / "vcluster_mgr" / "cli").glob("*.py")
              if "printing.failures()" in p.read_text() and p.name != "kit.py"]
    assert opened == []


def test_the_kit_turns_the_package_errors_into_exit_codes() -> None:
    app = kit.App()

    @app.command()
    def bad(kind: str) -> None:
        raise errors.SpecError([]) if kind == "spec" else errors.ProvisionError("the cluster said no")

    printing.configure()
    res = runner.invoke(app, ["provision"])
    assert res.exit_code == 1 and "error: the cluster said no" in res.stderr and res.exception is not None
    assert isinstance(res.exception, SystemExit)
    assert runner.invoke(app, ["spec"]).exit_code == 2


# -- one meaning per flag ------------------------------------------------------------------------------------


def test_dash_o_is_a_format_wherever_it_exists() -> None:
    formats = set()
    for path, command in COMMANDS.items():
        param = _option(command, "-o")
        if param is None:
            continue
        kind = param.type_descriptor.annotation
        assert isinstance(kind, type) and issubclass(kind, enum.Enum), f"vcm {' '.join(path)}: -o is not a format"
        formats.add(tuple(str(c.value) for c in kind))
    assert formats and all("json" in f for f in formats)


def test_wait_is_a_flag_wherever_it_exists_and_timeout_says_how_long() -> None:
    waiting = []
    for path, command in COMMANDS.items():
        wait, timeout = _option(command, "--wait"), _option(command, "--timeout")
        assert wait is None or wait.is_flag, f"vcm {' '.join(path)}: --wait is not a flag"
        assert (timeout is None) == (wait is None), path
        if wait is not None:
            waiting.append(path)
    assert sorted(waiting) == [("apply",), ("ephemeral", "create"), ("kubeconfig",), ("restore",)]


@pytest.mark.parametrize(("args", "expected", "noted"), [
    (["demo", "-o", "f.yaml"], ["demo", "--output-file", "f.yaml"], "-o f.yaml"),
    (["demo", "-of.yaml"], ["demo", "--output-file", "f.yaml"], "-o f.yaml"),
    (["demo", "--output=f.yaml"], ["demo", "--output-file", "f.yaml"], "--output f.yaml"),
    (["demo", "--", "-o", "x"], ["demo", "--", "-o", "x"], None),
    (["demo", "--output-file", "f"], ["demo", "--output-file", "f"], None),
])
def test_old_output_spelling_becomes_output_file(args: list[str], expected: list[str], noted: str | None) -> None:
    got, notes = kit.rewrite_old_spellings(args, [options.OUTPUT_FILE_WAS_O])
    assert got == expected
    assert [n.split(" is deprecated")[0] for n in notes] == ([noted] if noted else [])


@pytest.mark.parametrize(("args", "expected"), [
    (["t", "--wait", "30"], ["t", "--wait", "--timeout", "30"]),
    (["t", "--wait=0"], ["t", "--no-wait"]),
    (["t", "--wait", "--host"], ["t", "--wait", "--host"]),  # the flag as it is now
    (["t", "--wait"], ["t", "--wait"]),
    (["--wait", "t"], ["--wait", "t"]),
])
def test_old_wait_seconds_become_timeout(args: list[str], expected: list[str]) -> None:
    assert kit.rewrite_old_spellings(args, [options.WAIT_WAS_SECONDS])[0] == expected


def test_old_wait_healthy_becomes_timeout() -> None:
    rewrite = [options.WAIT_HEALTHY_WAS_SECONDS]
    assert kit.rewrite_old_spellings(["x", "--wait-healthy", "0"], rewrite)[0] == ["x", "--no-wait"]
    assert kit.rewrite_old_spellings(["x", "--wait-healthy", "15"], rewrite)[0] == ["x", "--wait", "--timeout", "15"]


def test_init_still_takes_its_file_the_old_way_and_says_so(tmp_path: Path) -> None:
    new, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    res = runner.invoke(cli.app, ["init", "demo", "--output-file", str(new)])
    assert res.exit_code == 0 and new.exists() and "deprecated" not in res.stderr
    res = runner.invoke(cli.app, ["init", "demo", "-o", str(old)])
    assert res.exit_code == 0 and old.read_text() == new.read_text()
    assert f"-o {old} is deprecated" in res.stderr and "--output-file" in res.stderr
    res = runner.invoke(cli.app, ["ci", "init", "github", "--output", str(tmp_path / "ci.yml")])
    assert res.exit_code == 0 and (tmp_path / "ci.yml").exists() and "deprecated" in res.stderr


def test_the_old_spellings_are_hidden_from_help() -> None:
    for command in (["init"], ["ci", "init"], ["kubeconfig"], ["local", "kubeconfig"]):
        res = runner.invoke(cli.app, [*command, "--help"], env={"COLUMNS": "200"})
        assert "--output-file" in res.output and not re.search(r"(^|\s)-o[\s,]", res.output), command


# -- command summaries ---------------------------------------------------------------------------------------


def test_every_command_summary_is_one_short_line() -> None:
    """`vcm --help` lists each command with the first paragraph of its help: one line that fits 80 columns."""
    groups = dict(_groups())
    for path, command in [*COMMANDS.items(), *groups.items()]:
        summary = (command.help or "").strip().split("\n\n")[0]
        assert summary and "\n" not in summary and len(summary) <= 64, f"vcm {' '.join(path)}: {summary!r}"
    res = runner.invoke(cli.app, ["--help"], env={"COLUMNS": "80"})
    listed = res.output.split("Commands")[1]
    continuation = [ln for ln in listed.splitlines() if re.match(r"^│\s{10,}\S", ln)]
    assert continuation == [], continuation


def _groups() -> Iterator[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(cli.app)
    for name, sub in root.commands.items():  # type: ignore[attr-defined]
        if getattr(sub, "commands", None) is not None:
            yield (name,), sub


# -- typed progress events -----------------------------------------------------------------------------------


def test_progress_events_cross_processes_and_read_as_lines() -> None:
    events = [progress_events.started("apply"), progress_events.step("create Namespace a-x"),
              progress_events.error("refused"), progress_events.RESOURCE_DONE, progress_events.finished(False)]
    assert pickle.loads(pickle.dumps(events)) == events  # noqa: S301 - our own bytes, as the worker queue
    assert [e.line() for e in events] == ["apply started", "create Namespace a-x", "error: refused",
                                          "resource done", "failed"]
