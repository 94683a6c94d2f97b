"""How vcm prints, without a cluster: times as local time and age, tables that never cut a value (plain
columns in a pipe, wrapped cells on a terminal, long prose such as verify's as blocks under each row),
quantities as the spec says them (``vcm status``: 16Gi, not 17179869184), the progress of many tenants as
plain lines per state change or as live lines on a terminal (``cli.live.Tracker`` fed the typed events
``workspace.run_jobs`` sends), and the conventions ``NO_COLOR``, ``--no-color``, ``--quiet`` and
stdout-for-data (Typer's CliRunner).

The live view against a real apply, on a real terminal, is in ``tests/integration/test_terminal.py``.
"""

from __future__ import annotations

import datetime
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from vcluster_mgr import cli, progress_events, toolchain, usage, verify
from vcluster_mgr.cli import live, printing, tenant_commands, verify_commands

runner = CliRunner()
LONG = "a-value-that-is-far-too-long-for-any-column-of-an-eighty-column-terminal-" * 2
UTC = datetime.UTC


@pytest.fixture
def plus_two(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC+2 (a POSIX TZ string: no zone database needed)."""
    monkeypatch.setenv("TZ", "XYZ-2")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def fresh_output() -> Iterator[None]:
    """Each test starts, and leaves, with the default output settings."""
    printing.configure()
    yield
    printing.configure()


def test_times_are_local_to_the_second_with_an_age(plus_two: None) -> None:
    now = datetime.datetime(2026, 12, 1, 6, 19, 40, tzinfo=UTC)
    assert printing.when("2026-12-01T06:07:33.397Z", now=now) == "2026-12-01 08:07:33 (12 min ago)"
    # the engine's naive datetimes are UTC
    assert printing.when(datetime.datetime(2026, 12, 1, 6, 19, 29, 5), now=now) == "2026-12-01 08:19:29 (10 s ago)"
    assert printing.when("2026-12-01T09:20:00+00:00", now=now) == "2026-12-01 11:20:00 (in 3 h)"
    assert printing.when("2026-11-28T06:00:00Z", now=now) == "2026-11-28 08:00:00 (3 d ago)"
    assert printing.when(None) == "-"
    assert printing.when("not a time") == "not a time"


def _table() -> Table:
    table = Table("name", "value", title="a title")
    table.add_row("short", "[green]ok[/green]")
    table.add_row("long", LONG)
    return table


def test_a_piped_table_is_plain_columns_with_every_value_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(printing, "out", Console(file=out, width=40))
    monkeypatch.setattr(printing, "err", Console(file=err, width=40))
    printing.print_table(_table())
    assert out.getvalue().splitlines() == [
        "NAME   VALUE",
        "short  ok",
        f"long   {LONG}",
    ]
    assert err.getvalue() == "a title\n", "the title is a message, on stderr"


PROSE = ("created a pod with hostPID: true in payments-app as alice@example.com (server-side dry-run); "
         "the API server refused it: violates PodSecurity restricted:latest: host namespaces (hostPID=true) " * 6)


def _verify_report(prose: str) -> verify.Report:
    """A report of four checks whose tried and detail are long prose, as a real one's are."""
    identity = verify.choose_identity([{"kind": "User", "name": "alice@example.com", "role": "admin"}])
    checks = tuple(verify.CheckResult(verify.CHECKS_BY_ID[i], f"{i}: {prose}", result, f"{prose}\nsecond line")
                   for i, result in (("block-host-pid", "pass"), ("block-host-ipc", "fail"),
                                     ("block-nodeport-services", "pass"), ("block-privileged-containers", "pass")))
    return verify.Report("payments", "default", identity, {"username": "alice@example.com", "groups": []},
                         ("payments-app",), False, checks)


def test_verify_in_a_pipe_shows_long_prose_as_blocks_not_padded_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """`vcm verify payments | less` printed every line padded to the widest `tried` cell (1,231 to 1,325
    characters, mostly spaces); the grid now holds the short columns and the prose follows each row."""
    out = io.StringIO()
    monkeypatch.setattr(printing, "out", Console(file=out, width=80))
    monkeypatch.setattr(printing, "err", Console(file=io.StringIO(), width=80))
    verify_commands._verify_table(_verify_report(PROSE))
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ID", "LEVEL", "RESULT"]
    assert lines[1].split() == ["block-host-pid", "L1", "pass"] and len(lines[1]) < 60
    assert lines[2] == f"  tried: block-host-pid: {PROSE}".rstrip()
    assert lines[3] == f"  detail: {PROSE}".rstrip() and lines[4] == "    second line"
    assert any(ln.startswith("    remedy: ") for ln in lines), "a failed check's remedy is a line of its block"
    # no line is padded: the longest is the longest prose itself, not a column stretched to it
    assert all(ln == ln.rstrip() for ln in lines)
    assert max(map(len, lines)) <= len("  tried: block-privileged-containers: " + PROSE)
    grid = [ln for ln in lines if not ln.startswith("  ")]
    assert len(grid) == 6 and max(map(len, grid[:-1])) < 60  # the header, 4 checks, the verdict


def test_status_shows_quantities_as_the_spec_says_them() -> None:
    """`vcm status` printed `requests.memory 0/17179869184`: bytes as 16Gi, cores as the spec writes them."""
    row = {"maxFraction": 0.25, "resources": {
        "requests.cpu": {"used": "0.5", "hard": "4.998"}, "requests.memory": {"used": "0", "hard": "17179869184"},
        "pods": {"used": "3", "hard": "61"}, "services": {"used": "0", "hard": "20"},
        "requests.storage": {"used": "0", "hard": "107374182400"}}}
    text = tenant_commands._usage_text(row)
    assert text == "max 25%: requests.cpu 500m/4998m, requests.memory 0/16Gi, pods 3/61, services 0/20"
    assert usage.quantity_text("requests.storage", "107374182400") == "100Gi"
    assert usage.quantity_text("limits.ephemeral-storage", "1073741824") == "1Gi"
    assert usage.quantity_text("requests.cpu", "5") == "5"
    assert usage.quantity_text("count/configmaps", "10") == "10"


def test_a_table_on_a_narrow_terminal_wraps_cells_instead_of_cutting_them(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(printing, "out", Console(file=out, width=40, force_terminal=True, no_color=True))
    table = Table("value")
    table.add_row(LONG)
    printing.print_table(table)
    text = out.getvalue()
    assert "…" not in text and len(text.splitlines()) > 5, text
    assert LONG in re.sub(r"[\s│┃━┏┓┗┛┡┩└┘─]", "", text), text


def _feed(tracker: live.Tracker) -> None:
    """A run of two tenants: ``a`` reads its live objects and applies 3 of 5, ``b`` (a worker that sent no
    start) fails with a two-line error; then ``a`` is done."""
    tracker("a", progress_events.started("apply"))
    tracker("a", progress_events.RESOURCE_READ)
    tracker("a", progress_events.step("create Namespace a-x"))
    for _ in range(3):
        tracker("a", progress_events.RESOURCE_DONE)
    tracker("b", progress_events.RESOURCE_DONE)
    tracker("b", progress_events.error("the server refused it\nsecond line"))
    tracker("b", progress_events.FAILED)
    tracker("a", progress_events.DONE)


def test_progress_in_a_pipe_is_one_plain_line_per_tenant_per_state_change(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(printing, "err", Console(file=err, width=80))
    with live.Tracker("apply", {"a": 5, "b": 4}) as tracker:
        _feed(tracker)
    text = err.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = [re.sub(r"\d+\.\d s", "T", ln) for ln in text.splitlines()]
    assert lines == [
        "a: apply started",
        "b: apply started",
        "b: apply failed: the server refused it (T)",
        "a: apply done (3/5 resources, T)",
    ]


def test_a_notice_is_a_line_of_its_own_in_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message for the user (a dead run's lock removed) is printed, not just shown as the current step."""
    err = io.StringIO()
    monkeypatch.setattr(printing, "err", Console(file=err, width=80))
    with live.Tracker("delete", {"a": None}) as tracker:
        tracker("a", progress_events.started("delete"))
        tracker("a", progress_events.notice("removed the lock left on stack default.a by ci@h (pid 7, ...)"))
        tracker("a", progress_events.DONE)
    assert err.getvalue().splitlines()[:2] == [
        "a: delete started", "a: removed the lock left on stack default.a by ci@h (pid 7, ...)"]


def test_verbose_progress_is_a_line_per_event_and_quiet_is_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    printing.configure(verbose=True)
    err = io.StringIO()
    monkeypatch.setattr(printing, "err", Console(file=err, width=80))
    with live.Tracker("apply", {"a": 5, "b": 4}) as tracker:
        _feed(tracker)
    assert err.getvalue().splitlines() == [
        "a apply started",
        "a create Namespace a-x",
        "b error: the server refused it",
        "second line",
        "b failed",
        "a done",
    ]
    printing.configure(quiet=True)
    with live.Tracker("apply", {"a": 5, "b": 4}) as tracker:
        _feed(tracker)
    assert tracker.mode == "quiet"


def test_progress_on_a_terminal_is_a_live_line_per_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    console = Console(file=err, width=100, force_terminal=True, force_interactive=True, no_color=True)
    monkeypatch.setattr(printing, "err", console)
    with live.Tracker("apply", {"a": 5, "b": 4}) as tracker:
        assert tracker.mode == "live"
        _feed(tracker)
        frames = err.getvalue()
    # every state change is drawn at once: the frame after b failed shows a at 3 of 5, b's first error line
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", frames).replace("\r", "\n")
    lines = [ln for ln in plain.splitlines() if ln.strip()]
    bar = "[━╸╺ ]+"
    assert any(re.match(f"a +{bar} 3/5 +0:00:0\\d +create Namespace a-x", ln) for ln in lines), lines
    failed = f"b +{bar} 1/4 +0:00:0\\d +failed: the server refused it$"
    assert any(re.match(failed, ln.rstrip()) for ln in lines), lines
    assert any(re.match(f"a +{bar} 5/5 +0:00:0\\d +done", ln) for ln in lines), lines
    assert "second line" not in frames
    # and both lines are taken away at the end (the command prints its summary table next)
    assert err.getvalue().endswith("\x1b[1A\x1b[2K" * 2), repr(err.getvalue()[-40:])


def test_no_color_and_the_no_color_option_turn_colour_off() -> None:
    terminal = {"TTY_COMPATIBLE": "1"}
    res = runner.invoke(cli.app, ["validate", "/nonexistent.yaml"], env=terminal)
    assert res.exit_code == 2 and "\x1b[31m" in res.stderr, repr(res.stderr)
    res = runner.invoke(cli.app, ["validate", "/nonexistent.yaml"], env=terminal | {"NO_COLOR": "1"})
    assert res.exit_code == 2 and "error" in res.stderr and "\x1b[31m" not in res.stderr, repr(res.stderr)
    res = runner.invoke(cli.app, ["--no-color", "validate", "/nonexistent.yaml"], env=terminal)
    assert res.exit_code == 2 and "error" in res.stderr and "\x1b[31m" not in res.stderr, repr(res.stderr)


def test_quiet_keeps_data_and_errors_only(tmp_path: Path) -> None:
    target = tmp_path / "demo.yaml"
    res = runner.invoke(cli.app, ["--quiet", "init", "demo", "--output-file", str(target)])
    assert res.exit_code == 0 and target.exists()
    assert res.stderr == "", "the 'wrote FILE' message is not data"
    res = runner.invoke(cli.app, ["-q", "validate", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "missing.yaml" in res.stderr, "errors are always shown"
    res = runner.invoke(cli.app, ["-q", "validate", str(target)])
    assert res.exit_code == 0 and res.stdout.startswith("OK demo"), "data is always shown"


def test_toolchain_status_in_a_pipe_names_every_binary_in_full() -> None:
    res = runner.invoke(cli.app, ["toolchain", "status"])
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["BINARY", "WANTED", "FOUND", "SOURCE", "PATH"]
    assert [ln.split()[0] for ln in lines[1:]] == [b.name for b in toolchain.status()]
    assert "…" not in res.stdout
    assert f"bin dir: {toolchain.bin_dir()}" in res.stderr
    # the column set fits 80 columns (a binary found elsewhere than the bin dir shows its whole path)
    assert all(len(ln) <= 80 for ln in lines if ln.endswith(("bin dir", "-", "PATH"))), lines


def test_more_tenants_than_terminal_lines_shows_the_running_and_failed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    console = Console(file=err, width=100, height=6, force_terminal=True, force_interactive=True, no_color=True)
    monkeypatch.setattr(printing, "err", console)
    names = [f"t{i:02d}" for i in range(12)]
    with live.Tracker("apply", dict.fromkeys(names, 3)) as tracker:
        tracker("t00", progress_events.started("apply"))
        tracker("t00", progress_events.DONE)
        tracker("t01", progress_events.started("apply"))
        tracker("t01", progress_events.FAILED)
        tracker("t02", progress_events.started("apply"))
        start = len(err.getvalue())
        tracker("t02", progress_events.error("refused"))
        frame = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", err.getvalue()[start:]).replace("\r", "\n")
    shown = {ln.split()[0] for ln in frame.splitlines() if ln.strip()}
    assert shown == {"t01", "t02"}, frame
