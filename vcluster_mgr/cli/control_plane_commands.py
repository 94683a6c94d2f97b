"""``vcm sleep`` and ``vcm wake``: scale a tenant's virtual control plane to zero and back."""

from __future__ import annotations

from typing import Annotated

import typer

from vcluster_mgr import errors, spec
from vcluster_mgr.cli import apps, environment, live, options, printing


def _set_asleep(
    name: str, asleep: bool, cluster: str | None, env: environment.Env, output: printing.OutputFormat
) -> None:
    """Re-apply the tenant's recorded spec with its control plane asleep or awake; print the outcome."""
    from vcluster_mgr import workspace

    target = env.config.target(cluster)
    recorded = workspace.tenant_outputs(env.settings, target.name, name)
    if not recorded.get("spec"):
        raise errors.UsageError(f"tenant {name} was applied by an older vcm: apply it again first")
    tenant = spec.parse_spec(recorded["spec"], source=recorded.get("source"), policy=env.config.blueprint.policy)
    if not tenant.spec.control_plane.enabled:
        raise errors.UsageError(f"tenant {name} has no control plane to put to sleep or wake")
    job = workspace.Job(tenant, target, env.config.blueprint, asleep=asleep)
    with live.Tracker("sleep" if asleep else "wake", live.planned_resources([job])) as tracker:
        outcome = workspace.run_jobs(env.settings, [job], "apply", progress=tracker)[0]
    environment.summary([outcome], output, "sleep" if asleep else "wake")
    if not outcome.ok:
        raise typer.Exit(1)


@apps.app.command(epilog="Example: vcm sleep payments")
def sleep(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    kubeconfig: options.KubeconfigOpt = None,
    context: options.ContextOpt = None,
    config: options.ConfigOpt = None,
    state_dir: options.StateOpt = None,
    backend_url: options.BackendOpt = None,
    policy: options.PolicyOpt = None,
) -> None:
    """Scale a tenant's control plane to zero replicas; its data (the volume) is kept."""
    with printing.failures():
        _set_asleep(
            name, True, cluster, environment.env(kubeconfig, context, config, state_dir, backend_url, policy), output
        )


@apps.app.command(epilog="Example: vcm wake payments")
def wake(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    kubeconfig: options.KubeconfigOpt = None,
    context: options.ContextOpt = None,
    config: options.ConfigOpt = None,
    state_dir: options.StateOpt = None,
    backend_url: options.BackendOpt = None,
    policy: options.PolicyOpt = None,
) -> None:
    """Bring a sleeping control plane back (same data)."""
    with printing.failures():
        _set_asleep(
            name, False, cluster, environment.env(kubeconfig, context, config, state_dir, backend_url, policy), output
        )
