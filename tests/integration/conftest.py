"""Every test in this folder talks to the real local API server through the real engine."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

from vcluster_mgr import localcluster, platformconfig, spec, workspace  # noqa: E402

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
    workspace.platform_apply(engine_settings, target, cfg.blueprint)
    tenants = spec.load_specs([EXAMPLES], policy=cfg.blueprint.policy)
    jobs = [workspace.Job(t, target, cfg.blueprint) for t in tenants]
    outcomes = workspace.run_jobs(engine_settings, jobs, "apply", parallel=1)
    failed = [o for o in outcomes if not o.ok]
    assert not failed, "\n".join(f"{o.tenant}: {o.error}" for o in failed)
    return Applied(host_cluster, engine_settings, target, {t.name: t for t in tenants}, outcomes)
