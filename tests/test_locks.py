"""A stack's update locks offline (``workspace.locks``, ``stacks.breaker``), with real processes and files
laid out as the engine's file backend lays them out.

Covers: a lock whose holder is a dead process of this machine is removed with a line saying so, and a
live holder's lock (twin) and another machine's lock are kept; what a kill tears in a file backend (an empty
``.attrs`` sidecar the engine cannot read past, the temporary file of an unfinished checkpoint write) is
removed, whole sidecars and a live run's files kept (twin); the engine's refusal text (any backend) is
read back into holders and times; the refusal names every holder, its age and the command that breaks it
(``vcm unlock``, ``vcm platform unlock``, ``pulumi cancel`` for the GitOps stacks), and tells a run that
still goes here from one that is over.
"""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from vcluster_mgr.workspace import locks, stacks

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def _live_pulumi() -> subprocess.Popen[bytes]:
    """A live process whose command line says pulumi, as the engine's CLI does; returned once it does (until
    bash has exec'd, the command line is bash's, and a lock of it would read as stale)."""
    live = subprocess.Popen(["bash", "-c", "exec -a pulumi sleep 60"])
    deadline = time.monotonic() + 30
    while not locks.holder_runs(live.pid):
        assert time.monotonic() < deadline, "the stand-in pulumi process never showed its command line"
        time.sleep(0.01)
    return live


def _write_lock(url: str, stack: str, name: str, pid: int, host: str) -> Path:
    folder = locks.lock_dir(url, "vcm-tenants", stack)
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"pid": pid, "username": "ci", "hostname": host,
                                "timestamp": "2026-12-06T11:48:30.5+00:00"}))
    return path


def test_a_dead_local_holder_s_lock_is_removed_with_a_message(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    dead = _write_lock(url, "default.a", "dead", _dead_pid(), socket.gethostname())
    dead.with_name(dead.name + ".attrs").write_text("{}")
    lines = locks.clear_stale(url, "vcm-tenants", "default.a")
    assert not dead.exists() and not dead.with_name(dead.name + ".attrs").exists()
    assert len(lines) == 1 and "removed the lock left on stack default.a by ci@" in lines[0]
    assert "a process of this machine that no longer runs" in lines[0]


def test_twin_a_live_holder_s_lock_and_another_machine_s_lock_are_kept(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    live = _live_pulumi()  # a live pulumi process of this machine
    try:
        kept = [_write_lock(url, "default.a", "live", live.pid, socket.gethostname()),
                _write_lock(url, "default.a", "far", _dead_pid(), "ci-runner-7")]
        assert locks.clear_stale(url, "vcm-tenants", "default.a") == []
        assert all(p.exists() for p in kept)
        held = locks.read(url, "vcm-tenants", "default.a")
        assert sorted((lock.here, lock.stale) for lock in held) == [(False, False), (True, False)]
    finally:
        live.kill()
        live.wait()
    # once its process has ended, the same lock is stale
    assert locks.clear_stale(url, "vcm-tenants", "default.a") != []
    assert [lock.host for lock in locks.read(url, "vcm-tenants", "default.a")] == ["ci-runner-7"]


def _stack_files(url: str, stack: str) -> Path:
    """A stack's folder as the engine's file backend leaves it after a kill during a checkpoint write: the last
    whole checkpoint, its backup with its sidecar, the new checkpoint in a temporary file, an empty sidecar."""
    folder = Path(url[len("file://"):]) / ".pulumi" / "stacks" / "vcm-tenants"
    folder.mkdir(parents=True)
    (folder / f"{stack}.json").write_text('{"version": 3}')
    (folder / f"{stack}.json.attrs").write_bytes(b"")
    (folder / f"{stack}.json.bak").write_text('{"version": 3}')
    (folder / f"{stack}.json.bak.attrs").write_text('{"user.content_type":"application/octet-stream"}\n')
    (folder / f"{stack}.json.18eeceaceb64fa1c.tmp").write_text('{"version": 3, "new": true}')
    (folder / "default.other.json.attrs").write_bytes(b"")  # another stack's: not this run's to judge
    return folder


def test_a_killed_run_s_empty_sidecar_and_unfinished_write_are_removed(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    folder = _stack_files(url, "default.a")
    history = Path(url[len("file://"):]) / ".pulumi" / "history" / "vcm-tenants" / "default.a"
    history.mkdir(parents=True)
    (history / "default.a-1765000000.history.json.attrs").write_bytes(b"")
    _write_lock(url, "default.a", "dead", _dead_pid(), socket.gethostname())
    lines = locks.clear_stale(url, "vcm-tenants", "default.a")
    assert sorted(p.name for p in folder.iterdir()) == [
        "default.a.json", "default.a.json.bak", "default.a.json.bak.attrs", "default.other.json.attrs"]
    assert not list(history.iterdir())
    assert "removed the empty metadata file default.a.json.attrs a killed write left on stack default.a" in lines
    assert any("removed 1 temporary file(s)" in line for line in lines), lines


def test_an_empty_checkpoint_sidecar_goes_even_without_a_lock(tmp_path: Path) -> None:
    """A kill during the stack's first write (its creation) leaves no lock: the checkpoint's sidecar is looked
    at every time; the temporary files are left, as they may be a live run's."""
    url = tmp_path.as_uri()
    folder = _stack_files(url, "default.a")
    lines = locks.clear_stale(url, "vcm-tenants", "default.a")
    assert lines == ["removed the empty metadata file default.a.json.attrs a killed write left on stack default.a"]
    assert (folder / "default.a.json.18eeceaceb64fa1c.tmp").exists()


def test_twin_whole_sidecars_and_a_live_run_s_files_are_kept(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    folder = _stack_files(url, "default.a")
    (folder / "default.a.json.attrs").write_text('{"user.content_type":"application/octet-stream"}\n')
    before = sorted(p.name for p in folder.iterdir())
    live = _live_pulumi()
    try:
        _write_lock(url, "default.a", "live", live.pid, socket.gethostname())
        assert locks.clear_stale(url, "vcm-tenants", "default.a") == []
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in folder.iterdir()) == before


def test_nothing_is_swept_on_an_object_store() -> None:
    assert locks.clear_torn_writes("s3://bucket/state", "vcm-tenants", "default.a", killed=True) == []


def test_the_engine_s_refusal_is_read_back() -> None:
    text = ("error: the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end or "
            "delete the lock file with `pulumi cancel`.\n"
            "  s3://vcm-state/.pulumi/locks/organization/vcm-tenants/default.a/x.json: created by "
            "runner@ci-7 (pid 4242) at 2026-12-06T11:48:30Z\n"
            "  file:///s/.pulumi/locks/y.json: created by a.b@c@host-2 (pid 7) at 2026-12-06T10:00:00+01:00")
    held = locks.from_engine_error(text)
    assert [(lock.user, lock.host, lock.pid) for lock in held] == [("runner", "ci-7", 4242), ("a.b@c", "host-2", 7)]
    assert held[0].since == datetime.datetime(2026, 12, 6, 11, 48, 30, tzinfo=datetime.UTC)
    assert held[1].since == datetime.datetime(2026, 12, 6, 9, 0, tzinfo=datetime.UTC)
    assert "(11 min ago)" in held[0].describe(NOW) and "(3 h ago)" in held[1].describe(NOW)
    assert locks.from_engine_error("update failed: something else") == []


def test_the_refusal_names_holder_age_and_the_command_that_breaks_it() -> None:
    far = locks.Lock(4242, "runner", "ci-7", datetime.datetime(2026, 12, 6, 11, 48, tzinfo=datetime.UTC))
    text = locks.refusal("default.a", [far], stacks.breaker(stacks.TENANT_PROJECT, "default.a"))
    assert text.startswith("stack default.a is being updated by another process, or a killed run left its lock")
    assert "runner@ci-7 (pid 4242, on another machine) since" in text
    assert "once that run is surely over, `vcm unlock a --cluster default` breaks the lock" in text
    here = locks.Lock(1, "root", socket.gethostname(), None)  # pid 1 is no pulumi: a dead holder
    assert "no longer runs" in locks.refusal("x", [here], "B")
    assert stacks.breaker(stacks.PLATFORM_PROJECT, "prod") == "`vcm platform unlock --cluster prod`"
    assert "pulumi cancel --yes --stack organization/vcm-folder/drill" in stacks.breaker("vcm-folder", "drill")
