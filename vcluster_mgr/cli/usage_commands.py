"""``vcm usage``: quota use of tenants from the live ResourceQuotas, showback costs, the HTML page."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vcluster_mgr import errors, usage
from vcluster_mgr.cli import apps, environment, options, printing


class UsageFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.0%}"


def _pair(row: dict[str, Any], key: str) -> str:
    r = row["resources"].get(key)
    return f"{r['used']} / {r['hard']}" if r else "-"


def _gib_pair(row: dict[str, Any], key: str) -> str:
    r = row["resources"].get(key)
    if not r:
        return "-"
    gib = 1024**3
    return f"{float(r['used']) / gib:.2f} / {float(r['hard']) / gib:.2f}"


def print_table(report: dict[str, Any]) -> None:
    priced = report["currency"] is not None
    columns = ["tenant", "cost center", "max used", "cpu", "memory GiB", "pods"]
    title = "closest to a limit first"
    if priced:
        # short headers, the currency in the title: the columns fit 80 for short names
        columns += ["reserved/mo", "used/mo"]
        title += f"; costs a month in {report['currency']}"
    table = Table(*columns, title=escape(title))
    for t in report["tenants"]:
        cells = [
            escape(t["tenant"]),
            escape(t["costCenter"] or "-"),
            _pct(t["maxFraction"]),
            _pair(t, "requests.cpu"),
            _gib_pair(t, "requests.memory"),
            _pair(t, "pods"),
        ]
        if priced:
            cells += [f"{t['cost']['reservedMonthly']:.2f}", f"{t['cost']['usedMonthly']:.2f}"]
        table.add_row(*cells)
    printing.print_table(table)
    if priced:
        centers = Table(
            "cost center", "tenants", "reserved/mo", "used/mo", title=f"per cost center ({report['currency']})"
        )
        for c in report["costCenters"]:
            centers.add_row(
                escape(c["costCenter"] or "(none)"),
                str(c["tenants"]),
                f"{c['reservedMonthly']:.2f}",
                f"{c['usedMonthly']:.2f}",
            )
        printing.print_table(centers)


@apps.app.command("usage", epilog="Example: vcm usage --all -o json; vcm usage payments search --html usage.html")
def usage_command(
    names: Annotated[list[str] | None, typer.Argument(help="Tenant names (or --all).", show_default=False)] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant on the host cluster.")] = False,
    output: Annotated[UsageFormat, typer.Option("-o", "--output", help="table, json or csv")] = UsageFormat.table,
    html_file: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a self-contained HTML page with a bar per tenant.", show_default=False),
    ] = None,
    cluster: options.ClusterOpt = None,
    *,
    host: options.HostAccess,
    policy: options.PolicyOpt = None,
) -> None:
    """Show quota use per tenant, closest to a limit first.

    Used against hard per tenant and namespace, from the live ResourceQuotas; monthly costs and cost-center
    totals when the policy has `prices`.

    Reads the host cluster only (two list calls for the whole fleet), not the stacks.
    """
    from vcluster_mgr import cluster as cluster_api

    if bool(names) == all_tenants:
        raise errors.UsageError("give tenant names or --all")
    if html_file:
        printing.check_output_file(html_file, "--html")
    cfg = environment.config(host, policy)
    target = cfg.target(cluster)
    with cluster_api.connect(target) as conn:
        namespaces, quotas = cluster_api.tenant_quotas(conn)
    report = usage.tenant_usage(
        namespaces, quotas, prices=cfg.blueprint.policy.prices, tenants=None if all_tenants else names
    )
    missing = sorted(set(names or ()) - {t["tenant"] for t in report["tenants"]})
    if missing:
        raise errors.UsageError(f"no tenant {', '.join(missing)} on host cluster {target.name!r}")
    if html_file:
        printing.write_or_echo(usage.to_html(report), html_file, force=True)
    if output is UsageFormat.json:
        typer.echo(usage.to_json(report))
    elif output is UsageFormat.csv:
        typer.echo(usage.to_csv(report), nl=False)
    else:
        print_table(report)
