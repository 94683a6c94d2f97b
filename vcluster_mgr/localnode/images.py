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
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

from vcluster_mgr import errors, toolchain

#: the static busybox that Debian's busybox-static package installs
BUSYBOX = Path("/bin/busybox")
#: the applets the probe image links (a small, known set; busybox has many more)
APPLETS = ("sh", "ls", "cat", "echo", "id", "sleep", "hostname", "httpd", "nc", "nslookup", "timeout",
           "grep", "head", "env", "true", "false", "mkdir", "test")
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

    def write_image(self, repository: str, layers: list[bytes], config: dict[str, object],
                    extra_tags: tuple[str, ...] = ()) -> Image:
        """Store an image of uncompressed layer tars and an image ``config`` section; tag it ``TAG`` (and
        ``extra_tags``: names other tools ask for)."""
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
        for tag in (TAG, *extra_tags):
            self.tag(repository, tag, digest)
        return Image(repository, digest, len(manifest))


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


def clear(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
