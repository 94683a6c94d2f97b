"""A read-only OCI distribution registry on 127.0.0.1 for the images of ``images``.

containerd uses it as the mirror of the images' registry name (``127.0.0.1:<port>``), so every pull,
including the ones ``imagePullPolicy: Always`` forces on each container start, is answered here in
milliseconds and nothing leaves the machine. It implements the pull side of the distribution API:
``GET /v2/``, ``GET``/``HEAD`` of ``/v2/<name>/manifests/<tag or digest>`` and ``/v2/<name>/blobs/<digest>``.
Anything else is 404 (or 405 for writes). Run as ``python -m vcluster_mgr.localnode.registry STORE PORT``.
"""

from __future__ import annotations

import http.server
import json
import re
import sys
from pathlib import Path

from vcluster_mgr import errors
from vcluster_mgr.localnode import images

_PATH = re.compile(r"^/v2/(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")


class _Handler(http.server.BaseHTTPRequestHandler):
    store: images.Store
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
              digest: str | None = None, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        if self.path.rstrip("/") == "/v2":
            self._send(200, b"{}", head=head)
            return
        match = _PATH.match(self.path.split("?", 1)[0])
        if not match:
            self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', head=head)
            return
        name, kind, ref = match["name"], match["kind"], match["ref"]
        digest = ref if ref.startswith("sha256:") else self.store.tags().get(f"{name}:{ref}")
        try:
            path = self.store.blob(digest) if digest else None
        except errors.LocalClusterError:
            path = None
        if path is None or not path.exists():
            code = "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN"
            self._send(404, json.dumps({"errors": [{"code": code}]}).encode(), head=head)
            return
        body = path.read_bytes()
        ctype = images.MANIFEST_TYPE if kind == "manifests" else "application/octet-stream"
        self._send(200, body, content_type=ctype, digest=digest, head=head)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_PUT(self) -> None:
        self._send(405)

    do_POST = do_PATCH = do_DELETE = do_PUT  # noqa: N815


def serve(store_dir: Path, port: int) -> None:
    """Serve ``store_dir`` on 127.0.0.1:``port`` until killed."""
    handler = type("Handler", (_Handler,), {"store": images.Store(store_dir)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
