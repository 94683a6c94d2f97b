"""A stack's provider configuration cannot be poisoned, and a stack is bound to its host cluster.

`vcm` runs as a separate process (as a user would) against two local host clusters of this module:
- a run with a broken kubeconfig path or context fails, and the next run with a good one succeeds (the
  provider configuration the stack keeps holds no path and no context);
- a run whose kubeconfig reaches another cluster under the same cluster name is refused before anything
  changes, for apply, plan, delete and the platform, naming the cluster that was expected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import localcluster

SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}}}
spec:
  owners: [{{kind: User, name: owner@example.com, role: admin}}]
  namespaces: [a]
"""


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir for the module: the platform stack of the first cluster is shared by its tests (a
    second stack applying the same cluster-scoped objects would meet the provider's field conflicts)."""
    return tmp_path_factory.mktemp("binding-state")


@pytest.fixture(scope="module")
def two_clusters(bin_dir: Path) -> Iterator[tuple[localcluster.Cluster, localcluster.Cluster]]:
    names = [f"bind-a-{os.getpid()}", f"bind-b-{os.getpid()}"]
    clusters = []
    try:
        for name in names:
            clusters.append(localcluster.up(name))
        yield clusters[0], clusters[1]
    finally:
        for name in names:
            localcluster.down(name)


class Vcm:
    """`vcm` as a process with its own state dir."""

    def __init__(self, tmp: Path, state: Path) -> None:
        self.tmp = tmp
        self.state = state

    def spec(self, name: str) -> Path:
        path = self.tmp / f"{name}.yaml"
        path.write_text(SPEC.format(name=name))
        return path

    def __call__(self, *args: str, kubeconfig: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": kubeconfig, "VCM_STATE_DIR": str(self.state)}
        return subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=env, capture_output=True,
                              text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)


def _namespace_exists(cluster: localcluster.Cluster, name: str) -> bool:
    core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    try:
        core.read_namespace(name)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


def test_broken_kubeconfig_path_does_not_poison_the_platform_stack(
        two_clusters: tuple[localcluster.Cluster, localcluster.Cluster], tmp_path: Path, state: Path) -> None:
    good = str(two_clusters[0].kubeconfig)
    vcm = Vcm(tmp_path, state)
    first = vcm("platform", "apply", "--yes", kubeconfig=good)
    assert first.returncode == 0, first.stdout + first.stderr
    bad = vcm("platform", "apply", "--yes", kubeconfig="/some/garbage")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stdout + bad.stderr
    again = vcm("platform", "apply", "--yes", kubeconfig=good)
    assert again.returncode == 0, again.stdout + again.stderr
    # nothing of the bad run was kept in the stack's provider configuration
    recorded = "\n".join(p.read_text() for p in (state / "pulumi" / ".pulumi" / "stacks").rglob("*.json"))
    assert "/some/garbage" not in recorded
    assert good not in recorded


def test_broken_context_does_not_poison_a_tenant_stack(
        two_clusters: tuple[localcluster.Cluster, localcluster.Cluster], tmp_path: Path, state: Path) -> None:
    cluster = two_clusters[0]
    # a kubeconfig with a second context, named for the test, that points at the same cluster
    kc = yaml.safe_load(cluster.kubeconfig.read_text())
    base = kc["contexts"][0]
    kc["contexts"].append({"name": "second", "context": dict(base["context"])})
    path = tmp_path / "two-contexts.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    vcm = Vcm(tmp_path, state)
    spec_path = vcm.spec("ctxbind")
    ok = vcm("apply", str(spec_path), "--yes", "--context", "second", kubeconfig=str(path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = vcm("apply", str(spec_path), "--yes", "--context", "nosuch", kubeconfig=str(path))
    assert bad.returncode != 0 and "Traceback" not in bad.stdout + bad.stderr
    # the stack's provider records neither the kubeconfig path nor the context
    for stack_file in (state / "pulumi" / ".pulumi" / "stacks").rglob("*ctxbind*.json"):
        resources = json.loads(stack_file.read_text())["checkpoint"]["latest"]["resources"]
        providers = [r for r in resources if r["type"] == "pulumi:providers:kubernetes"]
        assert providers and all(p["inputs"].get("kubeconfig", "") == "" and "context" not in p["inputs"]
                                 for p in providers), providers
    # the next good run, with another context and the default one, both converge with nothing to do
    for extra in (["--context", base["name"]], []):
        res = vcm("apply", str(spec_path), "--yes", "-o", "json", *extra, kubeconfig=str(path))
        assert res.returncode == 0, res.stdout + res.stderr
        assert set(json.loads(res.stdout)[0]["changes"]) == {"same"}, res.stdout


def test_a_stack_is_refused_on_another_cluster_under_the_same_name(
        two_clusters: tuple[localcluster.Cluster, localcluster.Cluster], tmp_path: Path, state: Path) -> None:
    first, other = two_clusters
    vcm = Vcm(tmp_path, state)
    spec_path = vcm.spec("bound")
    assert vcm("platform", "apply", "--yes", kubeconfig=str(first.kubeconfig)).returncode == 0
    applied = vcm("apply", str(spec_path), "--yes", kubeconfig=str(first.kubeconfig))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    uid = client.CoreV1Api(config.new_client_from_config(str(first.kubeconfig))).read_namespace(
        "kube-system").metadata.uid
    stacks = sorted((vcm.state / "pulumi" / ".pulumi" / "stacks").rglob("*.json"))
    before = {p: p.read_bytes() for p in stacks}
    for args in (["apply", str(spec_path), "--yes"], ["plan", str(spec_path)], ["delete", "bound", "--yes"],
                 ["platform", "apply", "--yes"]):
        res = vcm(*args, kubeconfig=str(other.kubeconfig))
        out = res.stdout + res.stderr
        assert res.returncode == 1, (args, out)
        assert uid in out and "Nothing was changed" in out, (args, out)
        assert "Traceback" not in out
    # nothing happened on either cluster or in the state
    assert not _namespace_exists(other, "bound-a")
    assert _namespace_exists(first, "bound-a")
    assert {p: p.read_bytes() for p in stacks} == before
    # the stack still works against its own cluster
    back = vcm("apply", str(spec_path), "--yes", "-o", "json", kubeconfig=str(first.kubeconfig))
    assert back.returncode == 0, back.stdout + back.stderr
    assert set(json.loads(back.stdout)[0]["changes"]) == {"same"}
