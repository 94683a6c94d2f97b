"""What a killed run left running: every descendant of its process, and every process working in its folders.

One process group is not enough to look at: the pulumi CLI starts each plugin in a group of its own, and an
orphan is re-parented (to init, or to a subreaper), so after a kill the tree no longer leads to it. Hence
two looks: the descendants of the run's first process, taken just before the kill (``snapshot``), and,
after it, every process of the machine whose working directory lies in one of the run's folders (the
Automation API's ``automation-*`` folder sits in the run's ``TMPDIR``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

from vcluster_mgr.workspace import reaper


@dataclasses.dataclass(frozen=True)
class Proc:
    """One process, told apart from a later one with the same pid by its start time (clock ticks since boot)."""

    pid: int
    started: int
    command: str

    def __str__(self) -> str:
        return f"{self.pid} {self.command}"


def _read(pid: int) -> Proc | None:
    """The process ``pid`` if it runs (a zombie has ended: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return Proc(pid, int(fields[19]), cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:200])


def snapshot(root: int) -> set[Proc]:
    """``root`` and every process below it now."""
    found = {_read(pid) for pid in [root, *reaper.descendants(root)]}
    return {p for p in found if p is not None}


def working_in(*folders: Path) -> set[Proc]:
    """Every running process whose working directory is one of ``folders`` or below (even if removed)."""
    roots = [str(f.resolve()) for f in folders]
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if any(cwd == r or cwd.startswith(r + "/") for r in roots) and (p := _read(int(entry))):
            found.add(p)
    return found


def alive(procs: set[Proc]) -> set[Proc]:
    """Those of ``procs`` still running (the same processes, not later ones with a reused pid)."""
    return {p for p in procs if _read(p.pid) == p}


def left_after(before: set[Proc], *folders: Path, timeout: float) -> set[Proc]:
    """What is still running of ``before`` or in ``folders`` once ``timeout`` seconds passed, or nothing as
    soon as nothing is."""
    deadline = time.monotonic() + timeout
    while True:
        left = alive(before) | working_in(*folders)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def kill(procs: set[Proc]) -> None:
    """End what a twin test left on purpose."""
    for p in alive(procs):
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
