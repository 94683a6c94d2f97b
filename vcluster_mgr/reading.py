"""Reading a file a user names: bounded in size, and only a regular file (or stdin), never a device or a FIFO.

Every file vcm reads comes from a user: tenant specs, the admin policy, the platform config, kubeconfigs.
Read with ``Path.read_text``, ``/dev/zero`` is read until the kernel kills the process (taking other
processes of the machine with it on the way), and a FIFO blocks for ever, waiting for a writer. Here a file
is opened without blocking, checked to be a regular file, and read up to ``MAX_BYTES``; anything else is a
``SpecError`` naming the file, so the command exits 2 with the reason and reads nothing more.

This is the one place that reads such files: ``spec`` (specs, policies, and a look at a local chart archive
before Helm reads it), ``platformconfig`` (the platform config, and a look at each kubeconfig before the
kubernetes client and the engine read it), ``render`` (an admin's templates), ``workspace`` (the state
dir's passphrase) and ``record`` (the spec file an old tenant record names) all come here.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from vcluster_mgr import errors

MAX_BYTES = 4 * 1024 * 1024
"""Largest file read, in bytes (4 MiB). A tenant spec or policy is a few KiB; a kubeconfig holding the
certificates of dozens of clusters stays well under 1 MiB."""

MAX_CHART_BYTES = 64 * 1024 * 1024
"""Largest local chart archive (64 MiB), which Helm reads, not vcm: the vcluster chart's is about 100 KiB."""

STDIN = "-"
"""The path that means standard input (read up to ``MAX_BYTES`` as well)."""

STDIN_NAME = "<stdin>"
"""The file name errors (and a tenant's record) give what was read from standard input."""


def _fail(source: str, message: str) -> errors.SpecError:
    return errors.SpecError([errors.FieldError("(file)", message, source)])


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in the words of ``ls -l`` readers."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_large(source: str, limit: int) -> errors.SpecError:
    return _fail(source, f"is larger than {limit} bytes ({limit // 1024 // 1024} MiB), the most vcm reads")


def _read_capped(stream: BinaryIO, source: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``stream``; one byte more is an error (sizes can lie: /proc, a growing file)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(source, limit)
    return data


def _open_regular(path: str | Path, limit: int) -> int:
    """A descriptor of the regular file ``path`` of at most ``limit`` bytes (its size as the file system
    says it); ``SpecError`` naming the file otherwise. A FIFO is opened without blocking, so it is refused
    at once instead of waiting for a writer."""
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _fail(source, "does not exist") from None
    except OSError as exc:
        raise _fail(source, f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _fail(source, f"is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise _too_large(source, limit)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str | Path, *, limit: int = MAX_BYTES) -> bytes:
    """The content of the regular file ``path`` (or of stdin for ``-``), at most ``limit`` bytes.

    Raises ``SpecError`` naming the file when it is missing, unreadable, not a regular file (a folder, a
    device such as ``/dev/zero``, a FIFO, a socket) or larger than ``limit``.
    """
    if str(path) == STDIN:
        return _read_capped(sys.stdin.buffer, STDIN_NAME, limit)
    fd = _open_regular(path, limit)
    try:
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return _read_capped(stream, str(path), limit)
    except OSError as exc:
        raise _fail(str(path), f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: str | Path, *, limit: int = MAX_BYTES) -> str:
    """``read_bytes`` decoded as UTF-8; ``SpecError`` naming the file if it is not UTF-8 text."""
    data = read_bytes(path, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        source = STDIN_NAME if str(path) == STDIN else str(path)
        raise _fail(source, f"is not UTF-8 text ({exc.reason})") from None


def check_file(path: str | Path, *, limit: int = MAX_BYTES) -> None:
    """Refuse ``path`` as ``read_bytes`` would, without reading it: for files another program reads after
    us (a kubeconfig, read by the kubernetes client and by the engine; a chart archive, read by Helm)."""
    os.close(_open_regular(path, limit))


def check_if_present(path: str | Path, *, limit: int = MAX_BYTES) -> None:
    """``check_file``, unless ``path`` does not exist: where a missing file has a meaning of its own (the
    kubeconfig resolution skips it; a chart is looked for on the machine that applies)."""
    if os.path.lexists(path):
        check_file(path, limit=limit)
