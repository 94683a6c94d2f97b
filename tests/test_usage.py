"""The usage report (``vcluster_mgr.usage``), offline: fractions and their order, tenant totals from several
namespaces, costs priced from quota hard (reserved) and used (requests), cost-center totals, CSV and the
HTML page's content, a tenant's whole quota read back from its rendered split.
The live reading is tested in tests/integration/test_visibility.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vcluster_mgr import render, spec, usage


def _ns(name: str, tenant: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"vcluster-mgr.dev/tenant": tenant, **labels}}}


def _quota(ns: str, hard: dict[str, str], used: dict[str, str] | None) -> dict[str, Any]:
    q: dict[str, Any] = {"metadata": {"name": "vcm-quota", "namespace": ns}, "spec": {"hard": hard}}
    if used is not None:
        q["status"] = {"hard": hard, "used": used}
    return q


HARD = {"requests.cpu": "1", "requests.memory": "2Gi", "pods": "4", "services.nodeports": "0"}
NAMESPACES = [
    _ns("a-x", "a", **{"cost-center": "cc-1"}),
    _ns("a-y", "a", **{"cost-center": "cc-1"}),
    _ns("b-x", "b", department="cc-2"),
    _ns("c-x", "c"),
]
QUOTAS = [
    _quota("a-x", HARD, {"requests.cpu": "500m", "requests.memory": "1Gi", "pods": "1"}),
    _quota("a-y", HARD, {"requests.cpu": "0", "requests.memory": "0", "pods": "0"}),
    _quota("b-x", HARD, {"requests.cpu": "1", "requests.memory": "512Mi", "pods": "2"}),
    _quota("c-x", HARD, None),  # the quota controller has not filled its status yet: spec.hard, nothing used
    _quota("other", HARD, {"pods": "4"}),  # not a tenant namespace
]
PRICES = spec.Prices.model_validate({"currency": "EUR", "cpuCoreMonth": 10, "memoryGibMonth": 2.5})


def test_tenants_closest_to_a_limit_first_with_namespace_rows() -> None:
    report = usage.tenant_usage(NAMESPACES, QUOTAS)
    assert [t["tenant"] for t in report["tenants"]] == ["b", "a", "c"]
    b, a, c = report["tenants"]
    assert b["maxFraction"] == 1.0 and b["costCenter"] == "cc-2"  # department when cost-center is absent
    assert a["resources"]["requests.cpu"] == {"used": "0.5", "hard": "2", "fraction": 0.25}
    assert a["resources"]["requests.memory"]["hard"] == str(4 * 1024**3)
    assert [n["namespace"] for n in a["namespaces"]] == ["a-x", "a-y"]
    assert a["namespaces"][0]["maxFraction"] == 0.5
    # a hard 0 that means "not allowed" neither fills a tenant nor ranks it
    assert a["resources"]["services.nodeports"]["fraction"] is None
    assert c["maxFraction"] == 0.0 and c["costCenter"] is None and "cost" not in c
    assert report["currency"] is None and report["costCenters"][0] == {"costCenter": None, "tenants": 1}


def test_named_tenants_only() -> None:
    assert [t["tenant"] for t in usage.tenant_usage(NAMESPACES, QUOTAS, tenants=["a"])["tenants"]] == ["a"]


def test_costs_and_cost_center_totals() -> None:
    report = usage.tenant_usage(NAMESPACES, QUOTAS, prices=PRICES)
    cost = {t["tenant"]: t["cost"] for t in report["tenants"]}
    assert cost["a"] == {"reservedMonthly": 30.0, "usedMonthly": 7.5}  # 2 cores, 4 GiB; 0.5 core, 1 GiB
    assert cost["b"] == {"reservedMonthly": 15.0, "usedMonthly": 11.25}
    assert report["currency"] == "EUR"
    assert report["costCenters"] == [
        {"costCenter": None, "tenants": 1, "reservedMonthly": 15.0, "usedMonthly": 0.0},
        {"costCenter": "cc-1", "tenants": 1, "reservedMonthly": 30.0, "usedMonthly": 7.5},
        {"costCenter": "cc-2", "tenants": 1, "reservedMonthly": 15.0, "usedMonthly": 11.25},
    ]


def test_gpu_prices_by_resource_name() -> None:
    prices = spec.Prices.model_validate({"gpuMonth": {"nvidia.com/gpu": 900.0}})
    q = [_quota("a-x", {"requests.nvidia.com/gpu": "2"}, {"requests.nvidia.com/gpu": "1"})]
    row = usage.tenant_usage([_ns("a-x", "a")], q, prices=prices)["tenants"][0]
    assert row["cost"] == {"reservedMonthly": 1800.0, "usedMonthly": 900.0}


def test_csv_has_tenant_totals_then_namespaces() -> None:
    lines = usage.to_csv(usage.tenant_usage(NAMESPACES, QUOTAS, tenants=["b"])).splitlines()
    assert lines[0] == ",".join(usage.CSV_COLUMNS)
    assert "b,,cc-2,pods,2,4,0.5" in lines and "b,b-x,cc-2,pods,2,4,0.5" in lines


def test_html_is_self_contained_and_escapes_names() -> None:
    ns = [_ns("x-y", "x", **{"cost-center": "<script>alert(1)</script>"})]
    page = usage.to_html(usage.tenant_usage(ns, [_quota("x-y", HARD, {"pods": "3"})], prices=PRICES))
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=|https?://|url\(", page)
    assert page.count('<tr class="tenant"') == 1 and 'style="width:75.0%"' in page


def test_a_tenant_reads_back_its_whole_quota_from_the_rendered_split() -> None:
    """The search example's cpu 5 over three namespaces read as `0 / 4.998` (2m lost to rounding); and 61 pods
    over two namespaces as 60. The rendered ResourceQuotas, read back as the live ones, now give the totals."""
    search = spec.load_spec(Path(__file__).resolve().parent.parent / "examples" / "tenants" / "search.yaml")
    objects = render.render_tenant(search)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    quotas = [o for o in objects if o["kind"] == "ResourceQuota"]
    assert len(quotas) == 3
    row = usage.tenant_usage(namespaces, quotas)["tenants"][0]
    assert row["resources"]["requests.cpu"]["hard"] == "5"
    assert usage.quantity_text("requests.cpu", row["resources"]["requests.cpu"]["hard"]) == "5"
    two = spec.parse_spec({"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "t"},
                           "spec": {"owners": [{"kind": "User", "name": "u@example.com", "role": "admin"}],
                                    "namespaces": ["a", "b"], "quota": {"pods": 61}}})
    objects = render.render_tenant(two)
    row = usage.tenant_usage([o for o in objects if o["kind"] == "Namespace"],
                             [o for o in objects if o["kind"] == "ResourceQuota"])["tenants"][0]
    assert row["resources"]["pods"]["hard"] == "61"
