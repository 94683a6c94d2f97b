"""The cluster-access layer's typed errors against a real API server (the session's local host cluster): a
request refused to an impersonated user is ``ForbiddenError``, a missing object ``NotFoundError``, a second
create ``ConflictError``, each naming the server and carrying the server's own message; the readers built on
the funnel turn absence into None; a command that meets a refusal exits 1 with the typed message, no
traceback. The rules themselves are tested offline in tests/test_cluster.py; a stopped API server is in
tests/integration/test_fault_drills.py.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vcluster_mgr import cluster, errors, localcluster, platformconfig


@pytest.fixture()
def target(host_cluster: localcluster.Cluster) -> platformconfig.Target:
    return platformconfig.Target(name="default", kubeconfig=str(host_cluster.kubeconfig))


@pytest.fixture()
def conn(target: platformconfig.Target) -> Iterator[cluster.Connection]:
    with cluster.connect(target) as c:
        yield c


def test_a_missing_object_is_not_found_naming_the_server(conn: cluster.Connection,
                                                         host_cluster: localcluster.Cluster) -> None:
    with pytest.raises(errors.NotFoundError) as caught:
        conn.call("reading namespace nowhere-x", conn.core.read_namespace, "nowhere-x")
    assert caught.value.status == 404 and caught.value.server == host_cluster.server
    assert str(caught.value) == (f'reading namespace nowhere-x on {host_cluster.server}: 404 namespaces "nowhere-x" '
                                 'not found')
    # the readers say "absent" instead
    assert cluster.read_namespace(conn, "nowhere-x") is None
    assert conn.read("reading namespace nowhere-x", conn.core.read_namespace, "nowhere-x") is None
    assert cluster.get_object(conn, "v1", "ConfigMap", "nowhere", "default") is None
    # and an object that is there is read through the same paths
    assert cluster.read_namespace(conn, "default") is not None
    assert cluster.get_object(conn, "v1", "Namespace", "default", None) is not None


def test_a_second_create_is_a_conflict(conn: cluster.Connection) -> None:
    name = f"vcm-conflict-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}
    conn.call(f"creating ConfigMap default/{name}", conn.core.create_namespaced_config_map, "default", body)
    try:
        with pytest.raises(errors.ConflictError, match=f'409 configmaps "{name}" already exists'):
            conn.call(f"creating ConfigMap default/{name}", conn.core.create_namespaced_config_map, "default", body)
    finally:
        conn.call(f"deleting ConfigMap default/{name}", conn.core.delete_namespaced_config_map, name, "default")


def test_an_impersonated_stranger_is_forbidden(target: platformconfig.Target,
                                               host_cluster: localcluster.Cluster) -> None:
    with cluster.connect(target, user="stranger@example.com", groups=("strangers",)) as stranger:
        with pytest.raises(errors.ForbiddenError) as caught:
            stranger.call("listing namespaces", stranger.core.list_namespace)
        assert caught.value.status == 403 and caught.value.server == host_cluster.server
        assert 'User "stranger@example.com" cannot list resource "namespaces"' in caught.value.detail
        # the raw reads (no API group module) answer the same way
        with pytest.raises(errors.ForbiddenError, match="cannot get resource \"namespaces\""):
            cluster.read_namespace(stranger, "kube-system")
        with pytest.raises(errors.ForbiddenError, match="to identify host cluster 'default'"):
            cluster.cluster_uid(stranger)
    # the twin: the same request with the admin's own credentials is allowed
    with cluster.connect(target) as admin:
        assert admin.call("listing namespaces", admin.core.list_namespace, limit=1).items


def test_a_command_refused_by_the_server_says_so_and_exits_1(host_cluster: localcluster.Cluster,
                                                              tmp_path: Path) -> None:
    """``vcm usage`` with a kubeconfig of a user who may not list namespaces: the typed error, once, no traceback."""
    kubeconfig = tmp_path / "stranger"
    kubeconfig.write_text(localcluster.user_kubeconfig(host_cluster.name, "stranger@example.com"))
    assert yaml.safe_load(kubeconfig.read_text())["users"]
    proc = subprocess.run([sys.executable, "-m", "vcluster_mgr", "--no-color", "usage", "--all",
                           "--kubeconfig", str(kubeconfig)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"error: listing tenant namespaces on {host_cluster.server}: 403" in proc.stderr
    assert 'User "stranger@example.com" cannot list resource "namespaces"' in " ".join(proc.stderr.split())
