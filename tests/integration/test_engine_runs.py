"""What one tenant costs in CLI processes, with the real engine on the real local API server.

The per-tenant path is meant to sit at the engine's floor: a new tenant is ``pulumi stack init`` plus one
``pulumi up``, a re-apply is one ``pulumi up`` and nothing else (no ``stack select``, no ``stack output`` or
``stack history`` after the update), a delete is ``pulumi destroy`` plus ``stack rm``. A new stack's update
is not asked to refresh (its state is empty), an existing one's is; no second copy of the checkpoint is kept. Every CLI
process the workspace starts goes through a wrapper that logs its arguments, so the count is the real one. The summary
and outputs answered from the engine's events are checked against what the CLI itself reports.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcluster_mgr import localcluster, operations, platformconfig, spec, toolchain, workspace
from vcluster_mgr.workspace import checkpoints, stacks


@pytest.fixture()
def logged_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every CLI run of the workspace, logged one JSON array of arguments per line."""
    log = tmp_path / "cli.log"
    root = tmp_path / "cli"
    (root / "bin").mkdir(parents=True)
    wrapper = root / "bin" / "pulumi"
    wrapper.write_text("#!/bin/sh\n"
                       f"python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \"$@\" >> {log}\n"
                       f"exec {toolchain.bin_dir() / 'pulumi'} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    real = stacks._pulumi_command.__wrapped__  # as the workspace makes it, for the wrapper's root
    monkeypatch.setattr(stacks, "_pulumi_command", lambda _root: real(str(root)))
    monkeypatch.setattr(stacks, "_WORKSPACES", {})
    yield log


def _runs(log: Path) -> list[str]:
    """The CLI commands run since the last call (their first word or two), and the log emptied."""
    if not log.exists():
        return []
    names = []
    for line in log.read_text().splitlines():
        args = [a for a in json.loads(line) if not a.startswith("-")]
        names.append(" ".join(args[:2]) if args and args[0] == "stack" else args[0])
    log.unlink()
    return names


def _up_args(log: Path) -> list[str]:
    """The arguments of the last ``pulumi up`` logged (the log left as it is)."""
    ups = [args for args in map(json.loads, log.read_text().splitlines()) if "up" in args]
    return list(ups[-1]) if ups else []


def _tenant(name: str, folder: Path) -> spec.Tenant:
    doc = {"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
           "spec": {"owners": [{"kind": "User", "name": f"{name}@example.com", "role": "admin"}],
                    "namespaces": ["app"], "podSecurity": "restricted"}}
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(doc))
    return spec.load_specs([path])[0]


def test_a_tenant_costs_one_engine_run(logged_cli: Path, engine_settings: workspace.Settings,
                                       host_cluster: localcluster.Cluster, tmp_path: Path) -> None:
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    tenant = _tenant(f"runs{os.getpid() % 10000}", tmp_path)
    job = operations.Job(tenant, target, platformconfig.Blueprint())

    [created] = operations.run_jobs(engine_settings, [job], "apply")
    assert created.ok, created.error
    # a stack made just now holds nothing to refresh: its update is not asked to
    assert "--refresh" not in _up_args(logged_cli)
    # init and the update; not even `pulumi version` (the toolchain checked the binary)
    assert _runs(logged_cli) == ["stack init", "up"]
    assert created.changes.get("create", 0) > 5
    # the update's copy of the checkpoint is in the history, and not a second time among the backups
    # (PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS)
    root = Path(engine_settings.backend_url.removeprefix("file://")) / ".pulumi"
    name = workspace.tenant_stack_name(target.name, tenant.name)
    assert list((root / "history" / stacks.TENANT_PROJECT / name).glob("*.checkpoint.json"))
    assert not (root / "backups" / stacks.TENANT_PROJECT / name).exists()

    [again] = operations.run_jobs(engine_settings, [job], "apply", full=True)
    assert again.ok, again.error
    assert "--refresh" in _up_args(logged_cli)  # an existing stack: the live objects are read first
    assert _runs(logged_cli) == ["up"]
    assert set(again.changes) == {"same"} and again.changes["same"] == sum(created.changes.values())

    # without --full, an unchanged tenant's fingerprint holds: no CLI process at all, counted the same
    [proven] = operations.run_jobs(engine_settings, [job], "apply")
    assert proven.ok and proven.path == workspace.FINGERPRINT_PATH, proven.why
    assert _runs(logged_cli) == []
    assert proven.changes == again.changes

    # the outputs read from the checkpoint are the CLI's own
    cli = subprocess.run([str(toolchain.bin_dir() / "pulumi"), "stack", "output", "--json", "--stack", name],
                         cwd=stacks._project_dir(engine_settings, stacks.TENANT_PROJECT),
                         env={**os.environ, **workspace.engine_env(engine_settings)},
                         capture_output=True, text=True, check=True)
    assert checkpoints.read_outputs(engine_settings.backend_url, stacks.TENANT_PROJECT, name) == json.loads(cli.stdout)

    [gone] = operations.run_jobs(engine_settings, [job], "delete")
    assert gone.ok, gone.error
    assert _runs(logged_cli) == ["destroy", "stack rm"]
    assert checkpoints.read_outputs(engine_settings.backend_url, stacks.TENANT_PROJECT, name) is None


def test_outputs_from_events_match_the_cli(logged_cli: Path, engine_settings: workspace.Settings,
                                           host_cluster: localcluster.Cluster) -> None:
    """``up()``'s outputs come from the engine's events when none is secret, else from the CLI."""
    import pulumi

    def program() -> None:
        pulumi.export("plain", {"a": [1, 2], "b": "x"})

    def secret_program() -> None:
        pulumi.export("plain", "y")
        pulumi.export("token", pulumi.Output.secret("s3cr3t"))

    st = workspace.stack(engine_settings, f"events-{os.getpid()}", program)
    res = workspace.up(st)
    assert {k: (v.value, v.secret) for k, v in res.outputs.items()} == {"plain": ({"a": [1, 2], "b": "x"}, False)}
    assert "stack output" not in _runs(logged_cli)
    st.workspace.program = secret_program
    res = workspace.up(st)
    assert res.outputs["token"].value == "s3cr3t" and res.outputs["token"].secret
    assert res.outputs["plain"].value == "y"
    assert "stack output" in _runs(logged_cli)  # a secret output is read from the CLI, as events mask it
    workspace.destroy(st)
