"""``vcm platform apply``: the objects every tenant of a host cluster relies on; ``vcm platform unlock``."""

from __future__ import annotations

from vcluster_mgr import errors, progress_events
from vcluster_mgr.cli import apps, environment, live, options, printing


@apps.platform_app.command("apply", epilog="Example: vcm platform apply --yes")
def platform_apply(
    cluster: options.ClusterOpt = None,
    yes: options.YesOpt = False,
    *,
    access: options.Access,
    policy: options.PolicyOpt = None,
) -> None:
    """Provision what every tenant of a host cluster relies on.

    The admission policies and the project's namespace, once per host cluster."""
    from vcluster_mgr import operations

    env = environment.env(access, policy)
    target = env.config.target(cluster)
    environment.confirm(f"apply the platform objects to {target.name}?", yes)
    with live.Tracker("apply", {"platform": live.planned_platform(env.config.blueprint)}) as tracker:
        tracker("platform", progress_events.started("apply"))
        try:
            outcome = operations.platform_apply(env.settings, target, env.config.blueprint, progress=tracker)
        except errors.VcmError as exc:
            tracker.fail("platform", str(exc))
            raise
        tracker("platform", progress_events.DONE)
    environment.summary([outcome], printing.OutputFormat.table, "platform")


@apps.platform_app.command("unlock", epilog="Example: vcm platform unlock --yes")
def platform_unlock(
    cluster: options.ClusterOpt = None,
    yes: options.YesOpt = False,
    force: options.ForceUnlockOpt = False,
    *,
    access: options.Access,
) -> None:
    """Break the lock a killed run left on the platform stack.

    The platform stack of a host cluster, as vcm unlock does for a tenant's."""
    from vcluster_mgr import workspace

    env = environment.env(access)
    target = env.config.target(cluster)
    environment.confirm(f"break the lock of the platform stack of {target.name}?", yes)
    environment.report_unlock(target.name, workspace.break_lock(env.settings, workspace.PLATFORM_PROJECT,
                                                                target.name, force=force))
