"""The ``vcm`` Typer app and its command groups (toolchain, local, ci, platform, ephemeral), and the root
options every command shares (``vcm --quiet|--verbose|--no-color|--cache-dir DIR COMMAND``).

Command modules register on these; ``vcluster_mgr.cli`` imports them all in help order. Every app is a
``kit.App``, so each command gets the kit (error handling, option bundles, old spellings).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from vcluster_mgr.cli import kit, printing

CACHE_DIR_VAR = "VCM_CACHE_DIR"
"""The toolchain's cache dir (``toolchain.cache_dir``): read by ``--cache-dir`` and set for this run's processes."""

app = kit.App(
    name="vcm",
    help="Isolated tenants on a shared Kubernetes cluster, provisioned with Pulumi.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
toolchain_app = kit.App(help="Find or build the binaries the engine needs.", no_args_is_help=True)
local_app = kit.App(help="The built-in throwaway local host cluster.", no_args_is_help=True)


@app.callback(epilog="Example: vcm --quiet apply examples/tenants --yes; NO_COLOR=1 vcm list")
def root(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only data (stdout) and errors: no progress, no messages.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Progress as one line per resource, not a live line per tenant.")
    ] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (as the NO_COLOR variable).")] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", envvar=CACHE_DIR_VAR, show_default=False,
                     help="Where the engine's binaries are built and kept (default ~/.cache/vcluster-mgr)."),
    ] = None,
) -> None:
    """Isolated tenants on a shared Kubernetes cluster, provisioned with Pulumi.

    Data goes to stdout, progress and messages to stderr. On a terminal, plan, apply, delete and gc show
    a live line per tenant; elsewhere one plain line per tenant per state change.
    """
    printing.configure(quiet=quiet, verbose=verbose, no_color=no_color)
    if cache_dir is not None:
        # how it reaches the toolchain here, in the engine's worker processes and in their child processes
        os.environ[CACHE_DIR_VAR] = str(cache_dir.expanduser().resolve())


app.add_typer(toolchain_app, name="toolchain")
app.add_typer(local_app, name="local")


ci_app = kit.App(help="CI pipelines that test against an ephemeral tenant.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


platform_app = kit.App(help="What every tenant of a host cluster relies on.", no_args_is_help=True)
app.add_typer(platform_app, name="platform")


ephemeral_app = kit.App(help="Short-lived tenants for CI: a unique name and an expiry.", no_args_is_help=True)
app.add_typer(ephemeral_app, name="ephemeral")
