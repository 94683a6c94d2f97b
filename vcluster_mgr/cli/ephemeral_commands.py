"""Short-lived tenants: ``vcm ephemeral create`` / ``delete``, and ``vcm gc`` for those past their expiry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vcluster_mgr import errors, lifecycle, spec
from vcluster_mgr.cli import apps, environment, live, options, printing, tenant_commands

_EPHEMERAL_DEFAULT = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {name: ephemeral}
spec:
  owners: [{kind: User, name: ci@vcluster-mgr.local, role: admin}]
  namespaces: [main]
"""


@apps.ephemeral_app.command(
    "create",
    epilog="Example: vcm ephemeral create ci/tenant.yaml --ttl 2h --wait --kubeconfig-out tenant.kubeconfig -o json",
)
def ephemeral_create(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Tenant spec (its name is replaced by a unique one); "
            "default: one namespace, owner ci@vcluster-mgr.local.",
            show_default=False,
        ),
    ] = None,
    ttl: options.TtlOpt = "2h",
    name_prefix: options.NamePrefixOpt = "ci-",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until its namespaces are active (and its "
                                                            "control plane is up, if it has one).")] = False,
    timeout: options.TimeoutOpt = 120.0,
    kubeconfig_out: Annotated[
        Path | None,
        typer.Option("--kubeconfig-out", help="Write the owner's kubeconfig here (mode 600).", show_default=False),
    ] = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
    policy: options.PolicyOpt = None,
) -> None:
    """Create a tenant with a unique name that expires after --ttl.

    The expiry is recorded on its namespaces and its stack; `vcm gc` deletes it after."""
    from vcluster_mgr import cluster as cluster_api
    from vcluster_mgr import controlplane_health, operations

    # everything the command line gives is checked before anything is touched
    if kubeconfig_out:
        printing.check_output_file(kubeconfig_out, "--kubeconfig-out")
    try:
        name = lifecycle.unique_name(name_prefix)
    except ValueError as exc:
        raise errors.UsageError(f"--name-prefix: {exc}") from None
    if path is not None:
        data = spec.read_document(path, "Tenant")
    else:
        data = spec.load_document(_EPHEMERAL_DEFAULT, None, "Tenant")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("metadata"), dict)
        or not isinstance(data.get("spec"), dict)
    ):
        raise errors.SpecError([errors.FieldError("(document)", "not a Tenant document", str(path))])
    env = environment.env(access, policy)
    data = lifecycle.renamed_copy(data, name)
    data["spec"]["ttl"] = ttl
    tenant = spec.parse_spec(data, source=str(path) if path else None, policy=env.config.blueprint.policy)
    moment = lifecycle.expiry(tenant, lifecycle.utc_now())
    expires_at = lifecycle.format_expiry(moment) if moment else None
    job = operations.Job(tenant, env.config.target_for(tenant), env.config.blueprint, expires_at)
    work = operations.prepare([job], "apply")
    with live.Tracker("apply", live.planned_resources(work)) as tracker:
        outcome = operations.run(env.settings, work, "apply", progress=tracker)[0]
    if not outcome.ok:
        environment.summary([outcome], printing.OutputFormat.table, "ephemeral")
        raise typer.Exit(1)
    if wait:
        with cluster_api.connect(job.target) as conn:
            cluster_api.wait_namespaces_active(conn, tenant.namespace_names(), timeout=timeout)
        if tenant.spec.control_plane.enabled:
            health = controlplane_health.wait(job.target, tenant, timeout=timeout, progress=printing.progress)
            if not health.ready:
                printing.failure(f"the control plane of {name} is not up after {timeout:.0f}s: {health.summary()} "
                                 f"(see `vcm status {name}`; `vcm ephemeral delete {name}` removes it)")
                raise typer.Exit(1)
    result = {
        "name": name,
        "cluster": job.target.name,
        "expiresAt": expires_at,
        "namespaces": tenant.namespace_names(),
        "kubeconfig": None,
    }
    if kubeconfig_out and tenant.spec.control_plane.enabled:
        # the virtual cluster's own kubeconfig: what a CI job applies its workloads with
        with cluster_api.connect(job.target) as conn:
            virtual = cluster_api.control_plane_kubeconfig(conn, tenant, wait=timeout, progress=printing.progress)
        if virtual is None:
            raise errors.ProvisionError(f"the virtual cluster of {name} wrote no kubeconfig within {timeout:.0f}s "
                                        f"(see `vcm status {name}`)")
        printing.write_secret(kubeconfig_out, virtual)
        result["kubeconfig"] = str(kubeconfig_out)
    elif kubeconfig_out:
        users = [o for o in tenant.spec.owners if o.kind == "User"]
        if not users:
            raise errors.UsageError("--kubeconfig-out needs a User owner in the spec")
        owner = next((o for o in users if o.role == "admin"), users[0])
        with cluster_api.connect(job.target) as conn:
            text = cluster_api.owner_kubeconfig(
                conn, user=owner.name, groups=(), namespaces=tenant.namespace_names()
            )
        printing.write_secret(kubeconfig_out, text)
        result["kubeconfig"] = str(kubeconfig_out)
    if not printing.emit(result, output):
        printing.err.print(
            f"ephemeral tenant [bold]{name}[/bold] on {escape(job.target.name)}, "
            f"expires {printing.when(expires_at)}"
        )
        typer.echo(name)


@apps.ephemeral_app.command("delete", epilog="Example: vcm ephemeral delete ci-7f3k2q")
def ephemeral_delete(
    name: options.TenantArg,
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
) -> None:
    """Delete an ephemeral tenant now, without confirmation.

    It was made to be thrown away."""
    tenant_commands.delete(
        name,
        cluster=cluster,
        yes=True,
        output=output,
        access=access,
    )


@apps.app.command(epilog="Example: vcm gc --dry-run")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    now: Annotated[
        str | None,
        typer.Option(
            "--now", help="Pretend the time is this (RFC 3339); for tests and what-if runs.", show_default=False
        ),
    ] = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
    unprotect: options.UnprotectOpt = False,
) -> None:
    """Delete every tenant past its expiry.

    Safe on a schedule: tenants without an expiry are never touched, and a failed delete is retried by the next
    run. Expired tenants under deletion protection are kept (reported as failed, with how to lift it) unless
    --unprotect is given."""
    from vcluster_mgr import workspace

    try:
        moment = lifecycle.parse_expiry(now) if now else lifecycle.utc_now()
    except ValueError as exc:
        raise errors.UsageError(f"--now: {exc}") from None
    env = environment.env(access)
    rows = workspace.list_tenant_stacks(env.settings)
    records = [workspace.tenant_record(env.settings, row["cluster"], row["tenant"]) for row in rows]
    expired = lifecycle.select_expired(records, moment)
    outcomes = []
    if not dry_run and expired:
        # the resources of each stack, less its two engine resources (the stack and the provider)
        planned = {r["tenant"]: max(r["resources"] - 2, 0) if r["resources"] else None for r in rows}
        with live.Tracker("delete", {rec.tenant: planned.get(rec.tenant) for rec in expired}) as tracker:
            for rec in expired:
                try:
                    outcome = live.delete(
                        tracker, env.settings, env.config.target(rec.cluster), rec.tenant, unprotect=unprotect
                    )
                except errors.ProtectedError as exc:
                    outcome = workspace.Outcome(rec.tenant, rec.cluster, "delete", False, {}, 0.0, error=str(exc))
                outcomes.append(outcome)
    data = {
        "now": lifecycle.format_expiry(moment),
        "dryRun": dry_run,
        "expired": [{"tenant": r.tenant, "cluster": r.cluster, "expiresAt": r.expires_at} for r in expired],
        "kept": len(records) - len(expired),
        "deleted": [o.tenant for o in outcomes if o.ok],
        "failed": [o.tenant for o in outcomes if not o.ok],
    }
    if not printing.emit(data, output):
        verb = "would delete" if dry_run else "deleted"
        printing.err.print(
            f"{len(expired)} expired of {len(records)} tenant(s); {verb}: "
            + (", ".join(r.tenant for r in expired) or "none")
        )
        if outcomes:
            environment.summary(outcomes, printing.OutputFormat.table, "gc")
    if data["failed"]:
        raise typer.Exit(1)
