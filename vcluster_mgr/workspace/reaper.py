"""The engine's keeper: every process a pulumi CLI run starts ends with it, and the run ends with ``vcm``.

Why this exists: the pulumi CLI starts its plugins (our language host, the kubernetes provider) each in a
process group of its own, so that a terminal's Ctrl-C reaches only the CLI, which then cancels cleanly. A
CLI killed with SIGKILL, or a ``vcm`` killed while the CLI runs (a cancelled CI job, a kill of the whole
process group), leaves those plugins running for good, parented to init: 270 MiB after one test run.

Why this design: nothing inside the engine can be changed (upstream binaries) and ``vcm`` itself cannot
clean up after a SIGKILL, so the clean-up needs a process that outlives both and sees every process of the
run. This small process sits between ``vcm`` and the CLI (``stacks`` runs every CLI command through it):

- it is a child subreaper (``PR_SET_CHILD_SUBREAPER``): whatever the CLI starts, in whatever process group
  or session, is re-parented to it when its own parent dies, so "every process of this run" is exactly "every
  descendant of the keeper", found by walking ``/proc`` by parent pid. No cgroup, no privilege, no name
  matching;
- it leaves ``vcm``'s process group (so a kill of that group does not reach it) but starts the CLI inside
  that group, so a terminal's Ctrl-C still reaches the CLI exactly as before;
- it learns at once that ``vcm`` died (``PR_SET_PDEATHSIG``, with a look at its parent pid every
  ``POLL`` seconds as a backstop) and then sends the CLI SIGTERM, which the CLI takes as a clean cancel
  (it finishes the steps in flight, writes its checkpoint, releases the stack's lock); after ``GRACE``
  seconds, or as soon as the CLI has ended, every descendant left is killed and reaped.

A cgroup would do the same for processes that escape by double fork, but needs a delegated cgroup tree
(root or systemd) and still someone alive to kill it; a watchdog beside ``vcm`` cannot adopt orphans. The
cost is one small Python process per CLI run (started with ``-I -S``: standard library only, about 20 ms).

Run as ``python -I -S reaper.py CLI ARGS...``; its exit status is the CLI's (128 + N for signal N).
``die_with_parent`` is the same promise for ``vcm``'s own worker processes (``jobs``).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time

#: seconds the CLI gets to cancel cleanly after ``vcm`` is gone, before everything left is killed
GRACE = 4.0
#: seconds between two looks at the parent pid (the backstop of ``PR_SET_PDEATHSIG``)
POLL = 0.5
#: seconds spent killing what is left at most (processes that keep starting others)
KILL_DEADLINE = 5.0

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def die_with_parent(parent: int) -> None:
    """Make this process receive SIGKILL when ``parent`` (the process that started it) ends.

    For ``vcm``'s worker processes: a worker whose ``vcm`` is gone has no one to report to, and its engine
    run is then ended by that run's keeper. If ``parent`` is already gone, exit at once.
    """
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def process_table() -> dict[int, int]:
    """Every process of this machine that can be read now: pid -> parent pid (from ``/proc/PID/stat``)."""
    table: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # it ended while we looked
        # the command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'
        fields = stat[stat.rindex(b")") + 2:].split()
        table[int(entry)] = int(fields[1])
    return table


def descendants(root: int, table: dict[int, int] | None = None) -> list[int]:
    """The pids of every process below ``root`` in the process tree (children, theirs, ...)."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _reap() -> dict[int, int]:
    """Collect every ended child (orphans adopted by this subreaper included): pid -> wait status."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


def _end_all() -> None:
    """Kill every descendant and reap it, until none is left (or ``KILL_DEADLINE`` passed)."""
    deadline = time.monotonic() + KILL_DEADLINE
    while time.monotonic() < deadline:
        left = descendants(os.getpid())
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        _reap()


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class _Relay:
    """The CLI's stdout and stderr, passed on to ours (``vcm``'s pipes) while ``vcm`` reads them, and
    drained into nothing once it is gone: a Go program writing to a broken pipe on its stdout or stderr dies
    of SIGPIPE at once (whatever its inherited disposition), which would kill the CLI in the middle of its
    clean cancel and leave the stack locked."""

    def __init__(self) -> None:
        self.pipes = {1: os.pipe(), 2: os.pipe()}  # our fd -> (read end, the CLI's write end)
        self.open = {r: fd for fd, (r, _) in self.pipes.items()}
        self.broken = False

    def spawn_actions(self) -> list[tuple[int, ...]]:
        actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, w, fd) for fd, (_, w) in self.pipes.items()]
        for r, w in self.pipes.values():
            actions += [(os.POSIX_SPAWN_CLOSE, r), (os.POSIX_SPAWN_CLOSE, w)]
        return actions

    def started(self) -> None:
        for _, w in self.pipes.values():
            os.close(w)

    def drain(self) -> None:
        """Read to the end of both pipes (once no process can write to them)."""
        while self.open:
            ready, _, _ = select.select(list(self.open), [], [])
            self.pump(ready)

    def pump(self, ready: list[int]) -> None:
        for r in ready:
            data = os.read(r, 65536)
            if not data:
                os.close(r)
                del self.open[r]
                continue
            view = memoryview(data)
            while view and not self.broken:
                try:
                    view = view[os.write(self.open[r], view):]
                except OSError:  # vcm is gone (EPIPE): keep reading, drop what comes
                    self.broken = True


def main(argv: list[str]) -> int:
    """Run ``argv`` (the CLI and its arguments) as described in the module's docstring."""
    parent, group = os.getppid(), os.getpgrp()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for signum in (signal.SIGCHLD, signal.SIGUSR1):
        signal.signal(signum, lambda _signum, _frame: None)  # a byte on the wake-up pipe is all we need
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1)
    if os.getppid() != parent:
        return 1  # vcm ended before we were ready: start nothing
    os.setpgid(0, 0)
    # the Automation API puts the folder of the command it runs (the interpreter's) first on PATH; the CLI's
    # own folder is the one that belongs there (its plugins sit beside it)
    paths = os.environ.get("PATH", "").split(os.pathsep)
    if paths and paths[0] == os.path.dirname(sys.executable):
        paths[0] = os.path.dirname(argv[0])
    env = {**os.environ, "PATH": os.pathsep.join(paths)}
    relay = _Relay()
    try:
        cli = os.posix_spawn(argv[0], argv, env, setpgroup=group, file_actions=relay.spawn_actions(),
                             setsigdef=(signal.SIGPIPE,))
    except OSError as exc:
        print(f"cannot start {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    relay.started()
    status: int | None = None
    give_up: float | None = None
    while status is None:
        ready, _, _ = select.select([wake_r, *relay.open], [], [], POLL)
        if wake_r in ready:
            os.read(wake_r, 4096)
        relay.pump([r for r in ready if r != wake_r])
        status = _reap().get(cli)
        if status is None and give_up is None and os.getppid() != parent:
            give_up = time.monotonic() + GRACE
            os.kill(cli, signal.SIGTERM)  # the CLI's clean cancel (not reaped yet: its pid is still its own)
        if status is None and give_up is not None and time.monotonic() > give_up:
            break
    _end_all()
    relay.drain()  # every writer has ended: what is left in the pipes is read to its end, never cut
    return 1 if status is None else _exit_code(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
