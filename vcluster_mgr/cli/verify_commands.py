"""``vcm verify``: run the isolation checks against the live cluster and print the report."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vcluster_mgr import errors, progress_events
from vcluster_mgr.cli import apps, environment, live, options, printing


def _verify_table(report: Any) -> None:
    from vcluster_mgr import verify

    colours = {"pass": "green", "fail": "red", "error": "yellow", "skip": "cyan"}
    who = f"{report.identity.describe()} ({report.identity.kind} owner {report.identity.name})"
    title = f"verify {report.tenant} on {report.cluster} as {who}"
    table = Table("id", "level", "result", "tried", "detail", title=escape(title), show_lines=True)
    for check_id, level, result, tried, detail in verify.table_rows(report):
        table.add_row(
            check_id, level, f"[{colours[result]}]{result}[/{colours[result]}]", escape(tried), escape(detail)
        )
    printing.print_table(table, blocks=("tried", "detail"))
    counts = report.counts()
    verdict = "[green]PASSED[/green]" if report.passed else "[red]NOT PASSED[/red]"
    printing.out.print(
        f"{verdict} {escape(report.tenant)}: {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['error']} error, {counts['skip']} skip; {escape(verify.scope_note(report))}",
        highlight=False,
        soft_wrap=True,
    )


@apps.app.command("verify", epilog="Example: vcm verify payments; vcm verify --all -o json")
def verify_command(
    name: options.TenantOrAllArg = None,
    all_tenants: options.AllTenantsOpt = False,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check", help="Run only this check (id or benchmark id); repeat for several.", show_default=False
        ),
    ] = None,
    level: Annotated[
        int,
        typer.Option("--level", min=1, max=2, help="Run the checks up to this benchmark profile level (2 includes 1)."),
    ] = 2,
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
) -> None:
    """Check, live and as its owner, that a tenant's isolation holds.

    The multi-tenancy benchmark checks, run as the tenant's owner.

    The admin's credentials impersonate the tenant's first admin User owner (else its first owner) and
    everything a check tries is sent as a server-side dry-run, so nothing is left behind.

    The checks and the JSON output (-o json) are described in docs/verify.md. Exits 1 if any check
    fails or cannot be judged (error).
    """
    from vcluster_mgr import operations, verify, workspace

    if (name is None) == (not all_tenants):
        raise errors.UsageError("name one tenant, or pass --all")
    checks = verify.select_checks(check, level=level)
    env = environment.env(access)
    if all_tenants:
        stacks = workspace.list_tenant_stacks(env.settings)
        wanted = [(r["tenant"], r["cluster"]) for r in stacks if cluster is None or r["cluster"] == cluster]
        if not wanted:
            raise errors.UsageError("no tenants to verify" + (f" on host cluster {cluster}" if cluster else ""))
    else:
        wanted = [(str(name), env.config.target(cluster).name)]
    reports = []
    tracker = live.Tracker("verify", {tenant: len(checks) for tenant, _ in wanted}, unit="checks")
    with tracker:
        for tenant, cluster_name in wanted:
            target = env.config.target(cluster_name)
            tracker(tenant, progress_events.started("verify"))
            try:
                report = operations.verify_tenant(env.settings, target, tenant, checks=checks)
            except errors.VcmError as exc:
                tracker.fail(tenant, str(exc))
                raise
            counts = report.counts()
            tracker.advance(tenant, sum(counts.values()))
            if report.passed:
                tracker(tenant, progress_events.DONE)
            else:
                tracker.fail(tenant, f"{counts['fail']} fail, {counts['error']} error")
            reports.append(report)
            # the one trace verify leaves, for `vcm status`, on every tenant verified (a run of some checks is
            # recorded as such)
            operations.record_verify(target, report, partial=bool(check) or level != 2)
    if not printing.emit(verify.reports_data(reports, many=all_tenants), output):
        for report in reports:
            _verify_table(report)
    if not all(r.passed for r in reports):
        raise typer.Exit(1)
