"""The engine's keeper (``workspace.reaper``) with real processes, no engine: a stand-in CLI that starts a
"plugin" in a process group of its own, as the pulumi CLI does, run through ``engine.KeptCommand`` by a
stand-in ``vcm``.

Killed alone or with its whole process group, the stand-in ``vcm`` leaves nothing running within a few
seconds; when only ``vcm`` dies the CLI is first asked to cancel (SIGTERM, the CLI's clean cancel). A CLI
that ends leaves no plugin either, and its exit status and output come through. The twin runs the same CLI
without the keeper, and the plugin outlives the kill: what the check looks for is really there to see.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from integration import leftovers
from pulumi import automation as auto

from vcluster_mgr.workspace import engine, reaper

CLI = textwrap.dedent("""\
    #!{python}
    import os, signal, subprocess, sys, time
    from pathlib import Path
    out = Path(os.environ["KEEPER_TEST_DIR"])
    def cancel(signum, frame):
        (out / "cancelled").write_text(str(signum))
        sys.exit(3)
    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)
    plugin = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    print("args", *sys.argv[1:], flush=True)
    (out / "pids").write_text(f"{{os.getpid()}} {{plugin.pid}}")
    time.sleep(float(os.environ.get("KEEPER_TEST_RUN", "300")))
    sys.exit(7)
""")

VCM = textwrap.dedent("""\
    import os, sys
    from pulumi import automation as auto
    from vcluster_mgr.workspace import engine
    cli, kept = sys.argv[1], sys.argv[2] == "kept"
    command = engine.KeptCommand(cli, "3.0.0") if kept else auto.PulumiCommand.__new__(auto.PulumiCommand)
    if not kept:
        command.command, command.version = cli, None
    try:
        command.run(["up", "--yes"], os.getcwd(), {})
    except auto.errors.CommandError as exc:
        print("failed", exc, flush=True)
""")


@pytest.fixture()
def cli(tmp_path: Path) -> Path:
    path = tmp_path / "pulumi"
    path.write_text(CLI.format(python=sys.executable))
    path.chmod(0o755)
    return path


def _start(cli: Path, tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], leftovers.Proc, set[leftovers.Proc]]:
    """The stand-in vcm, in a session of its own, once its CLI has started the plugin: (vcm, the CLI's
    process, every process of the run)."""
    env = {**os.environ, "KEEPER_TEST_DIR": str(tmp_path)}
    vcm = subprocess.Popen([sys.executable, "-c", VCM, str(cli), mode], cwd=tmp_path, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "pids").exists():
        assert time.monotonic() < deadline and vcm.poll() is None, vcm.communicate()
        time.sleep(0.05)
    time.sleep(0.2)  # the file is written; let the plugin settle
    cli_pid = int((tmp_path / "pids").read_text().split()[0])
    run = leftovers.snapshot(vcm.pid)
    (cli_proc,) = [p for p in run if p.pid == cli_pid]
    assert len(run) >= 3 + (mode == "kept"), run  # vcm, (keeper,) CLI, plugin
    return vcm, cli_proc, run


def test_vcm_killed_alone_asks_the_cli_to_cancel_then_ends_everything(cli: Path, tmp_path: Path) -> None:
    vcm, _, run = _start(cli, tmp_path, "kept")
    vcm.kill()
    vcm.wait()
    left = leftovers.left_after(run, timeout=reaper.GRACE + 3)
    assert not left, left
    assert (tmp_path / "cancelled").read_text() == str(int(signal.SIGTERM))


def test_process_group_killed_ends_everything(cli: Path, tmp_path: Path) -> None:
    vcm, _, run = _start(cli, tmp_path, "kept")
    os.killpg(vcm.pid, signal.SIGKILL)  # vcm and the CLI (the keeper started it in vcm's group)
    vcm.wait()
    left = leftovers.left_after(run, timeout=3)
    assert not left, left
    assert not (tmp_path / "cancelled").exists(), "the CLI was not in vcm's group: the keeper had to end it"


def test_twin_without_the_keeper_the_plugin_outlives_the_kill(cli: Path, tmp_path: Path) -> None:
    vcm, _, run = _start(cli, tmp_path, "plain")
    try:
        os.killpg(vcm.pid, signal.SIGKILL)
        vcm.wait()
        time.sleep(3)
        left = leftovers.alive(run)
        assert left and all("time.sleep(300)" in p.command for p in left), left
    finally:
        leftovers.kill(run)


def test_ctrl_c_of_the_group_reaches_the_cli(cli: Path, tmp_path: Path) -> None:
    """The terminal's Ctrl-C goes to vcm's process group: the CLI is in it, as without the keeper."""
    vcm, _, run = _start(cli, tmp_path, "kept")
    try:
        os.killpg(vcm.pid, signal.SIGINT)
        vcm.communicate(timeout=30)
        assert (tmp_path / "cancelled").read_text() == str(int(signal.SIGINT))
        assert not leftovers.left_after(run, timeout=3)
    finally:
        leftovers.kill(run)


def test_a_cli_that_ends_leaves_no_plugin_and_its_status_and_output_come_through(cli: Path, tmp_path: Path
                                                                                  ) -> None:
    os.environ["KEEPER_TEST_DIR"], os.environ["KEEPER_TEST_RUN"] = str(tmp_path), "0.5"
    try:
        with pytest.raises(auto.errors.CommandError) as info:
            engine.KeptCommand(str(cli), "3.0.0").run(["up", "--", "x"], str(tmp_path), {})
    finally:
        del os.environ["KEEPER_TEST_DIR"], os.environ["KEEPER_TEST_RUN"]
    assert "code: 7" in str(info.value)
    assert "args --non-interactive up -- x" in str(info.value)
    plugin = int((tmp_path / "pids").read_text().split()[1])
    assert not Path(f"/proc/{plugin}").exists() or b") Z" in Path(f"/proc/{plugin}/stat").read_bytes()
