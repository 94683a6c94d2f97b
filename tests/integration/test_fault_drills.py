"""Fault drills: an apply killed midway (its process group, or vcm alone), the lock such a kill leaves and
the ways out of it, the empty metadata file a kill during a checkpoint write leaves (the engine cannot read
the stack past it), the API server gone during an apply (and, for any request, named as unreachable at
once), two applies of one tenant at once, a read-only state directory, and a delete that must leave nothing
behind.

A killed apply must leave no process running a few seconds later: every process that was below ``vcm``
at the kill and every process working in its temporary folder (``leftovers``; the engine's keeper,
``workspace.reaper``, makes it so; its twin is in ``test_folder_drill.py`` and ``tests/test_keeper.py``).

Each drill runs `vcm` as a separate process (as a user or CI would) against a local host cluster of
this module, so killing and restarting its parts disturbs no other test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import cluster, errors, localcluster, platformconfig, render, spec
from vcluster_mgr.workspace import locks, reaper

from . import leftovers

SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}}}
spec:
  owners: [{{kind: User, name: owner@example.com, role: admin}}]
  namespaces: [a, b, c]
"""


@pytest.fixture(scope="module")
def drill_cluster(bin_dir: Path) -> Iterator[localcluster.Cluster]:
    name = f"drills-{os.getpid()}"
    cluster = localcluster.up(name)
    try:
        yield cluster
    finally:
        localcluster.down(name)


@pytest.fixture()
def drill(drill_cluster: localcluster.Cluster, tmp_path: Path) -> Drill:
    return Drill(drill_cluster, tmp_path)


class Drill:
    def __init__(self, cluster: localcluster.Cluster, tmp: Path) -> None:
        self.cluster = cluster
        self.state = tmp / "state"
        self.tmp = tmp
        self.run_tmp = tmp / "run-tmp"  # every vcm's TMPDIR: the Automation API's folders are made here
        self.run_tmp.mkdir()
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "VCM_STATE_DIR": str(self.state),
                    "TMPDIR": str(self.run_tmp)}

    def spec(self, name: str) -> Path:
        path = self.tmp / f"{name}.yaml"
        path.write_text(SPEC.format(name=name))
        return path

    def vcm(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "vcluster_mgr", *args], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def kill_when_applying(self, tenant: str, group: bool) -> subprocess.CompletedProcess[str]:
        """Start ``vcm apply`` of ``tenant`` and SIGKILL it (its whole process group, or vcm alone) once its
        first namespace exists; assert that nothing of it runs a few seconds later. Its output."""
        proc = self.start("apply", str(self.spec(tenant)), "--yes")
        self.wait_for_namespace(f"{tenant}-a")  # namespaces come first: the apply is under way
        run = leftovers.snapshot(proc.pid)
        assert any("pulumi-resource-kubernetes" in p.command for p in run), run
        if group:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole job: vcm, the pulumi CLI and its plugins
        else:
            proc.kill()  # vcm alone, as a supervisor that kills one pid does
        out, err = proc.communicate(timeout=30)
        left = leftovers.left_after(run, self.run_tmp, timeout=reaper.GRACE + 4 if not group else 5)
        leftovers.kill(left)
        assert not left, left
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def lock_files(self, tenant: str) -> list[Path]:
        return sorted((self.state / "pulumi" / ".pulumi" / "locks").rglob(f"default.{tenant}/*.json"))

    def apply_json(self, path: Path) -> list[dict[str, object]]:
        res = self.vcm("apply", str(path), "--yes", "-o", "json")
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(str(self.cluster.kubeconfig))

    def wait_for_namespace(self, name: str, timeout: float = 60) -> None:
        core = client.CoreV1Api(self.api())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                core.read_namespace(name)
                return
            except ApiException:
                time.sleep(0.05)
        raise AssertionError(f"namespace {name} never appeared")

    def tenant_objects(self, tenant: str) -> list[tuple[str, str, str]]:
        """(kind, namespace, name) of every object carrying the tenant's label, cluster-wide."""
        dyn = dynamic.DynamicClient(self.api())
        found = []
        for obj in render.render_tenant(spec.parse_spec_text(SPEC.format(name=tenant))):
            res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            for item in res.get(label_selector=f"vcluster-mgr.dev/tenant={tenant}").items:
                found.append((obj["kind"], item.metadata.namespace or "", item.metadata.name))
        return sorted(set(found))

    def stack_files(self) -> list[Path]:
        return sorted((self.state / "pulumi" / ".pulumi" / "stacks").rglob("*.json"))


def expected_objects(tenant: str) -> list[tuple[str, str, str]]:
    objs = render.render_tenant(spec.parse_spec_text(SPEC.format(name=tenant)))
    return sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs)


def changes(outcome: list[dict[str, object]]) -> dict[str, int]:
    return outcome[0]["changes"]  # type: ignore[return-value]


def test_apply_killed_midway_then_rerun_converges(drill: Drill) -> None:
    path = drill.spec("killed")
    drill.kill_when_applying("killed", group=True)
    partial = drill.tenant_objects("killed")
    assert 0 < len(partial) < len(expected_objects("killed")) or partial == expected_objects("killed")
    # the re-run clears the dead process's lock, adopts what it half-made, and completes
    result = drill.apply_json(path)
    assert result[0]["ok"] is True
    assert drill.tenant_objects("killed") == expected_objects("killed")
    # and nothing is left to do: no duplicate, no pending operation
    again = drill.apply_json(path)
    assert set(changes(again)) == {"same"}


def test_lock_of_a_killed_run_is_cleared_by_the_next_delete_with_a_message(drill: Drill) -> None:
    drill.kill_when_applying("locked", group=True)
    assert drill.lock_files("locked"), "the killed run left no lock: the drill would prove nothing"
    res = drill.vcm("delete", "locked", "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "removed the lock left on stack default.locked by " in " ".join(res.stderr.split())
    assert "no longer runs" in res.stderr
    assert not drill.lock_files("locked")


def _engine_export(drill: Drill, bin_dir: Path, stack: str) -> subprocess.CompletedProcess[str]:
    """The engine's own CLI reading the stack (``pulumi stack export``), outside vcm."""
    home = drill.tmp / "pulumi-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PULUMI_BACKEND_URL": (drill.state / "pulumi").as_uri(), "PULUMI_HOME": str(home),
           "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_CONFIG_PASSPHRASE": ""}
    return subprocess.run([str(bin_dir / "pulumi"), "stack", "export", "--stack", f"organization/vcm-tenants/{stack}"],
                          env=env, cwd=drill.tmp, capture_output=True, text=True, timeout=120, check=False)


def test_a_kill_during_a_checkpoint_write_is_repaired_by_the_next_apply(drill: Drill, bin_dir: Path) -> None:
    """What a SIGKILL between the engine's two writes of a checkpoint leaves on a file backend (its lock and
    an empty ``.attrs`` sidecar: the write of the sidecar is not atomic, the checkpoint's own is): made by hand
    here, as a real kill lands there only by chance. The engine itself cannot read the stack past it; the next
    ``vcm apply`` removes it with a line saying so and converges."""
    path = drill.spec("torn")
    assert drill.apply_json(path)[0]["ok"] is True
    sidecar = drill.state / "pulumi" / ".pulumi" / "stacks" / "vcm-tenants" / "default.torn.json.attrs"
    assert sidecar.stat().st_size > 0
    sidecar.write_bytes(b"")
    folder = drill.state / "pulumi" / ".pulumi" / "locks" / "organization" / "vcm-tenants" / "default.torn"
    folder.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    (folder / "killed.json").write_text(json.dumps({"pid": int(dead.stdout), "username": "ci",
                                                    "hostname": socket.gethostname(),
                                                    "timestamp": "2026-12-06T23:42:22Z"}))
    # twin: the engine, reading the stack as it is
    torn = _engine_export(drill, bin_dir, "default.torn")
    assert torn.returncode != 0 and "EOF" in torn.stderr, torn.stdout + torn.stderr
    res = drill.vcm("apply", str(path), "--yes", "-o", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    text = " ".join(res.stderr.split())
    assert "removed the empty metadata file default.torn.json.attrs a killed write left on stack default.torn" in text
    assert json.loads(res.stdout)[0]["ok"] is True
    assert drill.tenant_objects("torn") == expected_objects("torn")
    assert _engine_export(drill, bin_dir, "default.torn").returncode == 0


def test_vcm_killed_alone_lets_the_engine_cancel_cleanly(drill: Drill) -> None:
    """vcm alone killed: its keeper asks the CLI to cancel, which ends the update and releases the lock, so
    nothing is left to clear; the next apply converges."""
    drill.kill_when_applying("alone", group=False)
    assert not drill.lock_files("alone")
    assert drill.apply_json(drill.spec("alone"))[0]["ok"] is True
    assert drill.tenant_objects("alone") == expected_objects("alone")


def test_a_lock_of_another_machine_is_named_and_vcm_unlock_breaks_it(drill: Drill) -> None:
    path = drill.spec("foreign")
    drill.apply_json(path)
    folder = drill.state / "pulumi" / ".pulumi" / "locks" / "organization" / "vcm-tenants" / "default.foreign"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "held.json").write_text(json.dumps({"pid": 4242, "username": "ci", "hostname": "runner-7",
                                                  "timestamp": "2026-12-06T09:00:00Z"}))
    for refused in (drill.vcm("apply", str(path), "--yes"), drill.vcm("delete", "foreign", "--yes")):
        text = " ".join(refused.stderr.split())
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "held by ci@runner-7 (pid 4242, on another machine) since 2026-12-06" in text, text
        assert " ago)" in text and "`vcm unlock foreign --cluster default` breaks the lock" in text, text
    unlocked = drill.vcm("unlock", "foreign", "--yes")
    assert unlocked.returncode == 0, unlocked.stdout + unlocked.stderr
    assert "broke the lock of ci@runner-7 (pid 4242" in " ".join(unlocked.stderr.split())
    assert set(changes(drill.apply_json(path))) == {"same"}


def test_twin_vcm_unlock_keeps_the_lock_of_a_run_still_going_here(drill: Drill) -> None:
    path = drill.spec("busy")
    drill.apply_json(path)
    folder = drill.state / "pulumi" / ".pulumi" / "locks" / "organization" / "vcm-tenants" / "default.busy"
    folder.mkdir(parents=True, exist_ok=True)
    live = subprocess.Popen(["bash", "-c", "exec -a pulumi sleep 120"])
    while not locks.holder_runs(live.pid):  # until bash has exec'd, its lock would read as stale
        time.sleep(0.01)
    try:
        (folder / "held.json").write_text(json.dumps({"pid": live.pid, "username": "root",
                                                      "hostname": socket.gethostname(),
                                                      "timestamp": "2026-12-06T09:00:00Z"}))
        refused = drill.vcm("unlock", "busy", "--yes")
        assert refused.returncode == 1 and "still going on this machine" in refused.stderr, refused.stderr
        assert (folder / "held.json").exists()
        blocked = drill.vcm("apply", str(path), "--yes")
        assert blocked.returncode == 1 and "wait for that run to end" in " ".join(blocked.stderr.split())
        forced = drill.vcm("unlock", "busy", "--yes", "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert not (folder / "held.json").exists()
    finally:
        live.kill()
        live.wait()


def test_api_server_down_during_apply_then_rerun_converges(drill: Drill) -> None:
    path = drill.spec("outage")
    proc = drill.start("apply", str(path), "--yes")
    drill.wait_for_namespace("outage-a")
    localcluster.stop_process(drill.cluster.name, "kube-apiserver")
    try:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, out + err
        assert drill.cluster.server in out + err  # the error names the server
        # refused when the engine's next request finds the port closed; reset when the server died under a
        # request in flight (which of the two is a matter of timing on a loaded machine)
        said = (out + err).lower()
        assert "connection refused" in said or "connection reset by peer" in said, out + err
    finally:
        localcluster.start_process(drill.cluster.name, "kube-apiserver")
    result = drill.apply_json(path)
    assert result[0]["ok"] is True
    assert drill.tenant_objects("outage") == expected_objects("outage")


def test_a_stopped_api_server_is_unreachable_naming_it(drill: Drill) -> None:
    """The funnel's ``UnreachableError``, at once (no retries), with the server named; the same connection works
    again once the server is back; a command says the same in one line and exits 1."""
    target = platformconfig.Target(name="drills", kubeconfig=str(drill.cluster.kubeconfig))
    with cluster.connect(target) as conn:
        assert cluster.cluster_uid(conn)
        localcluster.stop_process(drill.cluster.name, "kube-apiserver")
        try:
            started = time.monotonic()
            with pytest.raises(errors.UnreachableError) as caught:
                cluster.cluster_uid(conn)
            assert time.monotonic() - started < 10, "an unreachable server is said at once, not retried"
            assert str(caught.value).startswith(f"the API server {drill.cluster.server} is not reachable: ")
            assert str(caught.value).endswith("(to identify host cluster 'drills')")
            res = drill.vcm("usage", "--all")
            assert res.returncode == 1, res.stdout + res.stderr
            assert "Traceback" not in res.stderr
            assert f"the API server {drill.cluster.server} is not reachable" in " ".join(res.stderr.split())
        finally:
            localcluster.start_process(drill.cluster.name, "kube-apiserver")
        assert cluster.cluster_uid(conn)


def test_two_concurrent_applies_of_one_tenant(drill: Drill) -> None:
    path = drill.spec("twice")
    first, second = drill.start("apply", str(path), "--yes"), drill.start("apply", str(path), "--yes")
    results = [p.communicate(timeout=300) + (p.returncode,) for p in (first, second)]
    codes = sorted(code for _, _, code in results)
    assert codes[0] == 0, results
    for out, err, code in results:
        if code != 0:
            assert code == 1 and "being updated by another process" in out + err, (out, err)
    assert drill.tenant_objects("twice") == expected_objects("twice")
    assert set(changes(drill.apply_json(path))) == {"same"}


def test_read_only_state_dir_is_a_clear_error(drill: Drill) -> None:
    path = drill.spec("readonly")
    drill.apply_json(path)
    before = {p: p.read_bytes() for p in drill.stack_files()}
    # immutable files refuse even root (chmod would not); restored in finally
    subprocess.run(["chattr", "-R", "+i", str(drill.state)], check=True)
    try:
        res = drill.vcm("apply", str(path), "--yes")
    finally:
        subprocess.run(["chattr", "-R", "-i", str(drill.state)], check=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "is not writable" in res.stderr and "Nothing was changed" in res.stderr
    assert {p: p.read_bytes() for p in drill.stack_files()} == before


def test_delete_leaves_no_object_and_no_stack(drill: Drill) -> None:
    path = drill.spec("gone")
    drill.apply_json(path)
    assert drill.tenant_objects("gone") == expected_objects("gone")
    assert any("gone" in p.name for p in drill.stack_files())
    res = drill.vcm("delete", "gone", "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert drill.tenant_objects("gone") == []
    core = client.CoreV1Api(drill.api())
    for ns in ("gone-a", "gone-b", "gone-c"):
        with pytest.raises(ApiException) as info:
            core.read_namespace(ns)
        assert info.value.status == 404
    assert not any("gone" in p.name for p in drill.stack_files())
    listed = drill.vcm("list", "-o", "json")
    assert "gone" not in [r["tenant"] for r in json.loads(listed.stdout)]
    # deleting it again says there is no such tenant
    again = drill.vcm("delete", "gone", "--yes")
    assert again.returncode == 1 and "no tenant 'gone'" in again.stderr
