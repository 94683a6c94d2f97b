"""A real S3-compatible object store on loopback for the tests of a shared ``s3://`` state backend.

SeaweedFS (``weed server``: master, volume, filer and S3 gateway in one process), built from Go modules by
``vcm toolchain ensure --object-store`` (``make test`` does). The test starts it with every port on 127.0.0.1
(each chosen free and named, gRPC ports included, the extra catalog endpoints off), its data in a temp dir,
and one admin identity whose keys are made per run and reach it and the engine only through the
environment; its logs and sockets go to the same temp dir, and ``stop`` ends its process group and removes
the data, so nothing is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vcluster_mgr import toolchain


def object_store_binary() -> Path:
    """The built ``weed``; the test FAILS (never skips) with what to run when it is missing."""
    status = {s.name: s for s in toolchain.status(extras=toolchain.ON_DEMAND)}[toolchain.OBJECT_STORE.name]
    if not status.ok:
        pytest.fail(f"the object store {toolchain.OBJECT_STORE.name} {toolchain.SEAWEEDFS_VERSION} is not built "
                    f"(found {status.found or 'nothing'}): run `vcm toolchain ensure --object-store` "
                    "(make test does)")
    return toolchain.bin_dir() / toolchain.OBJECT_STORE.name


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listening_addresses(pid: int) -> set[str]:
    """``host:port`` of every TCP socket the process listens on (from /proc, no tool needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host_hex, port_hex = fields[1].split(":")
            if width == 8:
                host = socket.inet_ntop(socket.AF_INET, bytes.fromhex(host_hex)[::-1])
            else:
                raw = bytes.fromhex(host_hex)
                host = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.add(f"{host}:{int(port_hex, 16)}")
    return found


class ObjectStore:
    """One ``weed server`` with an S3 gateway, on loopback ports of its own."""

    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.data_dir = root / "data"
        self.access_key = "vcm" + secrets.token_hex(8)
        self.secret_key = secrets.token_urlsafe(30)
        (self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc,
         self.s3, self.s3_grpc) = _free_ports(8)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def credentials_env(self) -> dict[str, str]:
        """What a client needs: the keys, and no reaching for the cloud's instance metadata."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def start(self, timeout: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True)
        args = [
            str(self.binary), f"-logdir={self.root}", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}", "-volume.max=16",
            "-filer", f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
            "-s3", f"-s3.port={self.s3}", f"-s3.port.grpc={self.s3_grpc}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        env = {**os.environ, **self.credentials_env(), "TMPDIR": str(self.root)}  # its unix sockets, too
        log = (self.root / "weed.log").open("wb")
        self.proc = subprocess.Popen(args, env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"weed server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._answers(f"{self.endpoint}/") and self._answers(f"http://127.0.0.1:{self.filer}/"):
                return
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"weed server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.root / "weed.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback http
                return True
        except urllib.error.HTTPError:
            return True  # 403 without credentials: it is up
        except OSError:
            return False

    def create_bucket(self, name: str) -> str:
        """Create a bucket as an operator would, with SeaweedFS's own shell."""
        master = f"127.0.0.1:{self.master}.{self.master_grpc}"
        filer = f"127.0.0.1:{self.filer}.{self.filer_grpc}"
        proc = subprocess.run([str(self.binary), f"-logdir={self.root}", "shell", f"-master={master}",
                               f"-filer={filer}"],
                              input=f"s3.bucket.create -name {name}\nexit\n", capture_output=True, text=True,
                              timeout=120, check=False, cwd=self.root, env={**os.environ, "TMPDIR": str(self.root)})
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert name in self.buckets(), proc.stdout[-2000:] + proc.stderr[-2000:]
        return name

    def _list(self, path: str) -> list[dict[str, object]]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.filer}{path}?limit=10000",
                                     headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback http
            data = json.loads(resp.read() or b"{}")
        return list(data.get("Entries") or [])

    def buckets(self) -> list[str]:
        return [str(e["FullPath"]).rsplit("/", 1)[-1] for e in self._list("/buckets/")]

    def keys(self, bucket: str) -> list[str]:
        """Every object key of the bucket, read through the filer (independent of the S3 gateway)."""
        prefix = f"/buckets/{bucket}/"
        found: list[str] = []
        todo = [prefix]
        while todo:
            folder = todo.pop()
            for entry in self._list(folder):
                path = str(entry["FullPath"])
                if int(str(entry.get("Mode", 0))) & (1 << 31):  # Go's os.ModeDir
                    todo.append(path + "/")
                else:
                    found.append(path[len(prefix):])
        return sorted(found)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def process_gone(self) -> bool:
        if self.proc is None:
            return True
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False
