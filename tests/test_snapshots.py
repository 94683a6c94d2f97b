"""Snapshots offline: reading vCluster's archive format (``snapshot_archive``), where a snapshot goes and comes
from (``snapshot_stores``: folders, files, ``s3://`` names; files written whole), the restore pod made from the
control plane's StatefulSet (``cluster.restore_pods.restore_pod``: what the host's admission policies ask of it),
and ``vcm restore`` refusing a file that is no snapshot before it asks any cluster (exit 2); the wiring of the
restore's steps (the control plane always started again) and of ``vcm delete``'s last-snapshot prompt.

The archives here are built the way vcluster 0.36's ``pkg/snapshot/client.go`` writes them (a gzip tar, one
entry per key, the Helm release and the request first); the syncer's own archives are read in
``tests/integration/test_snapshots.py``.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vcluster_mgr import cli, errors, snapshot_archive, snapshot_stores
from vcluster_mgr.cluster import control_plane_snapshots, restore_pods

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


@pytest.mark.parametrize("fails", [False, True])
def test_restore_stops_restores_and_always_starts_the_control_plane_again(
        monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:
    from vcluster_mgr import spec

    steps: list[str] = []
    monkeypatch.setattr(control_plane_snapshots.connection, "connect", lambda _target: _FakeConn(steps))

    def exec_(_conn: Any, _ns: str, pod: str, container: str, command: list[str], *, stdin: bytes | None = None,
              stdin_taken: Any = None, timeout: float = 0) -> tuple[int, bytes, bytes]:
        if command[:2] == ["ls", "-ln"]:  # the archive's size in the pod: all of it
            return 0, b"-rw-r--r-- 1 1 1 7 Dec 6 16:00 /data/vcm-restore.tar.gz\n", b""
        steps.append(f"exec {command[-1] if command[0] != '/vcluster' else ' '.join(command)}"
                     + (f" <{len(stdin)} bytes" if stdin is not None else ""))
        failed = fails and command[0] == "/vcluster"
        return (1 if failed else 0), b"", b"restore failed: boom" if failed else b""

    monkeypatch.setattr(control_plane_snapshots, "_exec", exec_)
    tenant = spec.parse_spec_text((Path(__file__).resolve().parents[1] / "examples" / "controlplane" / "vteam.yaml")
                                  .read_text(), source="vteam.yaml")
    if fails:
        with pytest.raises(errors.ProvisionError, match="boom"):
            control_plane_snapshots.restore(None, tenant, b"archive")  # type: ignore[arg-type]
    else:
        control_plane_snapshots.restore(None, tenant, b"archive")  # type: ignore[arg-type]
    assert steps == [
        "scale 0", "delete web-x", "create restore pod", "exec cat > /data/vcm-restore.tar.gz <7 bytes",
        "exec /vcluster restore --new-vcluster", "exec : > /data/vcm-restore.tar.gz", "delete vteam-restore-1",
        "scale 1",
    ]
