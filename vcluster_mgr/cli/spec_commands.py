"""The offline spec commands: ``vcm validate``, ``vcm render``, ``vcm schema``, ``vcm init``.

They never import the Pulumi SDK or the kubernetes client (an import-linter contract keeps it so), so
they start fast and run anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vcluster_mgr import (
    errors,
    platformconfig,
    render,
    spec,
)
from vcluster_mgr.cli import apps, options, printing

SCHEMA_KINDS = ("tenant", "policy", "platform")


def _load_policy(path: Path | None) -> spec.Policy | None:
    return spec.load_policy(path) if path is not None else None


@apps.app.command(epilog="Example: vcm validate examples/tenants tenants/new.yaml --policy examples/policy.yaml")
def validate(
    paths: options.SpecPathsArg,
    policy: options.PolicyOpt = None,
) -> None:
    """Check tenant specs without touching a cluster.

    Reports every error of every file at once (file, dotted path, bad value, what is valid).

    Also refuses two tenants claiming one namespace. Prints OK per valid tenant; exits 2 if any spec is invalid.
    """
    tenants = spec.load_specs(paths, policy=_load_policy(policy))
    for tenant in tenants:
        printing.out.print(f"OK {tenant.name} ({tenant.source})", markup=False, highlight=False, soft_wrap=True)


@apps.app.command("render", epilog="Example: vcm render examples/tenants/payments.yaml --platform > manifests.yaml")
def render_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help=options.SPEC_PATHS_HELP),
    ] = None,
    templates: Annotated[
        Path | None,
        typer.Option("--templates", help="Folder of your own blueprint templates; missing ones are the built-in."),
    ] = None,
    policy: options.PolicyOpt = None,
    platform: Annotated[
        bool, typer.Option("--platform", help="Also print the cluster-wide platform objects (first).")
    ] = False,
    control_plane_values: Annotated[
        bool, typer.Option("--control-plane-values", help="Print each tenant's vcluster Helm values instead.")
    ] = False,
) -> None:
    """Print tenants' manifests as one YAML stream, offline.

    No cluster is needed.

    Per tenant: Namespaces, ResourceQuotas, LimitRanges, NetworkPolicies, RoleBindings, vcm-placement ConfigMaps.

    With --platform, first vcluster-mgr's namespace, ValidatingAdmissionPolicies and ClusterRole.
    """
    if control_plane_values:
        _print_control_plane_values(paths or [], policy=policy, templates=templates, platform=platform)
        return
    if not paths and not platform:
        raise errors.UsageError("name at least one tenant file or folder, or pass --platform")
    admin_policy = _load_policy(policy)
    tenants = spec.load_specs(paths or [], policy=admin_policy)
    objects = render.render_platform(policy=admin_policy, templates_dir=templates) if platform else []
    for tenant in tenants:
        objects += render.render_tenant(tenant, policy=admin_policy, templates_dir=templates)
    typer.echo(render.dump_manifests(objects), nl=False)


@apps.app.command(
    "schema", epilog="Example: vcm schema > schema/tenant.schema.json; vcm schema policy; vcm schema platform"
)
def schema_command(
    kind: Annotated[
        str, typer.Argument(help="Which document: tenant, policy or platform (the --config file).")
    ] = "tenant",
) -> None:
    """Print the JSON Schema of a Tenant, Policy or platform config.

    Generated from the model: the committed schema/tenant.schema.json, policy.schema.json and
    platform.schema.json are exactly this output.
    """
    if kind not in SCHEMA_KINDS:
        raise errors.UsageError(f"unknown schema {kind!r}; choose one of: {', '.join(SCHEMA_KINDS)}")
    if kind == "platform":
        text = platformconfig.schema_text()
    else:
        text = spec.schema_text("policy" if kind == "policy" else "tenant")
    typer.echo(text, nl=False)


@apps.app.command("init", epilog="Example: vcm init payments --output-file tenants/payments.yaml",
                  old_spellings=[options.OUTPUT_FILE_WAS_O])
def init_command(
    name: Annotated[str, typer.Argument(help="Tenant name, a DNS-1123 label such as payments.")],
    output_file: options.OutputFileOpt = None,
    owner: Annotated[str, typer.Option("--owner", help="The first owner, a User with role admin.")] = "you@example.com",
    force: options.OverwriteOpt = False,
) -> None:
    """Write a commented starter tenant spec that validates as it is.

    Edit it from there."""
    printing.write_or_echo(render.starter_spec(name, owner=owner), output_file, force)


def _print_control_plane_values(
    paths: list[Path], *, policy: Path | None, templates: Path | None, platform: bool
) -> None:
    """`vcm render --control-plane-values`: each tenant's vcluster Helm values, one YAML document per tenant."""
    if platform:
        raise errors.UsageError("--control-plane-values prints Helm values, not manifests; drop --platform")
    if not paths:
        raise errors.UsageError("name at least one tenant file or folder")
    admin_policy = _load_policy(policy)
    tenants = spec.load_specs(paths, policy=admin_policy)
    documents = []
    for tenant in tenants:
        values = render.control_plane_values(tenant, policy=admin_policy, templates_dir=templates)
        chart = render.control_plane_chart(tenant)
        kind, source = next((k, v) for k, v in chart.items() if k in ("repository", "oci", "path"))
        header = (
            f"# vcluster Helm values for tenant {tenant.name}: release {chart['release']} in {chart['namespace']},\n"
            f"# chart {chart['chart']} {chart['version']} from {kind} {source}\n"
        )
        documents.append(header + render.dump_values(values))
        if not tenant.spec.control_plane.enabled:
            printing.err.print(
                f"note: {tenant.name} has controlPlane.enabled false; these are the values enabling it would install",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    typer.echo("---\n".join(documents), nl=False)
