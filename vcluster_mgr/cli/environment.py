"""What the commands that reach a host cluster share: the platform config plus the engine's settings
(``Env``), the jobs for a set of spec files (all of them, or one ``--shard``), the outcome table, and
confirmation.

The Pulumi layer (``workspace``) is imported only when a command needs it, so the offline commands stay
free of the Pulumi SDK.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from vcluster_mgr import errors, platformconfig, sharding, spec, toolchain
from vcluster_mgr.cli import options, printing

if TYPE_CHECKING:
    from vcluster_mgr import operations, record, workspace


@dataclasses.dataclass
class Env:
    """What a command that reaches a host cluster works with: the engine's settings and the platform config."""

    settings: workspace.Settings
    config: platformconfig.PlatformConfig


def env(access: options.Access, policy: Path | None = None) -> Env:
    """The environment of an online command; raises before any work if its inputs cannot be used.

    A ``--kubeconfig`` or ``--context`` given on the command line is loaded at once (no request is sent), so
    a file or context that cannot be used fails here, even for a command that turns out to have nothing to do.
    """
    from vcluster_mgr import cluster as cluster_api

    host = access.host
    cfg = config(host, policy)
    if host.kubeconfig is not None or host.context is not None:
        cluster_api.connect(cfg.target(None)).close()  # the flags apply to the default host cluster
    toolchain.check_sdk_versions()
    return Env(settings(access.state, host), cfg)


def config(host: options.HostAccess, policy: Path | None = None) -> platformconfig.PlatformConfig:
    """The platform config the access options name (or the single-cluster default), with ``--policy``."""
    return platformconfig.load(host.config, kubeconfig=host.kubeconfig, context=host.context, policy_path=policy)


def settings(state: options.StateAccess, host: options.HostAccess | None = None) -> workspace.Settings:
    """The engine's settings for the state the options name (and the host access the engine's provider uses)."""
    from vcluster_mgr import workspace

    host = host or options.HostAccess()
    return workspace.settings(state_dir=state.state_dir, backend_url=state.backend_url,
                              kubeconfig=host.kubeconfig, context=host.context)


def jobs(env: Env, paths: list[Path], shard: sharding.Shard | None = None, *,
         allow_data_loss: bool = False) -> list[operations.Job]:
    """A job per tenant spec under ``paths``; with ``shard``, only that shard's (every spec is checked all the
    same, so a bad spec anywhere in the folder stops every shard before anything is applied)."""
    from vcluster_mgr import operations

    tenants = spec.load_specs(paths, policy=env.config.blueprint.policy)
    if not tenants:
        raise errors.UsageError("no tenant specs found in " + ", ".join(map(str, paths)))
    every = [operations.Job(t, env.config.target_for(t), env.config.blueprint, allow_data_loss=allow_data_loss)
             for t in tenants]
    mine = sharding.select(every, shard, lambda job: job.stack_name)
    if shard is not None:
        printing.progress(f"shard {shard}: {len(mine)} of {len(every)} tenant stack(s)")
    return mine


def recorded_policy(env: Env, name: str, recorded: record.TenantRecord, given: Path | None) -> spec.Policy:
    """The admin policy tenant ``name`` was applied under (as its stack recorded it), for the commands
    that work on an applied tenant (sleep, wake, kubeconfig, delete).

    A ``--policy`` given to them must be that same policy: a different one is refused (exit 2) rather than
    silently judging the tenant by other rules; changing a tenant's policy is a ``vcm apply --policy``. A stack
    applied before policies were recorded falls back to the policy of this run.
    """
    remembered = recorded.applied_policy()
    if remembered is None:
        return env.config.blueprint.policy
    if given is not None:
        asked = env.config.blueprint.policy.model_dump(mode="json", by_alias=True)
        if asked != remembered.model_dump(mode="json", by_alias=True):
            raise errors.UsageError(
                f"--policy {given} is not the policy tenant {name} was applied under (recorded in its stack); "
                "leave --policy out to use the recorded one, or change it with `vcm apply SPEC --policy FILE`")
    return remembered


def with_policy(env: Env, policy: spec.Policy) -> platformconfig.Blueprint:
    """The run's blueprint (templates) with the tenant's recorded policy."""
    return dataclasses.replace(env.config.blueprint, policy=policy)


def _changes_text(changes: dict[str, int]) -> str:
    shown = {k: v for k, v in sorted(changes.items()) if v}
    return ", ".join(f"{v} {k}" for k, v in shown.items()) or "-"


def summary(outcomes: list[workspace.Outcome], fmt: printing.OutputFormat, title: str) -> None:
    data = [dataclasses.asdict(o) for o in outcomes]
    if printing.emit(data, fmt):
        return
    paths = title in ("plan", "apply")
    table = Table("tenant", "cluster", "result", "changes", *(("path",) if paths else ()), "seconds", title=title)
    for o in outcomes:
        result = "[green]ok[/green]" if o.ok else "[red]failed[/red]"
        # which way each tenant went: its fingerprint held (no engine), or the engine ran (``Outcome.path``)
        path = (o.path,) if paths else ()
        table.add_row(o.tenant, o.cluster, result, _changes_text(o.changes), *path, f"{o.seconds:.1f}")
    printing.print_table(table)
    for o in outcomes:
        if o.error:
            printing.failure(f"[red]{escape(o.tenant)}:[/red] {escape(o.error)}")


def on_terminal() -> bool:
    """Whether a person can be asked (stdin is a terminal): prompts and confirmations only then."""
    return sys.stdin.isatty()


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not on_terminal():
        raise errors.UsageError(f"{question} needs confirmation: rerun with --yes (no terminal to ask on)")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


def report_unlock(stack: str, held: list[Any]) -> None:
    """What ``vcm unlock`` / ``vcm platform unlock`` broke (``workspace.break_lock``'s locks seen before)."""
    if not held:
        printing.err.print(f"stack {stack}: no lock is left (the backend's locks cannot be read before)",
                           markup=False, highlight=False, soft_wrap=True)
    for lock in held:
        printing.err.print(f"stack {stack}: broke the lock of {lock.describe()}", markup=False, highlight=False,
                           soft_wrap=True)
