"""The OCI images the local node runs, written by this module from files on this machine.

Nothing is pulled from outside: an image is a list of layers (tar archives built here from the static
busybox of Debian's ``busybox-static`` and from binaries of the toolchain), an image config and a manifest,
stored content-addressed in a directory that ``registry`` serves. Every image is for linux/amd64.

- ``pause``: the pod sandbox; busybox ``sleep`` as PID 1 (containerd stops sandboxes with SIGKILL);
- ``probe``: busybox with ``httpd``, ``nc`` and ``nslookup``: serves and probes TCP/HTTP and DNS,
  runs as uid 65532 so the restricted Pod Security profile admits it;
- ``coredns``: the toolchain's CoreDNS binary;
- ``kubectl``: the probe image's busybox with the toolchain's ``kubectl`` as ``/bin/kubectl``, for pods that talk
  to the API server with their ServiceAccount (in-cluster configuration), as a virtual cluster's syncer does;
- ``storage-helper``: busybox with ``sh``, ``mkdir`` and ``rm``, as root: the storage provisioner's helper pods make
  and remove volume directories on the node with it (``storage``);
- ``agnhost`` (only when the conformance kit is built, ``vcm toolchain ensure --conformance``): ``/agnhost``, the
  binary cyclonus's pods run and exec, stored as ``e2e-test-images/agnhost`` under both ``TAG`` and the tag
  cyclonus asks for (``toolchain.AGNHOST_IMAGE_TAG``), so ``cyclonus generate --image-registry <registry>``
  pulls it from the node's loopback registry.

A tenant's virtual control plane (the vcluster chart) takes its images from here too, under the names and tags the
chart asks for once ``controlPlane.advanced.defaultImageRegistry`` names this registry (``chart_values``):

- ``loft-sh/vcluster-oss:<vcluster version>``: the syncer (``/vcluster``, entrypoint ``/vcluster start``), with
  busybox where upstream's has Alpine;
- ``loft-sh/kubernetes:v<Kubernetes version>``: the "distro" image whose init container copies ``/kubernetes/.``
  into the control plane pod: the toolchain's kube-apiserver, kube-controller-manager and kine, and busybox's ``cp``;
- ``etcd:<etcd version>``: the toolchain's etcd as ``/usr/local/bin/etcd``, for ``backingStore: etcd``;
- ``loft-sh/vcluster-oss:<the release the upgrade test starts from>`` (only when the toolchain built that syncer,
  ``vcm toolchain ensure --upgrade-from``): the chart of that release names it, with the same distro and etcd.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

from vcluster_mgr import errors, render, toolchain

#: the static busybox that Debian's busybox-static package installs
BUSYBOX = Path("/bin/busybox")
#: the applets the probe image links (a small, known set; busybox has many more)
APPLETS = ("sh", "ls", "cat", "echo", "id", "sleep", "hostname", "httpd", "nc", "nslookup", "timeout",
           "grep", "head", "env", "true", "false", "mkdir", "test")
#: the applets of the control plane's images: the distro's init container copies with ``cp``; a snapshot's
#: archive is read out with ``cat`` and written in with ``head -c``, each checked with ``ls`` and ``sha256sum``
CONTROL_PLANE_APPLETS = ("sh", "cp", "ls", "cat", "mkdir", "sleep", "head", "sha256sum")
#: the applets of the storage provisioner's helper pods (upstream's setup and teardown scripts)
STORAGE_HELPER_APPLETS = ("sh", "mkdir", "rm", "ls")
#: the tag every image carries (images change with the project, not on their own)
TAG = "1"
#: the repository of the agnhost image: the name cyclonus asks for below its ``--image-registry``
AGNHOST_REPOSITORY = "e2e-test-images/agnhost"
#: the user the probe image runs as (non-root, so the restricted Pod Security profile admits its pods)
PROBE_UID = 65532

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
#: layers stay uncompressed: they never leave the machine, and gzip of CoreDNS alone takes half a minute
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


@dataclasses.dataclass(frozen=True)
class Image:
    """One image as the registry stores it."""

    name: str
    digest: str
    size: int
    tag: str = TAG

    @property
    def reference(self) -> str:
        """``repository:tag``, the name a pod spec uses after the registry."""
        return f"{self.name}:{self.tag}"


def _tar(entries: list[tuple[str, bytes | None, int, str | None]]) -> bytes:
    """A reproducible tar of (path, data or None for a dir, mode, symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data, mode, link in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.mode = mode
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Store:
    """A content-addressed image store: ``blobs/sha256/<hex>`` and ``tags.json`` (repository:tag -> digest)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob(digest)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return digest

    def blob(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise errors.LocalClusterError(f"not a sha256 digest: {digest!r}")
        return self.root / "blobs" / "sha256" / hexpart

    def tags(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / "tags.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def tag(self, repository: str, tag: str, digest: str) -> None:
        tags = self.tags()
        tags[f"{repository}:{tag}"] = digest
        tmp = self.root / "tags.json.tmp"
        tmp.write_text(json.dumps(tags, indent=2, sort_keys=True))
        tmp.replace(self.root / "tags.json")

    def write_image(self, repository: str, layers: Iterable[bytes], config: dict[str, object],
                    extra_tags: tuple[str, ...] = (), *, tag: str = TAG) -> Image:
        """Store an image of uncompressed layer tars and an image ``config`` section; tag it ``tag`` (and
        ``extra_tags``: names other tools ask for). ``layers`` may be a generator: each layer is stored before the
        next is made (a control plane's binaries are hundreds of MB)."""
        descriptors, diff_ids = [], []
        for layer in layers:
            digest = self.put(layer)
            diff_ids.append(digest)
            descriptors.append({"mediaType": LAYER_TYPE, "digest": digest, "size": len(layer)})
        cfg = json.dumps({
            "architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "vcluster-mgr localnode.images"}],
        }, sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": self.put(cfg), "size": len(cfg)},
            "layers": descriptors,
        }, sort_keys=True).encode()
        digest = self.put(manifest)
        for name in (tag, *extra_tags):
            self.tag(repository, name, digest)
        return Image(repository, digest, len(manifest), tag)


def _busybox_layer(applets: tuple[str, ...]) -> bytes:
    if not BUSYBOX.exists():
        raise errors.LocalClusterError(
            f"{BUSYBOX} is missing: the node's images are made from Debian's busybox-static "
            "(run scripts/install-node-packages.sh as root)")
    entries: list[tuple[str, bytes | None, int, str | None]] = [
        ("bin", None, 0o755, None), ("bin/busybox", BUSYBOX.read_bytes(), 0o755, None),
        ("etc", None, 0o755, None),
        ("etc/passwd", f"root:x:0:0:root:/:/bin/sh\nprobe:x:{PROBE_UID}:{PROBE_UID}:probe:/srv:/bin/sh\n"
         .encode(), 0o644, None),
        ("etc/group", f"root:x:0:\nprobe:x:{PROBE_UID}:\n".encode(), 0o644, None),
        ("srv", None, 0o755, None), ("srv/index.html", b"vcm probe\n", 0o644, None),
        ("tmp", None, 0o1777, None),
    ]
    entries += [(f"bin/{a}", None, 0o777, "busybox") for a in applets]
    return _tar(entries)


def agnhost_image(store: Store, binary: Path) -> Image:
    """The agnhost image: the static binary as ``/agnhost``, run as the image's default user (root), as
    upstream's image is: cyclonus's servers bind ports 80 and 81."""
    return store.write_image(AGNHOST_REPOSITORY, [_tar([("agnhost", binary.read_bytes(), 0o755, None)])],
                             {"Entrypoint": ["/agnhost"]}, extra_tags=(toolchain.AGNHOST_IMAGE_TAG,))


def build_all(store: Store, bin_dir: Path) -> dict[str, Image]:
    """Write the pause, probe, CoreDNS, kubectl and storage-helper images into ``store`` (``vcm/<name>``), and the
    agnhost image when the conformance kit is built."""
    coredns, kubectl = bin_dir / "coredns", bin_dir / "kubectl"
    for binary in (coredns, kubectl):
        if not binary.exists():
            raise errors.LocalClusterError(f"{binary} is missing; run `vcm toolchain ensure`")
    agnhost = bin_dir / toolchain.AGNHOST.name
    extra = {"agnhost": agnhost_image(store, agnhost)} if agnhost.exists() else {}
    return extra | {
        "pause": store.write_image("vcm/pause", [_busybox_layer(("sleep",))],
                                   {"Entrypoint": ["/bin/sleep", "2147483647"]}),
        "probe": store.write_image("vcm/probe", [_busybox_layer(APPLETS)], {
            "Entrypoint": ["/bin/httpd", "-f", "-p", "8080", "-h", "/srv"], "User": f"{PROBE_UID}:{PROBE_UID}",
            "WorkingDir": "/srv", "Env": ["PATH=/bin"]}),
        "coredns": store.write_image("vcm/coredns", [_tar([("coredns", coredns.read_bytes(), 0o755, None)])],
                                     {"Entrypoint": ["/coredns"]}),
        # kubectl keeps a cache under $HOME: the image's /tmp, inside the container
        "kubectl": store.write_image("vcm/kubectl", [
            _busybox_layer(APPLETS), _tar([("bin", None, 0o755, None), ("bin/kubectl", kubectl.read_bytes(), 0o755,
                                                                          None)])], {
            "Entrypoint": ["/bin/sh"], "User": f"{PROBE_UID}:{PROBE_UID}", "WorkingDir": "/srv",
            "Env": ["PATH=/bin", "HOME=/tmp"]}),
        "storage-helper": store.write_image("vcm/storage-helper", [_busybox_layer(STORAGE_HELPER_APPLETS)],
                                            {"Env": ["PATH=/bin"]}),
    }


#: the repositories the vcluster chart names its images by (after ``controlPlane.advanced.defaultImageRegistry``)
SYNCER_REPOSITORY = "loft-sh/vcluster-oss"
DISTRO_REPOSITORY = "loft-sh/kubernetes"
ETCD_REPOSITORY = "etcd"


def _binary(bin_dir: Path, name: str) -> bytes:
    path = bin_dir / name
    if not path.exists():
        raise errors.LocalClusterError(f"{path} is missing; run `vcm toolchain ensure`")
    return path.read_bytes()


def control_plane_images(store: Store, bin_dir: Path) -> dict[str, Image]:
    """Write the images of a virtual control plane (syncer, distro, etcd) under the chart's names and the
    versions of the binaries in them (the toolchain's pins: ``chart_values`` tells the chart). None when the
    toolchain has not built the syncer and kine (``vcm toolchain ensure`` does): the node runs without them."""
    if not all((bin_dir / name).exists() for name in toolchain.VIRTUAL_CONTROL_PLANE):
        return {}
    bin_layer = _busybox_layer(CONTROL_PLANE_APPLETS)

    def syncer(binary: str, version: str) -> Image:
        return store.write_image(SYNCER_REPOSITORY, [bin_layer, _tar([("vcluster", _binary(bin_dir, binary), 0o755,
                                                                       None)])],
                                 {"Entrypoint": ["/vcluster", "start"], "Env": ["PATH=/bin"]}, tag=version)

    previous = toolchain.VCLUSTER_UPGRADE_FROM
    upgrade_from = ({"syncer-upgrade-from": syncer(previous.name, previous.version)}
                    if (bin_dir / previous.name).exists() else {})
    return upgrade_from | {
        "syncer": syncer("vcluster", toolchain.VCLUSTER_VERSION),
        # a layer per binary, made one at a time
        "distro": store.write_image(DISTRO_REPOSITORY, itertools.chain([bin_layer], (
            _tar([("kubernetes", None, 0o755, None), (f"kubernetes/{b}", _binary(bin_dir, b), 0o755, None)])
            for b in ("kube-apiserver", "kube-controller-manager", "kine"))),
            {"Env": ["PATH=/bin"]}, tag=distro_tag()),
        "etcd": store.write_image(ETCD_REPOSITORY, [bin_layer, _tar(
            [("usr", None, 0o755, None), ("usr/local", None, 0o755, None), ("usr/local/bin", None, 0o755, None),
             ("usr/local/bin/etcd", _binary(bin_dir, "etcd"), 0o755, None)])],
            {"Env": ["PATH=/usr/local/bin:/bin"]}, tag=toolchain.ETCD_VERSION),
    }


def distro_tag() -> str:
    """The distro image's tag: the Kubernetes version of the binaries in it, as the chart spells it (``v1.37.2``)."""
    return f"v{toolchain.KUBERNETES_VERSION}"


def chart_values(registry: str) -> dict[str, object]:
    """vcluster chart values that take every control plane image from ``registry`` (``127.0.0.1:<port>``), at the
    tags ``control_plane_images`` wrote. The chart's own image tags name other versions, so each is set, with the
    controller list the distro's kube-controller-manager accepts."""
    k8s: dict[str, object] = {"version": distro_tag()}
    args = render.control_plane.controller_manager_args(distro_tag())
    if args:
        k8s["controllerManager"] = {"extraArgs": args}
    return {"controlPlane": {
        "advanced": {"defaultImageRegistry": registry},
        "distro": {"k8s": k8s},
        "backingStore": {"etcd": {"deploy": {"statefulSet": {"image": {"tag": toolchain.ETCD_VERSION}}}}},
    }}


def clear(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
