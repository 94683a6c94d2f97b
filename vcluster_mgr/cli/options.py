"""Options shared by many commands, declared once: policy, host cluster access, platform config, state,
backend, cluster, shard, confirmation and output format.

The access options come as bundles (``kit``): a command takes ``access: options.Access`` and gets every
one of them, each with its ``envvar`` shown in ``--help`` and read here, at the edge, never deeper down. An
option every command that reaches a host cluster should have is one more field of ``HostAccess`` (or
``StateAccess`` for every command that reads the stacks).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from vcluster_mgr import sharding
from vcluster_mgr.cli import kit, printing

TenantArg = Annotated[str, typer.Argument(help="Tenant name.", show_default=False)]
#: ``vcm verify`` and ``vcm drift``: one tenant by name, or every tenant of the state with ``--all``
TenantOrAllArg = Annotated[str | None, typer.Argument(help="Tenant name (or --all).", show_default=False)]
AllTenantsOpt = Annotated[bool, typer.Option("--all", help="Every tenant in the state.")]
SPEC_PATHS_HELP = "Tenant spec files, or folders of *.yaml / *.yml files; - reads stdin."
SpecPathsArg = Annotated[list[Path], typer.Argument(help=SPEC_PATHS_HELP)]
"""``vcm validate``, ``vcm plan``, ``vcm apply`` (and, optional there, ``vcm render``): the specs to read."""
#: ``vcm plan`` and ``vcm apply``
ParallelOpt = Annotated[
    int, typer.Option("--parallel", "-p", min=1, help="Stacks worked on at once, each in its own worker process.")
]
#: ``vcm apply``, ``vcm sleep``, ``vcm wake``: the data-loss guard of a control plane without persistence
AllowDataLossOpt = Annotated[
    bool,
    typer.Option("--allow-data-loss", help="Change a control plane that has no persistence anyway: its virtual "
                                           "cluster may come back empty."),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="Admin policy file (YAML). Without it the built-in default policy applies."),
]

KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig", help="Host cluster kubeconfig (default: KUBECONFIG, then ~/.kube/config).", show_default=False
    ),
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.", show_default=False)]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Platform config: host clusters, policy, templates.", show_default=False, envvar="VCM_CONFIG"
    ),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where stacks are kept (default ~/.local/state/vcluster-mgr).",
        show_default=False,
        envvar="VCM_STATE_DIR",
    ),
]
BACKEND_SCHEMES = ("file://", "s3://", "azblob://", "gs://", "postgres://", "https://", "http://")
"""The URL schemes of Pulumi's backends: the self-managed ones and Pulumi Cloud (https)."""


def _backend_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(BACKEND_SCHEMES):
        schemes = ", ".join(BACKEND_SCHEMES)
        raise typer.BadParameter(f"{value!r} is not a Pulumi backend URL (it starts with one of {schemes})")
    return value


BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend-url",
        help="Any Pulumi backend URL (default: a local file backend in the state dir).",
        show_default=False,
        callback=_backend_url,
        envvar=["VCM_BACKEND_URL", "PULUMI_BACKEND_URL"],
    ),
]
ClusterOpt = Annotated[
    str | None, typer.Option("--cluster", help="Host cluster name from the platform config.", show_default=False)
]


S3EndpointOpt = Annotated[
    str | None,
    typer.Option("--s3-endpoint", envvar="AWS_ENDPOINT_URL_S3", show_default=False,
                 help="URL of an S3-compatible store that is not AWS (SeaweedFS, MinIO, ...). Credentials come from "
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, never from an option."),
]
SnapshotToOpt = Annotated[
    str | None,
    typer.Option("--snapshot-to", show_default=False,
                 help="First take a last snapshot of the tenant's virtual cluster there (as vcm snapshot --to); "
                      "the delete does not start if it fails."),
]


def _shard(value: str) -> sharding.Shard:
    try:
        return sharding.parse_shard(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


ShardOpt = Annotated[
    sharding.Shard | None,
    typer.Option(
        "--shard",
        help="Only the stacks of shard I of N (such as 2/4), for N jobs sharing one folder and one state backend; "
        "a stable split by each stack's name.",
        show_default=False,
        metavar="I/N",
        parser=_shard,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
#: ``vcm plan``, ``vcm apply``, ``vcm drift``: run the engine (or the full comparison) even where a tenant's
#: fingerprint proves nothing changed
FullOpt = Annotated[bool, typer.Option(
    "--full", help="Run the engine for every tenant, even one whose fingerprint proves nothing changed (for "
                   "a change the fingerprint cannot see: a CRD's schema, an admission webhook, a doubt).")]
#: ``vcm unlock`` and ``vcm platform unlock``: break a lock whose holder still runs here
ForceUnlockOpt = Annotated[bool, typer.Option(
    "--force", help="Break a lock even if its run still goes on this machine.")]
UnprotectOpt = Annotated[
    bool,
    typer.Option(
        "--unprotect", help="Also delete tenants under deletion protection (spec.protect), clearing the protect flag."
    ),
]
OutputOpt = Annotated[printing.OutputFormat, typer.Option("-o", "--output", help="table, json or yaml")]
"""``-o`` is a format in every command; a command that writes a file takes ``--output-file``."""


def _to_output_file(value: str) -> list[str]:
    return ["--output-file", value]


OUTPUT_FILE_WAS_O = kit.OldSpelling(("-o", "--output"), _to_output_file,
                                    "-o names an output format in every command; write --output-file FILE")
"""``vcm init`` and ``vcm ci init`` took their file as ``-o/--output FILE`` before: still accepted, with a note."""
KUBECONFIG_FILE_WAS_O = kit.OldSpelling(("-o",), _to_output_file,
                                        "-o names an output format in every command; write --output-file FILE")
"""``vcm kubeconfig`` and ``vcm local kubeconfig`` took their file as ``-o FILE`` before: still accepted."""


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _wait_seconds(value: str) -> list[str] | None:
    seconds = _seconds(value)
    if seconds is None:
        return None  # the flag, followed by something else
    return ["--no-wait"] if seconds <= 0 else ["--wait", "--timeout", value]


WAIT_WAS_SECONDS = kit.OldSpelling(("--wait",), _wait_seconds,
                                   "--wait is a flag in every command; write --timeout SECONDS (or --no-wait)")
"""``vcm kubeconfig`` took ``--wait SECONDS`` before: still accepted, as ``--timeout SECONDS``."""
WAIT_HEALTHY_WAS_SECONDS = kit.OldSpelling(("--wait-healthy",), _wait_seconds,
                                           "write --timeout SECONDS (or --no-wait), as every command that waits")
"""``vcm apply`` took ``--wait-healthy SECONDS`` before: still accepted, as ``--timeout SECONDS``."""

OutputFileOpt = Annotated[
    Path | None, typer.Option("--output-file", help="File to write; stdout if left out.", show_default=False)
]
#: an ephemeral tenant's (``vcm ephemeral create``, and the CI pipeline ``vcm ci init`` writes, which runs it)
TtlOpt = Annotated[
    str, typer.Option("--ttl", help="Lifetime, such as 30m, 2h or 1d; `vcm gc` deletes the tenant after.")
]
NamePrefixOpt = Annotated[str, typer.Option("--name-prefix", help="Start of the tenant's generated name.")]
#: ``vcm init`` and ``vcm ci init``
OverwriteOpt = Annotated[bool, typer.Option("--force", help="Overwrite the --output-file if it exists.")]
#: a kubeconfig (``vcm kubeconfig``, ``vcm local kubeconfig``): it holds a key, so only its owner may read it
SecretFileOpt = Annotated[
    Path | None,
    typer.Option("--output-file", help="Write here (mode 600) instead of stdout.", show_default=False),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0, metavar="SECONDS", help="How long --wait waits.")]
"""``--wait/--no-wait`` is a flag in every command that waits; how long it waits is ``--timeout SECONDS``."""


@dataclasses.dataclass(frozen=True)
class HostAccess:
    """How a command reaches the host clusters: a kubeconfig and context, or a platform config naming several."""

    kubeconfig: KubeconfigOpt = None
    context: ContextOpt = None
    config: ConfigOpt = None


@dataclasses.dataclass(frozen=True)
class StateAccess:
    """Where the stacks are: a state dir (the local file backend) or any Pulumi backend URL."""

    state_dir: StateOpt = None
    backend_url: BackendOpt = None


@dataclasses.dataclass(frozen=True)
class Access:
    """What a command that reaches a host cluster and its stacks is given: both bundles above."""

    host: HostAccess = HostAccess()
    state: StateAccess = StateAccess()
