"""Snapshots offline: reading vCluster's archive format (``snapshot_archive``), where a snapshot goes and comes
from (``snapshot_stores``: folders, files, ``s3://`` names; files written whole), the restore pod made from the
control plane's StatefulSet (``cluster.restore_pods.restore_pod``: what the host's admission policies ask of it),
and ``vcm restore`` refusing a file that is no snapshot before it asks any cluster (exit 2); the wiring of the
restore's steps (the control plane always started again) and of ``vcm delete``'s last-snapshot prompt; and the
archive's way in and out through the real ``_exec`` against a fake pod that plays what the local node did (exec
stdin ending after 32 KiB, a closed stdin overtaking the data, a second exec breaking the first off, a read-out
cut short): written in with no stdin, part by part as exec arguments, read out again when short, both checked by
size and sha256, and a restore whose archive arrived otherwise, or whose part's write ended with no status,
never run.

The archives here are built the way vcluster 0.36's ``pkg/snapshot/client.go`` writes them (a gzip tar, one
entry per key, the Helm release and the request first); the syncer's own archives are read in
``tests/integration/test_snapshots.py``.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import websocket
from kubernetes.stream import ws_client
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, snapshot_archive, snapshot_stores
from vcluster_mgr.cluster import control_plane_snapshots, pod_exec, restore_pods

NOW = datetime.datetime(2026, 12, 6, 15, 42, 10, tzinfo=datetime.UTC)


def archive(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=3) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            info.size = len(value)
            info.mode = 0o666
            tar.addfile(info, io.BytesIO(value))
    return buf.getvalue()


KEY_VALUE = [
    ("/vcluster/snapshot/release", b'{"releaseName":"vteam"}'),
    ("/vcluster/snapshot/request/v1", b"{}"),
    ("/registry/namespaces/shop", b"k8s\x00..."),
    ("/registry/configmaps/shop/menu", b"k8s\x00..."),
    ("/registry/configmaps/shop/kube-root-ca.crt", b"k8s\x00..."),
    ("/registry/deployments/shop/web", b"k8s\x00..."),
    ("/vcluster/mappings/abc", b"{}"),
]


# -- the archive ------------------------------------------------------------------------------------------


def test_a_key_value_snapshot_is_counted_by_resource() -> None:
    data = archive(KEY_VALUE)
    summary = snapshot_archive.summarize(data, source="x")
    assert summary.kind == "key-value"
    assert summary.keys == 5  # vcluster's own release and request entries are not keys of the store
    assert summary.resources == {"namespaces": 1, "configmaps": 2, "deployments": 1}
    assert summary.size == len(data)
    assert summary.line().startswith("key-value, 5 keys, ") and "2 configmaps" in summary.line()


def test_an_embedded_etcd_snapshot_is_one_database() -> None:
    summary = snapshot_archive.summarize(archive([(snapshot_archive.ETCD_DB_KEY, b"bbolt...")]), source="x")
    assert summary.kind == "etcd" and summary.keys == 0


@pytest.mark.parametrize(("data", "says"), [
    (b"not gzip at all", "gzip-compressed tar"),
    (gzip.compress(b"gzip of no tar" * 100), "gzip-compressed tar"),
    (archive([("notes.txt", b"hello")]), "no key of a virtual cluster's store"),
    (archive(KEY_VALUE)[:200], "gzip-compressed tar"),  # cut short
    (b"", "gzip-compressed tar"),
])
def test_what_is_no_snapshot_is_refused_with_its_name(data: bytes, says: str) -> None:
    with pytest.raises(errors.UsageError) as caught:
        snapshot_archive.summarize(data, source="--from ./x.tar.gz")
    assert "--from ./x.tar.gz" in str(caught.value) and says in str(caught.value)


# -- where snapshots go ----------------------------------------------------------------------------------


def test_a_folder_gets_a_file_named_by_tenant_and_time(tmp_path: Path) -> None:
    assert snapshot_stores.file_name("vteam", NOW) == "vteam-20261206T154210Z.tar.gz"
    assert snapshot_stores.destination(str(tmp_path), tenant="vteam", now=NOW).path == \
        tmp_path / "vteam-20261206T154210Z.tar.gz"
    new = tmp_path / "new"
    assert snapshot_stores.destination(f"{new}/", tenant="vteam", now=NOW).path == \
        new / "vteam-20261206T154210Z.tar.gz"
    assert snapshot_stores.destination(str(tmp_path / "x.tar.gz"), tenant="vteam", now=NOW).path == \
        tmp_path / "x.tar.gz"


def test_s3_names_a_key_or_a_prefix() -> None:
    key = snapshot_stores.destination("s3://backups/vteam/last.tar.gz", tenant="vteam", now=NOW)
    assert (key.bucket, key.key, key.is_s3, str(key)) == ("backups", "vteam/last.tar.gz", True,
                                                          "s3://backups/vteam/last.tar.gz")
    prefix = snapshot_stores.destination("s3://backups/vteam/", tenant="vteam", now=NOW, endpoint="http://s3:8333")
    assert (prefix.key, prefix.endpoint) == ("vteam/vteam-20261206T154210Z.tar.gz", "http://s3:8333")
    assert snapshot_stores.destination("s3://backups", tenant="t", now=NOW).key == "t-20261206T154210Z.tar.gz"
    assert snapshot_stores.source("s3://backups/vteam/last.tar.gz").key == "vteam/last.tar.gz"


@pytest.mark.parametrize("text", ["s3:///key", "ftp://host/x.tar.gz", "oci://registry/repo"])
def test_a_destination_we_do_not_keep_is_refused(text: str) -> None:
    with pytest.raises(errors.UsageError, match="--to"):
        snapshot_stores.destination(text, tenant="t", now=NOW)


@pytest.mark.parametrize("text", ["s3://backups/vteam/", "s3://backups", "s3:///k", "https://x/y"])
def test_a_source_must_name_one_snapshot(text: str) -> None:
    with pytest.raises(errors.UsageError, match="--from"):
        snapshot_stores.source(text)


def test_a_file_is_written_whole_and_read_back(tmp_path: Path) -> None:
    loc = snapshot_stores.destination(f"{tmp_path}/deep/er/", tenant="t", now=NOW)
    snapshot_stores.write(loc, b"archive")
    assert loc.path is not None and loc.path.read_bytes() == b"archive"
    assert loc.path.stat().st_mode & 0o777 == 0o600  # it holds the virtual cluster's Secrets
    assert [p.name for p in loc.path.parent.iterdir()] == [loc.path.name]  # no partial file left
    assert snapshot_stores.read(snapshot_stores.source(str(loc.path))) == b"archive"


def test_a_file_that_cannot_be_written_is_a_provision_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(errors.ProvisionError, match="writing the snapshot"):
        snapshot_stores.write(snapshot_stores.Location(path=tmp_path / "a-file" / "x.tar.gz"), b"archive")


@pytest.mark.parametrize(("make", "says"), [
    (lambda d: d / "missing.tar.gz", "no such file"),
    (lambda d: d, "not a regular file"),
    (lambda d: (os.mkfifo(d / "fifo"), d / "fifo")[1], "not a regular file"),
    (lambda _d: Path("/dev/zero"), "not a regular file"),
])
def test_a_source_that_is_no_regular_file_is_refused_unread(tmp_path: Path, make: Any, says: str) -> None:
    with pytest.raises(errors.UsageError, match=says):
        snapshot_stores.read(snapshot_stores.source(str(make(tmp_path))))


# -- the restore pod ----------------------------------------------------------------------------------------


def statefulset() -> dict[str, Any]:
    """The parts of the chart's StatefulSet (vcluster 0.36.1, persistence on) that the restore pod takes."""
    return {
        "metadata": {"name": "vteam", "labels": {"app": "vcluster", "release": "vteam"}},
        "spec": {
            "replicas": 1,
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "template": {
                "metadata": {"labels": {"app": "vcluster", "release": "vteam"}},
                "spec": {
                    "serviceAccountName": "vc-vteam",
                    "nodeSelector": {"pool": "tenants"},
                    "securityContext": {"runAsNonRoot": True},
                    "volumes": [{"name": "binaries", "emptyDir": {}},
                                {"name": "vcluster-config", "secret": {"secretName": "vc-config-vteam"}}],
                    "initContainers": [{"name": "kubernetes", "image": "reg/loft-sh/kubernetes:v1.37.2",
                                        "command": ["cp"], "imagePullPolicy": "IfNotPresent"}],
                    "containers": [{
                        "name": "syncer", "image": "reg/loft-sh/vcluster-oss:0.36.1", "imagePullPolicy": "Always",
                        "env": [{"name": "VCLUSTER_NAME", "value": "vteam"},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "securityContext": {"allowPrivilegeEscalation": False},
                        "resources": {"limits": {"memory": "1Gi"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz"}},
                    }],
                },
            },
        },
    }


def test_the_restore_pod_is_the_control_plane_pod_that_sleeps() -> None:
    options = restore_pods.options_value(control_plane_snapshots.RESTORE_PATH)
    pod = restore_pods.restore_pod(statefulset(), "vteam", options)
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "reg/loft-sh/vcluster-oss:0.36.1" and container["command"] == ["sleep", "86400"]
    # pulled Always, init container too (vcm-image-pull-always refuses anything else)
    assert {c["imagePullPolicy"] for c in [*spec["initContainers"], container]} == {"Always"}
    # none of the template's labels: release=<tenant> is the control plane's own (vcm-control-plane-labels)
    assert "release" not in pod["metadata"]["labels"] and pod["metadata"]["labels"]["app"] == "vcluster-restore"
    # the data volume is the StatefulSet's claim of its pod 0, and the syncer believes it is that pod
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-vteam-0"}} in spec["volumes"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"] == {"name": "POD_NAME", "value": "vteam-0"}
    assert json.loads(base64.b64decode(env["VCLUSTER_STORAGE_OPTIONS"]["value"])) == {
        "type": "container", "container": {"path": "/data/vcm-restore.tar.gz"}}
    assert env["VCLUSTER_NAME"]["value"] == "vteam"
    # placement, identity and security as the control plane's own
    assert spec["nodeSelector"] == {"pool": "tenants"} and spec["serviceAccountName"] == "vc-vteam"
    assert spec["securityContext"] == {"runAsNonRoot": True}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert container["resources"] == {"limits": {"memory": "1Gi"}}
    assert "readinessProbe" not in container and spec["restartPolicy"] == "Never"


def test_a_template_without_the_syncer_is_refused() -> None:
    sts = statefulset()
    sts["spec"]["template"]["spec"]["containers"][0]["name"] = "other"
    with pytest.raises(errors.ProvisionError, match="no 'syncer' container"):
        restore_pods.restore_pod(sts, "vteam", "")


# -- the command line -------------------------------------------------------------------------------------


def test_restore_refuses_a_file_that_is_no_snapshot_before_asking_any_cluster(tmp_path: Path) -> None:
    bad = tmp_path / "notes.tar.gz"
    bad.write_bytes(archive([("notes.txt", b"hello")]))
    env = {"VCM_STATE_DIR": str(tmp_path / "state"), "KUBECONFIG": str(tmp_path / "none"), "VCM_CONFIG": ""}
    result = CliRunner().invoke(cli.app, ["restore", "vteam", "--from", str(bad), "--yes"], env=env)
    assert result.exit_code == 2, result.output
    assert "is not a vCluster snapshot" in result.output and "Traceback" not in result.output


def test_delete_on_a_terminal_offers_a_last_snapshot_and_takes_it_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wiring only (the drill on the node takes real ones): asked on a terminal, the answer is where the snapshot
    goes, and it is taken before the delete's own confirmation; an empty answer takes none."""
    from vcluster_mgr import snapshots, workspace
    from vcluster_mgr.cli import environment

    taken: list[str] = []
    asked: list[str] = []

    def take(_settings: object, _target: object, name: str, to: str, *, endpoint: str | None = None) -> Any:
        taken.append(to)
        return snapshots.Result(tenant=name, cluster="default", location=to, kind="key-value", keys=1, bytes=1,
                                resources={}, seconds=0.0)

    def confirm(question: str, yes: bool) -> None:
        asked.append(question)
        raise errors.UsageError("stopped here by the test")  # never reach the engine

    monkeypatch.setattr(workspace, "tenant_record", lambda *_a: None)
    monkeypatch.setattr(environment, "recorded_policy", lambda *_a: None)
    monkeypatch.setattr(environment, "on_terminal", lambda: True)
    monkeypatch.setattr(environment, "confirm", confirm)
    monkeypatch.setattr(snapshots, "has_control_plane", lambda *_a: True)
    monkeypatch.setattr(snapshots, "take", take)
    env = {"VCM_STATE_DIR": str(tmp_path / "state"), "VCM_CONFIG": ""}
    result = CliRunner().invoke(cli.app, ["delete", "vteam"], input="s3://backups/vteam/\n", env=env)
    assert "keep a last snapshot?" in result.output and taken == ["s3://backups/vteam/"], result.output
    assert len(asked) == 1 and "delete tenant vteam" in asked[0]
    taken.clear()
    result = CliRunner().invoke(cli.app, ["delete", "vteam"], input="\n", env=env)
    assert taken == [] and len(asked) == 2, result.output
    # --yes asks nothing; --snapshot-to needs no terminal
    monkeypatch.setattr(environment, "on_terminal", lambda: False)
    result = CliRunner().invoke(cli.app, ["delete", "vteam", "--snapshot-to", "./b/"], env=env)
    assert taken == ["./b/"] and "keep a last snapshot?" not in result.output


# -- the restore's order of steps (wiring; the drill on the node runs the real thing) --------------------


class _Obj:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class _FakeConn:
    """A connection whose API groups record each call; the control plane's pods are gone once scaled to 0."""

    server = "https://fake"

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        sts = _Obj(spec=_Obj(replicas=1, volume_claim_templates=[_Obj()]))
        self.core = _Obj(
            connect_get_namespaced_pod_exec=None,
            list_namespaced_pod=lambda ns, label_selector: _Obj(items=[_Obj(metadata=_Obj(name="web-x"))]
                                                                if "managed-by" in label_selector else []),
            delete_namespaced_pod=lambda name, ns, **_: steps.append(f"delete {name}"),
            create_namespaced_pod=lambda ns, body: (steps.append("create restore pod"),
                                                    _Obj(metadata=_Obj(name="vteam-restore-1")))[1],
            read_namespaced_pod=lambda name, ns: _Obj(status=_Obj(
                phase="Running", container_statuses=[_Obj(state=_Obj(running=True))], init_container_statuses=[])),
        )
        self.apps = _Obj(read_namespaced_stateful_set=lambda name, ns: sts,
                         patch_namespaced_stateful_set_scale=lambda name, ns, body: steps.append(
                             f"scale {body['spec']['replicas']}"))

    def call(self, _what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    read = call

    def plain(self, _obj: Any) -> Any:
        return statefulset()

    def __enter__(self) -> _FakeConn:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass


class _Exec:
    """One exec in the fake pod, speaking the part of the websocket client ``_exec`` uses."""

    def __init__(self, pod: _Pod, command: list[str], stdin: bool) -> None:
        self.pod, self.command, self.takes_stdin = pod, command, stdin
        self.frames: list[bytes] = []
        self.subprotocol = ws_client.V5_CHANNEL_PROTOCOL  # what an API server of 1.30 and later speaks
        self.open = True
        self.ending = False
        self.channels: dict[int, bytes] = {}

    def end(self, code: int, out: bytes = b"", err: bytes = b"") -> None:
        """The process exits: what it printed and its status, then the connection closes (at the next read)."""
        self.channels[ws_client.STDOUT_CHANNEL] = out
        self.channels[ws_client.STDERR_CHANNEL] = err
        status = {"status": "Success"} if code == 0 else {
            "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        self.channels[ws_client.ERROR_CHANNEL] = json.dumps(status).encode()
        self.ending = True
        self.pod.running.remove(self)

    def write_stdin(self, data: bytes) -> None:
        if not self.open:
            raise websocket.WebSocketConnectionClosedException("closed")
        self.frames.append(data)
        self.pod.took(self)

    def close_channel(self, channel: int) -> None:
        self.pod.steps.append("close stdin")
        self.pod.closed_stdin(self)

    def update(self, timeout: float = 0) -> None:
        if self.ending:
            self.open = False

    def is_open(self) -> bool:
        return self.open

    def peek_stdout(self) -> bool:
        return bool(self.channels.get(ws_client.STDOUT_CHANNEL))

    def read_stdout(self) -> bytes:
        return self.channels.pop(ws_client.STDOUT_CHANNEL, b"")

    def peek_stderr(self) -> bool:
        return bool(self.channels.get(ws_client.STDERR_CHANNEL))

    def read_stderr(self) -> bytes:
        return self.channels.pop(ws_client.STDERR_CHANNEL, b"")

    def read_channel(self, channel: int) -> bytes:
        return self.channels.pop(channel, b"")

    def close(self) -> None:
        self.open = False

    @property
    def returncode(self) -> int | None:
        """As the client's: None while open, else read from the status (a TypeError when there is none)."""
        if self.open:
            return None
        status = json.loads(self.channels.get(ws_client.ERROR_CHANNEL, b"null"))
        return 0 if status["status"] == "Success" else int(status["details"]["causes"][0]["message"])


#: what the local node's exec stdin delivered before the process met an end of input
STDIN_DELIVERED = 32 * 1024


class _Pod:
    """A container's files and the commands a snapshot and a restore run in it, played as on the local node:
    exec stdin delivers its first ``STDIN_DELIVERED`` bytes and then an end of input (``head -c N`` writes what
    it got and exits 0; ``cat > F`` ends when stdin is closed, the last frame overtaken); a second exec while one
    runs breaks that one off, with no status; ``cat F`` loses its last bytes the first ``short_reads`` times;
    the write of part number ``no_status`` (from 0) ends with no status. A part written by its arguments
    (``printf %s "$1" | base64 -d > F``, ``>>`` to append) arrives whole. ``volume`` is what the data volume does
    to a file written into it (a byte lost, a byte changed)."""

    def __init__(self, steps: list[str], *, volume: Any = None, restore_fails: bool = False,
                 snapshot: bytes = b"", short_reads: int = 0, no_status: int = -1) -> None:
        self.steps, self.volume, self.restore_fails = steps, volume or (lambda b: b), restore_fails
        self.snapshot, self.short_reads, self.no_status = snapshot, short_reads, no_status
        self.files: dict[str, bytes] = {}
        self.restored: list[bytes] = []
        self.running: list[_Exec] = []
        self.parts = 0

    def stream(self, _fn: Any, _pod: str, _ns: str, *, command: list[str], stdin: bool, **_: Any) -> _Exec:
        for other in self.running:  # the node broke off an exec when a second one started meanwhile
            self.steps.append(f"broke off {other.command[-1]}")
            other.open = False
        self.running = []
        run = _Exec(self, command, stdin)
        self.running.append(run)
        text = command[2] if command[0] == "sh" else " ".join(command)
        if "/vcluster snapshot" in text:
            text = "/vcluster snapshot"
        self.steps.append(f"exec {text}")
        if not stdin:
            self.run(run, text)
        return run

    def run(self, run: _Exec, text: str) -> None:
        path = text.split()[-1]
        if text.startswith("ls -ln "):
            got = self.files.get(path)
            run.end(*((0, f"-rw-r--r-- 1 0 0 {len(got)} Dec 6 16:00 {path}\n".encode()) if got is not None
                      else (1, b"", b"No such file")))
        elif text.startswith("sha256sum "):
            got = self.files.get(path)
            run.end(*((0, f"{hashlib.sha256(got).hexdigest()}  {path}\n".encode()) if got is not None
                      else (1, b"", b"No such file")))
        elif text.startswith("cat "):
            data = self.files[path]
            if self.short_reads:
                self.short_reads -= 1
                data = data[:-10]
            run.end(0, data)
        elif text.startswith(": > ") or text.startswith("rm -f "):
            self.files[path] = b""
            run.end(0)
        elif text.startswith('printf %s "$1" | base64 -d '):
            part = base64.b64decode(run.command[4], validate=True)
            self.files[path] = self.volume((self.files.get(path, b"") if " >> " in text else b"") + part)
            self.parts += 1
            if self.parts - 1 == self.no_status:
                run.ending = True  # the connection ended with no status
                self.running.remove(run)
            else:
                run.end(0)
        elif text == "/vcluster snapshot":
            self.files[control_plane_snapshots.SNAPSHOT_PATH] = self.volume(self.snapshot)
            run.end(0)
        elif text.startswith("/vcluster restore"):
            self.restored.append(self.files[control_plane_snapshots.RESTORE_PATH])
            run.end(*((1, b"", b"restore failed: boom") if self.restore_fails else (0,)))
        else:
            raise AssertionError(f"unexpected command {text}")

    def took(self, run: _Exec) -> None:
        words = run.command[-1].split()
        received = b"".join(run.frames)
        if words[:2] == ["head", "-c"] and (len(received) >= int(words[2]) or len(received) >= STDIN_DELIVERED):
            self.files[words[-1]] = self.volume(received[:min(int(words[2]), STDIN_DELIVERED)])
            run.end(0)

    def closed_stdin(self, run: _Exec) -> None:
        words = run.command[-1].split()
        if words[0] == "cat" and run.open:
            self.files[words[-1]] = self.volume(b"".join(run.frames[:-1]))  # the last frame overtaken
            run.end(0)


ARCHIVE = archive(KEY_VALUE)
#: an archive of three parts, the last one short, larger than what the node's exec stdin delivered
LARGE = archive([*KEY_VALUE, ("/registry/secrets/shop/blob", os.urandom(2 * control_plane_snapshots.PART + 999))])
RESTORE_PATH = control_plane_snapshots.RESTORE_PATH


def _restore_steps(data: bytes) -> list[str]:
    parts = -(-len(data) // control_plane_snapshots.PART)
    return ["scale 0", "delete web-x", "create restore pod",
            f'exec printf %s "$1" | base64 -d > {RESTORE_PATH}',
            *[f'exec printf %s "$1" | base64 -d >> {RESTORE_PATH}'] * (parts - 1),
            f"exec ls -ln {RESTORE_PATH}", f"exec sha256sum {RESTORE_PATH}",
            "exec /vcluster restore --new-vcluster"]


RESTORE_STEPS = _restore_steps(ARCHIVE)
RESTORE_CLEANUP = [f"exec : > {RESTORE_PATH}", "delete vteam-restore-1", "scale 1"]


def _tenant() -> Any:
    from vcluster_mgr import spec

    return spec.parse_spec_text((Path(__file__).resolve().parents[1] / "examples" / "controlplane" / "vteam.yaml")
                                .read_text(), source="vteam.yaml")


def _fake_pod(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[list[str], _Pod]:
    steps: list[str] = []
    pod = _Pod(steps, **kw)
    monkeypatch.setattr(control_plane_snapshots.connection, "connect", lambda _target: _FakeConn(steps))
    monkeypatch.setattr(pod_exec, "stream", pod.stream)
    return steps, pod


@pytest.mark.parametrize("data", [ARCHIVE, LARGE], ids=["one-part", "three-parts"])
def test_restore_writes_exactly_the_archive_checks_it_and_starts_the_control_plane_again(
        monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """The archive goes in with no stdin, part by part as arguments of execs run one after the other, is checked
    by size and sha256, and only then restored. Fails on the old ``head -c N`` over stdin (the node's stdin
    ended after 32 KiB: a three-part archive arrives cut short) and on ``cat > F`` with stdin closed."""
    assert len(LARGE) > 2 * control_plane_snapshots.PART > STDIN_DELIVERED
    steps, pod = _fake_pod(monkeypatch)
    control_plane_snapshots.restore(None, _tenant(), data)  # type: ignore[arg-type]
    assert pod.restored == [data]
    assert steps == _restore_steps(data) + RESTORE_CLEANUP
    assert "close stdin" not in steps and not any(s.startswith("broke off") for s in steps)
    assert pod.files[RESTORE_PATH] == b"", "the archive is emptied from the data volume"


def test_a_part_is_an_argument_of_at_most_64_kib() -> None:
    """Linux refuses one argument over 128 KiB: every part's base64 stays at 64 KiB, and decodes to the part."""
    part = os.urandom(control_plane_snapshots.PART)
    command = control_plane_snapshots.write_command(RESTORE_PATH, part, True)
    assert len(command[4]) == 64 * 1024 and base64.b64decode(command[4]) == part
    assert command[:3] == ["sh", "-c", f'printf %s "$1" | base64 -d > {RESTORE_PATH}']
    assert control_plane_snapshots.write_command(RESTORE_PATH, part, False)[2].endswith(f" >> {RESTORE_PATH}")


def test_restore_failing_in_the_syncer_still_starts_the_control_plane_again(monkeypatch: pytest.MonkeyPatch) -> None:
    steps, pod = _fake_pod(monkeypatch, restore_fails=True)
    with pytest.raises(errors.ProvisionError, match="boom"):
        control_plane_snapshots.restore(None, _tenant(), ARCHIVE)  # type: ignore[arg-type]
    assert steps == RESTORE_STEPS + RESTORE_CLEANUP


@pytest.mark.parametrize(("volume", "says"), [
    (lambda b: b[:-1], f"{len(ARCHIVE) - 1} bytes in the pod, {len(ARCHIVE)} here"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "sha256 [0-9a-f]{64} in the pod, [0-9a-f]{64} here"),
], ids=["short", "changed"])
def test_an_archive_that_arrives_otherwise_is_never_restored(monkeypatch: pytest.MonkeyPatch, volume: Any,
                                                             says: str) -> None:
    """The twin: a byte lost (the size) or changed (only the sha256 sees it) on the way stops the restore with a
    clear error before the syncer touches the store; the control plane starts again with the store it had."""
    steps, pod = _fake_pod(monkeypatch, volume=volume)
    with pytest.raises(errors.ProvisionError, match=f"is not the one read \\({says}\\); nothing was restored"):
        control_plane_snapshots.restore(None, _tenant(), ARCHIVE)  # type: ignore[arg-type]
    assert pod.restored == [] and "exec /vcluster restore --new-vcluster" not in steps
    assert steps[:5] == RESTORE_STEPS[:5] and steps[-3:] == RESTORE_CLEANUP


def test_a_part_whose_write_ends_with_no_status_is_an_error_and_never_restored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A part's exec that ends with no status may or may not have written it: a clear error naming where, no
    further part, nothing restored, and the control plane starts again as it was."""
    steps, pod = _fake_pod(monkeypatch, no_status=1)
    with pytest.raises(errors.ProvisionError, match=f"failed at byte {control_plane_snapshots.PART} of {len(LARGE)} "
                                                    r"\(exit -1.*nothing was restored"):
        control_plane_snapshots.restore(None, _tenant(), LARGE)  # type: ignore[arg-type]
    assert pod.restored == [] and steps[:5] == _restore_steps(LARGE)[:5] and steps[5:] == RESTORE_CLEANUP


def test_a_snapshot_is_read_out_whole_checked_and_read_again_when_short(monkeypatch: pytest.MonkeyPatch) -> None:
    steps, pod = _fake_pod(monkeypatch, snapshot=ARCHIVE, short_reads=1)
    monkeypatch.setattr(control_plane_snapshots, "_control_plane_pod", lambda _conn, _tenant: "vteam-0")
    assert control_plane_snapshots.take(None, _tenant()) == ARCHIVE  # type: ignore[arg-type]
    path = control_plane_snapshots.SNAPSHOT_PATH
    assert steps == ["exec /vcluster snapshot", f"exec ls -ln {path}", f"exec sha256sum {path}", f"exec cat {path}",
                     f"exec cat {path}", f"exec : > {path}"]


def test_a_snapshot_that_never_reads_out_as_written_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twin: the size alone would pass a read with a byte changed; the sha256 does not."""
    _, pod = _fake_pod(monkeypatch, snapshot=ARCHIVE)
    monkeypatch.setattr(control_plane_snapshots, "_control_plane_pod", lambda _conn, _tenant: "vteam-0")
    real_run = pod.run

    def changed(run: _Exec, text: str) -> None:
        real_run(run, text)
        out = run.channels.get(ws_client.STDOUT_CHANNEL, b"")
        if text.startswith("cat "):
            run.channels[ws_client.STDOUT_CHANNEL] = out[:-1] + bytes([out[-1] ^ 1])

    monkeypatch.setattr(pod, "run", changed)
    with pytest.raises(errors.ProvisionError, match=f"{len(ARCHIVE)} of {len(ARCHIVE)} bytes, sha256 "):
        control_plane_snapshots.take(None, _tenant())  # type: ignore[arg-type]


def test_an_exec_that_ends_with_no_status_has_no_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exec the connection ended before its process did is -1, never a success (nor a traceback)."""
    steps, pod = _fake_pod(monkeypatch)
    run = _Exec(pod, ["sh", "-c", "true"], False)
    run.ending = True  # closed with nothing on the status channel
    monkeypatch.setattr(pod_exec, "stream", lambda *_a, **_k: run)
    assert pod_exec.run_bytes(_FakeConn(steps), "ns", "p", ["true"], container="c") == (-1, b"", b"")  # type: ignore[arg-type]


def test_the_traffic_probes_exec_reads_the_same_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pod_exec.run`` (the traffic probes) is ``run_bytes`` as text: its exit code and output, and -1 (not the
    client's TypeError on an empty status) when the exec ended with no status."""
    steps, pod = _fake_pod(monkeypatch)
    done = _Exec(pod, ["sh", "-c", "exit 3"], False)
    pod.running.append(done)
    done.end(3, b"out ", b"err")
    monkeypatch.setattr(pod_exec, "stream", lambda *_a, **_k: done)
    assert pod_exec.run(_FakeConn(steps), "ns", "p", ["false"]) == (3, "out err")  # type: ignore[arg-type]
    cut = _Exec(pod, ["sh", "-c", "true"], False)
    cut.ending = True
    monkeypatch.setattr(pod_exec, "stream", lambda *_a, **_k: cut)
    assert pod_exec.run(_FakeConn(steps), "ns", "p", ["true"]) == (-1, "")  # type: ignore[arg-type]
