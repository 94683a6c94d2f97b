"""Lifecycle of ephemeral tenants (vcluster_mgr.lifecycle, the expiry and name helpers of vcluster_mgr.naming).

Covers, with a fixed clock and seeded randomness: the expiry a tenant's ttl gives (UTC, rounded up to the
second, none without a ttl); the annotation (RFC 3339) and label (compact) forms and reading them back;
is_expired, which is never true without a readable expiry; generated names (DNS-1123, prefix rules, valid
tenant names); select_expired, which never picks a record without expiresAt (a Hypothesis property too);
the Go durations the vcluster chart wants; and ephemeral copies of every example spec (renamed_copy), whose
references to the tenant's own namespaces follow the new name.
tenant names); select_expired over tenant records, which never picks one without a readable expiry (a
Hypothesis property too); and the Go durations the vcluster chart wants.
"""

from __future__ import annotations

import copy
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vcluster_mgr import errors, kube, lifecycle, naming, record, spec

REPO = Path(__file__).resolve().parent.parent
PAYMENTS = yaml.safe_load((REPO / "examples" / "tenants" / "payments.yaml").read_text())
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def tenant(ttl: str | None, name: str = "payments") -> spec.Tenant:
    data = copy.deepcopy(PAYMENTS)
    data["spec"]["ttl"] = ttl
    data["metadata"]["name"] = name
    data["spec"]["owners"] = data["spec"]["owners"][:2]
    return spec.parse_spec(data)


# ---------------------------------------------------------------------------------------------
# Expiry
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        ("2h", datetime(2025, 1, 2, 5, 4, 5, tzinfo=UTC)),
        ("30m", datetime(2025, 1, 2, 3, 34, 5, tzinfo=UTC)),
        ("1d", datetime(2025, 1, 3, 3, 4, 5, tzinfo=UTC)),
        ("1w1h30m", datetime(2025, 1, 9, 4, 34, 5, tzinfo=UTC)),
    ],
)
def test_expiry_is_now_plus_ttl(ttl: str, expected: datetime) -> None:
    assert lifecycle.expiry(tenant(ttl), NOW) == expected


def test_no_ttl_no_expiry() -> None:
    assert lifecycle.expiry(tenant(None), NOW) is None


def test_expiry_is_utc_and_rounded_up_to_the_second() -> None:
    berlin = timezone(timedelta(hours=1))
    moment = datetime(2025, 1, 2, 4, 4, 5, 1, tzinfo=berlin)
    result = lifecycle.expiry(tenant("1h"), moment)
    assert result == datetime(2025, 1, 2, 4, 4, 6, tzinfo=UTC)
    assert result is not None and result.utcoffset() == timedelta(0)


def test_naive_clocks_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        lifecycle.expiry(tenant("1h"), datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="time zone"):
        lifecycle.is_expired("2025-01-02T03:04:05Z", datetime(2025, 1, 2))


def test_formats() -> None:
    assert lifecycle.format_expiry(NOW) == "2025-01-02T03:04:05Z"
    assert lifecycle.format_expiry_label(NOW) == "20250102T030405Z"
    kube.check_label_value(lifecycle.format_expiry_label(NOW))
    with pytest.raises(ValueError):
        kube.check_label_value(lifecycle.format_expiry(NOW))  # why the label has its own form


@pytest.mark.parametrize(
    "text",
    ["2025-01-02T03:04:05Z", "20250102T030405Z", "2025-01-02T04:04:05+01:00", "2025-01-02T03:04:05.000Z"],
)
def test_parse_expiry_reads_every_form(text: str) -> None:
    assert lifecycle.parse_expiry(text) == NOW


@pytest.mark.parametrize(
    "text", ["", "soon", "2025-01-02", "2025-01-02T03:04:05", "1735787045", "2025-13-01T00:00:00Z"]
)
def test_parse_expiry_refuses_what_is_not_an_absolute_time(text: str) -> None:
    with pytest.raises(ValueError, match="not an expiry"):
        lifecycle.parse_expiry(text)


def test_keys_are_valid_label_and_annotation_keys() -> None:
    assert naming.EXPIRES_AT_ANNOTATION == naming.EXPIRES_AT_LABEL == "vcluster-mgr.dev/expires-at"
    kube.check_label_key(naming.EXPIRES_AT_LABEL)


# ---------------------------------------------------------------------------------------------
# is_expired
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_at", "expected"),
    [
        (None, False),
        ("", False),
        ("garbage", False),
        ("2025-01-02", False),
        ("2025-01-02T03:04:05", False),
        ("2025-01-02T03:04:06Z", False),
        ("2025-01-02T03:04:05Z", True),
        ("2025-01-02T03:04:04Z", True),
        ("20250102T030404Z", True),
        ("20250102T030406Z", False),
        ("2025-01-02T04:04:05+01:00", True),
        ("1999-01-01T00:00:00Z", True),
    ],
)
def test_is_expired(expires_at: str | None, expected: bool) -> None:
    assert lifecycle.is_expired(expires_at, NOW) is expected


def test_an_expiry_written_now_expires_exactly_after_the_ttl() -> None:
    moment = lifecycle.expiry(tenant("2h"), NOW)
    assert moment is not None
    written = lifecycle.format_expiry(moment)
    assert not lifecycle.is_expired(written, NOW + timedelta(hours=2) - timedelta(seconds=1))
    assert lifecycle.is_expired(written, NOW + timedelta(hours=2))
    assert lifecycle.is_expired(lifecycle.format_expiry_label(moment), NOW + timedelta(hours=2))


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def test_unique_name_shape_and_seeded_repeatability() -> None:
    name = lifecycle.unique_name("ci-", rng=random.Random(7))
    assert re.fullmatch(r"ci-[a-z0-9]{6}", name)
    assert name == lifecycle.unique_name("ci-", rng=random.Random(7))
    kube.check_dns_label(name)


def test_unique_names_differ() -> None:
    names = {lifecycle.unique_name("ci-") for _ in range(200)}
    assert len(names) == 200


def test_a_generated_name_makes_a_valid_tenant() -> None:
    name = lifecycle.unique_name("pr-1234-", rng=random.Random(1))
    assert tenant("2h", name=name).name == name


@pytest.mark.parametrize(
    ("prefix", "fragment"),
    [
        ("", "not a name prefix"),
        ("CI-", "not a name prefix"),
        ("-ci", "not a name prefix"),
        ("7ci", "not a name prefix"),
        ("ci_", "not a name prefix"),
        ("c" * 31, "not a name prefix"),
        ("kube-", "reserved"),
    ],
)
def test_bad_prefixes(prefix: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        lifecycle.unique_name(prefix)


def test_longest_prefix_fits() -> None:
    name = lifecycle.unique_name("c" * naming.NAME_PREFIX_MAX, rng=random.Random(0))
    assert len(name) == naming.NAME_PREFIX_MAX + naming.NAME_SUFFIX_LENGTH


# ---------------------------------------------------------------------------------------------
# select_expired
# ---------------------------------------------------------------------------------------------


def test_select_expired_picks_only_dated_expired_records_oldest_first() -> None:
    outputs: list[dict[str, Any]] = [
        {"tenant": "ci-new", "cluster": "east", "expiresAt": "2025-01-02T05:00:00Z"},
        {"tenant": "ci-b", "cluster": "west", "expiresAt": "2025-01-02T01:00:00Z"},
        {"tenant": "payments", "cluster": "east"},
        {"tenant": "search", "cluster": "east", "expiresAt": None},
        {"tenant": "odd", "cluster": "east", "expiresAt": "tomorrow"},
        {"tenant": "ci-a", "cluster": "east", "expiresAt": "20250102T010000Z"},
        {"tenant": "ci-c", "cluster": "east", "expiresAt": "2025-01-01T00:00:00Z"},
        {"tenant": "ci-now", "cluster": "east", "expiresAt": "2025-01-02T03:04:05Z"},
    ]
    records = [record.read(o) for o in outputs]
    picked = lifecycle.select_expired(records, NOW)
    assert [r.tenant for r in picked] == ["ci-c", "ci-a", "ci-b", "ci-now"]
    assert all(any(r is x for x in records) for r in picked), "the records themselves are returned"


def test_select_expired_of_nothing() -> None:
    assert lifecycle.select_expired([], NOW) == []


expiries = st.one_of(
    st.none(),
    st.text(max_size=25),
    st.datetimes(timezones=st.just(UTC)).map(lifecycle.format_expiry),
    st.datetimes(timezones=st.just(UTC)).map(lifecycle.format_expiry_label),
    st.datetimes().map(lambda d: d.isoformat()),
)
records = st.lists(
    st.builds(
        record.TenantRecord,
        tenant=st.text(max_size=10),
        cluster=st.text(max_size=10),
        expires_at=expiries,
    ),
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(records=records, now=st.datetimes(timezones=st.just(UTC)))
def test_select_expired_never_picks_a_record_without_a_readable_past_expiry(
    records: list[record.TenantRecord], now: datetime
) -> None:
    picked = lifecycle.select_expired(records, now)
    for found in picked:
        assert isinstance(found.expires_at, str)
        assert lifecycle.parse_expiry(found.expires_at) <= now
    expected = [r for r in records if lifecycle.is_expired(r.expires_at, now)]
    assert sorted(map(id, picked)) == sorted(map(id, expected))


# ---------------------------------------------------------------------------------------------
# Go durations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", "30s"), ("30m", "30m"), ("2h", "2h"), ("1d", "24h"), ("1w", "168h"), ("1h1m1s", "1h1m1s")],
)
def test_go_duration(text: str, expected: str) -> None:
    assert kube.go_duration(kube.parse_duration(text)) == expected


# ---------------------------------------------------------------------------------------------
# Ephemeral copies: renamed, with every reference to the tenant's own namespaces remapped
# ---------------------------------------------------------------------------------------------

EXAMPLE_SPECS = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*/*.yaml"))
EXAMPLE_TENANTS = [p for p in EXAMPLE_SPECS if p.name != "policy.yaml"]


@pytest.mark.parametrize("path", EXAMPLE_TENANTS, ids=lambda p: p.stem)
def test_an_ephemeral_copy_of_every_example_is_a_valid_tenant_of_its_own(path: Path) -> None:
    original = spec.read_document(path, "Tenant")
    copied = lifecycle.renamed_copy(original, "ci-v3yiyz")
    copied["spec"]["ttl"] = "1h"
    tenant = spec.parse_spec(copied)
    assert tenant.name == "ci-v3yiyz"
    old = spec.parse_spec(original).namespace_names()
    text = yaml.safe_dump(copied)
    assert not any(ns in text for ns in old), "a reference to the original's namespaces is left"
    assert all(o.namespace in tenant.namespace_names() for o in tenant.spec.owners if o.namespace)
    assert original["metadata"]["name"] != "ci-v3yiyz"  # the input is left as it was


@pytest.mark.parametrize("path", [p for p in EXAMPLE_TENANTS if p.stem in ("analytics", "payments")],
                         ids=lambda p: p.stem)
def test_twin_renaming_the_tenant_alone_leaves_its_serviceaccount_owner_behind(path: Path) -> None:
    copied = spec.read_document(path, "Tenant")
    copied["metadata"]["name"] = "ci-v3yiyz"
    copied["spec"]["ttl"] = "1h"
    with pytest.raises(errors.SpecError, match=r"spec\.owners\[\d\]\.namespace"):
        spec.parse_spec(copied)


def test_namespaces_that_are_not_the_tenants_own_stay() -> None:
    doc = {"metadata": {"name": "search"}, "spec": {"namespaces": ["api"], "network": {"allowFrom": [
        {"namespace": "ingress-nginx"}, {"namespace": "search-api"}]}}}
    copied = lifecycle.renamed_copy(doc, "ci-1")
    assert copied["spec"]["network"]["allowFrom"] == [{"namespace": "ingress-nginx"}, {"namespace": "ci-1-api"}]
