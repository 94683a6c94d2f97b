"""The ``vcm`` command line.

This is the only module that prints or exits. Every other module raises an error from
``vcluster_mgr.errors``; ``main`` turns it into a message on stderr and an exit code:
0 success, 1 operation failed, 2 bad usage or invalid spec.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vcluster_mgr import (errors, hostcluster, lifecycle, localcluster, platformconfig, render, spec, toolchain,
                          workspace)

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

out = Console()
err = Console(stderr=True)


def report(exc: errors.VcmError) -> None:
    """Print an error the way every command does: each spec problem on its own line."""
    # messages quote user input, which may look like rich markup: escape it
    if isinstance(exc, errors.SpecError):
        for e in exc.errors:
            err.print(f"[red]error[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
    else:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)


@contextmanager
def failures() -> Iterator[None]:
    """Turn the package's errors into a message and the documented exit code (1 or 2)."""
    try:
        yield
    except errors.VcmError as exc:
        report(exc)
        raise typer.Exit(exc.exit_code) from exc


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def _emit(data: Any, fmt: OutputFormat) -> bool:
    """Print ``data`` as JSON or YAML when asked; False means the caller prints its table."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return True
    if fmt is OutputFormat.yaml:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
        return True
    return False


def _progress(message: str) -> None:
    err.print(f"[dim]{message}[/dim]", highlight=False)


# ---------------------------------------------------------------------------------------------
# spec commands: validate, render, schema, init
# ---------------------------------------------------------------------------------------------


PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="Admin policy file (YAML). Without it the built-in default policy applies."),
]
SCHEMA_KINDS = ("tenant", "policy")


def _load_policy(path: Path | None) -> spec.Policy | None:
    return spec.load_policy(path) if path is not None else None


@app.command(epilog="Example: vcm validate examples/tenants tenants/new.yaml --policy examples/policy.yaml")
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Tenant spec files, or folders of *.yaml / *.yml files.")],
    policy: PolicyOpt = None,
) -> None:
    """Check tenant specs without touching a cluster.

    Reports every error of every file at once (file, dotted path, bad value, what is valid).

    Also refuses two tenants claiming one namespace. Prints OK per valid tenant; exits 2 if any spec is invalid.
    """
    with failures():
        tenants = spec.load_specs(paths, policy=_load_policy(policy))
    for tenant in tenants:
        out.print(f"OK {tenant.name} ({tenant.source})", markup=False, highlight=False, soft_wrap=True)


@app.command("render", epilog="Example: vcm render examples/tenants/payments.yaml --platform > manifests.yaml")
def render_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Tenant spec files, or folders of *.yaml / *.yml files.")
    ] = None,
    templates: Annotated[
        Path | None,
        typer.Option("--templates", help="Folder of your own blueprint templates; missing ones are the built-in."),
    ] = None,
    policy: PolicyOpt = None,
    platform: Annotated[
        bool, typer.Option("--platform", help="Also print the cluster-wide platform objects (first).")
    ] = False,
    control_plane_values: Annotated[
        bool, typer.Option("--control-plane-values", help="Print each tenant's vcluster Helm values instead.")
    ] = False,
) -> None:
    """Print the manifests of tenants as one YAML stream, offline (no cluster needed).

    Per tenant: Namespaces, ResourceQuotas, LimitRanges, NetworkPolicies, RoleBindings, vcm-placement ConfigMaps.

    With --platform, first vcluster-mgr's namespace, ValidatingAdmissionPolicies and ClusterRole.
    """
    with failures():
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


@app.command("schema", epilog="Example: vcm schema > schema/tenant.schema.json; vcm schema policy")
def schema_command(
    kind: Annotated[str, typer.Argument(help="Which document: tenant or policy.")] = "tenant",
) -> None:
    """Print the JSON Schema of a Tenant (or Policy) document, generated from the model.

    The committed schema/tenant.schema.json and schema/policy.schema.json are exactly this output.
    """
    with failures():
        if kind not in SCHEMA_KINDS:
            raise errors.UsageError(f"unknown schema {kind!r}; choose one of: {', '.join(SCHEMA_KINDS)}")
        text = spec.schema_text("policy" if kind == "policy" else "tenant")
    typer.echo(text, nl=False)


@app.command("init", epilog="Example: vcm init payments -o tenants/payments.yaml")
def init_command(
    name: Annotated[str, typer.Argument(help="Tenant name, a DNS-1123 label such as payments.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write; stdout if left out.")] = None,
    owner: Annotated[str, typer.Option("--owner", help="The first owner, a User with role admin.")] = "you@example.com",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Write a commented starter tenant spec (it validates as it is; edit it from there)."""
    with failures():
        _write_or_echo(render.starter_spec(name, owner=owner), output, force)


def _write_or_echo(text: str, output: Path | None, force: bool) -> None:
    """Print ``text``, or write it to ``output`` (its folder made if missing), refusing to overwrite without
    ``force``."""
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise errors.UsageError(f"{output} already exists; pass --force to overwrite it")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise errors.UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    err.print(f"wrote {output}", markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# control plane and CI commands
# ---------------------------------------------------------------------------------------------

ci_app = typer.Typer(help="CI pipelines that test against an ephemeral tenant.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


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
            err.print(
                f"note: {tenant.name} has controlPlane.enabled false; these are the values enabling it would install",
                markup=False, highlight=False, soft_wrap=True,
            )
    typer.echo("---\n".join(documents), nl=False)


class CiSystem(str, enum.Enum):
    github = "github"
    gitlab = "gitlab"


@ci_app.command("init", epilog="Example: vcm ci init github -o .github/workflows/ephemeral-tenant.yml")
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
    with failures():
        _write_or_echo(render.ci_pipeline(system.value, spec_path=spec_path, ttl=ttl, name_prefix=name_prefix),
                       output, force)


# ---------------------------------------------------------------------------------------------
# tenants: plan, apply, list, status, kubeconfig, delete; platform
# ---------------------------------------------------------------------------------------------

platform_app = typer.Typer(help="What every tenant of a host cluster relies on.", no_args_is_help=True)
app.add_typer(platform_app, name="platform")

KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="Host cluster kubeconfig (default: "
                                                   "KUBECONFIG, then ~/.kube/config).", show_default=False)]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.", show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Platform config: host clusters, policy, "
                                                "templates (or VCM_CONFIG).", show_default=False)]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="Where stacks are kept (or VCM_STATE_DIR; "
                                               "default ~/.local/state/vcluster-mgr).", show_default=False)]
BackendOpt = Annotated[str | None, typer.Option("--backend-url", help="Any Pulumi backend URL (default: a "
                                                "local file backend in the state dir).", show_default=False)]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="Host cluster name from the platform config.",
                                                show_default=False)]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="table, json or yaml")]


@dataclasses.dataclass
class _Env:
    settings: workspace.Settings
    config: platformconfig.PlatformConfig


def _env(kubeconfig: str | None, context: str | None, config: Path | None, state_dir: Path | None,
         backend_url: str | None, policy: Path | None = None) -> _Env:
    cfg = platformconfig.load(config, kubeconfig=kubeconfig, context=context, policy_path=policy)
    toolchain.check_sdk_versions()
    return _Env(workspace.settings(state_dir=state_dir, backend_url=backend_url, kubeconfig=kubeconfig,
                                   context=context), cfg)


def _jobs(env: _Env, paths: list[Path]) -> list[workspace.Job]:
    tenants = spec.load_specs(paths, policy=env.config.blueprint.policy)
    if not tenants:
        raise errors.UsageError("no tenant specs found in " + ", ".join(map(str, paths)))
    return [workspace.Job(t, env.config.target_for(t), env.config.blueprint) for t in tenants]


def _tenant_progress(tenant: str, message: str) -> None:
    err.print(f"[bold]{escape(tenant)}[/bold] {escape(message)}", highlight=False, soft_wrap=True)


def _changes_text(changes: dict[str, int]) -> str:
    shown = {k: v for k, v in sorted(changes.items()) if v}
    return ", ".join(f"{v} {k}" for k, v in shown.items()) or "-"


def _summary(outcomes: list[workspace.Outcome], fmt: OutputFormat, title: str) -> None:
    data = [dataclasses.asdict(o) for o in outcomes]
    if _emit(data, fmt):
        return
    table = Table("tenant", "cluster", "result", "changes", "seconds", title=title)
    for o in outcomes:
        result = "[green]ok[/green]" if o.ok else "[red]failed[/red]"
        table.add_row(o.tenant, o.cluster, result, _changes_text(o.changes), f"{o.seconds:.1f}")
    out.print(table)
    for o in outcomes:
        if o.error:
            err.print(f"[red]{escape(o.tenant)}:[/red] {escape(o.error)}", highlight=False, soft_wrap=True)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise errors.UsageError(f"{question} needs confirmation: rerun with --yes (no terminal to ask on)")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


@app.command(epilog="Example: vcm plan examples/tenants")
def plan(
    paths: Annotated[list[Path], typer.Argument(help="Tenant spec files or folders.")],
    parallel: Annotated[int, typer.Option("--parallel", "-p", min=1, help="Stacks previewed at once.")] = 1,
    output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None, policy: PolicyOpt = None,
) -> None:
    """Show what would be created, changed or deleted, per tenant (nothing is changed)."""
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url, policy)
        outcomes = workspace.run_jobs(env.settings, _jobs(env, paths), "plan", parallel=parallel,
                                      progress=_tenant_progress)
        _summary(outcomes, output, "plan")
        if output is OutputFormat.table:
            for o in outcomes:
                for step in o.steps:
                    out.print(f"  {escape(o.tenant)}: {escape(step)}", highlight=False)
        if not all(o.ok for o in outcomes):
            raise typer.Exit(1)


@app.command(epilog="Example: vcm apply examples/tenants --parallel 4 --yes")
def apply(
    paths: Annotated[list[Path], typer.Argument(help="Tenant spec files or folders.")],
    parallel: Annotated[int, typer.Option("--parallel", "-p", min=1, help="Stacks applied at once "
                                          "(each in its own worker process).")] = 1,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None, policy: PolicyOpt = None,
) -> None:
    """Provision tenants: one stack per host cluster and tenant; safe to re-run after any failure."""
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url, policy)
        jobs = _jobs(env, paths)
        _confirm(f"apply {len(jobs)} tenant(s)?", yes)
        outcomes = workspace.run_jobs(env.settings, jobs, "apply", parallel=parallel, progress=_tenant_progress)
        _summary(outcomes, output, "apply")
        if not all(o.ok for o in outcomes):
            raise typer.Exit(1)


@app.command("list", epilog="Example: vcm list -o json")
def list_command(
    output: OutputOpt = OutputFormat.table, state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """List the tenants this state knows, with their host cluster."""
    with failures():
        s = workspace.settings(state_dir=state_dir, backend_url=backend_url)
        rows = workspace.list_tenant_stacks(s)
        if not _emit(rows, output):
            table = Table("tenant", "cluster", "resources", "last update", "stack")
            for r in rows:
                table.add_row(r["tenant"], r["cluster"], str(r["resources"] or "-"), str(r["lastUpdate"] or "-"),
                              r["stack"])
            out.print(table)


@app.command(epilog="Example: vcm status payments -o yaml")
def status(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: ClusterOpt = None, output: OutputOpt = OutputFormat.table,
    config: ConfigOpt = None, state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """Show one tenant: host cluster, namespaces, owners, lifetime."""
    with failures():
        cfg = platformconfig.load(config)
        s = workspace.settings(state_dir=state_dir, backend_url=backend_url)
        data = workspace.tenant_outputs(s, cfg.target(cluster).name, name)
        if not _emit(data, output):
            table = Table("field", "value", show_header=False)
            for key in ("tenant", "cluster", "namespaces", "owners", "ttl", "source"):
                value = data.get(key)
                if key == "owners" and value:
                    value = ", ".join(f"{o['kind']} {o['name']} ({o['role']})" for o in value)
                elif isinstance(value, list):
                    value = ", ".join(map(str, value))
                table.add_row(key, escape(str(value if value is not None else "-")))
            out.print(table)


@app.command(epilog="Example: vcm delete payments --yes")
def delete(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: ClusterOpt = None, yes: YesOpt = False, output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """Destroy a tenant's objects on its host cluster and remove its stack and state."""
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url)
        target = env.config.target(cluster)
        _confirm(f"delete tenant {name} on {target.name} and everything in its namespaces?", yes)
        outcome = workspace.delete_tenant(env.settings, target, name, progress=_tenant_progress)
        _summary([outcome], output, "delete")
        if not outcome.ok:
            raise typer.Exit(1)


@app.command(epilog="Example: vcm kubeconfig payments --user alice@example.com -o alice.kubeconfig")
def kubeconfig(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    user: Annotated[str | None, typer.Option("--user", help="Owner (User) name; default: the first User "
                                             "owner with role admin.", show_default=False)] = None,
    output_file: Annotated[Path | None, typer.Option("-o", "--output-file", help="Write here (mode 600) "
                                                     "instead of stdout.", show_default=False)] = None,
    host: Annotated[bool, typer.Option("--host", help="For a tenant with a control plane: the owner's "
                                       "host-namespace kubeconfig instead of the virtual cluster's.")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the virtual cluster's kubeconfig "
                                        "Secret.")] = 60.0,
    cluster: ClusterOpt = None,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """A kubeconfig for the tenant: its virtual cluster's (admin) when it has a control plane, else one for
    an owner with its context set to the tenant's first namespace.

    The certificate is issued by the host cluster's own signer (CSR API); what it may do is exactly what
    the tenant's RoleBindings give that owner.
    """
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url)
        target = env.config.target(cluster)
        data = workspace.tenant_outputs(env.settings, target.name, name)
        if (data.get("controlPlane") or {}).get("enabled") and not host and data.get("spec"):
            # the spec as the stack recorded it (it passed the policy when applied): no policy check to read it
            tenant = spec.Tenant.model_validate(data["spec"])
            text = hostcluster.control_plane_kubeconfig(target, tenant, wait=wait, progress=_progress)
            if text is None:
                raise errors.ProvisionError(
                    f"the control plane of {name} has not written its kubeconfig Secret "
                    f"{tenant.namespace_names()[0]}/vc-{name} after {wait:.0f}s (is it running? there must be "
                    "nodes for its pod); use --host for the owner's host-namespace kubeconfig")
            _, how = hostcluster.control_plane_server(target, tenant)
            _write_kubeconfig(text, output_file, f"admin of {name}'s virtual cluster, reachable {how}")
            return
        owners = data.get("owners") or []
        users = [o for o in owners if o["kind"] == "User"]
        chosen = next((o for o in users if o["name"] == user), None) if user else next(
            (o for o in users if o["role"] == "admin"), users[0] if users else None)
        if chosen is None:
            raise errors.UsageError(f"tenant {name} has no User owner {user or ''}".strip()
                                    + "; owners: " + ", ".join(o["name"] for o in owners))
        text = hostcluster.owner_kubeconfig(target, user=chosen["name"], groups=(),
                                            namespace=(data.get("namespaces") or ["default"])[0])
        _write_kubeconfig(text, output_file, f"{chosen['name']} ({chosen['role']} of {name})")


def _write_kubeconfig(text: str, output_file: Path | None, who: str) -> None:
    """To a file created with mode 600, or to stdout; never into logs."""
    if output_file:
        fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        err.print(f"kubeconfig for {escape(who)} written to {output_file}")
    else:
        typer.echo(text, nl=False)


@app.command(epilog="Example: vcm drift --all -o json")
def drift(
    name: Annotated[str | None, typer.Argument(help="Tenant name (or --all).", show_default=False)] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant in the state.")] = False,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="Exit 1 when anything drifted.")] = False,
    cluster: ClusterOpt = None, output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """Show what was changed on the cluster outside the tool: every field the blueprint set whose live value
    differs, and every object deleted. `vcm apply` puts them back."""
    with failures():
        if bool(name) == all_tenants:
            raise errors.UsageError("give a tenant name or --all")
        env = _env(kubeconfig, context, config, state_dir, backend_url)
        if all_tenants:
            wanted = [(r["cluster"], r["tenant"]) for r in workspace.list_tenant_stacks(env.settings)]
        else:
            wanted = [(env.config.target(cluster).name, str(name))]
        rows = []
        for cl, tenant in wanted:
            target = env.config.target(cl)
            for row in hostcluster.drift(target, workspace.applied_objects(env.settings, cl, tenant)):
                rows.append({"tenant": tenant, "cluster": cl, **row})
        if not _emit({"drifted": bool(rows), "changes": rows}, output):
            if not rows:
                err.print(f"no drift in {len(wanted)} tenant(s)")
            else:
                table = Table("tenant", "object", "field", "desired", "live")
                for r in rows:
                    table.add_row(r["tenant"], escape(r["object"]), escape(r["field"]),
                                  escape(json.dumps(r["desired"])), escape(json.dumps(r["live"])))
                out.print(table)
        if rows and fail_on_drift:
            raise typer.Exit(1)


ephemeral_app = typer.Typer(help="Short-lived tenants for CI: a unique name and an expiry.", no_args_is_help=True)
app.add_typer(ephemeral_app, name="ephemeral")

_EPHEMERAL_DEFAULT = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {name: ephemeral}
spec:
  owners: [{kind: User, name: ci@vcluster-mgr.local, role: admin}]
  namespaces: [main]
"""


@ephemeral_app.command("create", epilog="Example: vcm ephemeral create ci/tenant.yaml --ttl 2h --wait "
                       "--kubeconfig-out tenant.kubeconfig -o json")
def ephemeral_create(
    path: Annotated[Path | None, typer.Argument(help="Tenant spec (its name is replaced by a unique one); "
                                                "default: one namespace, owner ci@vcluster-mgr.local.",
                                                show_default=False)] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 30m, 2h, 1d; `vcm gc` deletes it after.")] = "2h",
    name_prefix: Annotated[str, typer.Option("--name-prefix", help="Prefix of the generated name.")] = "ci-",
    wait: Annotated[bool, typer.Option("--wait", help="Wait until its namespaces are active.")] = False,
    kubeconfig_out: Annotated[Path | None, typer.Option("--kubeconfig-out", help="Write the owner's kubeconfig "
                                                        "here (mode 600).", show_default=False)] = None,
    output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None, policy: PolicyOpt = None,
) -> None:
    """Create a tenant with a unique name that expires after --ttl (recorded on its namespaces and stack)."""
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url, policy)
        text = path.read_text() if path else _EPHEMERAL_DEFAULT
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict) or \
                not isinstance(data.get("spec"), dict):
            raise errors.SpecError([errors.FieldError("(document)", "not a Tenant document", str(path))])
        name = lifecycle.unique_name(name_prefix)
        data["metadata"]["name"] = name
        data["spec"]["ttl"] = ttl
        tenant = spec.parse_spec(data, source=str(path) if path else None, policy=env.config.blueprint.policy)
        moment = lifecycle.expiry(tenant, lifecycle.utc_now())
        expires_at = lifecycle.format_expiry(moment) if moment else None
        job = workspace.Job(tenant, env.config.target_for(tenant), env.config.blueprint, expires_at)
        outcome = workspace.run_jobs(env.settings, [job], "apply", progress=_tenant_progress)[0]
        if not outcome.ok:
            _summary([outcome], OutputFormat.table, "ephemeral")
            raise typer.Exit(1)
        if wait:
            hostcluster.wait_namespaces_active(job.target, tenant.namespace_names(), timeout=120)
            if tenant.spec.control_plane.enabled:
                err.print("note: the control plane's readiness is not awaited (it needs nodes to run)")
        result = {"name": name, "cluster": job.target.name, "expiresAt": expires_at,
                  "namespaces": tenant.namespace_names(), "kubeconfig": None}
        if kubeconfig_out:
            users = [o for o in tenant.spec.owners if o.kind == "User"]
            if not users:
                raise errors.UsageError("--kubeconfig-out needs a User owner in the spec")
            owner = next((o for o in users if o.role == "admin"), users[0])
            text = hostcluster.owner_kubeconfig(job.target, user=owner.name, groups=(),
                                                namespace=tenant.namespace_names()[0])
            fd = os.open(kubeconfig_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            result["kubeconfig"] = str(kubeconfig_out)
        if not _emit(result, output):
            err.print(f"ephemeral tenant [bold]{name}[/bold] on {job.target.name}, expires {expires_at}")
            typer.echo(name)


@ephemeral_app.command("delete", epilog="Example: vcm ephemeral delete ci-7f3k2q")
def ephemeral_delete(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: ClusterOpt = None, output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """Delete an ephemeral tenant now (no confirmation: it was made to be thrown away)."""
    delete(name, cluster=cluster, yes=True, output=output, kubeconfig=kubeconfig, context=context, config=config,
           state_dir=state_dir, backend_url=backend_url)


@app.command(epilog="Example: vcm gc --dry-run")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    now: Annotated[str | None, typer.Option("--now", help="Pretend the time is this (RFC 3339); for tests "
                                            "and what-if runs.", show_default=False)] = None,
    output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """Delete every tenant past its expiry. Safe on a schedule: tenants without an expiry are never touched,
    and a failed delete is retried by the next run."""
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url)
        moment = lifecycle.parse_expiry(now) if now else lifecycle.utc_now()
        records = []
        for row in workspace.list_tenant_stacks(env.settings):
            outputs = workspace.tenant_outputs(env.settings, row["cluster"], row["tenant"])
            records.append({"tenant": row["tenant"], "cluster": row["cluster"],
                            "expiresAt": outputs.get("expiresAt")})
        expired = lifecycle.select_expired(records, moment)
        outcomes = []
        if not dry_run:
            for rec in expired:
                outcomes.append(workspace.delete_tenant(env.settings, env.config.target(rec["cluster"]),
                                                        rec["tenant"], progress=_tenant_progress))
        data = {"now": lifecycle.format_expiry(moment), "dryRun": dry_run,
                "expired": [dict(r) for r in expired], "kept": len(records) - len(expired),
                "deleted": [o.tenant for o in outcomes if o.ok], "failed": [o.tenant for o in outcomes if not o.ok]}
        if not _emit(data, output):
            verb = "would delete" if dry_run else "deleted"
            err.print(f"{len(expired)} expired of {len(records)} tenant(s); {verb}: "
                      + (", ".join(r["tenant"] for r in expired) or "none"))
            if outcomes:
                _summary(outcomes, OutputFormat.table, "gc")
        if data["failed"]:
            raise typer.Exit(1)


def _set_asleep(name: str, asleep: bool, cluster: str | None, env: _Env, output: OutputFormat) -> None:
    """Re-apply the tenant's recorded spec with its control plane asleep or awake; print the outcome."""
    target = env.config.target(cluster)
    recorded = workspace.tenant_outputs(env.settings, target.name, name)
    if not recorded.get("spec"):
        raise errors.UsageError(f"tenant {name} was applied by an older vcm: apply it again first")
    tenant = spec.parse_spec(recorded["spec"], source=recorded.get("source"), policy=env.config.blueprint.policy)
    if not tenant.spec.control_plane.enabled:
        raise errors.UsageError(f"tenant {name} has no control plane to put to sleep or wake")
    job = workspace.Job(tenant, target, env.config.blueprint, asleep=asleep)
    outcome = workspace.run_jobs(env.settings, [job], "apply", progress=_tenant_progress)[0]
    _summary([outcome], output, "sleep" if asleep else "wake")
    if not outcome.ok:
        raise typer.Exit(1)


@app.command(epilog="Example: vcm sleep payments")
def sleep(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: ClusterOpt = None, output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None, policy: PolicyOpt = None,
) -> None:
    """Scale a tenant's control plane to zero replicas; its data (the volume) is kept."""
    with failures():
        _set_asleep(name, True, cluster, _env(kubeconfig, context, config, state_dir, backend_url, policy), output)


@app.command(epilog="Example: vcm wake payments")
def wake(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    cluster: ClusterOpt = None, output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None, policy: PolicyOpt = None,
) -> None:
    """Bring a sleeping control plane back (same data)."""
    with failures():
        _set_asleep(name, False, cluster, _env(kubeconfig, context, config, state_dir, backend_url, policy), output)


@platform_app.command("apply", epilog="Example: vcm platform apply --yes")
def platform_apply(
    cluster: ClusterOpt = None, yes: YesOpt = False,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None, policy: PolicyOpt = None,
) -> None:
    """Provision the admission policies and the project's namespace on a host cluster (once per cluster)."""
    with failures():
        env = _env(kubeconfig, context, config, state_dir, backend_url, policy)
        target = env.config.target(cluster)
        _confirm(f"apply the platform objects to {target.name}?", yes)
        outcome = workspace.platform_apply(env.settings, target, env.config.blueprint, progress=_tenant_progress)
        _summary([outcome], OutputFormat.table, "platform")


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------


def _verify_table(report: Any) -> None:
    from vcluster_mgr import verify

    colours = {"pass": "green", "fail": "red", "error": "yellow", "skip": "cyan"}
    who = f"{report.identity.describe()} ({report.identity.kind} owner {report.identity.name})"
    title = f"verify {report.tenant} on {report.cluster} as {who}"
    table = Table("id", "level", "result", "tried", "detail", title=escape(title), show_lines=True)
    for check_id, level, result, tried, detail in verify.table_rows(report):
        table.add_row(check_id, level, f"[{colours[result]}]{result}[/{colours[result]}]", escape(tried),
                      escape(detail))
    out.print(table)
    counts = report.counts()
    verdict = "[green]PASSED[/green]" if report.passed else "[red]NOT PASSED[/red]"
    out.print(f"{verdict} {escape(report.tenant)}: {counts['pass']} pass, {counts['fail']} fail, "
              f"{counts['error']} error, {counts['skip']} skip; {escape(verify.scope_note(report))}", highlight=False,
              soft_wrap=True)


@app.command("verify", epilog="Example: vcm verify payments; vcm verify --all -o json")
def verify_command(
    name: Annotated[str | None, typer.Argument(help="Tenant name.", show_default=False)] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant this state knows.")] = False,
    check: Annotated[list[str] | None, typer.Option("--check", help="Run only this check (id or benchmark id); "
                                                    "repeat for several.", show_default=False)] = None,
    level: Annotated[int, typer.Option("--level", min=1, max=2, help="Run the checks up to this benchmark "
                                       "profile level (2 includes 1).")] = 2,
    cluster: ClusterOpt = None, output: OutputOpt = OutputFormat.table,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None, config: ConfigOpt = None,
    state_dir: StateOpt = None, backend_url: BackendOpt = None,
) -> None:
    """Show that a tenant's isolation holds, live: the multi-tenancy benchmark checks, run as its owner.

    The admin's credentials impersonate the tenant's first admin User owner (else its first owner) and
    everything a check tries is sent as a server-side dry-run, so nothing is left behind.

    The checks and the JSON output (-o json) are described in docs/verify.md. Exits 1 if any check
    fails or cannot be judged (error).
    """
    from vcluster_mgr import verify

    with failures():
        if (name is None) == (not all_tenants):
            raise errors.UsageError("name one tenant, or pass --all")
        checks = verify.select_checks(check, level=level)
        env = _env(kubeconfig, context, config, state_dir, backend_url)
        if all_tenants:
            stacks = workspace.list_tenant_stacks(env.settings)
            wanted = [(r["tenant"], r["cluster"]) for r in stacks if cluster is None or r["cluster"] == cluster]
            if not wanted:
                raise errors.UsageError("no tenants to verify" + (f" on host cluster {cluster}" if cluster else ""))
        else:
            wanted = [(str(name), env.config.target(cluster).name)]
        reports = []
        for tenant, cluster_name in wanted:
            target = env.config.target(cluster_name)
            outputs = workspace.tenant_outputs(env.settings, target.name, tenant)
            _tenant_progress(tenant, f"verifying on {target.name}")
            reports.append(verify.verify_live(target, outputs, checks=checks))
    if not _emit(verify.reports_data(reports, many=all_tenants), output):
        for report in reports:
            _verify_table(report)
    if not all(r.passed for r in reports):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------
# toolchain and local host cluster
# ---------------------------------------------------------------------------------------------


@toolchain_app.command("ensure")
def toolchain_ensure(
    download: Annotated[bool, typer.Option(help="Allow downloading official release archives.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even what is already there.")] = False,
) -> None:
    """Make every binary the engine and the local host cluster need available, at pinned versions.

    Order of sources: a binary of the right version on PATH; the official release (only with
    --download); a `go build` through the Go module proxy. A cold build takes minutes, a warm run seconds.

    Example: [bold]vcm toolchain ensure[/bold]
    """
    with failures():
        started = time.monotonic()
        final = toolchain.ensure(download=download or None, force=force, progress=_progress)
        _progress(f"toolchain ready in {time.monotonic() - started:.1f}s ({toolchain.bin_dir()})")
        del final


@toolchain_app.command("status")
def toolchain_status(
    output: Annotated[OutputFormat, typer.Option("-o", "--output", help="table, json or yaml")] = OutputFormat.table,
) -> None:
    """List each binary with its version and where it came from; exit 1 if any is missing.

    Example: [bold]vcm toolchain status -o json[/bold]
    """
    rows = toolchain.status(fresh=True)
    data = [dataclasses.asdict(r) | {"ok": r.ok} for r in rows]
    if not _emit(data, output):
        table = Table("binary", "wanted", "found", "source", "path")
        for r in rows:
            found = r.found or "[red]missing[/red]"
            table.add_row(r.name, r.wanted, found, r.source or "-", r.path or "-")
        out.print(table)
    if not all(r.ok for r in rows):
        err.print("some binaries are missing: run `vcm toolchain ensure`")
        raise typer.Exit(1)


@toolchain_app.command("env")
def toolchain_env(state_dir: StateOpt = None, backend_url: BackendOpt = None) -> None:
    """Print the exports that let plain `pulumi` use this toolchain and state (use with eval).

    The passphrase is not printed: PULUMI_CONFIG_PASSPHRASE_FILE points at the file that holds it
    (or set PULUMI_CONFIG_PASSPHRASE yourself if you chose one).

    Example: [bold]eval "$(vcm toolchain env)" && pulumi up[/bold]
    """
    with failures():
        s = workspace.settings(state_dir=state_dir, backend_url=backend_url)
        env = workspace.engine_env(s)
        env.pop("PULUMI_CONFIG_PASSPHRASE")
        if (s.state_dir / "passphrase").exists() and not os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(s.state_dir / "passphrase")
        for key, value in env.items():
            typer.echo(f"export {key}={shlex.quote(value)}")


NameOpt = Annotated[str, typer.Option("--name", help="Which local cluster (several can run at once).")]


@local_app.command("up")
def local_up(
    name: NameOpt = localcluster.DEFAULT_NAME,
    reuse: Annotated[bool, typer.Option("--reuse", help="If it already runs, say so and succeed.")] = False,
    nodes: Annotated[int, typer.Option("--nodes", help="1: a node where pods run and NetworkPolicies are "
                                       "enforced (needs root and scripts/install-node-packages.sh); "
                                       "0: control plane only, pods never run.")] = 1,
) -> None:
    """Start the local host cluster (etcd, kube-apiserver, kube-controller-manager; with --nodes 1 a node).

    Example: [bold]vcm local up && eval "$(vcm local env)" && kubectl get ns[/bold]
    """
    with failures():
        if reuse:
            try:
                running = localcluster.load(name)
            except errors.LocalClusterError:
                running = None
            if running is not None and all(running.running().values()):
                err.print(f"local cluster [bold]{name}[/bold] already runs at {running.server}")
                typer.echo(f"export KUBECONFIG={running.kubeconfig}")
                return
        c = localcluster.up(name, nodes=nodes, progress=_progress)
        err.print(f"local cluster [bold]{name}[/bold] ready at {c.server} in {c.ready_seconds:.1f}s "
                  + (f"(node {c.node['name']})" if c.node else "(no nodes: pods are accepted but never run)"))
        typer.echo(f"export KUBECONFIG={c.kubeconfig}")


@local_app.command("down")
def local_down(name: NameOpt = localcluster.DEFAULT_NAME) -> None:
    """Stop the local host cluster's processes and delete its data.

    Example: [bold]vcm local down --name second[/bold]
    """
    with failures():
        if localcluster.down(name):
            err.print(f"local cluster {name} stopped and removed")
        else:
            err.print(f"no local cluster named {name}")


@local_app.command("status")
def local_status(
    output: Annotated[OutputFormat, typer.Option("-o", "--output", help="table, json or yaml")] = OutputFormat.table,
) -> None:
    """Show which local clusters run, where, and their processes.

    Example: [bold]vcm local status -o json[/bold]
    """
    with failures():
        rows = []
        for c in localcluster.list_clusters():
            running = c.running()
            rows.append({"name": c.name, "server": c.server, "kubeconfig": str(c.kubeconfig),
                         "processes": {p: {"pid": c.pids[p], "running": running[p]} for p in c.pids},
                         "ready_seconds": c.ready_seconds, "nodes": [c.node["name"]] if c.node else []})
        if not _emit(rows, output):
            if not rows:
                err.print("no local cluster is running (start one with `vcm local up`)")
            table = Table("name", "server", "nodes", "processes", "kubeconfig")
            for r in rows:
                procs = ", ".join(f"{p} {'up' if v['running'] else '[red]down[/red]'} (pid {v['pid']})"
                                  for p, v in r["processes"].items())
                table.add_row(r["name"], r["server"], ", ".join(r["nodes"]) or "none", procs, r["kubeconfig"])
            if rows:
                out.print(table)
            if any(not r["nodes"] for r in rows):
                err.print("a cluster with no nodes accepts pods but never runs them (`vcm local up --nodes 1`)")


@local_app.command("env")
def local_env(
    name: NameOpt = localcluster.DEFAULT_NAME,
    kubeconfig_path: Annotated[bool, typer.Option(help="Print only the kubeconfig path.")] = False,
) -> None:
    """Print `export KUBECONFIG=...` for the local cluster, and a state dir that lives and dies with it.

    Example: [bold]eval "$(vcm local env)"[/bold]
    """
    with failures():
        c = localcluster.load(name)
        if kubeconfig_path:
            typer.echo(str(c.kubeconfig))
            return
        typer.echo(f"export KUBECONFIG={shlex.quote(str(c.kubeconfig))}")
        # stacks describe objects of this cluster only: keep them with it, so `local down` forgets both
        typer.echo(f"export VCM_STATE_DIR={shlex.quote(str(c.dir / 'state'))}")


@local_app.command("kubeconfig")
def local_kubeconfig(
    user: Annotated[str, typer.Option("--user", help="User name (the certificate's CN).")],
    group: Annotated[list[str] | None, typer.Option("--group", help="Group; repeat for several.")] = None,
    name: NameOpt = localcluster.DEFAULT_NAME,
    output_file: Annotated[Path | None, typer.Option("-o", "--output-file", help="Write here (mode 600).")] = None,
) -> None:
    """Print a kubeconfig that authenticates as any user and groups (a client certificate).

    Example: [bold]vcm local kubeconfig --user alice@example.com --group payments-devs -o alice.kubeconfig[/bold]
    """
    with failures():
        text = localcluster.user_kubeconfig(name, user, tuple(group or ()))
        if output_file:
            fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            err.print(f"kubeconfig for {user} written to {output_file}")
        else:
            typer.echo(text, nl=False)



def main() -> None:
    """Entry point of the ``vcm`` and ``vcluster-mgr`` console scripts."""
    app()
