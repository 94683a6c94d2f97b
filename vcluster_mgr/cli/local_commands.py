"""``vcm local up|down|status|env|kubeconfig``: the built-in throwaway local host cluster."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer
from rich.table import Table

from vcluster_mgr import (
    errors,
    localcluster,
)
from vcluster_mgr.cli import apps, options, printing

NameOpt = Annotated[str, typer.Option("--name", help="Which local cluster (several can run at once).")]


@apps.local_app.command("up")
def local_up(
    name: NameOpt = localcluster.DEFAULT_NAME,
    reuse: Annotated[bool, typer.Option("--reuse", help="If it already runs, say so and succeed.")] = False,
    nodes: Annotated[
        int,
        typer.Option(
            "--nodes",
            help="1: a node where pods run and NetworkPolicies are enforced (needs root and "
            "scripts/install-node-packages.sh); 0: control plane only, pods never run.",
        ),
    ] = 1,
) -> None:
    """Start the local host cluster.

    etcd, kube-apiserver, kube-controller-manager; with --nodes 1 a node.

    Example: [bold]vcm local up && eval "$(vcm local env)" && kubectl get ns[/bold]
    """
    if reuse:
        try:
            running = localcluster.load(name)
        except errors.LocalClusterError:
            running = None
        if running is not None and all(running.running().values()):
            printing.err.print(f"local cluster [bold]{name}[/bold] already runs at {running.server}")
            typer.echo(f"export KUBECONFIG={running.kubeconfig}")
            return
    c = localcluster.up(name, nodes=nodes, progress=printing.progress)
    printing.err.print(
        f"local cluster [bold]{name}[/bold] ready at {c.server} in {c.ready_seconds:.1f}s "
        + (f"(node {c.node['name']})" if c.node else "(no nodes: pods are accepted but never run)")
    )
    typer.echo(f"export KUBECONFIG={c.kubeconfig}")


@apps.local_app.command("down")
def local_down(name: NameOpt = localcluster.DEFAULT_NAME) -> None:
    """Stop the local host cluster's processes and delete its data.

    Example: [bold]vcm local down --name second[/bold]
    """
    if localcluster.down(name):
        printing.err.print(f"local cluster {name} stopped and removed")
    else:
        printing.err.print(f"no local cluster named {name}")


@apps.local_app.command("status")
def local_status(
    output: options.OutputOpt = printing.OutputFormat.table,
) -> None:
    """Show which local clusters run, where, and their processes.

    Example: [bold]vcm local status -o json[/bold]
    """
    rows: list[dict[str, Any]] = []
    for c in localcluster.list_clusters():
        running = c.running()
        rows.append(
            {
                "name": c.name,
                "server": c.server,
                "kubeconfig": str(c.kubeconfig),
                "processes": {p: {"pid": c.pids[p], "running": running[p]} for p in c.pids},
                "ready_seconds": c.ready_seconds,
                "nodes": [c.node["name"]] if c.node else [],
            }
        )
    if not printing.emit(rows, output):
        if not rows:
            printing.err.print("no local cluster is running (start one with `vcm local up`)")
        table = Table("name", "server", "nodes", "processes", "kubeconfig")
        for r in rows:
            procs = ", ".join(
                f"{p} {'up' if v['running'] else '[red]down[/red]'} (pid {v['pid']})"
                for p, v in r["processes"].items()
            )
            table.add_row(r["name"], r["server"], ", ".join(r["nodes"]) or "none", procs, r["kubeconfig"])
        if rows:
            printing.print_table(table)
        if any(not r["nodes"] for r in rows):
            printing.err.print(
                "a cluster with no nodes accepts pods but never runs them (`vcm local up --nodes 1`)"
            )


@apps.local_app.command("env")
def local_env(
    name: NameOpt = localcluster.DEFAULT_NAME,
    kubeconfig_path: Annotated[bool, typer.Option(help="Print only the kubeconfig path.")] = False,
) -> None:
    """Print the exports that point kubectl and vcm at it.

    `export KUBECONFIG=...` for the local cluster, and a state dir that lives and dies with it.

    Example: [bold]eval "$(vcm local env)"[/bold]
    """
    c = localcluster.load(name)
    if kubeconfig_path:
        typer.echo(str(c.kubeconfig))
        return
    typer.echo(f"export KUBECONFIG={shlex.quote(str(c.kubeconfig))}")
    # stacks describe objects of this cluster only: keep them with it, so `local down` forgets both
    typer.echo(f"export VCM_STATE_DIR={shlex.quote(str(c.dir / 'state'))}")


@apps.local_app.command("kubeconfig", old_spellings=[options.KUBECONFIG_FILE_WAS_O])
def local_kubeconfig(
    user: Annotated[str, typer.Option("--user", help="User name (the certificate's CN).")],
    group: Annotated[list[str] | None, typer.Option("--group", help="Group; repeat for several.")] = None,
    name: NameOpt = localcluster.DEFAULT_NAME,
    output_file: options.SecretFileOpt = None,
) -> None:
    """Print a kubeconfig for any user and groups.

    It authenticates with a client certificate that the local cluster's CA signs.

    Example: [bold]vcm local kubeconfig --user alice@example.com --group payments-devs --output-file
    alice.kubeconfig[/bold]
    """
    if output_file:
        printing.check_output_file(output_file, "--output-file")
    text = localcluster.user_kubeconfig(name, user, tuple(group or ()))
    printing.write_kubeconfig(text, output_file, user)
