"""Where a tenant's snapshot is kept: a file (``./backups/``, ``/srv/snap/vteam.tar.gz``) or an object in an
S3-compatible store (``s3://bucket/prefix/``), written and read by ``vcm`` itself on this machine.

Why here and not in the cluster: the syncer can write to S3 itself, but then the store's credentials must enter
the tenant's namespace (upstream passes them to the snapshot pod in its environment) and the control plane's pod
needs egress to the store, which the tenant's default-deny rules rightly forbid. ``vcm`` takes the archive out
of the control plane through the API server and keeps it itself, so the credentials stay on this machine:
they come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, the
shared files), never from an argument, and are never printed. The endpoint of a store that is not AWS comes from
``--s3-endpoint`` (or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, which boto3 reads itself).

A destination that names a folder (an existing directory, or a text ending in ``/``) gets a file of its own:
``<tenant>-<UTC time>.tar.gz``; otherwise the text is the file or key itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Any

from vcluster_mgr import errors

#: the largest archive ``vcm restore`` reads (bytes): far above a virtual cluster's store, and a bound on memory
MAX_ARCHIVE_BYTES = 2 * 1024**3


@dataclasses.dataclass(frozen=True)
class Location:
    """One snapshot: a local file, or an S3 object (``bucket``, ``key``) at ``endpoint`` (None: boto3's own)."""

    path: Path | None = None
    bucket: str = ""
    key: str = ""
    endpoint: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"s3://{self.bucket}/{self.key}"


def file_name(tenant: str, now: datetime.datetime) -> str:
    """``vteam-20261206T154210Z.tar.gz``: sorts by time, one per second."""
    return f"{tenant}-{now.astimezone(datetime.UTC).strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


def _s3(text: str, endpoint: str | None, what: str) -> tuple[str, str]:
    rest = text[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise errors.UsageError(f"{what} {text!r}: no bucket (expected s3://BUCKET/KEY or s3://BUCKET/PREFIX/)")
    return bucket, key


def destination(text: str, *, tenant: str, now: datetime.datetime, endpoint: str | None = None,
                what: str = "--to") -> Location:
    """Where ``vcm snapshot`` writes: a folder gets ``file_name(tenant, now)`` inside it."""
    if text.startswith("s3://"):
        bucket, key = _s3(text, endpoint, what)
        if not key or key.endswith("/"):
            key += file_name(tenant, now)
        return Location(bucket=bucket, key=key, endpoint=endpoint)
    if "://" in text:
        raise errors.UsageError(f"{what} {text!r}: a local path or s3://BUCKET/KEY (no other scheme)")
    path = Path(text).expanduser()
    if text.endswith("/") or path.is_dir():
        return Location(path=path / file_name(tenant, now))
    return Location(path=path)


def source(text: str, *, endpoint: str | None = None, what: str = "--from") -> Location:
    """Where ``vcm restore`` reads: one file or one S3 object, named in full."""
    if text.startswith("s3://"):
        bucket, key = _s3(text, endpoint, what)
        if not key or key.endswith("/"):
            raise errors.UsageError(f"{what} {text!r}: name the snapshot's key (s3://BUCKET/KEY), not a prefix")
        return Location(bucket=bucket, key=key, endpoint=endpoint)
    if "://" in text:
        raise errors.UsageError(f"{what} {text!r}: a local file or s3://BUCKET/KEY (no other scheme)")
    return Location(path=Path(text).expanduser())


def _client(loc: Location) -> Any:
    """A boto3 S3 client: path-style addressing when an endpoint is given (stores other than AWS), and a region
    when none is configured (the signature needs one; such stores ignore it). Imported here: only S3 needs it."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=10, read_timeout=120) if loc.endpoint else None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.client("s3", endpoint_url=loc.endpoint, region_name=region, config=config)


def _s3_error(loc: Location, doing: str, exc: Exception) -> errors.ProvisionError:
    from botocore import exceptions

    if isinstance(exc, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return errors.ProvisionError(
            f"{doing} {loc}: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) "
            "in the environment")
    if isinstance(exc, exceptions.ClientError):
        error = exc.response.get("Error", {})
        return errors.ProvisionError(f"{doing} {loc}: the store said {error.get('Code', '?')}: "
                                     f"{error.get('Message', '')}".rstrip(": "))
    return errors.ProvisionError(f"{doing} {loc}: {exc}")


def write(loc: Location, data: bytes) -> None:
    """Keep the archive at ``loc``; a file is written whole or not at all (a temporary name, then renamed),
    readable by its owner only."""
    if loc.path is not None:
        try:
            loc.path.parent.mkdir(parents=True, exist_ok=True)
            partial = loc.path.with_name(f".{loc.path.name}.partial")
            # mode 600: the archive holds the virtual cluster's Secrets as its store does, in the clear
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            partial.replace(loc.path)
        except OSError as exc:
            raise errors.ProvisionError(f"writing the snapshot to {loc.path}: {exc.strerror or exc}") from exc
        return
    from botocore import exceptions

    try:
        _client(loc).put_object(Bucket=loc.bucket, Key=loc.key, Body=data, ContentType="application/gzip")
    except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
        raise _s3_error(loc, "writing the snapshot to", exc) from exc


def read(loc: Location) -> bytes:
    """The archive at ``loc``, at most ``MAX_ARCHIVE_BYTES``; a missing one is a ``UsageError`` (exit 2)."""
    if loc.path is not None:
        try:
            if not loc.path.exists():
                raise errors.UsageError(f"--from {loc.path}: no such file")
            if not loc.path.is_file():
                raise errors.UsageError(f"--from {loc.path}: not a regular file (a snapshot is one .tar.gz file)")
            if loc.path.stat().st_size > MAX_ARCHIVE_BYTES:
                raise errors.UsageError(f"--from {loc.path}: larger than {MAX_ARCHIVE_BYTES} bytes")
            return loc.path.read_bytes()
        except OSError as exc:
            raise errors.UsageError(f"--from {loc.path}: {exc.strerror or exc}") from exc
    from botocore import exceptions

    try:
        answer = _client(loc).get_object(Bucket=loc.bucket, Key=loc.key)
        if int(answer.get("ContentLength") or 0) > MAX_ARCHIVE_BYTES:
            raise errors.UsageError(f"--from {loc}: larger than {MAX_ARCHIVE_BYTES} bytes")
        data: bytes = answer["Body"].read(MAX_ARCHIVE_BYTES + 1)
    except exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise errors.UsageError(f"--from {loc}: no such snapshot in the store") from exc
        raise _s3_error(loc, "reading the snapshot from", exc) from exc
    except exceptions.BotoCoreError as exc:
        raise _s3_error(loc, "reading the snapshot from", exc) from exc
    return data
