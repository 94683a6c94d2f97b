"""The folder stack survives SIGKILL at any point: a re-run converges, nothing lost, nothing duplicated.

The folder stack (``workspace.folder_up``) skips the per-step checkpoint, so a killed run has recorded
nothing of what it made. Its safety rests on the provider's server-side apply, which upserts: the next
run takes over the objects the killed one created. The drill applies a folder of 50 tenants with the
real engine, provider and API server, kills the whole process group (engine, provider, program) at
several points (right after the first object, early, midway, late, and at the engine's summary), and then:

- nothing of a killed run is left running a few seconds later: every process that was below it at the
  kill and every process working in its temporary folder is gone (the engine's keeper, ``reaper``); the
  twin starts the CLI without its keeper and finds the provider still running (then ends it);

- a re-run with server-side apply switched off fails on an object the killed run made but did not
  record (so the kills really did leave unrecorded objects: the drill can fail);
- a normal re-run succeeds; the state then holds every rendered object exactly once, with no pending
  operation, and a further run (refresh included, so every object is read back from the cluster) changes
  nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vcluster_mgr import localcluster, platformconfig, render, spec, workspace
from vcluster_mgr.workspace import folder

from . import leftovers

TENANTS = 50
RUNNER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from vcluster_mgr import platformconfig, spec, workspace
    state, specs, kubeconfig = sys.argv[1:4]
    if sys.argv[4:] == ["without-keeper"]:  # the twin: the CLI started as the Automation API starts it
        import semver
        from pulumi import automation as auto
        from vcluster_mgr import toolchain
        from vcluster_mgr.workspace import stacks

        def plain(root):
            cmd = auto.PulumiCommand.__new__(auto.PulumiCommand)
            cmd.command = str(toolchain.bin_dir() / "pulumi")
            cmd.version = semver.VersionInfo.parse(toolchain.PULUMI_VERSION)
            return cmd
        stacks._pulumi_command = plain
    s = workspace.settings(state_dir=Path(state))
    tenants = spec.load_specs([Path(specs)])
    target = platformconfig.Target("default", kubeconfig)

    def on_event(ev):
        if ev.res_outputs_event is not None:
            print("done", ev.res_outputs_event.metadata.op.value, ev.res_outputs_event.metadata.urn, flush=True)
        elif ev.summary_event is not None:
            print("summary", flush=True)

    r = workspace.folder_up(s, target, platformconfig.Blueprint(), tenants, stack_name="drill", batches=1,
                            with_platform=False, on_event=on_event)
    print("result", json.dumps(r.changes), flush=True)
""")


def _specs(folder_dir: Path) -> list[spec.Tenant]:
    folder_dir.mkdir()
    for i in range(TENANTS):
        name = f"fd{i:02d}"
        (folder_dir / f"{name}.yaml").write_text(json.dumps({
            "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"owners": [{"kind": "User", "name": f"{name}@example.com", "role": "admin"}],
                     "namespaces": ["app"], "podSecurity": "restricted"}}))
    return spec.load_specs([folder_dir])


def _start(state: Path, specs: Path, cluster: localcluster.Cluster, env: dict[str, str],
           *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(state), str(specs), str(cluster.kubeconfig), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)


#: seconds a killed run's processes may take to end (the keeper's look at its parent, then its kills)
GONE_WITHIN = 5


def _run_and_kill(state: Path, specs: Path, cluster: localcluster.Cluster, env: dict[str, str],
                  after: int | str, *extra: str) -> tuple[int, set[leftovers.Proc]]:
    """Start a folder run and SIGKILL its whole process group after ``after`` completed steps (or at the
    ``summary`` event); the number of steps it had completed, and what of the run still runs
    ``GONE_WITHIN`` seconds later: every process below the run just before the kill, and every process
    working in the run's own ``TMPDIR`` (the Automation API's ``automation-*`` folder is made there)."""
    tmp = Path(env["TMPDIR"]) / f"run-{after}-{len(extra)}"
    tmp.mkdir(parents=True)
    proc = _start(state, specs, cluster, {**env, "TMPDIR": str(tmp)}, *extra)
    done = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        done += line.startswith("done ")
        if (after == "summary" and line.startswith("summary")) or (isinstance(after, int) and done >= after):
            run = leftovers.snapshot(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            break
    else:
        pytest.fail(f"the run ended before kill point {after}: {proc.stderr.read() if proc.stderr else ''}")
    proc.wait(timeout=60)
    if after != "summary":  # the check sees the provider (by the summary it may have ended already)
        assert any("pulumi-resource-kubernetes" in p.command for p in run), run
    return done, leftovers.left_after(run, tmp, timeout=GONE_WITHIN)


def _run(state: Path, specs: Path, cluster: localcluster.Cluster, env: dict[str, str]) -> tuple[int, str]:
    proc = _start(state, specs, cluster, env)
    out, err = proc.communicate(timeout=1800)
    return proc.returncode, out + err


def _state(state: Path) -> dict[str, object]:
    path = state / "pulumi" / ".pulumi" / "stacks" / folder.PROJECT / "drill.json"
    return json.loads(path.read_text())["checkpoint"]["latest"]  # type: ignore[no-any-return]


def test_folder_stack_converges_after_sigkill_at_every_point(host_cluster: localcluster.Cluster,
                                                             tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    tenants = _specs(specs)
    expected = sorted(
        f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}:{o['kind']}"
        for t in tenants for o in render.render_tenant(t))
    state = tmp_path / "state"
    env = {**os.environ, "VCM_STATE_DIR": str(state), "TMPDIR": str(tmp_path / "tmp")}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    s = workspace.settings(state_dir=state)  # the passphrase file is made once, before the runs
    try:
        runs = [_run_and_kill(state, specs, host_cluster, env, after)
                for after in (1, 60, len(expected) // 2, len(expected) - 40, "summary")]
        completed = [done for done, _ in runs]
        assert completed[0] >= 1 and completed[2] >= len(expected) // 2
        # nothing of a killed run lives on: not the engine, not the provider, not the language host
        assert all(not left for _, left in runs), [left for _, left in runs]

        # the twin: the CLI started without its keeper leaves its plugins running
        _, left = _run_and_kill(state, specs, host_cluster, env, 40, "without-keeper")
        leftovers.kill(left)
        assert any("pulumi-resource-kubernetes" in p.command for p in left), left

        # the twin: without server-side apply's upsert, taking over what a killed run made fails
        assert not _run_and_kill(state, specs, host_cluster, env, 30)[1]
        rc, out = _run(state, specs, host_cluster, {**env, "PULUMI_K8S_ENABLE_SERVER_SIDE_APPLY": "false"})
        assert rc != 0 and "already exists" in out, out[-3000:]

        rc, out = _run(state, specs, host_cluster, env)
        assert rc == 0, out[-3000:]
        latest = _state(state)
        assert not latest.get("pending_operations")
        k8s = [r for r in latest["resources"] if r["type"].startswith("kubernetes:")]  # type: ignore[union-attr]
        ids = sorted(f"{r['id'] if '/' in r['id'] else '/' + r['id']}:{r['type'].rsplit(':', 1)[-1]}" for r in k8s)
        assert len(ids) == len(set(ids)), "an object is recorded twice"
        assert ids == expected

        rc, out = _run(state, specs, host_cluster, env)
        assert rc == 0, out[-3000:]
        changes = json.loads(next(ln for ln in out.splitlines() if ln.startswith("result "))[len("result "):])
        assert set(changes) == {"same"}, changes
    finally:
        st = workspace.stack(s, "drill", lambda: None, project=folder.PROJECT,
                             target=platformconfig.Target("default", str(host_cluster.kubeconfig)))
        workspace.destroy(st)


def test_folder_batches_split_stably_and_delete_what_leaves(host_cluster: localcluster.Cluster,
                                                            tmp_path: Path) -> None:
    """Batches: each tenant in exactly one batch stack; a tenant removed from the folder is deleted by its
    batch's next run, and no other tenant moves; another batch count is refused, nothing changed."""
    from kubernetes import client, config

    from vcluster_mgr import errors, sharding

    specs = tmp_path / "specs"
    tenants = [t for t in _specs(specs) if t.name < "fd06"]
    s = workspace.settings(state_dir=tmp_path / "state")
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    core = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))
    try:
        first = workspace.folder_up(s, target, platformconfig.Blueprint(), tenants, stack_name="split",
                                    batches=2, with_platform=False)
        assert sorted(first.batches) == ["split.1of2", "split.2of2"]
        for index in (1, 2):
            part = sharding.select(tenants, sharding.Shard(index, 2), key=lambda t: t.name)
            recorded = workspace.recorded_outputs(s, folder.PROJECT, f"split.{index}of2")
            assert recorded is not None and sorted(recorded["tenants"]) == sorted(t.name for t in part)
        gone = tenants[0]
        left = tenants[1:]
        again = workspace.folder_up(s, target, platformconfig.Blueprint(), left, stack_name="split",
                                    with_platform=False)  # the count is found from the stacks
        assert again.changes.get("delete", 0) > 0 and "create" not in again.changes
        live = {ns.metadata.name for ns in core.list_namespace().items}
        assert f"{gone.name}-app" not in live and all(f"{t.name}-app" in live for t in left)
        with pytest.raises(errors.UsageError, match="another batch count"):
            workspace.folder_up(s, target, platformconfig.Blueprint(), left, stack_name="split", batches=4,
                                with_platform=False)
    finally:
        for index in (1, 2):
            workspace.destroy(workspace.stack(s, f"split.{index}of2", lambda: None, project=folder.PROJECT,
                                              target=target))
