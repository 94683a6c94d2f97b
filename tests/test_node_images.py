"""The images the local node writes for a tenant's virtual control plane (offline, stand-in binaries).

Covers: ``localnode.images.control_plane_images`` stores the syncer, distro and etcd images under the repository
and tag each image reference of the vcluster chart 0.36.1 names once the generated values and
``images.chart_values`` are merged (the chart's ``vcluster.image`` helper: ``<defaultImageRegistry>/<repository>:
<tag>``, repositories and default tags read from the chart's own values.yaml in ../shared/vendor); the layers hold
what the chart's containers run (``/vcluster``, ``/kubernetes/<binary>`` with ``cp``, ``etcd`` on PATH) and what
a snapshot and a restore run in the syncer's image (``cat``, ``head``, ``ls``, ``sha256sum``); and the
twin: without ``chart_values`` the chart's default distro tag names an image the node does not have; the syncer of
the release the upgrade test starts from under its own tag, only when the toolchain built it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcluster_mgr import naming, render, spec, toolchain
from vcluster_mgr.localnode import images

VENDOR = Path(__file__).parents[2] / "shared" / "vendor" / f"vcluster-{naming.CONTROL_PLANE_CHART_VERSION}"
REGISTRY = "127.0.0.1:5999"
TENANT = {"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "vteam"},
          "spec": {"owners": [{"kind": "User", "name": "a@example.com", "role": "admin"}], "namespaces": ["cp"],
                   "controlPlane": {"enabled": True, "backingStore": "etcd"}}}


@pytest.fixture()
def store(tmp_path: Path) -> images.Store:
    bins = tmp_path / "bin"
    bins.mkdir()
    for name in ("vcluster", "kube-apiserver", "kube-controller-manager", "kine", "etcd"):
        (bins / name).write_bytes(f"#!/bin/sh\necho {name}\n".encode())
    s = images.Store(tmp_path / "images")
    images.control_plane_images(s, bins)
    return s


def _chart_refs(values: dict[str, Any]) -> dict[str, str]:
    """The three image references the chart's templates form from ``values`` over its own defaults."""
    defaults = yaml.safe_load((VENDOR / "values.yaml").read_text())
    v = render.merge_values(defaults, values)
    cp = v["controlPlane"]
    registry = cp["advanced"]["defaultImageRegistry"]
    k8s = cp["distro"]["k8s"]
    etcd = cp["backingStore"]["etcd"]["deploy"]["statefulSet"]["image"]
    return {
        "syncer": f"{registry}/{cp['statefulSet']['image']['repository']}:{cp['statefulSet']['image']['tag']}",
        "distro": f"{registry}/{k8s['image']['repository']}:{k8s.get('version') or k8s['image']['tag']}",
        "etcd": f"{registry}/{etcd['repository']}:{etcd['tag']}",
    }


def _values(with_node_values: bool) -> dict[str, Any]:
    values = render.control_plane_values(spec.parse_spec(TENANT))
    if with_node_values:
        return render.merge_values(values, images.chart_values(REGISTRY))
    return render.merge_values(values, {"controlPlane": {"advanced": {"defaultImageRegistry": REGISTRY}}})


def test_every_image_the_chart_names_is_in_the_nodes_registry(store: images.Store) -> None:
    refs = _chart_refs(_values(True))
    assert refs == {
        "syncer": f"{REGISTRY}/loft-sh/vcluster-oss:{naming.CONTROL_PLANE_CHART_VERSION}",
        "distro": f"{REGISTRY}/loft-sh/kubernetes:v{toolchain.KUBERNETES_VERSION}",
        "etcd": f"{REGISTRY}/etcd:{toolchain.ETCD_VERSION}",
    }
    tags = store.tags()
    assert all(ref.removeprefix(REGISTRY + "/") in tags for ref in refs.values()), (refs, tags)


def test_twin_without_the_node_values_the_charts_distro_is_missing(store: images.Store) -> None:
    refs = _chart_refs(_values(False))
    assert refs["distro"].removeprefix(REGISTRY + "/") not in store.tags()


def _files(s: images.Store, ref: str) -> dict[str, tarfile.TarInfo]:
    manifest = json.loads(s.blob(s.tags()[ref]).read_bytes())
    out: dict[str, tarfile.TarInfo] = {}
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(s.blob(layer["digest"]).read_bytes())) as tar:
            out.update({m.name: m for m in tar.getmembers()})
    return out


def test_the_layers_hold_what_the_charts_containers_run(store: images.Store) -> None:
    syncer = _files(store, f"loft-sh/vcluster-oss:{naming.CONTROL_PLANE_CHART_VERSION}")
    assert syncer["vcluster"].mode & 0o111
    # what a snapshot and a restore run in the syncer's container and the restore pod
    assert {"bin/sh", "bin/cat", "bin/ls", "bin/head", "bin/sha256sum"} <= set(syncer)
    distro = _files(store, f"loft-sh/kubernetes:v{toolchain.KUBERNETES_VERSION}")
    wanted = {"kubernetes/kube-apiserver", "kubernetes/kube-controller-manager", "kubernetes/kine", "bin/cp"}
    assert wanted <= set(distro)
    etcd = _files(store, f"etcd:{toolchain.ETCD_VERSION}")
    assert "usr/local/bin/etcd" in etcd


def test_the_syncer_an_upgrade_starts_from_is_written_only_when_built(tmp_path: Path) -> None:
    bins = tmp_path / "bin"
    bins.mkdir()
    previous = toolchain.VCLUSTER_UPGRADE_FROM
    for name in ("vcluster", "kube-apiserver", "kube-controller-manager", "kine", "etcd", previous.name):
        (bins / name).write_bytes(f"#!/bin/sh\necho {name}\n".encode())
    s = images.Store(tmp_path / "images")
    written = images.control_plane_images(s, bins)
    older = f"loft-sh/vcluster-oss:{previous.version}"
    assert written["syncer-upgrade-from"].reference == older
    layers = _files(s, older)
    assert layers["vcluster"].mode & 0o111
    manifest = json.loads(s.blob(s.tags()[older]).read_bytes())
    last = s.blob(manifest["layers"][-1]["digest"]).read_bytes()
    assert b"echo " + previous.name.encode() in last, "the older tag holds the older syncer, not the current one"
    # twin: without that binary the node writes no such tag
    (bins / previous.name).unlink()
    bare = images.Store(tmp_path / "bare")
    assert "syncer-upgrade-from" not in images.control_plane_images(bare, bins) and older not in bare.tags()
