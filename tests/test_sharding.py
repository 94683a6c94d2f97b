"""``--shard I/N`` offline: the split (``vcluster_mgr.sharding``), the option's bad values, the ``s3://``
backend URL check (what a lock left on a shared backend says is in ``tests/test_locks.py``).

Covers: ``I/N`` parsing and its errors; every N splits any set of names into disjoint shards whose union
is the set; a name's shard does not change when other tenants are added or removed; going from N to N+1
moves only what must move, all of it onto the new shard (its twin: ``hash mod N``, which the same check
refuses); the shards are balanced; bad ``--shard`` values exit 2 with a message and no traceback on every
command that takes it; an ``s3://`` URL the engine would refuse is a usage error before anything runs.
The same split on a real engine and backend is in ``tests/integration/test_sharding.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, sharding
from vcluster_mgr.workspace import backend

runner = CliRunner()
NAMES = [f"default.tenant-{i:04d}" for i in range(2000)]


# ---------------------------------------------------------------------------------------------
# I/N
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3)),
                                                ("1000/1000", (1000, 1000))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    shard = sharding.parse_shard(text)
    assert (shard.index, shard.count) == expected
    assert str(shard) == f"{expected[0]}/{expected[1]}"


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "is not I/N"), ("3", "is not I/N"), ("a/b", "is not I/N"), ("1/2/3", "is not I/N"),
    ("-1/2", "is not I/N"), ("1.5/2", "is not I/N"), ("0/3", "numbered from 1"), ("4/3", "between 1 and N (3)"),
    ("1/0", "N must be between 1 and 1000"), ("1/1001", "N must be between 1 and 1000"),
])
def test_parse_shard_refuses(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        sharding.parse_shard(text)
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------------------------
# the split
# ---------------------------------------------------------------------------------------------


def _split(names: list[str], count: int) -> list[list[str]]:
    return [sharding.select(names, sharding.Shard(i, count), str) for i in range(1, count + 1)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), unique=True, max_size=60), st.integers(1, 12))
def test_shards_are_disjoint_and_cover_everything(names: list[str], count: int) -> None:
    shards = _split(names, count)
    flat = [n for shard in shards for n in shard]
    assert sorted(flat) == sorted(names)  # every name once: the union is the whole set, no overlap
    for shard in shards:  # each keeps the folder's order
        assert shard == [n for n in names if n in set(shard)]


def test_no_shard_is_everything() -> None:
    assert sharding.select(NAMES, None, str) == NAMES


def test_other_tenants_coming_and_going_move_no_one() -> None:
    before = {n: sharding.shard_of(n, 5) for n in NAMES[:1000]}
    grown = NAMES[:1000] + [f"other.{i}" for i in range(500)]
    shrunk = NAMES[:1000:2]
    for names in (grown, shrunk):
        for shard in _split(names, 5):
            for n in shard:
                if n in before:
                    assert before[n] == sharding.shard_of(n, 5)
                    assert n in _split([n], 5)[before[n] - 1]


def _moves_only_onto_the_new_shard(assign: dict[int, dict[str, int]], count: int) -> float:
    """Fraction of names moved from ``count`` to ``count + 1`` shards; asserts every move lands on the new
    shard and that no more moved than the new shard's fair share (with room for chance)."""
    moved = [n for n in NAMES if assign[count][n] != assign[count + 1][n]]
    assert all(assign[count + 1][n] == count + 1 for n in moved), "a name moved between two old shards"
    fraction = len(moved) / len(NAMES)
    assert fraction < 1.5 / (count + 1), f"{fraction:.0%} moved going from {count} to {count + 1} shards"
    return fraction


def test_growing_n_moves_only_the_new_shards_share() -> None:
    assign = {n: {name: sharding.shard_of(name, n) for name in NAMES} for n in range(1, 9)}
    for count in range(1, 8):
        _moves_only_onto_the_new_shard(assign, count)


def test_twin_hash_mod_n_moves_almost_everything() -> None:
    """The check above refuses the scheme it was chosen over: hash(name) mod N moves most names."""

    def mod_n(name: str, count: int) -> int:
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count + 1

    assign = {n: {name: mod_n(name, n) for name in NAMES} for n in (3, 4)}
    with pytest.raises(AssertionError):
        _moves_only_onto_the_new_shard(assign, 3)


@pytest.mark.parametrize("count", [2, 3, 4, 7, 16])
def test_shards_are_balanced(count: int) -> None:
    sizes = [len(s) for s in _split(NAMES, count)]
    mean = len(NAMES) / count
    assert min(sizes) > 0.8 * mean and max(sizes) < 1.2 * mean, sizes


def test_the_split_is_the_same_in_every_process() -> None:
    """SHA-256, not Python's salted hash(): fixed answers that any machine computes alike."""
    assert [sharding.shard_of(f"default.t{i}", 4) for i in range(8)] == [
        sharding.shard_of(f"default.t{i}", 4) for i in range(8)]
    assert sharding.shard_of("default.payments", 3) == 3
    assert sharding.shard_of("default.search", 2) == 2


# ---------------------------------------------------------------------------------------------
# the option, on every command that takes it
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["apply", "examples/tenants", "--yes"], ["plan", "examples/tenants"],
                                     ["drift", "--all"]])
@pytest.mark.parametrize(("value", "fragment"), [("0/3", "numbered from 1"), ("5/4", "between 1 and N"),
                                                 ("two", "is not I/N"), ("1/0", "N must be between")])
def test_bad_shard_exits_2(command: list[str], value: str, fragment: str) -> None:
    res = runner.invoke(cli.app, [*command, "--shard", value])
    assert res.exit_code == 2, res.output
    assert fragment in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_drift_shard_needs_all() -> None:
    res = runner.invoke(cli.app, ["drift", "payments", "--shard", "1/2"])
    assert res.exit_code == 2, res.output
    assert "--shard splits --all" in " ".join(res.output.split())


def test_shard_is_in_the_help() -> None:
    for command in ("apply", "plan", "drift"):
        res = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--shard" in res.output and "I/N" in res.output


# ---------------------------------------------------------------------------------------------
# the s3:// backend URL
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "s3://vcm-state",
    "s3://vcm-state?region=eu-west-1",
    "s3://vcm-state/team-a?region=us-east-1&endpoint=http://127.0.0.1:8333&use_path_style=true",
    "s3://vcm-state?region=us-east-1&endpoint=https://s3.example.com&s3ForcePathStyle=true&profile=ci",
])
def test_s3_urls_the_engine_takes(url: str) -> None:
    backend.check_s3_url(url)


@pytest.mark.parametrize(("url", "fragment"), [
    ("s3://", "names no bucket"),
    ("s3://?region=x", "names no bucket"),
    ("s3://b?region=x&endpont=http://h", "parameter(s) the engine does not know: endpont"),
    ("s3://b?region=x&region=y", "repeats region"),
    ("s3://b?endpoint=127.0.0.1:9000", "needs its scheme"),
    ("s3://AKIA:hunter2@b?region=x", "carries credentials"),
])
def test_s3_urls_the_engine_would_refuse(url: str, fragment: str) -> None:
    with pytest.raises(errors.UsageError) as info:
        backend.check_s3_url(url)
    assert fragment in str(info.value)
    assert "hunter2" not in str(info.value)


def test_bad_s3_url_is_exit_2_before_anything_runs(tmp_path: Path) -> None:
    res = runner.invoke(cli.app, ["list", "--backend-url", "s3://AKIA:hunter2@b?regoin=x", "--state-dir",
                                  str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "carries credentials" in " ".join(res.output.split())
    assert "hunter2" not in res.output and "Traceback" not in res.output


