"""``vcm platform apply``: the objects every tenant of a host cluster relies on."""

from __future__ import annotations

from vcluster_mgr import errors
from vcluster_mgr.cli import apps, environment, live, options, printing


@apps.platform_app.command("apply", epilog="Example: vcm platform apply --yes")
def platform_apply(
    cluster: options.ClusterOpt = None,
    yes: options.YesOpt = False,
    kubeconfig: options.KubeconfigOpt = None,
    context: options.ContextOpt = None,
    config: options.ConfigOpt = None,
    state_dir: options.StateOpt = None,
    backend_url: options.BackendOpt = None,
    policy: options.PolicyOpt = None,
) -> None:
    """Provision the admission policies and the project's namespace on a host cluster (once per cluster)."""
    from vcluster_mgr import operations

    with printing.failures():
        env = environment.env(kubeconfig, context, config, state_dir, backend_url, policy)
        target = env.config.target(cluster)
        environment.confirm(f"apply the platform objects to {target.name}?", yes)
        with live.Tracker("apply", {"platform": live.planned_platform(env.config.blueprint)}) as tracker:
            tracker("platform", "apply started")
            try:
                outcome = operations.platform_apply(env.settings, target, env.config.blueprint, progress=tracker)
            except errors.VcmError as exc:
                tracker.fail("platform", str(exc))
                raise
            tracker("platform", "done")
        environment.summary([outcome], printing.OutputFormat.table, "platform")
