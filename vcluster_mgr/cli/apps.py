"""The ``vcm`` Typer app and its command groups (toolchain, local, ci, platform, ephemeral).

Command modules register on these; ``vcluster_mgr.cli`` imports them all in help order.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="vcm",
    help="Isolated tenants on a shared Kubernetes cluster, provisioned with Pulumi.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
toolchain_app = typer.Typer(help="Find or build the binaries the engine needs.", no_args_is_help=True)
local_app = typer.Typer(help="The built-in throwaway local host cluster.", no_args_is_help=True)
app.add_typer(toolchain_app, name="toolchain")
app.add_typer(local_app, name="local")


ci_app = typer.Typer(help="CI pipelines that test against an ephemeral tenant.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


platform_app = typer.Typer(help="What every tenant of a host cluster relies on.", no_args_is_help=True)
app.add_typer(platform_app, name="platform")


ephemeral_app = typer.Typer(help="Short-lived tenants for CI: a unique name and an expiry.", no_args_is_help=True)
app.add_typer(ephemeral_app, name="ephemeral")
