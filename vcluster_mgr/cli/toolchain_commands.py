"""``vcm toolchain ensure|status|env``: the engine's binaries, and plain ``pulumi`` on this state."""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from typing import Annotated

import typer
from rich.table import Table

from vcluster_mgr import errors, naming, toolchain
from vcluster_mgr.cli import apps, environment, options, printing


def _extras(object_store: bool, conformance: bool, upgrade_from: bool = False) -> tuple[toolchain.Binary, ...]:
    """The binaries built on demand that a command's flags ask for."""
    return (((toolchain.OBJECT_STORE,) if object_store else ()) + (toolchain.CONFORMANCE if conformance else ())
            + (toolchain.UPGRADE if upgrade_from else ()))


@apps.toolchain_app.command("ensure")
def toolchain_ensure(
    download: Annotated[bool, typer.Option(help="Allow downloading official release archives.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even what is already there.")] = False,
    object_store: Annotated[
        bool,
        typer.Option(
            "--object-store",
            help="Also build SeaweedFS, the S3-compatible object store of the shared-backend tests (make test does).",
        ),
    ] = False,
    conformance: Annotated[
        bool,
        typer.Option(
            "--conformance",
            help="Also build cyclonus, its policy engine and agnhost: the NetworkPolicy conformance run (make test "
            "does; build before `vcm local up --nodes 1`, whose node writes the agnhost image).",
        ),
    ] = False,
    upgrade_from: Annotated[
        bool,
        typer.Option(
            "--upgrade-from",
            help=f"Also build the vcluster {toolchain.VCLUSTER_UPGRADE_FROM_VERSION} syncer, the release the upgrade "
            "test starts from (make test does; build before `vcm local up --nodes 1`, whose node writes its image).",
        ),
    ] = False,
) -> None:
    """Find or build every binary the engine needs, at pinned versions.

    The engine's and the local host cluster's.

    Order of sources: a binary of the right version on PATH; the official release (only with
    --download); a `go build` through the Go module proxy. A cold build takes minutes, a warm run seconds.

    Example: [bold]vcm toolchain ensure[/bold]
    """
    started = time.monotonic()
    final = toolchain.ensure(
        download=download or None,
        force=force,
        progress=printing.progress,
        extras=_extras(object_store, conformance, upgrade_from),
    )
    printing.progress(f"toolchain ready in {time.monotonic() - started:.1f}s ({toolchain.bin_dir()})")
    del final


@apps.toolchain_app.command("status")
def toolchain_status(
    output: options.OutputOpt = printing.OutputFormat.table,
    object_store: Annotated[
        bool, typer.Option("--object-store", help="Also the object store built on demand (ensure --object-store).")
    ] = False,
    conformance: Annotated[
        bool, typer.Option("--conformance", help="Also the conformance kit built on demand (ensure --conformance).")
    ] = False,
    upgrade_from: Annotated[
        bool,
        typer.Option("--upgrade-from", help="Also the syncer the upgrade test starts from (ensure --upgrade-from)."),
    ] = False,
) -> None:
    """List each binary, its version and source (exit 1 if missing).

    Example: [bold]vcm toolchain status -o json[/bold]
    """
    rows = toolchain.status(fresh=True, extras=_extras(object_store, conformance, upgrade_from))
    data = [dataclasses.asdict(r) | {"ok": r.ok} for r in rows]
    if not printing.emit(data, output):
        # fits 80 columns: the source's kind (the module is in -o json) and the path only where it is not the
        # bin dir, which is said once
        home = str(toolchain.bin_dir())
        table = Table("binary", "wanted", "found", "source", "path")
        for r in rows:
            found = r.found or "[red]missing[/red]"
            where = "-" if r.path is None else ("bin dir" if os.path.dirname(r.path) == home else r.path)
            table.add_row(r.name, r.wanted, found, (r.source or "-").split(" ", 1)[0], where)
        printing.print_table(table)
        printing.err.print(f"bin dir: {home}", markup=False, highlight=False, soft_wrap=True)
    if not all(r.ok for r in rows):
        printing.failure("some binaries are missing: run `vcm toolchain ensure`")
        raise typer.Exit(1)


@apps.toolchain_app.command("chart")
def toolchain_chart(
    version: Annotated[str, typer.Option(help="The vcluster chart version.")] = toolchain.VCLUSTER_VERSION,
) -> None:
    """Print the vcluster chart's directory, from vcluster's Go module.

    For clusters that cannot reach https://charts.loft.sh: give the path as spec.controlPlane.chart.path
    (and allow it in the policy's allowedChartSources).

    Example: [bold]vcm toolchain chart --version 0.36.1[/bold]
    """
    try:
        naming.check_chart_version(version)
    except ValueError as exc:
        raise errors.UsageError(f"--version: {version!r} {exc}") from None
    typer.echo(str(toolchain.chart_dir(version)))


@apps.toolchain_app.command("env")
def toolchain_env(*, state: options.StateAccess) -> None:
    """Print the exports that let plain `pulumi` use this state.

    The toolchain and the state of vcm, for `eval`.

    The passphrase is not printed: PULUMI_CONFIG_PASSPHRASE_FILE points at the file that holds it
    (or set PULUMI_CONFIG_PASSPHRASE yourself if you chose one).

    Example: [bold]eval "$(vcm toolchain env)" && pulumi up[/bold]
    """
    from vcluster_mgr import workspace

    s = environment.settings(state)
    env = workspace.engine_env(s)
    env.pop("PULUMI_CONFIG_PASSPHRASE")
    if (s.state_dir / "passphrase").exists() and not os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(s.state_dir / "passphrase")
    for key, value in env.items():
        typer.echo(f"export {key}={shlex.quote(value)}")
