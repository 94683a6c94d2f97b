"""``vcm ci init``: write a CI pipeline that tests against an ephemeral tenant (offline)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from vcluster_mgr import (
    render,
)
from vcluster_mgr.cli import apps, printing


class CiSystem(str, enum.Enum):
    github = "github"
    gitlab = "gitlab"


@apps.ci_app.command("init", epilog="Example: vcm ci init github -o .github/workflows/ephemeral-tenant.yml")
def ci_init(
    system: Annotated[CiSystem, typer.Argument(help="github (GitHub Actions) or gitlab (.gitlab-ci.yml).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write; stdout if left out.")] = None,
    spec_path: Annotated[str, typer.Option("--spec", help="Tenant spec in the repository.")] = "tenant.yaml",
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime of each CI tenant, such as 30m or 2h.")] = "2h",
    name_prefix: Annotated[
        str, typer.Option("--name-prefix", help="Start of each CI tenant's generated name.")
    ] = "ci-",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Write a CI pipeline that runs your tests against a fresh tenant and deletes it, pass or fail.

    The pipeline reads the host cluster's kubeconfig from the CI secret VCM_HOST_KUBECONFIG and never prints it.
    Edit its `make test` step to run your own tests.
    """
    with printing.failures():
        printing.write_or_echo(
            render.ci_pipeline(system.value, spec_path=spec_path, ttl=ttl, name_prefix=name_prefix), output, force
        )
