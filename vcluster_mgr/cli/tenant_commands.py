"""The tenant commands: ``vcm plan``, ``apply``, ``list``, ``status``, ``delete``, ``unlock``, ``kubeconfig``,
``drift``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vcluster_mgr import errors, record, sharding, usage
from vcluster_mgr.cli import apps, environment, live, options, printing


@apps.app.command(epilog="Example: vcm plan examples/tenants  (or --shard 2/4: only the second of four shares)")
def plan(
    paths: options.SpecPathsArg,
    parallel: options.ParallelOpt = 1,
    shard: options.ShardOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    full: options.FullOpt = False,
    *,
    access: options.Access,
    policy: options.PolicyOpt = None,
) -> None:
    """Show what apply would change, per tenant (nothing is changed).

    What would be created, changed or deleted, per tenant. A tenant whose fingerprint holds (nothing changed
    since its last apply, on the cluster or in its spec) shows no change without the engine (--full: always
    the engine)."""
    from vcluster_mgr import operations

    env = environment.env(access, policy)
    work = operations.prepare(environment.jobs(env, paths, shard), "plan")
    with live.Tracker("plan", live.planned_resources(work)) as tracker:
        outcomes = operations.run(env.settings, work, "plan", parallel=parallel, progress=tracker, full=full)
    environment.summary(outcomes, output, "plan")
    if output is printing.OutputFormat.table:
        for o in outcomes:
            for step in o.steps:
                printing.out.print(f"  {escape(o.tenant)}: {escape(step)}", highlight=False)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@apps.app.command(epilog="Example: vcm apply examples/tenants --parallel 4 --yes  (one of N CI jobs: --shard I/N)",
                  old_spellings=[options.WAIT_HEALTHY_WAS_SECONDS])
def apply(
    paths: options.SpecPathsArg,
    parallel: options.ParallelOpt = 1,
    shard: options.ShardOpt = None,
    yes: options.YesOpt = False,
    output: options.OutputOpt = printing.OutputFormat.table,
    full: options.FullOpt = False,
    *,
    access: options.Access,
    policy: options.PolicyOpt = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait for each control plane to be up after the apply (its pods and "
                                              "the pods it synced Ready)."),
    ] = True,
    timeout: options.TimeoutOpt = 180.0,
    allow_data_loss: options.AllowDataLossOpt = False,
) -> None:
    """Provision tenants, one stack each; safe to re-run after failure.

    One stack per host cluster and tenant. A tenant whose fingerprint holds (nothing changed since its last
    apply, on the cluster or in its spec) is reported unchanged without starting the engine (--full: always
    the engine).

    A tenant with a control plane is then waited for (--wait, --timeout): exit 1, saying what is wrong, if its
    pods are not Ready in time (a pod the host refuses shows as the event that refused it)."""
    from vcluster_mgr import operations

    env = environment.env(access, policy)
    jobs = environment.jobs(env, paths, shard, allow_data_loss=allow_data_loss)
    if not jobs:
        environment.summary([], output, "apply")
        return
    environment.confirm(f"apply {len(jobs)} tenant(s)?", yes)
    work = operations.prepare(jobs, "apply")
    with live.Tracker("apply", live.planned_resources(work)) as tracker:
        outcomes = operations.run(env.settings, work, "apply", parallel=parallel, progress=tracker, full=full)
    healthy = _control_planes_healthy(jobs, outcomes, timeout if wait else 0)
    environment.summary(outcomes, output, "apply")
    if not all(o.ok for o in outcomes) or not healthy:
        raise typer.Exit(1)


def _control_planes_healthy(jobs: list[Any], outcomes: list[Any], timeout: float) -> bool:
    """Wait for the control plane of every applied tenant that has one; a tenant whose control plane is not up
    in time gets its outcome marked failed, with what the host shows. True when all are up."""
    from vcluster_mgr import controlplane_health

    if timeout <= 0:
        return True
    ok = True
    for job, outcome in zip(jobs, outcomes, strict=True):
        if not outcome.ok or not job.tenant.spec.control_plane.enabled:
            continue
        health = controlplane_health.wait(job.target, job.tenant, timeout=timeout, progress=printing.progress)
        outcome.steps.append(f"control plane: {health.summary()}")
        if not health.ready:
            ok = False
            outcome.ok = False
            outcome.error = (f"the control plane is not up after {timeout:.0f}s: {health.summary()} (see `vcm status "
                             f"{job.tenant.name}`; --no-wait skips this wait)")
    return ok


@apps.app.command("list", epilog="Example: vcm list -o json")
def list_command(
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    state: options.StateAccess,
) -> None:
    """List the tenants this state knows, with their host cluster."""
    from vcluster_mgr import workspace

    s = environment.settings(state)
    rows = workspace.list_tenant_stacks(s)
    if not printing.emit(rows, output):
        # fits 80 columns; the stack's name (<cluster>.<tenant>) is in -o json
        table = Table("tenant", "cluster", "resources", "last update")
        for r in rows:
            cells = (r["tenant"], r["cluster"], str(r["resources"] or "-"), printing.when(r["lastUpdate"]))
            table.add_row(*map(escape, cells))
        printing.print_table(table)


@apps.app.command(epilog="Example: vcm status payments -o yaml")
def status(
    name: options.TenantArg,
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
) -> None:
    """Show one tenant: where it is, its quota use and its last checks.

    Its host cluster, namespaces, owners, lifetime; its quota use (live), and whether the last apply (stack
    history), a drift check (run now) and the last `vcm verify` (recorded on its first namespace) passed, with
    their times; for a tenant with a control plane, its health (pods Ready, Warning events), read now."""
    from vcluster_mgr import operations

    cfg = environment.config(access.host)
    target = cfg.target(cluster)
    s = environment.settings(access.state, access.host)
    found = operations.status(s, target, name)
    data = found.as_data()
    if not printing.emit(data, output):
        table = Table("field", "value", show_header=False)
        for key in ("tenant", "cluster", "namespaces", "owners", "ttl", "source"):
            value = data.get(key)
            if key == "owners" and value:
                value = ", ".join(f"{o['kind']} {o['name']} ({o['role']})" for o in value)
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            table.add_row(key, escape(str(value if value is not None else "-")))
        table.add_row("quota used", escape(_usage_text(data["usage"])))
        table.add_row("last apply", escape(_check_text(data["lastApply"])))
        table.add_row("drift", escape(_check_text(data["drift"]) + f", {found.drift['changes']} change(s) "
                                                                     "(checked now)"))
        table.add_row("last verify", escape(_check_text(data["lastVerify"])))
        if found.health is not None:
            table.add_row("control plane", escape(found.health.summary()))
        printing.print_table(table)


def _check_text(check: dict[str, Any] | None) -> str:
    if not check:
        return "never"
    verdict = {True: "passed", False: "FAILED", None: "unknown"}[check.get("passed")]
    return f"{verdict} at {printing.when(check.get('at')) if check.get('at') else '?'}"


def _usage_text(row: dict[str, Any] | None) -> str:
    if not row:
        return "no ResourceQuota found"
    parts = [
        f"{key} {usage.quantity_text(key, r['used'])}/{usage.quantity_text(key, r['hard'])}"
        for key, r in row["resources"].items()
        if key in ("requests.cpu", "requests.memory", "pods", "services")
    ]
    return f"max {row['maxFraction']:.0%}: " + ", ".join(parts)


@apps.app.command(epilog="Example: vcm delete payments --yes")
def delete(
    name: options.TenantArg,
    cluster: options.ClusterOpt = None,
    yes: options.YesOpt = False,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
    unprotect: options.UnprotectOpt = False,
    policy: options.PolicyOpt = None,
    snapshot_to: options.SnapshotToOpt = None,
    s3_endpoint: options.S3EndpointOpt = None,
) -> None:
    """Destroy a tenant's objects and remove its stack and state.

    Its objects on its host cluster go first, then its stack and state.

    A tenant under deletion protection (spec.protect) is refused unless --unprotect is given. The tenant's
    policy is the one recorded at apply; a --policy given must be that one. A tenant with a control plane
    loses its virtual cluster's data: --snapshot-to keeps a last snapshot first (on a terminal without --yes,
    vcm asks where).
    """
    from vcluster_mgr import snapshots, workspace

    env = environment.env(access, policy)
    target = env.config.target(cluster)
    environment.recorded_policy(env, name, workspace.tenant_record(env.settings, target.name, name), policy)
    if snapshot_to is None and not yes and environment.on_terminal() and snapshots.has_control_plane(
            env.settings, target, name):
        answer = typer.prompt(f"tenant {name}'s virtual cluster is deleted with it: keep a last snapshot? a folder, "
                              "a file or s3://BUCKET/KEY (empty: none)", default="", show_default=False)
        snapshot_to = answer.strip() or None
    if snapshot_to is not None:
        printing.progress(f"taking a last snapshot of {name}'s virtual cluster")
        taken = snapshots.take(env.settings, target, name, snapshot_to, endpoint=s3_endpoint)
        printing.progress(f"snapshot of {name}'s virtual cluster kept at {taken.location} ({taken.keys} keys, "
                          f"{taken.bytes} bytes): `vcm restore {name} --from {taken.location}` puts it back")
    environment.confirm(f"delete tenant {name} on {target.name} and everything in its namespaces?", yes)
    with live.Tracker("delete", {name: None}) as tracker:
        outcome = live.delete(tracker, env.settings, target, name, unprotect=unprotect)
    environment.summary([outcome], output, "delete")
    if not outcome.ok:
        raise typer.Exit(1)


@apps.app.command(epilog="Example: vcm unlock payments --yes")
def unlock(
    name: options.TenantArg,
    cluster: options.ClusterOpt = None,
    yes: options.YesOpt = False,
    force: options.ForceUnlockOpt = False,
    *,
    access: options.Access,
) -> None:
    """Break the lock a killed run left on a tenant's stack.

    Then the next apply or delete can run. A run killed on this machine leaves a lock that the next run
    clears by itself; this is for the others (a killed CI job on a shared backend). Make sure that run is
    over first: two runs at once would write the same state. Nothing in the cluster is touched.
    """
    from vcluster_mgr import workspace

    env = environment.env(access)
    target = env.config.target(cluster)
    workspace.tenant_record(env.settings, target.name, name)  # refuses an unknown tenant
    environment.confirm(f"break the lock of tenant {name} on {target.name}?", yes)
    stack = workspace.tenant_stack_name(target.name, name)
    environment.report_unlock(stack, workspace.break_lock(env.settings, workspace.TENANT_PROJECT, stack, force=force))


@apps.app.command(epilog="Example: vcm kubeconfig payments --user alice@example.com --output-file alice.kubeconfig; "
                         "vcm kubeconfig vteam --host --member carol --output-file carol.kubeconfig",
                  old_spellings=[options.KUBECONFIG_FILE_WAS_O, options.WAIT_WAS_SECONDS])
def kubeconfig(
    name: options.TenantArg,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", help="Owner (User) name; default: the first User owner with role admin.", show_default=False
        ),
    ] = None,
    member: Annotated[
        str | None,
        typer.Option(
            "--member",
            help="For a Group owner: the member to issue the certificate to (user name NAME, group the owner's).",
            show_default=False,
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option("--group", help="Which Group owner --member belongs to; default: the first Group owner with "
                                     "role admin.", show_default=False),
    ] = None,
    output_file: options.SecretFileOpt = None,
    host: Annotated[
        bool,
        typer.Option(
            "--host",
            help="For a tenant with a control plane: the owner's "
            "host-namespace kubeconfig instead of the virtual cluster's.",
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the virtual cluster's kubeconfig Secret.")
    ] = True,
    timeout: options.TimeoutOpt = 60.0,
    cluster: options.ClusterOpt = None,
    *,
    access: options.Access,
    policy: options.PolicyOpt = None,
) -> None:
    """A kubeconfig for a tenant's owner or for its virtual cluster.

    Its virtual cluster's (admin) when it has a control plane, else (or with --host) one for an owner with one
    context per tenant namespace (the first one current).

    An owner's kubeconfig holds a client certificate issued by the host cluster's own signer (CSR API) and
    approved with the admin's credentials: for a User owner (--user) its name; for a Group owner, a named member
    (--member NAME [--group G]): user NAME in group G, which the host trusts as a member of G. What it may do
    is exactly what the tenant's RoleBindings give that owner. The command says which it handed out.
    """
    from vcluster_mgr import cluster as cluster_api
    from vcluster_mgr import workspace

    if output_file:
        printing.check_output_file(output_file, "--output-file")
    if user and member:
        raise errors.UsageError("give --user (a User owner) or --member (of a Group owner), not both")
    env = environment.env(access, policy)
    target = env.config.target(cluster)
    recorded = workspace.tenant_record(env.settings, target.name, name)
    environment.recorded_policy(env, name, recorded, policy)
    wants_owner = host or user or member
    tenant = recorded.applied_tenant() if recorded.control_plane.enabled and not wants_owner else None
    if tenant is not None:
        seconds = timeout if wait else 0
        with cluster_api.connect(target) as conn:
            text = cluster_api.control_plane_kubeconfig(conn, tenant, wait=seconds, progress=printing.progress)
            _, how = cluster_api.control_plane_server(conn, tenant)
        if text is None:
            raise errors.ProvisionError(
                f"the control plane of {name} has not written its kubeconfig Secret "
                f"{tenant.namespace_names()[0]}/vc-{name} after {seconds:.0f}s (is it running? there must be "
                "nodes for its pod); use --host for the owner's host-namespace kubeconfig"
            )
        printing.write_kubeconfig(
            text, output_file, f"the admin of {name}'s virtual cluster (its own credentials, from Secret "
            f"vc-{name}; nothing on the host), reachable {how}")
        return
    subject, groups, what = _owner_identity(name, recorded.owners, user=user, member=member, group=group)
    with cluster_api.connect(target) as conn:
        text = cluster_api.owner_kubeconfig(
            conn, user=subject, groups=groups, namespaces=list(recorded.namespaces or ["default"])
        )
    printing.write_kubeconfig(text, output_file, what)


def _owner_identity(name: str, owners: Sequence[record.Owner], *, user: str | None, member: str | None,
                    group: str | None) -> tuple[str, tuple[str, ...], str]:
    """(user name, groups, what it is) of the certificate to issue; ``UsageError`` naming the owners if none fits."""
    users = [o for o in owners if o.kind == "User"]
    groups = [o for o in owners if o.kind == "Group"]
    listed = ", ".join(f"{o.kind} {o.name}" for o in owners)
    if member or (not user and not users and groups):
        if not member:
            raise errors.UsageError(
                f"tenant {name} has no User owner, only Groups ({listed}): name the member to issue a certificate "
                "to with --member NAME [--group GROUP]")
        chosen = (next((o for o in groups if o.name == group), None) if group
                  else next((o for o in groups if o.role == "admin"), groups[0] if groups else None))
        if chosen is None:
            raise errors.UsageError(f"tenant {name} has no Group owner {group or ''}".strip() + f"; owners: {listed}")
        return member, (chosen.name,), (
            f"{member} as a member of group {chosen.name} ({chosen.role} of {name}): a client certificate "
            f"naming user {member} and group {chosen.name}")
    chosen = (next((o for o in users if o.name == user), None) if user
              else next((o for o in users if o.role == "admin"), users[0] if users else None))
    if chosen is None:
        raise errors.UsageError(f"tenant {name} has no User owner {user or ''}".strip() + f"; owners: {listed}")
    return chosen.name, (), f"{chosen.name} ({chosen.role} of {name}): a client certificate for that user"


@apps.app.command(epilog="Example: vcm drift --all -o json")
def drift(
    name: options.TenantOrAllArg = None,
    all_tenants: options.AllTenantsOpt = False,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="Exit 1 when anything drifted.")] = False,
    shard: options.ShardOpt = None,
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    full: options.FullOpt = False,
    *,
    access: options.Access,
) -> None:
    """Show what was changed on the cluster outside vcm.

    Every field the blueprint set whose live value differs, every object deleted, and (for a control plane) a
    host API server that moved since the apply. `vcm apply` puts them back. A tenant whose fingerprint holds
    (every object it owns as its last apply left it, read with one LIST per kind for all tenants) has no
    drift without its objects being compared one by one (--full: always compared)."""
    from vcluster_mgr import cluster as cluster_api
    from vcluster_mgr import operations, workspace

    if bool(name) == all_tenants:
        raise errors.UsageError("give a tenant name or --all")
    if shard is not None and not all_tenants:
        raise errors.UsageError("--shard splits --all among N jobs; it does not go with a tenant name")
    env = environment.env(access)
    if all_tenants:
        every = [(r["cluster"], r["tenant"]) for r in workspace.list_tenant_stacks(env.settings)]
        wanted = sharding.select(every, shard, lambda ct: workspace.tenant_stack_name(*ct))
    else:
        wanted = [(env.config.target(cluster).name, str(name))]
    targets = [(env.config.target(cl), tenant) for cl, tenant in wanted]
    reasons = [operations.FULL] * len(targets) if full else operations.unchanged_on_cluster(env.settings, targets)
    rows = []
    paths = []
    with contextlib.ExitStack() as closing:
        conns: dict[str, cluster_api.Connection] = {}  # one per host cluster, whatever the number of tenants
        for (target, tenant), why in zip(targets, reasons, strict=True):
            paths.append({"tenant": tenant, "cluster": target.name,
                          "path": workspace.FINGERPRINT_PATH if why is None else "compared", "why": why})
            if why is None:
                continue  # its fingerprint holds: nothing drifted
            if target.name not in conns:
                conns[target.name] = closing.enter_context(cluster_api.connect(target))
            conn = conns[target.name]
            found = cluster_api.drift(conn, workspace.applied_objects(env.settings, target.name, tenant))
            recorded = workspace.tenant_record(env.settings, target.name, tenant)
            found += cluster_api.host_api_drift(conn, recorded.host_api_rows())
            for row in found:
                rows.append({"tenant": tenant, "cluster": target.name, **row})
    if not printing.emit({"drifted": bool(rows), "changes": rows, "tenants": paths}, output):
        if not rows:
            proven = sum(p["why"] is None for p in paths)
            printing.err.print(f"no drift in {len(wanted)} tenant(s) ({proven} by fingerprint, "
                               f"{len(wanted) - proven} compared object by object)")
        else:
            table = Table("tenant", "object", "field", "desired", "live")
            for r in rows:
                table.add_row(
                    r["tenant"],
                    escape(r["object"]),
                    escape(r["field"]),
                    escape(json.dumps(r["desired"])),
                    escape(json.dumps(r["live"])),
                )
            printing.print_table(table)
    if rows and fail_on_drift:
        raise typer.Exit(1)
