"""The suite on several pytest-xdist workers: what keeps the machine's one node on one of them.

Each test runs a small suite of its own in a pytest subprocess, in a temp folder, with this suite's
``tests/conftest.py`` and a private ``VCM_CACHE_DIR``: ``-n 2 --dist loadgroup`` sends every test whose fixtures
lead to ``node_slot`` (here through a stand-in ``node_cluster`` that starts nothing) to one worker, first and in
order, while the others spread by module; a second process asking for the slot fails, saying why; and a test
that starts a node without the slot fails before the node starts (its twin, with the slot, gets past the guard).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

MINI_SUITE = '''
import pytest

from vcluster_mgr.localnode import node as localnode


@pytest.fixture(scope="session")
def node_cluster(node_slot):
    """A stand-in: the real one starts a node."""
    return "node"


@pytest.fixture
def node_applied(node_cluster):
    return node_cluster


def test_plain_a():
    pass


def test_on_the_node_a(node_cluster):
    pass


def test_plain_b():
    pass


def test_on_the_node_b(node_applied):
    pass


def test_own_node(node_slot):
    pass


def test_plain_c():
    pass
'''


def _suite(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_mini.py").write_text(body)
    env = {**os.environ, "VCM_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args, "test_mini.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_node_tests_run_on_one_worker_first_and_the_rest_spread(tmp_path: Path) -> None:
    proc = _suite(tmp_path, MINI_SUITE + "\n\n" + "\n\n".join(
        f"def test_more_{i}():\n    pass" for i in range(6)), "-n", "2", "--dist", "loadgroup",
                  "--no-loadscope-reorder")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED test_mini\.py::(\w+)@(\S+)", proc.stdout)
    assert len(ran) == 12, proc.stdout
    node = [(worker, test) for worker, test, group in ran if group == "node"]
    # the node's tests: all three, on one worker, the one with a node of its own before those on node_cluster
    assert [test for _, test in node] == ["test_own_node", "test_on_the_node_a", "test_on_the_node_b"], proc.stdout
    assert len({worker for worker, _ in node}) == 1
    assert {group for _, _, group in ran if group != "node"} == {"test_mini.py"}


def test_a_second_process_asking_for_the_node_slot_fails_saying_why(tmp_path: Path) -> None:
    lock_file = tmp_path / "cache" / "pytest-node.lock"
    lock_file.parent.mkdir(parents=True)
    with lock_file.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another worker with the node would
        proc = _suite(tmp_path, MINI_SUITE, "-k", "own_node or plain_a")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_mini.py::test_plain_a PASSED" in proc.stdout
    assert "test_mini.py::test_own_node ERROR" in proc.stdout
    assert "another process holds the machine's node slot" in proc.stdout
    # the twin: once nobody holds it, the same test gets the slot
    proc = _suite(tmp_path, MINI_SUITE, "-k", "own_node")
    assert proc.returncode == 0, proc.stdout + proc.stderr


GUARDED = '''
import pytest

from vcluster_mgr import errors
from vcluster_mgr.localnode import node as localnode


def test_starts_a_node_without_the_slot():
    localnode.check_host()


def test_starts_a_node_with_the_slot(node_slot):
    try:
        localnode.check_host()  # the host's own checks: root, packages, no other node's bridge
    except errors.LocalClusterError:
        pass
'''


def test_a_node_started_without_the_slot_fails_before_it_starts(tmp_path: Path) -> None:
    proc = _suite(tmp_path, GUARDED, "-k", "without_the_slot")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_mini.py::test_starts_a_node_without_the_slot FAILED" in proc.stdout
    assert "starts a node without the `node_slot` fixture" in proc.stdout
    # the twin (a session of its own: the slot, once taken, is held to the session's end)
    proc = _suite(tmp_path, GUARDED, "-k", "with_the_slot and not without")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_mini.py::test_starts_a_node_with_the_slot PASSED" in proc.stdout
