"""``vcm apply DIR --shard I/N``: N processes at once, one folder, one state backend and nothing else shared.

Each shard runs as its own ``vcm`` process (as one CI job would) with its own state directory (a runner's
own disk) and the same backend URL and ``VCM_PASSPHRASE``, against a real (node-less) local host cluster
with the real engine and upstream provider. Covers: the N processes apply every tenant of the folder
exactly once (the shards are disjoint, their union is the folder, each stack has one update in its
history, each tenant's namespace is on the cluster); a re-run with another N finds every stack (nothing
created, nothing changed, no stack added, one more update each); and the same once with the backend on
a real S3-compatible object store on loopback (SeaweedFS, ``tests/integration/objectstore.py``), through
Pulumi's own ``s3://`` URL, where a third run finds every tenant's fingerprint in the bucket and starts no
engine; the fast path on S3 from a second machine, and its twin (a lock in the bucket must send the tenant to
the engine); and a job killed mid-apply on S3, whose lock no other machine can judge stale: the next apply
says to run ``pulumi cancel``, and after it converges.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client, config
from pulumi import automation as auto

from vcluster_mgr import localcluster, operations, platformconfig, sharding, spec, workspace
from vcluster_mgr.workspace import locks, stacks

from .conftest import small_tenant
from .objectstore import ObjectStore, listening_addresses, object_store_binary


def tenant_names(prefix: str) -> list[str]:
    """Seven tenants; each test has its own prefix, since the tests share the session's host cluster."""
    return [f"{prefix}-{c}" for c in "abcdefg"]


class Fleet:
    """N machines' worth of ``vcm``: one folder, one backend URL, one passphrase, a state dir each."""

    def __init__(self, cluster: localcluster.Cluster, tmp: Path, backend_url: str, extra_env: dict[str, str],
                 tenants: list[str]) -> None:
        self.cluster = cluster
        self.tenants = tenants
        self.tmp = tmp
        self.backend_url = backend_url
        self.passphrase = secrets.token_urlsafe(24)
        self.extra_env = extra_env
        self.folder = tmp / "tenants"
        self.folder.mkdir()
        for name in tenants:
            (self.folder / f"{name}.yaml").write_text(yaml.safe_dump(small_tenant(name, "strict")))

    def env(self, runner: str) -> dict[str, str]:
        return {**os.environ, **self.extra_env, "KUBECONFIG": str(self.cluster.kubeconfig),
                "VCM_STATE_DIR": str(self.tmp / runner), "VCM_BACKEND_URL": self.backend_url,
                "VCM_PASSPHRASE": self.passphrase}

    def apply_shards(self, count: int, full: bool = False) -> list[list[dict[str, object]]]:
        """``vcm apply DIR --shard i/count`` for every i, all started before any is waited for; ``full``: the
        engine runs for every tenant (``--full``), the fingerprint's fast path not taken."""
        procs = [subprocess.Popen([sys.executable, "-m", "vcluster_mgr", "apply", str(self.folder),
                                   "--shard", f"{i}/{count}", "--yes", "-o", "json", *(["--full"] if full else [])],
                                  env=self.env(f"runner-{count}-{i}"), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
                 for i in range(1, count + 1)]
        results = []
        for i, proc in enumerate(procs, start=1):
            out, err = proc.communicate(timeout=1200)
            assert proc.returncode == 0, f"shard {i}/{count}:\n{out[-3000:]}\n{err[-3000:]}"
            assert f"shard {i}/{count}:" in err
            for secret in (self.passphrase, self.extra_env.get("AWS_SECRET_ACCESS_KEY")):
                assert not secret or (secret not in out and secret not in err), "a secret reached the output"
            results.append(json.loads(out))
        return results

    def reader(self, monkeypatch: pytest.MonkeyPatch) -> workspace.Settings:
        for key, value in self.extra_env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("VCM_PASSPHRASE", self.passphrase)
        return workspace.settings(state_dir=self.tmp / "reader", backend_url=self.backend_url,
                                  kubeconfig=str(self.cluster.kubeconfig))

    def updates(self, s: workspace.Settings) -> dict[str, int]:
        """Updates in each tenant stack's history, by stack name."""
        ws = stacks.project_workspace(s, stacks.TENANT_PROJECT)
        return {summary.name: sum(1 for e in auto.Stack.select(summary.name, ws).history() if e.kind == "update")
                for summary in ws.list_stacks()}


def _check_split(tenants: list[str], results: list[list[dict[str, object]]], count: int) -> None:
    """Shard i applied exactly the tenants the split gives it; together, every tenant once."""
    applied = [[str(o["tenant"]) for o in shard] for shard in results]
    for i, names in enumerate(applied, start=1):
        expected = sharding.select(tenants, sharding.Shard(i, count), lambda t: f"default.{t}")
        assert sorted(names) == sorted(expected), f"shard {i}/{count}"
    flat = [n for names in applied for n in names]
    assert sorted(flat) == sorted(tenants), "the shards overlap or miss a tenant"
    assert all(o["ok"] for shard in results for o in shard)


def _run_fleet(fleet: Fleet, monkeypatch: pytest.MonkeyPatch, first: int, second: int,
               proven: bool = False) -> None:
    """Apply the folder in ``first`` shards, then again in ``second`` with the engine forced, so every stack's
    history counts both runs; ``proven`` (backends the fingerprint's fast path reads): a third run in ``second``
    shards finds every tenant's fingerprint, recorded by another shard's process, and starts no engine."""
    # the folder is split so that every process has work: the concurrency is real
    tenants = fleet.tenants
    assert all(sharding.select(tenants, sharding.Shard(i, first), lambda t: f"default.{t}")
               for i in range(1, first + 1))
    results = fleet.apply_shards(first)
    _check_split(tenants, results, first)
    for shard in results:
        for o in shard:
            assert o["changes"].get("create", 0) > 0, o  # type: ignore[attr-defined]
    s = fleet.reader(monkeypatch)
    assert fleet.updates(s) == {f"default.{t}": 1 for t in tenants}
    core = client.CoreV1Api(config.new_client_from_config(str(fleet.cluster.kubeconfig)))  # type: ignore[no-untyped-call]
    for t in tenants:
        meta = core.read_namespace(f"{t}-app").metadata
        assert meta is not None and (meta.labels or {}).get("vcluster-mgr.dev/tenant") == t

    again = fleet.apply_shards(second, full=True)
    _check_split(tenants, again, second)
    for shard in again:
        for o in shard:
            changed = {k: v for k, v in o["changes"].items() if k != "same" and v}  # type: ignore[attr-defined]
            assert changed == {}, f"{o['tenant']} changed on a re-run with {second} shards: {changed}"
            assert o["path"] == "engine", o
    assert fleet.updates(s) == {f"default.{t}": 2 for t in tenants}, "a stack was duplicated or missed"
    if proven:
        third = fleet.apply_shards(second)
        _check_split(tenants, third, second)
        assert all(o["ok"] and o["path"] != "engine" for shard in third for o in shard), third
        assert fleet.updates(s) == {f"default.{t}": 2 for t in tenants}, "the fast path ran the engine"


def test_shards_share_a_file_backend(host_cluster: localcluster.Cluster, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet(host_cluster, tmp_path, (tmp_path / "shared-backend").as_uri(), {}, tenant_names("shardf"))
    _run_fleet(fleet, monkeypatch, first=3, second=2, proven=True)


@pytest.fixture()
def object_store(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    store = ObjectStore(object_store_binary(), tmp_path_factory.mktemp("objectstore"))
    store.start()
    try:
        assert store.proc is not None
        addresses = listening_addresses(store.proc.pid)
        assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses
        yield store
    finally:
        store.stop()
    assert not store.data_dir.exists() and store.process_gone(), "the object store left something behind"


def test_shards_share_an_s3_backend(host_cluster: localcluster.Cluster, tmp_path: Path, object_store: ObjectStore,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = object_store.create_bucket("vcm-state")
    url = f"s3://{bucket}?region=us-east-1&endpoint={object_store.endpoint}&use_path_style=true"
    fleet = Fleet(host_cluster, tmp_path, url, object_store.credentials_env(), tenant_names("shards"))
    _run_fleet(fleet, monkeypatch, first=2, second=3, proven=True)
    keys = object_store.keys(bucket)
    assert ".pulumi/stacks/vcm-tenants/default.shards-a.json" in keys, keys[:40]
    assert not any(k.startswith(".pulumi/locks/") and k.endswith(".json") for k in keys), "a lock was left"


def test_killed_shard_leaves_a_lock_on_s3_that_vcm_unlock_clears(host_cluster: localcluster.Cluster,
                                                                    tmp_path: Path, object_store: ObjectStore) -> None:
    """A job killed mid-apply leaves its lock in the bucket; no one can tell from another machine that its
    process is gone, so the next apply of that stack stops, names the lock's holder and its age and the command
    that breaks it (``vcm unlock``), and after that command the apply converges."""
    bucket = object_store.create_bucket("vcm-locks")
    url = f"s3://{bucket}?region=us-east-1&endpoint={object_store.endpoint}&use_path_style=true"
    fleet = Fleet(host_cluster, tmp_path, url, object_store.credentials_env(), ["shardk-a"])
    spec_file = str(fleet.folder / "shardk-a.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "vcluster_mgr", "apply", spec_file, "--yes"],
                            env=fleet.env("runner-killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    lock_dir = ".pulumi/locks/organization/vcm-tenants/default.shardk-a/"
    try:
        deadline = time.monotonic() + 600
        while not any(k.startswith(lock_dir) for k in object_store.keys(bucket)):
            assert proc.poll() is None, "the apply ended before it took its lock"
            assert time.monotonic() < deadline, "the apply never took its lock"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert any(k.startswith(lock_dir) for k in object_store.keys(bucket))

    def apply(runner: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vcluster_mgr", "apply", spec_file, "--yes"],
                              env=fleet.env(runner), capture_output=True, text=True, timeout=900,
                              stdin=subprocess.DEVNULL, check=False)

    blocked = apply("runner-next")
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    message = " ".join(blocked.stderr.split())
    assert "being updated by another process" in message, message
    assert "(pid " in message and " ago)" in message, message  # the holder and its age
    assert "`vcm unlock shardk-a --cluster default` breaks the lock" in message, message
    assert "Traceback" not in blocked.stderr

    # what the message says to run, as a user would
    unlock = subprocess.run([sys.executable, "-m", "vcluster_mgr", "unlock", "shardk-a", "--cluster", "default",
                             "--yes"], env=fleet.env("runner-next"), capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL, check=False)
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    assert not any(k.startswith(lock_dir) for k in object_store.keys(bucket))

    done = apply("runner-next")
    assert done.returncode == 0, done.stdout + done.stderr
    core = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))  # type: ignore[no-untyped-call]
    meta = core.read_namespace("shardk-a-app").metadata
    assert meta is not None and (meta.labels or {}).get("vcluster-mgr.dev/tenant") == "shardk-a"


def test_a_shard_with_no_tenants_succeeds_and_touches_nothing(host_cluster: localcluster.Cluster,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More jobs than tenants: the jobs left without a stack exit 0 with nothing done and no stack made."""
    fleet = Fleet(host_cluster, tmp_path, (tmp_path / "shared-backend").as_uri(), {}, ["sharde-a"])
    owner = sharding.shard_of("default.sharde-a", 3)
    other = next(i for i in range(1, 4) if i != owner)
    res = subprocess.run([sys.executable, "-m", "vcluster_mgr", "apply", str(fleet.folder), "--shard", f"{other}/3",
                          "--yes", "-o", "json"], env=fleet.env("runner-empty"), capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout) == []
    assert f"shard {other}/3: 0 of 1 tenant stack(s)" in res.stderr
    assert fleet.updates(fleet.reader(monkeypatch)) == {}


def test_the_fast_path_reads_an_s3_backend(host_cluster: localcluster.Cluster, tmp_path: Path,
                                           object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """On an ``s3://`` backend the fingerprint travels with the stack: a second machine (another state dir,
    the same bucket and passphrase) proves a tenant the first one applied and starts no engine; a label
    changed by someone else sends it to the engine, which puts it back. The twin: a lock in the bucket (a run
    going on, or killed, on another machine) must send the tenant to the engine; with the bucket's locks
    unread (as before the fast path read them) the fingerprint says "no change" while the stack is locked."""
    bucket = object_store.create_bucket("vcm-fast")
    url = f"s3://{bucket}?region=us-east-1&endpoint={object_store.endpoint}&use_path_style=true"
    fleet = Fleet(host_cluster, tmp_path, url, object_store.credentials_env(), ["shardp-a"])
    first = fleet.reader(monkeypatch)
    second = workspace.settings(state_dir=tmp_path / "second", backend_url=url,
                                kubeconfig=str(host_cluster.kubeconfig))
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    job = operations.Job(spec.load_specs([fleet.folder / "shardp-a.yaml"])[0], target, platformconfig.Blueprint())

    def apply(s: workspace.Settings) -> workspace.Outcome:
        [outcome] = operations.run_jobs(s, [job], "apply")
        assert outcome.ok, outcome.error
        return outcome

    def prove(s: workspace.Settings) -> str | None:
        [why] = operations.prove(s, operations.prepare([job], "apply"))
        return why

    try:
        made = apply(first)
        assert made.path == workspace.ENGINE_PATH and made.why == "a new tenant"
        assert prove(second) is None, "the second machine must see the fingerprint in the bucket"
        again = apply(second)
        assert again.path == workspace.FINGERPRINT_PATH, (again.path, again.why)
        assert fleet.updates(second) == {"default.shardp-a": 1}, "the fast path ran the engine"

        # someone else loosens the namespace: the engine runs (from the second machine) and puts it back
        core = client.CoreV1Api(config.new_client_from_config(str(host_cluster.kubeconfig)))  # type: ignore[no-untyped-call]
        core.patch_namespace("shardp-a-app", {"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}})
        assert prove(second) == "Namespace shardp-a-app changed on the cluster"
        repaired = apply(second)
        assert repaired.path == workspace.ENGINE_PATH and repaired.changes.get("update", 0) > 0, repaired.changes
        meta = core.read_namespace("shardp-a-app").metadata
        assert meta is not None and (meta.labels or {})["pod-security.kubernetes.io/enforce"] == "restricted"
        assert prove(first) is None, "the engine's run recorded a new fingerprint both machines see"

        # a lock another machine holds on the stack, as the engine writes it
        s3 = boto3.client("s3", endpoint_url=object_store.endpoint, region_name="us-east-1",
                          aws_access_key_id=object_store.access_key, aws_secret_access_key=object_store.secret_key)
        lock = ".pulumi/locks/organization/vcm-tenants/default.shardp-a/0f1e2d3c.json"
        s3.put_object(Bucket=bucket, Key=lock, Body=json.dumps({
            "pid": 4242, "username": "ci", "hostname": "runner-elsewhere",
            "timestamp": "2026-12-06T19:00:00Z"}).encode())
        try:
            why = prove(second)
            assert why is not None and why.startswith("its stack is locked (ci@runner-elsewhere (pid 4242"), why
            with pytest.MonkeyPatch.context() as m:  # the twin: the bucket's locks unread
                m.setattr(locks, "held", lambda *_: [])
                assert prove(second) is None, "with the locks unread the fingerprint should have said no change"
        finally:
            s3.delete_object(Bucket=bucket, Key=lock)
        assert prove(second) is None
    finally:
        operations.delete_tenant(second, target, "shardp-a")
