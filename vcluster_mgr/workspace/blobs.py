"""Reading the engine's DIY backend where it keeps its blobs: a folder on disk, or a bucket of an object store.

The engine's file and ``s3://`` backends share one layout (Pulumi's "DIY" backend over gocloud.dev's blob
API): ``.pulumi/meta.yaml``, ``.pulumi/stacks/<project>/<stack>.json``, ``.pulumi/history/...`` and
``.pulumi/locks/...``. What the fast path needs to know of a stack (its checkpoint, its latest history entry,
its locks) is therefore the same few keys on either; this module reads them, and only reads.

On ``s3://`` the reads go through boto3 (the AWS SDK for Python), configured from the same URL the engine is
given (``region``, ``endpoint``, ``profile``, ``use_path_style`` / ``s3ForcePathStyle``; a path after the
bucket is a key prefix, as for the engine) and the same credentials (the SDK's own environment variables or
profile), so it reads what the engine wrote and nothing else. A URL with a parameter not translated here
(``role``, ``anonymous``, ``fips``, ...) answers ``None``: such a backend is not read here, and the callers
then ask the CLI or run the engine, as for any backend they cannot read. boto3 is imported only when an
``s3://`` backend is opened (its import costs about half a second).
"""

from __future__ import annotations

import functools
import urllib.parse
from pathlib import Path
from typing import Any, Protocol


class UnreadableError(Exception):
    """A blob that exists or may exist but could not be read (a network error, a refusal, a cut read)."""


class Store(Protocol):
    """The blobs of one backend, by key relative to its root (``.pulumi/...``)."""

    def get(self, key: str) -> bytes | None:
        """The blob's bytes, None if there is no such key; ``UnreadableError`` if it cannot be told."""

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder, ending in ``/``); ``UnreadableError`` if it cannot be told."""


class FileStore:
    """A file backend: the folder of a ``file://`` URL."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise UnreadableError(f"{self.root / key}: {exc.strerror}") from exc

    def keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in folder.rglob("*") if p.is_file())


#: the ``s3://`` URL parameters this module translates into the SDK's configuration (every other one the
#: engine knows makes the backend not read here). ``ssetype`` and ``kmskeyid`` change how the engine
#: writes, not how a blob is read back; ``awssdk`` chooses the engine's own SDK version
S3_TRANSLATED = frozenset({"region", "endpoint", "profile", "use_path_style", "s3ForcePathStyle", "disable_https",
                           "ssetype", "kmskeyid", "awssdk"})

#: seconds to wait for the object store to connect and to answer one request
S3_TIMEOUT = 10.0


class S3Store:
    """A bucket (and key prefix) of an ``s3://`` backend, read with one boto3 client per process."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        import botocore.exceptions

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            data: bytes = body.read()
            return data
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise UnreadableError(f"s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise UnreadableError(f"s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc

    def keys(self, prefix: str) -> list[str]:
        import botocore.exceptions

        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=self.prefix + prefix)
            for page in pages:
                found.extend(str(item["Key"])[len(self.prefix):] for item in page.get("Contents") or [])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError) as exc:
            raise UnreadableError(f"s3://{self.bucket}/{self.prefix}{prefix}: {exc}") from exc
        return sorted(found)


def _s3(url: str) -> S3Store | None:
    parts = urllib.parse.urlsplit(url)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
    if not parts.hostname or set(query) - S3_TRANSLATED:
        return None
    import boto3
    import botocore.config
    import botocore.exceptions

    path_style = "true" in (query.get("use_path_style", "").lower(), query.get("s3ForcePathStyle", "").lower())
    config = botocore.config.Config(
        connect_timeout=S3_TIMEOUT, read_timeout=S3_TIMEOUT, retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path" if path_style else "auto"})
    try:
        session = boto3.session.Session(profile_name=query.get("profile") or None)
        client = session.client("s3", region_name=query.get("region") or None,
                                endpoint_url=query.get("endpoint") or None,
                                use_ssl=query.get("disable_https", "").lower() != "true", config=config)
    except botocore.exceptions.BotoCoreError:
        return None  # no such profile, no region the SDK can resolve, ...: the engine will say what is wrong
    prefix = parts.path.strip("/")
    return S3Store(client, parts.netloc.rpartition("@")[2], prefix + "/" if prefix else "")


def file_root(backend_url: str) -> Path | None:
    """The folder of a file backend's URL; None for any other backend."""
    return Path(backend_url[len("file://"):]) if backend_url.startswith("file://") else None


@functools.cache
def open_store(backend_url: str) -> Store | None:
    """The store of a backend URL (one per URL and process), or None when its blobs are not read here."""
    if (root := file_root(backend_url)) is not None:
        return FileStore(root)
    if backend_url.startswith("s3://"):
        return _s3(backend_url)
    return None
