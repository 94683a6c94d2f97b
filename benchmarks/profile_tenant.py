"""Where one tenant's `vcm apply` spends its time, phase by phase, on a fresh local host cluster.

    .venv/bin/python benchmarks/profile_tenant.py [--runs 3]

It runs the same steps as ``workspace`` does for one tenant (the example ``payments``), timing each:
reading the host cluster's identity, reading the stack's recorded outputs (from the file backend's
checkpoint), the namespace ownership check, opening the stack (``pulumi stack init`` for a new one,
nothing for an existing one), and the update, split by the engine's own events into engine start (until
its first event: process start, plugins, the passphrase key), the resource operations (refresh included,
until the summary event) and what is left after the engine is done. The first run creates the tenant;
the others are no-change re-applies. Then it times the whole command, ``vcm apply payments.yaml --yes``
(a fresh Python process: imports included), for a tenant with no change.
A benchmark, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pulumi import automation as auto  # noqa: E402

from vcluster_mgr import cluster, localcluster, operations, platformconfig, program, spec, workspace  # noqa: E402

PHASES = ("cluster identity", "recorded outputs", "ownership check", "open stack", "engine start",
          "resource operations", "after the engine")


def profile_once(s: workspace.Settings, target: platformconfig.Target, tenant: spec.Tenant) -> dict[str, float]:
    marks: dict[str, float] = {}
    t = time.monotonic()
    with cluster.connect(target) as conn:
        uid = cluster.cluster_uid(conn)
    marks["cluster identity"] = time.monotonic() - t
    t = time.monotonic()
    name = workspace.tenant_stack_name(target.name, tenant.name)
    found = workspace.recorded_outputs(s, workspace.TENANT_PROJECT, name)
    marks["recorded outputs"] = time.monotonic() - t
    t = time.monotonic()
    with cluster.connect(target) as conn:
        cluster.check_ownership(conn, tenant.name, tenant.namespace_names(), f"{workspace.TENANT_PROJECT}/{name}")
    marks["ownership check"] = time.monotonic() - t
    t = time.monotonic()
    blueprint = platformconfig.Blueprint()
    fn = program.tenant_program(tenant, target, blueprint, program.render_tenant(tenant, blueprint), cluster_uid=uid)
    st = workspace.stack(s, name, fn, project=workspace.TENANT_PROJECT, target=target, exists=found is not None)
    marks["open stack"] = time.monotonic() - t
    events: dict[str, float] = {}

    def on_event(ev: auto.EngineEvent) -> None:
        now = time.monotonic()
        events.setdefault("first", now)
        if ev.summary_event is not None:
            events["summary"] = now

    t = time.monotonic()
    workspace.up(st, on_event=on_event)
    done = time.monotonic()
    marks["engine start"] = events["first"] - t
    marks["resource operations"] = events["summary"] - events["first"]
    marks["after the engine"] = done - events["summary"]
    return marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs (the first creates the tenant; default 3)")
    args = ap.parse_args()
    name = f"profile-{os.getpid()}"
    cluster = localcluster.up(name)
    try:
        with tempfile.TemporaryDirectory(prefix="vcm-profile-") as tmp:
            s = workspace.settings(state_dir=Path(tmp), kubeconfig=str(cluster.kubeconfig))
            target = platformconfig.Target("default", str(cluster.kubeconfig))
            operations.platform_apply(s, target, platformconfig.Blueprint())
            tenant = spec.load_specs([REPO / "examples" / "tenants" / "payments.yaml"])[0]
            rows = [profile_once(s, target, tenant) for _ in range(args.runs)]
            walls = []
            env = {**os.environ, "VCM_STATE_DIR": tmp, "KUBECONFIG": str(cluster.kubeconfig)}
            for _ in range(args.runs):
                t = time.monotonic()
                subprocess.run([sys.executable, "-m", "vcluster_mgr", "apply",
                                str(REPO / "examples" / "tenants" / "payments.yaml"), "--yes", "-o", "json"],
                               env=env, capture_output=True, check=True)
                walls.append(time.monotonic() - t)
    finally:
        localcluster.down(name)
    print(f"{'phase':22}" + "".join(f"{'create' if i == 0 else 'no-change':>11}" for i in range(len(rows))))
    for phase in PHASES:
        print(f"{phase:22}" + "".join(f"{r[phase]:10.2f}s" for r in rows))
    print(f"{'total':22}" + "".join(f"{sum(r.values()):10.2f}s" for r in rows))
    print(f"{'vcm apply, no change':22}" + "".join(f"{w:10.2f}s" for w in walls) + "  (whole command)")


if __name__ == "__main__":
    main()
