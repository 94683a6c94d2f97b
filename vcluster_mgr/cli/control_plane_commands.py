"""``vcm sleep`` and ``vcm wake``: scale a tenant's virtual control plane to zero and back.

Both re-apply the tenant's recorded spec under its recorded policy (a ``--policy`` must be that one). Sleep then
deletes the pods the virtual cluster synced to the host, so the tenant's quota is free while it sleeps. A
control plane without persistence is refused (its virtual cluster would come back empty) unless
``--allow-data-loss``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vcluster_mgr import errors
from vcluster_mgr.cli import apps, environment, live, options, printing


def _set_asleep(name: str, asleep: bool, cluster: str | None, env: environment.Env, output: printing.OutputFormat,
                policy: Path | None, allow_data_loss: bool) -> None:
    """Re-apply the tenant's recorded spec with its control plane asleep or awake; print the outcome."""
    from vcluster_mgr import controlplane_sleep, operations, workspace

    target = env.config.target(cluster)
    recorded = workspace.tenant_record(env.settings, target.name, name)
    tenant = recorded.applied_tenant()
    if tenant is None:
        raise errors.UsageError(f"tenant {name} was applied by an older vcm: apply it again first")
    remembered = environment.recorded_policy(env, name, recorded, policy)
    if not tenant.spec.control_plane.enabled:
        raise errors.UsageError(f"tenant {name} has no control plane to put to sleep or wake")
    if not tenant.spec.control_plane.persistence.enabled and not allow_data_loss:
        raise errors.UsageError(
            f"tenant {name}'s control plane has no persistence (spec.controlPlane.persistence.enabled: false): its "
            f"data lives in the pod, so after a {'sleep' if asleep else 'wake'} the virtual cluster is EMPTY and its "
            "syncer deletes the tenant's host pods. Enable persistence and apply, or pass --allow-data-loss")
    job = operations.Job(tenant, target, environment.with_policy(env, remembered), asleep=asleep,
                         allow_data_loss=allow_data_loss)
    work = operations.prepare([job], "apply")
    with live.Tracker("sleep" if asleep else "wake", live.planned_resources(work)) as tracker:
        outcome = operations.run(env.settings, work, "apply", progress=tracker)[0]
    if outcome.ok and asleep:
        freed = controlplane_sleep.free_synced_pods(target, tenant)
        outcome.steps.append(f"deleted {len(freed)} pod(s) the virtual cluster had synced: "
                             + (", ".join(freed) or "none"))
        printing.progress(outcome.steps[-1])
    environment.summary([outcome], output, "sleep" if asleep else "wake")
    if not outcome.ok:
        raise typer.Exit(1)


def _register(asleep: bool, summary: str) -> None:
    """``vcm sleep`` or ``vcm wake``: one command body, two names."""
    verb = "sleep" if asleep else "wake"

    @apps.app.command(verb, help=summary, epilog=f"Example: vcm {verb} payments")
    def command(
        name: options.TenantArg,
        cluster: options.ClusterOpt = None,
        output: options.OutputOpt = printing.OutputFormat.table,
        *,
        access: options.Access,
        policy: options.PolicyOpt = None,
        allow_data_loss: options.AllowDataLossOpt = False,
    ) -> None:
        env = environment.env(access, policy)
        _set_asleep(name, asleep, cluster, env, output, policy, allow_data_loss)


_register(True, """Scale a tenant's control plane to zero, freeing its quota.

Its control plane goes to zero replicas and the pods it synced to the host are deleted (its quota is then free); its
data (the volume) is kept. Uses the policy recorded at apply.""")
_register(False, """Bring a sleeping control plane back.

Same data, with persistence; its controllers then make their pods again. Uses the policy recorded at apply.""")
