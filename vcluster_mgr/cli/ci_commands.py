"""``vcm ci init``: write a CI pipeline that tests against an ephemeral tenant, or that applies a folder of
tenants with N sharded jobs (offline)."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from vcluster_mgr import (
    render,
)
from vcluster_mgr.cli import apps, options, printing


class CiSystem(str, enum.Enum):
    github = "github"
    gitlab = "gitlab"


@apps.ci_app.command("init", epilog="Example: vcm ci init github --output-file .github/workflows/ephemeral-tenant.yml",
                     old_spellings=[options.OUTPUT_FILE_WAS_O])
def ci_init(
    system: Annotated[CiSystem, typer.Argument(help="github (GitHub Actions) or gitlab (.gitlab-ci.yml).")],
    output_file: options.OutputFileOpt = None,
    spec_path: Annotated[str, typer.Option("--spec", help="Tenant spec in the repository.")] = "tenant.yaml",
    ttl: options.TtlOpt = "2h",
    name_prefix: options.NamePrefixOpt = "ci-",
    force: options.OverwriteOpt = False,
    apply_folder: Annotated[
        str | None,
        typer.Option(
            "--apply-folder",
            help="Instead: a pipeline that applies every tenant spec of this folder with --shards jobs "
            "(vcm apply FOLDER --shard I/N), sharing one state backend.",
            show_default=False,
        ),
    ] = None,
    shards: Annotated[int, typer.Option("--shards", help="With --apply-folder: how many jobs share the folder.")] = 4,
    parallel: Annotated[
        int, typer.Option("--parallel", help="With --apply-folder: stacks each job applies at once.")
    ] = 2,
) -> None:
    """Write a CI pipeline that tests against a fresh tenant.

    The pipeline runs your tests against a fresh tenant and deletes it, pass or fail; or, with --apply-folder,
    one whose N jobs (a GitHub matrix, GitLab parallel:) apply a folder of tenants, a stable share each
    (--shard I/N), coordinated only by the state backend's per-stack locks.

    The pipeline reads the host cluster's kubeconfig from the CI secret VCM_HOST_KUBECONFIG and never prints it.
    Edit its `make test` step to run your own tests. The sharded pipeline reads the backend URL, its
    credentials and the passphrase from the CI system's variables and secrets (named in its header).

    Example: [bold]vcm ci init github --apply-folder tenants --shards 4 --output-file
    .github/workflows/apply-tenants.yml[/bold]
    """
    printing.write_or_echo(
        render.ci_pipeline(
            system.value,
            spec_path=spec_path,
            ttl=ttl,
            name_prefix=name_prefix,
            apply_folder=apply_folder,
            shards=shards,
            parallel=parallel,
        ),
        output_file,
        force,
    )
