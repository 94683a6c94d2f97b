"""``vcm snapshot`` and ``vcm restore``: a tenant's virtual cluster kept in vCluster's own snapshot format, in a
local folder or an S3-compatible store, and put back.

``--s3-endpoint`` and ``vcm delete --snapshot-to`` are declared in ``options``, shared.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vcluster_mgr.cli import apps, environment, options, printing

ToOpt = Annotated[
    str,
    typer.Option("--to", show_default=False,
                 help="A folder (a file <tenant>-<UTC time>.tar.gz is made in it), a file, or s3://BUCKET/KEY "
                      "(s3://BUCKET/PREFIX/ makes the name)."),
]
FromOpt = Annotated[
    str,
    typer.Option("--from", show_default=False, help="The snapshot: a file or s3://BUCKET/KEY."),
]
RestoreWaitOpt = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Wait for the control plane and the pods it syncs to be Ready again."),
]


def report_snapshot(result: Any, output: printing.OutputFormat) -> None:
    """Print one snapshot's result: a line, or the whole record as JSON/YAML."""
    if printing.emit(result.as_dict(), output):
        return
    typer.echo(f"snapshot of {result.tenant}'s virtual cluster: {result.location} ({result.kind}, {result.keys} "
               f"keys, {result.bytes} bytes, {result.seconds:.1f} s)")


@apps.app.command(
    "snapshot",
    epilog="Examples: vcm snapshot vteam --to ./backups/ ; "
           "vcm snapshot vteam --to s3://backups/vteam/ --s3-endpoint http://127.0.0.1:8333",
)
def snapshot_command(
    name: options.TenantArg,
    to: ToOpt,
    cluster: options.ClusterOpt = None,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
    s3_endpoint: options.S3EndpointOpt = None,
) -> None:
    """Snapshot a tenant's virtual cluster (vCluster's own format).

    Its running syncer writes every key of the virtual cluster's store (objects, secrets, its CoreDNS) into
    an archive, which vcm keeps in a folder or an S3-compatible store. The control plane keeps running.
    Only for tenants with a control plane.
    """
    from vcluster_mgr import snapshots

    env = environment.env(access)
    target = env.config.target(cluster)
    result = snapshots.take(env.settings, target, name, to, endpoint=s3_endpoint)
    report_snapshot(result, output)


@apps.app.command(
    "restore",
    epilog="Examples: vcm restore vteam --from ./backups/vteam-20261206T154210Z.tar.gz ; "
           "vcm restore vteam --from s3://backups/vteam/vteam-20261206T154210Z.tar.gz --yes",
)
def restore_command(
    name: options.TenantArg,
    source: FromOpt,
    cluster: options.ClusterOpt = None,
    yes: options.YesOpt = False,
    output: options.OutputOpt = printing.OutputFormat.table,
    *,
    access: options.Access,
    s3_endpoint: options.S3EndpointOpt = None,
    wait: RestoreWaitOpt = True,
    timeout: options.TimeoutOpt = 300.0,
) -> None:
    """Put a snapshot back into a tenant's virtual cluster.

    The archive is read and checked first. Then the control plane stops, the pods it synced to the host are
    deleted, vCluster's own restore replaces its whole store, and it starts again; its controllers make the
    workloads' pods again. Needs persistence (spec.controlPlane.persistence).
    """
    from vcluster_mgr import snapshots

    env = environment.env(access)
    target = env.config.target(cluster)
    checked = snapshots.read(source, endpoint=s3_endpoint)  # a bad file stops here, before the cluster is asked
    printing.progress(f"{checked[0]}: {checked[2].line()}")
    snapshots.applied_tenant(env.settings, target, name)
    environment.confirm(f"replace everything inside tenant {name}'s virtual cluster on {target.name} with "
                        f"{checked[0]}?", yes)
    result = snapshots.restore(env.settings, target, name, checked, timeout=timeout if wait else 0.0,
                               progress=printing.progress)
    if not printing.emit(result.as_dict(), output):
        state = "" if result.ready is None else (" ready" if result.ready else f" NOT ready: {result.health}")
        typer.echo(f"restored {result.tenant}'s virtual cluster from {result.location} ({result.keys} keys, "
                   f"{result.seconds:.1f} s);{state}")
    if result.ready is False:
        raise typer.Exit(1)
