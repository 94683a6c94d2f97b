"""Which tenants one of N machines applies: ``--shard I/N``, a stable split of a folder with no coordinator.

N jobs (a CI matrix) run the same command on the same folder, each with its own ``I``; each keeps the
stacks this module assigns to shard I and the union is the whole folder, each stack exactly once. Nothing
is shared between the jobs but the state backend, whose per-stack locks are the only coordination.

The scheme is rendezvous (highest random weight) hashing: stack ``S`` goes to the shard ``i`` (1..N) whose
score, the first 8 bytes of ``sha256("i/S")``, is highest. So:

* the assignment depends on nothing but the stack's name and N: adding or removing tenants never moves
  another tenant, and every job computes the same answer without talking to the others;
* changing N moves only the share of stacks that must move (going from N to N+1 moves about 1/(N+1) of
  them, all onto the new shard), where ``hash mod N`` would move almost all of them;
* SHA-256 rather than Python's ``hash()``, which is salted per process.

Plain data and hashing, no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

MAX_SHARDS = 1000
"""The largest N accepted: far above any CI matrix, small enough that choosing a shard stays cheap."""

_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as GitLab's ``CI_NODE_INDEX`` / ``CI_NODE_TOTAL``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> ``Shard(I, N)``; raises ``ValueError`` with a message fit for the user otherwise."""
    match = _SHARD_RE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not I/N (two whole numbers such as 2/4: this job is shard I of N)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or count > MAX_SHARDS:
        raise ValueError(f"{text!r}: N must be between 1 and {MAX_SHARDS}")
    if index < 1 or index > count:
        raise ValueError(f"{text!r}: I must be between 1 and N ({count}); shards are numbered from 1")
    return Shard(index, count)


def _score(index: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{index}/{key}".encode()).digest()[:8], "big")


def shard_of(key: str, count: int) -> int:
    """The shard (1..count) that owns ``key``: the one with the highest score for it."""
    return max(range(1, count + 1), key=lambda i: _score(i, key))


def select(items: Iterable[T], shard: Shard | None, key: Callable[[T], str]) -> list[T]:
    """The items of ``shard`` (all of them for ``None``), in their order; ``key`` names each item's stack."""
    if shard is None:
        return list(items)
    return [item for item in items if shard_of(key(item), shard.count) == shard.index]
