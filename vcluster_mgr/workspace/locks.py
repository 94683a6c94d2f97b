"""A stack's update locks: who holds one and since when, whether its holder is gone, and what breaks it.

The engine locks a stack for the length of an update: a small JSON record beside the state (pid, user, host,
time) that a clean end removes. A run that is killed keeps its lock, and the next run is refused with the
engine's own words ("delete the lock file with `pulumi cancel`"). Two cases, told apart here and nowhere
else:

- the holder was a process of this machine that no longer runs: the lock is stale and is cleared, with a
  line that says so (``clear_stale``; on a file backend the records are read directly, so only the dead
  holder's lock goes);
- any other holder (a run still going here, or any process of another machine, which only its owner can
  know is gone): the refusal names each holder and its age, and the ``vcm`` command that breaks the lock
  (``refusal``), which ``vcm unlock`` / ``vcm platform unlock`` then do with ``pulumi cancel``.

The records come from the backend's lock folder when it is read here (a file backend's folder, an ``s3://``
bucket's keys: ``blobs``), else from the engine's refusal, which quotes every lock of the stack ("created by
USER@HOST (pid N) at TIME"), so other backends are described the same way. Only a file backend's locks are
ever removed here: an object store is shared by machines, and which of them may judge a lock is left to
``vcm unlock``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import socket
from pathlib import Path

from vcluster_mgr.workspace import blobs


@dataclasses.dataclass(frozen=True)
class Lock:
    """One update lock: what the engine recorded, and where (a file backend's file, else None)."""

    pid: int
    user: str
    host: str
    since: datetime.datetime | None
    path: Path | None = None

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()

    @property
    def stale(self) -> bool:
        """Held by a process of this machine that no longer runs (a pid reused by anything but a pulumi
        process counts as gone)."""
        return self.here and not holder_runs(self.pid)

    def describe(self, now: datetime.datetime | None = None) -> str:
        """``user@host (pid N, ...) since TIME (AGE ago)``."""
        state = ("a process of this machine that no longer runs" if self.stale
                 else "still running on this machine" if self.here else "on another machine")
        text = f"{self.user}@{self.host} (pid {self.pid}, {state})"
        if self.since is not None:
            now = now or datetime.datetime.now(datetime.UTC)
            text += f" since {self.since.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({_age(now - self.since)} ago)"
        return text


def holder_runs(pid: int) -> bool:
    """Whether ``pid`` is a running pulumi process of this machine."""
    try:
        return pid > 0 and b"pulumi" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _age(delta: datetime.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _time(text: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def lock_dir(backend_url: str, project: str, stack: str) -> Path | None:
    """The folder of a stack's locks in a file backend; None for other backends."""
    root = blobs.file_root(backend_url)
    return None if root is None else root / ".pulumi" / "locks" / "organization" / project / stack


def read(backend_url: str, project: str, stack: str) -> list[Lock]:
    """The locks the backend holds for a stack now: a file backend's with their files, an ``s3://`` one's
    without (no one here removes those: ``clear_stale`` leaves them to ``vcm unlock``); none known when the
    backend is not read here (``blobs``) or cannot be read now."""
    folder = lock_dir(backend_url, project, stack)
    if folder is not None:
        found = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                found.append(_lock(json.loads(path.read_text()), path))
            except (OSError, ValueError, TypeError, AttributeError):
                continue  # being written or removed right now: the engine itself will judge it
        return found
    store = blobs.open_store(backend_url)
    if store is None:
        return []
    try:
        keys = store.keys(f".pulumi/locks/organization/{project}/{stack}/")
    except blobs.UnreadableError:
        return []
    found = []
    for key in keys:
        if not key.endswith(".json"):
            continue
        try:
            found.append(_lock(json.loads(store.get(key) or b"null"), None))
        except (blobs.UnreadableError, ValueError, TypeError, AttributeError):
            continue  # as above
    return found


def held(backend_url: str, project: str, stack: str) -> list[Lock] | None:
    """``read``, but None when the backend's locks cannot be told (not read here, or unreadable now): a
    caller that must know a stack is free (the fast path) then takes it as not known to be free. A lock
    whose record does not read (being written) counts, as a holder the backend does not name."""
    folder = lock_dir(backend_url, project, stack)
    try:
        if folder is not None:
            present = [p.name for p in folder.glob("*.json")] if folder.is_dir() else []
        else:
            store = blobs.open_store(backend_url)
            if store is None:
                return None
            present = [k for k in store.keys(f".pulumi/locks/organization/{project}/{stack}/") if k.endswith(".json")]
    except (blobs.UnreadableError, OSError):
        return None
    if not present:
        return []
    return read(backend_url, project, stack) or [Lock(0, "?", "?", None)]


def _lock(info: dict[str, object], path: Path | None) -> Lock:
    """A lock from the engine's record of it (its keys: ``pid``, ``username``, ``hostname``, ``timestamp``)."""
    return Lock(int(str(info.get("pid", 0))), str(info.get("username", "?")), str(info.get("hostname", "?")),
                _time(str(info.get("timestamp", ""))), path)


_QUOTED = re.compile(r"created by (?P<user>.+?)@(?P<host>[^\s@]+) \(pid (?P<pid>\d+)\) at (?P<at>\S+)")


def from_engine_error(text: str) -> list[Lock]:
    """The locks the engine quoted when it refused to run (any backend)."""
    return [Lock(int(m["pid"]), m["user"], m["host"], _time(m["at"])) for m in _QUOTED.finditer(text)]


def clear_stale(backend_url: str, project: str, stack: str) -> list[str]:
    """Remove the locks of a file backend left by processes of this machine that no longer run (a killed
    apply), and what such a kill tears (``clear_torn_writes``); a line per thing removed. Live holders and
    other machines' locks are left alone."""
    removed = []
    for lock in read(backend_url, project, stack):
        if lock.path is None or not lock.stale:
            continue
        lock.path.unlink(missing_ok=True)
        lock.path.with_name(lock.path.name + ".attrs").unlink(missing_ok=True)
        removed.append(f"removed the lock left on stack {stack} by {lock.describe()}")
    return removed + clear_torn_writes(backend_url, project, stack, killed=bool(removed))


#: the names a stack's checkpoint and its backup take in a file backend's stack folder (plain or compressed)
_CHECKPOINTS = tuple(f".json{zip_}{bak}" for zip_ in ("", ".gz", ".zst") for bak in ("", ".bak"))


def clear_torn_writes(backend_url: str, project: str, stack: str, *, killed: bool) -> list[str]:
    """Remove what a write of a file backend cut short by a kill leaves, which the engine cannot read past.

    The engine writes each file of a file backend (gocloud's ``fileblob``) as data in a temporary file
    renamed into place, which a kill cannot tear, plus a sidecar ``<file>.attrs`` (content type, MD5)
    written in place before the rename: a kill between its creation and its write leaves it empty, and
    every later read of that file fails with ``failed to load checkpoint: EOF``, so the stack cannot be
    updated again. An empty sidecar is never one the engine wrote whole (it holds a JSON object), and one
    that is missing reads as no metadata, so it is removed; the file beside it is the last one written
    whole. The stack's checkpoint sidecars are looked at every time (a few ``stat`` calls); after a killed
    run (``killed``: its lock was just cleared) the stack's history and the temporary files of the write
    it never finished are swept too."""
    folder = blobs.file_root(backend_url)
    if folder is None:
        return []
    root = folder / ".pulumi"
    candidates = [root / "stacks" / project / f"{stack}{suffix}.attrs" for suffix in _CHECKPOINTS]
    leftovers: list[Path] = []
    if killed:
        history = root / "history" / project / stack
        candidates += sorted(history.glob("*.attrs")) if history.is_dir() else []
        folder = root / "stacks" / project
        leftovers = sorted(folder.glob(f"{stack}.json*.tmp")) if folder.is_dir() else []
    torn = []
    for path in candidates:
        try:
            if path.stat().st_size == 0:
                path.unlink()
                torn.append(path)
        except OSError:
            continue  # not there (the usual case), or gone already
    for path in leftovers:
        path.unlink(missing_ok=True)
    lines = [f"removed the empty metadata file {path.name} a killed write left on stack {stack}" for path in torn]
    if leftovers:
        lines.append(f"removed {len(leftovers)} temporary file(s) of a write a killed run did not finish "
                     f"on stack {stack}")
    return lines


def refusal(stack: str, held: list[Lock], breaker: str) -> str:
    """Why a run of ``stack`` was refused, naming every holder, and what to do."""
    holders = "; ".join(lock.describe() for lock in held) or "a process the backend does not name"
    if any(lock.here and not lock.stale for lock in held):
        todo = (f"wait for that run to end; if it hangs, stop it (kill PID) and run again, which clears the "
                f"lock of a process of this machine by itself, or break it with {breaker}")
    else:
        todo = f"once that run is surely over, {breaker} breaks the lock"
    return (f"stack {stack} is being updated by another process, or a killed run left its lock: held by "
            f"{holders}; {todo}")
