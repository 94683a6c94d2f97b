"""Shared fixtures.

Integration tests (``tests/integration``) need the engine's binaries and a real API server. The
binaries come from ``vcm toolchain ensure`` (``make test`` runs it first); when they are missing the
tests FAIL with the reason, they are never skipped. One local host cluster is started per test session
and stopped at its end; the traffic tests start a second one with a node (``node_cluster``), which needs
root and the node's Debian packages (``make test`` installs them).

``make test`` runs the suite on two pytest-xdist workers (``-n 2 --dist loadgroup``). Each worker is a session
of its own: its own ``host_cluster`` (named after its process, on free ports), its own temp and state dirs. A
node is the machine's alone (the bridge ``vcm0``, one containerd, the host's netfilter tables), so every test
that starts one or changes what a node relies on asks for ``node_slot`` (``node_cluster`` does, so every test
on it does too): ``pytest_collection_modifyitems`` puts those tests in the one xdist group ``node``, which one
worker runs in order, first; the other tests are grouped by module, so a module's fixtures are set up once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcluster_mgr import localcluster, toolchain, workspace
from vcluster_mgr.localnode import node as localnode

REPO = Path(__file__).resolve().parent.parent

#: the xdist group of every test that uses the machine's one node (see ``node_slot``)
NODE_GROUP = "node"


def _order(item: pytest.Item) -> int:
    """Tests with a node first: those that start a node of their own (before ``node_cluster`` starts the
    session's, which lives to the end), then those on ``node_cluster``, then the rest."""
    fixtures = getattr(item, "fixturenames", ())
    if "node_slot" not in fixtures:
        return 2
    return 1 if "node_cluster" in fixtures else 0


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "node_slot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.node)
            item.add_marker(pytest.mark.xdist_group(NODE_GROUP))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    items.sort(key=_order)  # a stable sort: within each part, the order of collection


class _NodeSlot:
    """Whether this process holds the machine's node slot (a lock file under the cache dir)."""

    held = False


@pytest.fixture(scope="session")
def node_slot() -> Iterator[None]:
    """This test process's claim to the machine's one node, for the rest of its session.

    Under xdist every test that asks for it runs on one worker (the ``node`` group); if another process holds
    the slot (a second worker, or another test run using the same cache dir), the test fails here, saying
    so, instead of a second node breaking the first one's network.
    """
    path = toolchain.cache_dir() / "pytest-node.lock"  # beside local/, not in it: no cluster of that name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail(f"another process holds the machine's node slot ({path}): only one node runs per machine; "
                        f"under xdist every test with a node must be in the xdist group {NODE_GROUP!r} (this is "
                        f"worker {os.environ.get('PYTEST_XDIST_WORKER', 'none')!r}), or another test run has one")
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()} {os.environ.get('PYTEST_XDIST_WORKER', '')}\n")
        lock.flush()
        _NodeSlot.held = True
        try:
            yield
        finally:
            _NodeSlot.held = False
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session", autouse=True)
def _nodes_need_the_slot() -> Iterator[None]:
    """A node started in this process without ``node_slot`` fails the test: it would not be in the ``node``
    group, and under xdist it could meet another worker's node."""
    check_host = localnode.check_host

    def guarded() -> None:
        if not _NodeSlot.held:
            pytest.fail("this test starts a node without the `node_slot` fixture: ask for it (or for "
                        "`node_cluster`), so that it runs in the xdist group of the machine's one node")
        check_host()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(localnode, "check_host", guarded)
        yield


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    return toolchain.require()


@pytest.fixture(scope="session")
def host_cluster(bin_dir: Path) -> Iterator[localcluster.Cluster]:
    name = f"pytest-{os.getpid()}"
    cluster = localcluster.up(name)
    try:
        yield cluster
    finally:
        localcluster.down(name)


@pytest.fixture(scope="session")
def node_cluster(bin_dir: Path, node_slot: None) -> Iterator[localcluster.Cluster]:
    """A second local cluster, with a node: pods run and NetworkPolicies are enforced (one per machine)."""
    name = f"pytest-node-{os.getpid()}"
    cluster = localcluster.up(name, nodes=1)
    try:
        yield cluster
    finally:
        localcluster.down(name)


@pytest.fixture(scope="session")
def node_engine_settings(node_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory
                         ) -> workspace.Settings:
    """Settings for a private file backend, pointed at the cluster with a node."""
    state = tmp_path_factory.mktemp("node-state")
    return workspace.settings(state_dir=state, backend_url=(state / "pulumi").as_uri(),
                              kubeconfig=str(node_cluster.kubeconfig))


@pytest.fixture(scope="session")
def engine_settings(host_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory
                    ) -> workspace.Settings:
    """Settings for a private file backend, pointed at the session's host cluster."""
    state = tmp_path_factory.mktemp("state")
    return workspace.settings(state_dir=state, backend_url=(state / "pulumi").as_uri(),
                              kubeconfig=str(host_cluster.kubeconfig))
