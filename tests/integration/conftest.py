"""Every test in this folder talks to the real local API server through the real engine."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from vcluster_mgr import localcluster, operations, platformconfig, spec, verify, workspace  # noqa: E402

from .real_control_plane import RealControlPlane  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"


@dataclasses.dataclass(frozen=True)
class Applied:
    """The example tenants after a real ``pulumi up`` (platform first), on the session's host cluster."""

    cluster: localcluster.Cluster
    settings: workspace.Settings
    target: platformconfig.Target
    tenants: dict[str, spec.Tenant]
    outcomes: list[workspace.Outcome]


@pytest.fixture(scope="session")
def examples_applied(host_cluster: localcluster.Cluster, engine_settings: workspace.Settings) -> Applied:
    """Apply the platform and every tenant of examples/tenants once per session (tests must not break them
    for good: a test that weakens something restores it, or works on a tenant of its own)."""
    cfg = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig))
    target = cfg.target(None)
    operations.platform_apply(engine_settings, target, cfg.blueprint)
    tenants = spec.load_specs([EXAMPLES], policy=cfg.blueprint.policy)
    jobs = [operations.Job(t, target, cfg.blueprint) for t in tenants]
    outcomes = operations.run_jobs(engine_settings, jobs, "apply", parallel=1)
    failed = [o for o in outcomes if not o.ok]
    assert not failed, "\n".join(f"{o.tenant}: {o.error}" for o in failed)
    return Applied(host_cluster, engine_settings, target, {t.name: t for t in tenants}, outcomes)


@dataclasses.dataclass(frozen=True)
class NodeApplied:
    """The platform and tenants after a real ``pulumi up`` on the session's cluster WITH a node.

    The applies run in ``vcm`` subprocesses: the Pulumi SDK keeps global state in the process that runs an
    inline program, and this session also applies the same tenant names to the node-less ``host_cluster``.
    """

    cluster: localcluster.Cluster
    settings: workspace.Settings
    target: platformconfig.Target
    blueprint: platformconfig.Blueprint
    policy: spec.Policy
    tenants: dict[str, spec.Tenant]
    folder: Path

    def vcm(self, *args: str) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "VCM_STATE_DIR": str(self.settings.state_dir)}
        proc = subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def apply(self, docs: list[dict[str, object]], paths: tuple[Path, ...] = ()) -> None:
        files = list(paths)
        for doc in docs:
            name = doc["metadata"]["name"]  # type: ignore[index]
            f = self.folder / f"{name}.yaml"
            f.write_text(yaml.safe_dump(doc))
            files.append(f)
        self.vcm("apply", *map(str, files), "--yes")
        self.tenants.update({t.name: t for t in spec.load_specs(files, policy=self.policy)})


def small_tenant(name: str, isolation: str, **network: object) -> dict[str, object]:
    """A tenant of one namespace ``<name>-app`` with the policy's default quota and limits (the spec document)."""
    return {
        "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
        "spec": {"owners": [{"kind": "User", "name": f"{name}@example.com", "role": "admin"}],
                 "namespaces": ["app"], "podSecurity": "restricted",
                 "network": {"isolation": isolation, **network}},
    }


def verify_one_check(target: platformconfig.Target, tenant: str, check_id: str, *,
                     others: Sequence[str]) -> verify.CheckResult:
    """One check of ``vcm verify`` for ``tenant``, run as the command runs it: the tenants discovered on the
    cluster through the admin's connection, then the check alone, with ``others`` as the other tenants."""
    with verify.client_factory(target)(None) as admin:
        live = verify.discover_tenants(admin)
    report = verify.verify_tenant(live[tenant], cluster=target.name, clients=verify.client_factory(target),
                                  others=[live[name] for name in others], checks=[verify.CHECKS_BY_ID[check_id]])
    (result,) = report.checks
    return result


@pytest.fixture(scope="session")
def node_applied(node_cluster: localcluster.Cluster, node_engine_settings: workspace.Settings,
                 tmp_path_factory: pytest.TempPathFactory) -> NodeApplied:
    """Platform, examples/tenants and two ``namespace``-isolation tenants (nsa, nsb) on the node cluster."""
    cfg = platformconfig.load(None, kubeconfig=str(node_cluster.kubeconfig))
    applied = NodeApplied(node_cluster, node_engine_settings, cfg.target(None), cfg.blueprint, cfg.blueprint.policy,
                          {}, tmp_path_factory.mktemp("node-tenants"))
    applied.vcm("platform", "apply", "--yes")
    applied.apply([small_tenant("nsa", "namespace"), small_tenant("nsb", "namespace")], paths=(EXAMPLES,))
    return applied


@pytest.fixture(scope="module")
def real_control_plane(node_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[RealControlPlane]:
    """The platform and one REAL control plane tenant (``vteam``, see ``RealControlPlane``) on the node cluster,
    applied with ``vcm apply --timeout 300`` and its kubeconfig written by ``vcm kubeconfig``; each module that
    asks for it gets its own and it is deleted, namespaces gone, at the module's end. A test that changes it puts
    it back."""
    cp = RealControlPlane(node_cluster, tmp_path_factory.mktemp("real-control-plane"))
    code, out, err = cp.vcm("platform", "apply", "--yes")
    assert code == 0, out + err
    started = time.monotonic()
    code, out, err = cp.apply(cp.tenant_doc(), "-o", "json", "--timeout", "300")
    cp.apply_seconds = time.monotonic() - started
    try:
        assert code == 0, out + err
        cp.applied = json.loads(out)[0]
        code, out, err = cp.vcm("kubeconfig", cp.name, "--output-file", str(cp.kubeconfig))
        assert code == 0, out + err
        yield cp
    finally:
        cp.vcm("delete", cp.name, "--yes")
        deadline = time.monotonic() + 180
        while not cp.namespaces_gone([cp.namespace, f"{cp.name}-apps"]) and time.monotonic() < deadline:
            time.sleep(2)
