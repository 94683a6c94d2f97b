"""Options shared by many commands, declared once: policy, host cluster access, platform config, state,
backend, cluster, shard, confirmation and output format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vcluster_mgr import sharding
from vcluster_mgr.cli import printing

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
        "--config", help="Platform config: host clusters, policy, templates (or VCM_CONFIG).", show_default=False
    ),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where stacks are kept (or VCM_STATE_DIR; default ~/.local/state/vcluster-mgr).",
        show_default=False,
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
    ),
]
ClusterOpt = Annotated[
    str | None, typer.Option("--cluster", help="Host cluster name from the platform config.", show_default=False)
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
UnprotectOpt = Annotated[
    bool,
    typer.Option(
        "--unprotect", help="Also delete tenants under deletion protection (spec.protect), clearing the protect flag."
    ),
]
OutputOpt = Annotated[printing.OutputFormat, typer.Option("-o", "--output", help="table, json or yaml")]
