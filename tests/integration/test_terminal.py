"""The terminal experience against the real API server and engine: what an apply prints in a pipe (one plain
line per tenant per state change) and on a terminal (a live line per tenant, then the summary table), both
through Typer's CliRunner; the live view on a real terminal (tmux), read from the screen while a real apply
runs; and every table command's piped output, which must hold every value in full.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config
from typer.testing import CliRunner

from vcluster_mgr import cli, localcluster, workspace

SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}, labels: {{cost-center: {center}}}}}
spec:
  owners:
    - {{kind: User, name: {owner}, role: admin}}
  namespaces: [{namespaces}]
"""
LONG_OWNER = "a-very-long-owner-name-that-no-table-column-holds@teams.example-of-a-long-domain.com"
LONG_CENTER = "cc-" + "0123456789" * 5
LIVE_LINE = r"^{name} +[━╸╺ ]+ +\d+/\d+ "


def write_spec(folder: Path, name: str, namespaces: str = "one, two", owner: str = "dev@example.com",
               center: str = "cc-1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, owner=owner, center=center, namespaces=namespaces))
    return path


@pytest.fixture()
def vcm(engine_settings: workspace.Settings, host_cluster: localcluster.Cluster,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KUBECONFIG", str(host_cluster.kubeconfig))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()

    def run(*args: str, terminal: bool = False) -> tuple[int, str, str]:
        env = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "100"} if terminal else {}
        res = runner.invoke(cli.app, list(args), env=env)
        assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
        return res.exit_code, res.stdout, res.stderr

    return run


def test_apply_in_a_pipe_prints_one_plain_line_per_tenant_per_state_change(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    specs = tmp_path / "specs"
    write_spec(specs, "pipe-a")
    write_spec(specs, "pipe-b", namespaces="one")
    code, out, err = vcm("apply", str(specs), "--parallel", "2", "--yes")
    assert code == 0, err
    assert "\x1b" not in err + out and "\r" not in err + out, "no control characters in a pipe"
    lines = err.splitlines()
    assert lines[-1] == "apply", "the summary table's title, as a message"
    for name, planned in (("pipe-a", None), ("pipe-b", None)):
        mine = [ln for ln in lines if ln.startswith(f"{name}: ")]
        assert len(mine) == 2, lines
        assert mine[0] == f"{name}: apply started"
        done = re.fullmatch(rf"{name}: apply done \((\d+)/(\d+) resources, [\d.]+ s\)", mine[1])
        assert done and done.group(1) == done.group(2), mine[1]
        del planned
    table = out.splitlines()
    # PATH: which way each tenant went (a first apply always runs the engine)
    assert table[0].split() == ["TENANT", "CLUSTER", "RESULT", "CHANGES", "PATH", "SECONDS"]
    assert sorted(ln.split()[:3] for ln in table[1:]) == [["pipe-a", "default", "ok"], ["pipe-b", "default", "ok"]]

    # --verbose: today's line per resource; and a delete in a pipe reports its states the same way
    code, _, err = vcm("--verbose", "delete", "pipe-a", "--yes")
    assert code == 0, err
    assert "pipe-a delete ResourceQuota resourcequota:pipe-a-one/vcm-quota" in err.splitlines(), err
    code, _, err = vcm("delete", "pipe-b", "--yes")
    assert code == 0, err
    assert [ln.split(" (")[0] for ln in err.splitlines()] == ["pipe-b: delete started", "pipe-b: delete done", "delete"]


def test_a_failure_in_a_pipe_keeps_its_first_error_line(  # type: ignore[no-untyped-def]
        vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    """A tenant refused before the engine runs (a namespace of that name that vcm does not manage) says why
    on its own progress line, as one that the engine fails does."""
    admin = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
    admin.create_namespace({"metadata": {"name": "clash-one"}})
    try:
        code, _, err = vcm("apply", str(write_spec(tmp_path / "specs", "clash", namespaces="one")), "--yes")
    finally:
        admin.delete_namespace("clash-one")
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == "clash: apply started", err
    assert re.fullmatch(r"clash: apply failed: refusing to apply tenant 'clash' to host cluster 'default': "
                        r"namespace clash-one already exists and is not managed by vcluster-mgr \([\d.]+ s\)",
                        lines[1]), err


def test_apply_on_a_terminal_draws_a_live_line_per_tenant_then_the_table(vcm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    specs = tmp_path / "specs"
    write_spec(specs, "tty-a")
    write_spec(specs, "tty-b", namespaces="one")
    code, out, err = vcm("apply", str(specs), "--yes", terminal=True)
    assert code == 0, err
    assert "\x1b[?25l" in err, "the live view hides the cursor while it redraws"
    frames = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", err).replace("\r", "\n").splitlines()
    for name in ("tty-a", "tty-b"):
        drawn = [ln for ln in frames if re.match(LIVE_LINE.format(name=name), ln)]
        assert any(" done" in ln for ln in drawn), frames
        assert not any(f"{name} create" in ln for ln in frames), "no line per resource without --verbose"
    assert "┏" in out and "tty-a" in out and "tty-b" in out, "the summary, as a table on a terminal"
    for name in ("tty-a", "tty-b"):
        assert vcm("delete", name, "--yes")[0] == 0


def test_every_table_command_in_a_pipe_shows_every_value_in_full(  # type: ignore[no-untyped-def]
        vcm, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    name = "pipes"
    namespaces = "first-namespace-with-a-rather-long-name, second"
    path = write_spec(tmp_path / "specs", name, namespaces=namespaces, owner=LONG_OWNER, center=LONG_CENTER)
    code, out, err = vcm("apply", str(path), "--yes")
    assert code == 0, err
    outputs: dict[str, str] = {}

    code, out, _ = vcm("list")
    rows = json.loads(vcm("list", "-o", "json")[1])
    row = next(r for r in rows if r["tenant"] == name)
    line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
    assert line.split()[:3] == [name, "default", str(row["resources"])]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ (s|min) ago\)$", line), line
    outputs["list"] = out

    code, out, _ = vcm("status", name)
    assert code == 0
    fields = dict(re.split(r"\s{2,}", ln, maxsplit=1) for ln in out.splitlines())
    assert fields["namespaces"] == f"{name}-first-namespace-with-a-rather-long-name, {name}-second", out
    assert fields["owners"] == f"User {LONG_OWNER} (admin)", out
    outputs["status"] = out

    admin = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
    ns = f"{name}-first-namespace-with-a-rather-long-name"
    admin.patch_namespaced_resource_quota("vcm-quota", ns, {"spec": {"hard": {"pods": "987654"}}})
    code, out, _ = vcm("drift", name)
    assert [ln.split()[:4] for ln in out.splitlines()[1:]] == [[name, "ResourceQuota", f"{ns}/vcm-quota",
                                                               "spec.hard.pods"]], out
    assert out.splitlines()[1].endswith('"987654"'), out
    outputs["drift"] = out

    code, out, _ = vcm("usage", name)
    assert code == 0
    assert out.splitlines()[1].split()[:2] == [name, LONG_CENTER], out
    outputs["usage"] = out

    code, out, err = vcm("verify", name, "--check", "block-cluster-resources")
    assert code == 0, err
    # its progress, then the table's title (who the checks ran as) as a message
    assert [re.sub(r"[\d.]+ s\)$", "T)", ln) for ln in err.splitlines()] == [
        f"{name}: verify started", f"{name}: verify done (1/1 checks, T)", f"verify {name} on default as "
        f"{LONG_OWNER} (User owner {LONG_OWNER})"], err
    data = json.loads(vcm("verify", name, "--check", "block-cluster-resources", "-o", "json")[1])
    (check,) = data["checks"]
    assert check["tried"] in out and " ".join(check["detail"].splitlines()) in out, out
    outputs["verify"] = out

    code, out, _ = vcm("local", "status")
    line = next(ln for ln in out.splitlines() if ln.startswith(host_cluster.name + " "))
    assert line.endswith(str(host_cluster.kubeconfig)) and host_cluster.server in line, line
    outputs["local status"] = out

    for command, text in outputs.items():
        assert "…" not in text and "\x1b" not in text, f"vcm {command} cut or coloured a value:\n{text}"
    assert vcm("delete", name, "--yes")[0] == 0


def _tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_the_live_view_on_a_real_terminal_while_a_real_apply_runs(  # type: ignore[no-untyped-def]
        engine_settings: workspace.Settings, host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    """tmux gives vcm a real terminal (``.ci/install-test-deps`` installs it); the screen is read while the
    apply of two tenants runs in two worker processes, and after it ends."""
    assert shutil.which("tmux"), "tmux is missing: run .ci/install-test-deps (as root) or apt-get install tmux"
    specs = tmp_path / "specs"
    write_spec(specs, "screen-a")
    write_spec(specs, "screen-b", namespaces="one, two, three")
    env = {"KUBECONFIG": str(host_cluster.kubeconfig), "VCM_STATE_DIR": str(tmp_path / "state"),
           "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "TERM": "xterm-256color",
           **{k: v for k, v in os.environ.items() if k.startswith("VCM_CACHE") or k == "PYTHONPATH"}}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    script = tmp_path / "run.sh"
    script.write_text(f"cd {shlex.quote(str(tmp_path))}\n"
                      f"env -i {exports} {shlex.quote(sys.executable)} -m vcluster_mgr apply {specs} "
                      "--parallel 2 --yes\n"
                      'echo "vcm exited $?"\nsleep 600\n')
    socket = f"vcm-test-{uuid.uuid4().hex[:8]}"
    started = _tmux(socket, "new-session", "-d", "-s", "live", "-x", "110", "-y", "40", f"bash {script}")
    assert started.returncode == 0, started.stderr
    screens: list[str] = []
    try:
        for _ in range(3000):  # bounded: at most ~10 minutes of polling
            shot = _tmux(socket, "capture-pane", "-p", "-t", "live").stdout
            screens.append(shot)
            if "vcm exited" in shot:
                break
            time.sleep(0.2)
    finally:
        _tmux(socket, "kill-server")
    final = screens[-1]
    assert "vcm exited 0" in final, final
    live_screens = [s for s in screens if all(re.search(LIVE_LINE.format(name=n), s, re.M)
                                              for n in ("screen-a", "screen-b"))]
    assert live_screens, "no screen showed a live line for each tenant:\n" + "\n----\n".join(screens[-5:])
    counts = {int(m) for s in live_screens for m in re.findall(r"^screen-b +[━╸╺ ]+ +(\d+)/\d+", s, re.M)}
    assert len(counts) >= 2, f"screen-b's bar never moved: {counts}"
    # at the end the live lines have collapsed into the summary table
    assert not re.search(LIVE_LINE.format(name="screen-[ab]"), final, re.M), final
    rows = [ln for ln in final.splitlines() if ln.startswith("│ screen-")]
    assert [ln.split("│")[1].strip() for ln in rows] == ["screen-a", "screen-b"], final
    assert all(ln.split("│")[3].strip() == "ok" for ln in rows), final
    for name in ("screen-a", "screen-b"):
        subprocess.run([sys.executable, "-m", "vcluster_mgr", "delete", name, "--yes"], env={**os.environ, **env},
                       capture_output=True, timeout=600, check=False)
