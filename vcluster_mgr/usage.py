"""Quota usage and showback: from the live Namespaces and ResourceQuotas of a host cluster to one row per
tenant (and per namespace), the fraction of each quota resource used, monthly costs and totals per cost
center. Pure: the objects come in as plain dicts (as the API server sends them), rows go out.

A tenant's namespaces are found by the ``vcluster-mgr.dev/tenant`` label, its cost center by the
``cost-center`` label (from the spec's ``metadata.labels``; ``department``, the OpenCost/Kubecost
label mapping default, is read when ``cost-center`` is absent). Reserved cost prices the quota's
``hard`` values, used cost its ``used`` values (the sum of the requests of the pods and claims admitted
against it): ``requests.cpu`` per core, ``requests.memory`` and ``requests.storage`` per GiB, and
``requests.<gpu>`` per device.
"""

from __future__ import annotations

import csv
import html
import io
import json
from decimal import Decimal
from typing import Any

from vcluster_mgr import kube, naming, spec

COST_LABEL_FALLBACKS = ("department",)
"""Labels read for the cost center when ``cost-center`` is missing (OpenCost/Kubecost's department)."""

GIB = Decimal(1024**3)

_NO_FRACTION = ("services.nodeports", "services.loadbalancers")
"""Hard limits of 0 that mean "not allowed", not "full": left out of the fraction that ranks tenants."""


def _number(text: Any) -> Decimal:
    return kube.parse_quantity(text).value


def _fraction(used: Decimal, hard: Decimal) -> float | None:
    if hard <= 0:
        return None if used <= 0 else 1.0
    return round(float(used / hard), 4)


def _resources(hard: dict[str, Decimal], used: dict[str, Decimal]) -> dict[str, dict[str, Any]]:
    out = {}
    for key in sorted(hard):
        u = used.get(key, Decimal(0))
        out[key] = {"used": _plain(u), "hard": _plain(hard[key]), "fraction": _fraction(u, hard[key])}
    return out


def _plain(value: Decimal) -> str:
    """A quantity as a plain decimal number (cores, bytes, counts): easy for scripts to compare."""
    text = format(value.normalize(), "f")
    return text


_BYTES = ("memory", "storage")
"""Resources counted in bytes (``requests.memory``, ``limits.ephemeral-storage``, ...), shown as ``16Gi``."""
_CORES = ("cpu",)
"""Resources counted in cores, shown as ``500m`` or ``4``."""


def quantity_text(resource: str, value: str) -> str:
    """A report value as a person reads it, in the notation the spec uses: bytes as ``16Gi`` (not
    ``17179869184``), cores as ``500m`` or ``4``, counts as they are. The report's own values stay plain
    numbers, for scripts."""
    name = resource.rsplit(".", 1)[-1]
    if name.endswith(_BYTES):
        return kube.format_quantity(Decimal(value), "BinarySI")
    if name in _CORES:
        return kube.format_quantity(Decimal(value), "DecimalSI")
    return value


def _max_fraction(resources: dict[str, dict[str, Any]]) -> float:
    found = [r["fraction"] for k, r in resources.items() if r["fraction"] is not None and k not in _NO_FRACTION]
    return max(found, default=0.0)


def _cost(values: dict[str, Decimal], prices: spec.Prices) -> float:
    total = Decimal(0)
    total += values.get("requests.cpu", Decimal(0)) * Decimal(repr(prices.cpu_core_month))
    total += values.get("requests.memory", Decimal(0)) / GIB * Decimal(repr(prices.memory_gib_month))
    total += values.get("requests.storage", Decimal(0)) / GIB * Decimal(repr(prices.storage_gib_month))
    for gpu, price in prices.gpu_month.items():
        total += values.get(f"requests.{gpu}", Decimal(0)) * Decimal(repr(price))
    return round(float(total), 2)


def cost_center(labels: dict[str, str]) -> str | None:
    for key in (naming.COST_CENTER_LABEL, *COST_LABEL_FALLBACKS):
        if labels.get(key):
            return labels[key]
    return None


def tenant_usage(
    namespaces: list[dict[str, Any]],
    quotas: list[dict[str, Any]],
    *,
    prices: spec.Prices | None = None,
    tenants: list[str] | None = None,
) -> dict[str, Any]:
    """Usage of every tenant (or of ``tenants``), the closest to a limit first, with costs when priced.

    ``namespaces`` and ``quotas`` are the items of one list call each (all tenants' namespaces and quotas).
    Returns ``{"tenants": [...], "costCenters": [...], "currency": ...}`` (the JSON of ``vcm usage``).
    """
    tenant_of: dict[str, str] = {}
    center_of: dict[str, str | None] = {}
    for ns in namespaces:
        meta = ns.get("metadata", {})
        labels = meta.get("labels") or {}
        tenant = labels.get(naming.TENANT_LABEL)
        if not tenant or (tenants is not None and tenant not in tenants):
            continue
        tenant_of[meta["name"]] = tenant
        center_of.setdefault(tenant, cost_center(labels))
    per_ns: dict[str, dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]]] = {}
    for q in quotas:
        ns_name = q.get("metadata", {}).get("namespace", "")
        tenant = tenant_of.get(ns_name)
        if tenant is None:
            continue
        hard = {k: _number(v) for k, v in ((q.get("status") or {}).get("hard") or q["spec"].get("hard", {})).items()}
        used = {k: _number(v) for k, v in ((q.get("status") or {}).get("used") or {}).items()}
        h0, u0 = per_ns.setdefault(tenant, {}).setdefault(ns_name, ({}, {}))
        for k, v in hard.items():
            h0[k] = h0.get(k, Decimal(0)) + v
        for k, v in used.items():
            u0[k] = u0.get(k, Decimal(0)) + v
    rows = []
    for tenant in sorted(set(tenant_of.values())):
        t_hard: dict[str, Decimal] = {}
        t_used: dict[str, Decimal] = {}
        ns_rows = []
        for ns_name in sorted(n for n, t in tenant_of.items() if t == tenant):
            hard, used = per_ns.get(tenant, {}).get(ns_name, ({}, {}))
            for k, v in hard.items():
                t_hard[k] = t_hard.get(k, Decimal(0)) + v
            for k, v in used.items():
                t_used[k] = t_used.get(k, Decimal(0)) + v
            res = _resources(hard, used)
            ns_rows.append({"namespace": ns_name, "maxFraction": _max_fraction(res), "resources": res})
        res = _resources(t_hard, t_used)
        row: dict[str, Any] = {
            "tenant": tenant,
            "costCenter": center_of.get(tenant),
            "maxFraction": _max_fraction(res),
            "resources": res,
            "namespaces": ns_rows,
        }
        if prices is not None:
            row["cost"] = {"reservedMonthly": _cost(t_hard, prices), "usedMonthly": _cost(t_used, prices)}
        rows.append(row)
    rows.sort(key=lambda r: (-r["maxFraction"], r["tenant"]))
    centers: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = r["costCenter"] or ""
        c = centers.setdefault(key, {"costCenter": r["costCenter"], "tenants": 0})
        c["tenants"] += 1
        if prices is not None:
            c["reservedMonthly"] = round(c.get("reservedMonthly", 0.0) + r["cost"]["reservedMonthly"], 2)
            c["usedMonthly"] = round(c.get("usedMonthly", 0.0) + r["cost"]["usedMonthly"], 2)
    return {
        "currency": prices.currency if prices is not None else None,
        "tenants": rows,
        "costCenters": [centers[k] for k in sorted(centers)],
    }


# ---------------------------------------------------------------------------------------------
# Output: CSV and the self-contained HTML page
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = ("tenant", "namespace", "costCenter", "resource", "used", "hard", "fraction")


def to_csv(report: dict[str, Any]) -> str:
    """One line per tenant and resource (namespace empty: the tenant's total), then per namespace."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in report["tenants"]:
        for scope, resources in [("", t["resources"])] + [(n["namespace"], n["resources"]) for n in t["namespaces"]]:
            for key, r in resources.items():
                fraction = "" if r["fraction"] is None else r["fraction"]
                writer.writerow([t["tenant"], scope, t["costCenter"] or "", key, r["used"], r["hard"], fraction])
    return buf.getvalue()


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'">
<title>vcluster-mgr quota usage</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 4px 10px; text-align: left; border-bottom: 1px solid #ddd; }}
th {{ cursor: pointer; user-select: none; background: #f4f4f4; }}
th[aria-sort=ascending]::after {{ content: " \\25B2"; }} th[aria-sort=descending]::after {{ content: " \\25BC"; }}
.bar {{ width: 260px; height: 14px; background: #eee; position: relative; }}
.fill {{ height: 100%; background: #3a7; }} .warn {{ background: #e92; }} .full {{ background: #d33; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head><body>
<h1>Quota usage</h1>
<p>{summary}. Bars: the most used quota resource of each tenant (used against hard). Click a column to sort.</p>
<table id="usage"><thead><tr>
<th data-key="tenant">tenant</th><th data-key="center">cost center</th><th data-key="fraction" data-num="1"
aria-sort="descending">used of hard</th><th>most used resource</th>{cost_heads}
</tr></thead><tbody>
{rows}
</tbody></table>
<script>
(function () {{
  var table = document.getElementById("usage");
  var heads = table.tHead.rows[0].cells;
  function sortBy(th, asc) {{
    Array.prototype.forEach.call(heads, function (h) {{ h.removeAttribute("aria-sort"); }});
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var key = th.dataset.key, num = th.dataset.num;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.dataset[key], y = b.dataset[key];
      var c = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return asc ? c : -c;
    }});
    rows.forEach(function (r) {{ body.appendChild(r); }});
  }}
  Array.prototype.forEach.call(heads, function (th) {{
    if (!th.dataset.key) return;
    th.addEventListener("click", function () {{ sortBy(th, th.getAttribute("aria-sort") !== "ascending"); }});
  }});
  // a link can ask for an order: usage.html#sort=tenant:asc (keys: tenant, center, fraction, reserved, used)
  var m = /^#sort=([a-z]+):(asc|desc)$/.exec(window.location.hash);
  if (m) {{
    Array.prototype.forEach.call(heads, function (th) {{ if (th.dataset.key === m[1]) sortBy(th, m[2] === "asc"); }});
  }}
}})();
</script>
</body></html>
"""


def to_html(report: dict[str, Any]) -> str:
    """One self-contained page (no external fetch: inline style and script, a CSP that forbids loads)."""
    priced = report.get("currency") is not None
    rows = []
    for t in report["tenants"]:
        worst = max(
            ((k, r) for k, r in t["resources"].items() if r["fraction"] is not None and k not in _NO_FRACTION),
            key=lambda kr: kr[1]["fraction"],
            default=None,
        )
        fraction = t["maxFraction"]
        width = min(fraction, 1.0) * 100
        level = "full" if fraction >= 0.95 else "warn" if fraction >= 0.8 else ""
        what = f"{worst[0]}: {worst[1]['used']} of {worst[1]['hard']}" if worst else "-"
        cells = [
            f"<td>{html.escape(t['tenant'])}</td>",
            f"<td>{html.escape(t['costCenter'] or '-')}</td>",
            f'<td><div class="bar" title="{fraction:.0%}"><div class="fill {level}" style="width:{width:.1f}%">'
            f"</div></div> {fraction:.0%}</td>",
            f"<td>{html.escape(what)}</td>",
        ]
        data = {
            "tenant": t["tenant"],
            "center": t["costCenter"] or "",
            "fraction": str(fraction),
        }
        if priced:
            cells.append(f'<td class="num">{t["cost"]["reservedMonthly"]:.2f}</td>')
            cells.append(f'<td class="num">{t["cost"]["usedMonthly"]:.2f}</td>')
            data["reserved"] = str(t["cost"]["reservedMonthly"])
            data["used"] = str(t["cost"]["usedMonthly"])
        attrs = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in data.items())
        rows.append(f'<tr class="tenant" {attrs}>' + "".join(cells) + "</tr>")
    cost_heads = ""
    if priced:
        cur = html.escape(str(report["currency"]))
        cost_heads = (
            f'<th data-key="reserved" data-num="1">reserved / month ({cur})</th>'
            f'<th data-key="used" data-num="1">used / month ({cur})</th>'
        )
    summary = f"{len(report['tenants'])} tenant(s)"
    return _PAGE.format(summary=html.escape(summary), rows="\n".join(rows), cost_heads=cost_heads)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
