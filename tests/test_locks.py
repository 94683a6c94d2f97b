"""A stack's update locks offline (``workspace.locks``, ``stacks.breaker``), with real processes and files
laid out as the engine's file backend lays them out.

Covers: a lock whose holder is a dead process of this machine is removed with a line saying so, and a
live holder's lock (twin) and another machine's lock are kept; the engine's refusal text (any backend) is
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
from pathlib import Path

from vcluster_mgr.workspace import locks, stacks

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


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
    # a live pulumi process of this machine: argv[0] says pulumi, as the engine's CLI does
    live = subprocess.Popen(["bash", "-c", "exec -a pulumi sleep 60"])
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
