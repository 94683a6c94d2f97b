"""Lifecycle of ephemeral tenants: when they expire, whether they have, and the names CI gives them.

Everything here is pure: the clock is a ``now`` argument (a timezone-aware datetime) and randomness an
optional ``rng``, so callers decide where time and entropy come from and tests pin both.

An expiry is written on a tenant's objects as ``naming.EXPIRES_AT_ANNOTATION`` in RFC 3339, UTC, to the
second (``2025-01-02T03:04:05Z``), and as the label ``naming.EXPIRES_AT_LABEL`` in the compact form
``20250102T030405Z`` (label values allow no ':'). Garbage collection is conservative on purpose: a tenant
without an expiry, or with one that cannot be read, is never expired.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from vcluster_mgr import kube, naming, spec

NAME_ALPHABET = string.ascii_lowercase + string.digits
"""Characters of the random suffix of a generated name (all valid anywhere in a DNS-1123 label)."""

_LABEL_FORMAT = "%Y%m%dT%H%M%SZ"


class Chooser(Protocol):
    """What ``unique_name`` needs from a random source: ``random.Random`` and ``secrets.SystemRandom`` fit."""

    def choice(self, seq: str) -> str: ...


def utc_now() -> datetime:
    """The system clock in UTC: the ``now`` callers pass when they have no clock of their own."""
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass a timezone-aware datetime such as utc_now()")
    return moment.astimezone(UTC)


def expiry(tenant: spec.Tenant, now: datetime) -> datetime | None:
    """When ``tenant`` expires if created at ``now``: ``now + spec.ttl`` in UTC, or None without a ttl.

    Rounded UP to the whole second, so the written expiry is never earlier than the ttl promises.
    Raises ``ValueError`` if ``now`` is naive.
    """
    ttl = tenant.ttl_duration()
    now = _utc(now)
    if ttl is None:
        return None
    moment = now + ttl
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def format_expiry(moment: datetime) -> str:
    """``moment`` as the annotation value: RFC 3339 in UTC, to the second (``2025-01-02T03:04:05Z``)."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_expiry_label(moment: datetime) -> str:
    """``moment`` as the label value: compact ISO 8601 in UTC (``20250102T030405Z``)."""
    return _utc(moment).strftime(_LABEL_FORMAT)


def parse_expiry(text: str) -> datetime:
    """Read an expiry written by ``format_expiry`` or ``format_expiry_label`` (any RFC 3339 offset too).

    Raises ``ValueError`` for anything else, including times without a zone: an expiry must be absolute.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"{text!r} is not an expiry: expected RFC 3339 such as 2025-01-02T03:04:05Z")
    try:
        if len(text) == len("20250102T030405Z") and text.endswith("Z") and "-" not in text:
            return datetime.strptime(text, _LABEL_FORMAT).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an expiry: expected RFC 3339 such as 2025-01-02T03:04:05Z") from None
    if "T" not in text.upper() or parsed.tzinfo is None:
        raise ValueError(f"{text!r} is not an expiry: expected a date, a time and a zone such as 2025-01-02T03:04:05Z")
    return parsed.astimezone(UTC)


def is_expired(expires_at: str | None, now: datetime) -> bool:
    """Whether an expiry annotation (or label) value lies at or before ``now``.

    Never true without an expiry (None or empty) or with one that cannot be read: garbage collection
    must not delete what it cannot date. Raises ``ValueError`` only if ``now`` is naive.
    """
    now = _utc(now)
    if not expires_at:
        return False
    try:
        return parse_expiry(expires_at) <= now
    except ValueError:
        return False


def unique_name(prefix: str, *, rng: Chooser | None = None) -> str:
    """A fresh tenant name: ``prefix`` and ``naming.NAME_SUFFIX_LENGTH`` random characters, e.g. ``ci-7f3k2q``.

    The result is a DNS-1123 label. ``rng`` defaults to the operating system's randomness; pass
    ``random.Random(seed)`` for repeatable names. Raises ``ValueError`` for a prefix that cannot start a
    tenant name (``naming.check_name_prefix``).
    """
    try:
        naming.check_name_prefix(prefix)
    except ValueError as exc:
        raise ValueError(f"{prefix!r} {exc}") from None
    source: Chooser = rng if rng is not None else secrets.SystemRandom()
    name = prefix + "".join(source.choice(NAME_ALPHABET) for _ in range(naming.NAME_SUFFIX_LENGTH))
    kube.check_dns_label(name)
    return name


class Expiring(Protocol):
    """What ``select_expired`` reads of a tenant: ``record.TenantRecord`` fits."""

    @property
    def tenant(self) -> str: ...
    @property
    def cluster(self) -> str: ...
    @property
    def expires_at(self) -> str | None: ...


E = TypeVar("E", bound=Expiring)


def select_expired(records: Iterable[E], now: datetime) -> list[E]:
    """The records whose ``expires_at`` (an annotation or label value) is at or before ``now``, oldest first
    (then by cluster and tenant). Records without one, or with one that cannot be read, are never selected.
    """
    now = _utc(now)
    picked: list[tuple[datetime, str, str, int, E]] = []
    for index, found in enumerate(records):
        raw = found.expires_at
        if not isinstance(raw, str) or not is_expired(raw, now):
            continue
        picked.append((parse_expiry(raw), found.cluster or "", found.tenant or "", index, found))
    picked.sort(key=lambda item: item[:4])
    return [item[4] for item in picked]



def renamed_copy(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A Tenant document (as read, not yet checked) renamed to ``name``, every reference to one of its own
    namespaces remapped to the copy's: an ephemeral copy of ``analytics`` whose ServiceAccount owner lives in
    ``analytics-jobs`` gets it in ``<name>-jobs``. A ``namespace`` anywhere under ``spec`` (owners, network
    allow-lists) that names one of the original's namespaces is such a reference; others (``ingress-nginx``) stay.
    The input is not changed; what is not a well-formed document is copied as is for ``spec`` to refuse."""
    import copy

    copied: dict[str, Any] = copy.deepcopy(dict(document))
    metadata, body = copied.get("metadata"), copied.get("spec")
    if not isinstance(metadata, dict):
        return copied
    old = metadata.get("name")
    metadata["name"] = name
    entries = body.get("namespaces") if isinstance(body, dict) else None
    if not isinstance(old, str) or not isinstance(entries, list):
        return copied
    remap = {naming.namespace_name(old, str(e)): naming.namespace_name(name, str(e)) for e in entries}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "namespace" and isinstance(value, str) and value in remap:
                    node[key] = remap[value]
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return copied
