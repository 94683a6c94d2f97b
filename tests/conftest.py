"""Shared fixtures.

Integration tests (``tests/integration``) need the engine's binaries and a real API server. The
binaries come from ``vcm toolchain ensure`` (``make test`` runs it first); when they are missing the
tests FAIL with the reason, they are never skipped. One local host cluster is started per test session
and stopped at its end; the traffic tests start a second one with a node (``node_cluster``), which needs
root and the node's Debian packages (``make test`` installs them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcluster_mgr import localcluster, toolchain, workspace

REPO = Path(__file__).resolve().parent.parent


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
def node_cluster(bin_dir: Path) -> Iterator[localcluster.Cluster]:
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
