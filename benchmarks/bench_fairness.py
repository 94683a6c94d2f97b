"""API fairness between tenants: tenant B's request latency while tenant A floods the API server, with and
without the blueprint's API Priority and Fairness objects, measured in one run.

    .venv/bin/python benchmarks/bench_fairness.py --seconds 15 --flooders 16 --threads 2

It starts a fresh local host cluster with APF on and a small concurrency budget (--inflight, so the
API server's seats run out before this machine's CPU does), applies the platform and two tenants with the
policy's apiFairness enabled: A (owned by the group a-team, flooding as --flooders different users of that
group) and B (owned by bob). A's namespace gets --objects ConfigMaps. Then three phases of --seconds each:

  baseline   B alone: a GET of one ConfigMap every 20 ms, latency recorded
  without    A floods LISTs of its ConfigMaps while B measures; the tenants' FlowSchemas are moved behind
             global-default (precedence 9950), so both tenants land in the built-in global-default level
             where every user of A is a flow of its own
  with       the same flood, FlowSchemas back at their precedence: each tenant is one flow of vcm-tenants

Then the cost of fairness (--cost-tenants N, 0 to skip): N more tenants (2 namespaces each) applied with the
policy's apiFairness off, then N others with it on, one stack each as `vcm apply DIR` does: objects per
tenant, the first apply and a no-change re-apply, timed, with the load average.

The flood is bounded: loopback only (the server must be https://127.0.0.1), at most --max-requests LISTs
and --seconds per phase. This is a benchmark, not a test: it asserts nothing and prints a table (and
`--json FILE`) with B's p50/p95/p99/max latency and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from vcluster_mgr import localcluster, operations, platformconfig, render, spec, workspace  # noqa: E402

TENANTS = {
    "a": "owners: [{kind: Group, name: a-team, role: edit}]",
    "b": "owners: [{kind: User, name: bob@example.com, role: edit}]",
}


def _client(kubeconfig: str | dict[str, Any]) -> client.ApiClient:
    """A client from a kubeconfig file's path or its parsed text (the kubernetes client's helpers are
    unannotated)."""
    if isinstance(kubeconfig, str):
        return config.new_client_from_config(kubeconfig)  # type: ignore[no-untyped-call,no-any-return]
    return config.new_client_from_config_dict(kubeconfig)  # type: ignore[no-untyped-call,no-any-return]


def _api(cluster: localcluster.Cluster, user: str, groups: tuple[str, ...] = ()) -> client.ApiClient:
    return _client(yaml.safe_load(localcluster.user_kubeconfig(cluster.name, user, groups)))


def _setup(cluster: localcluster.Cluster, state: Path, objects: int) -> None:
    policy = spec.parse_policy({"apiFairness": {"enabled": True},
                                "defaultQuota": {"objects": {"configmaps": objects + 20}},
                                "maxObjects": {"configmaps": objects + 20}})
    settings = workspace.settings(state_dir=state, backend_url=(state / "pulumi").as_uri(),
                                  kubeconfig=str(cluster.kubeconfig))
    target = platformconfig.load(None, kubeconfig=str(cluster.kubeconfig)).target(None)
    blueprint = platformconfig.Blueprint(policy=policy)
    operations.platform_apply(settings, target, blueprint)
    jobs = []
    for name, owners in TENANTS.items():
        text = f"apiVersion: vcluster-mgr.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\n" \
               f"spec:\n  {owners}\n  namespaces: [app]\n"
        jobs.append(operations.Job(spec.parse_spec(yaml.safe_load(text), policy=policy), target, blueprint))
    outcomes = operations.run_jobs(settings, jobs, "apply")
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"apply failed: {failed}")
    core = client.CoreV1Api(_client(str(cluster.kubeconfig)))
    payload = {"k": "x" * 512}
    for i in range(objects):
        core.create_namespaced_config_map("a-app", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{i}"),
                                                                      data=payload))
    core.create_namespaced_config_map("b-app", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="probe"),
                                                                  data=payload))


def _measure(api: client.ApiClient, stop: threading.Event, seconds: float) -> list[float]:
    core = client.CoreV1Api(api)
    out: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        started = time.perf_counter()
        core.read_namespaced_config_map("probe", "b-app")
        out.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    return out


def _flood(kubeconfigs: list[str], threads: int, seconds: float, max_requests: int, out: Any) -> None:
    """A's flood, in a process of its own (so the measuring thread never waits for this one's GIL): LISTs
    of A's ConfigMaps from every identity, ``threads`` at a time each, bodies read and dropped."""
    lock = threading.Lock()
    counts = {"sent": 0, "rejected": 0, "failed": 0}
    deadline = time.monotonic() + seconds

    def run(text: str) -> None:
        core = client.CoreV1Api(_client(yaml.safe_load(text)))
        while time.monotonic() < deadline:
            with lock:
                if counts["sent"] >= max_requests:
                    return
                counts["sent"] += 1
            try:
                # the raw response (not preloaded): its body read and dropped
                resp: Any = core.list_namespaced_config_map("a-app", _request_timeout=30, _preload_content=False)
                resp.read()
                resp.release_conn()
            except ApiException as exc:
                with lock:
                    counts["rejected" if exc.status == 429 else "failed"] += 1
            except Exception:  # noqa: BLE001 - a timed-out flood request is counted, never fatal
                with lock:
                    counts["failed"] += 1

    workers = [threading.Thread(target=run, args=(text,), daemon=True) for text in kubeconfigs for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 60)
    out.put(counts)


def _stats(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50": round(q[49], 1), "p95": round(q[94], 1), "p99": round(q[98], 1),
            "max": round(max(ms), 1)}


def _precedence(cluster: localcluster.Cluster, value: int) -> None:
    flow = client.FlowcontrolApiserverV1Api(_client(str(cluster.kubeconfig)))
    for name in TENANTS:
        flow.patch_flow_schema(f"vcm-tenant-{name}", {"spec": {"matchingPrecedence": value}})
    time.sleep(2)  # the APF controller picks up FlowSchema changes from an informer


def _cost(cluster: localcluster.Cluster, tenants: int) -> dict[str, Any]:
    """Objects per tenant and apply times of ``tenants`` tenants with apiFairness off, then on."""
    rows: dict[str, Any] = {}
    target = platformconfig.load(None, kubeconfig=str(cluster.kubeconfig)).target(None)
    for mode, enabled in (("off", False), ("on", True)):
        policy = spec.parse_policy({"apiFairness": {"enabled": enabled}})
        blueprint = platformconfig.Blueprint(policy=policy)
        with tempfile.TemporaryDirectory() as state:
            settings = workspace.settings(state_dir=Path(state), backend_url=(Path(state) / "pulumi").as_uri(),
                                          kubeconfig=str(cluster.kubeconfig))
            jobs = []
            for i in range(tenants):
                text = (f"apiVersion: vcluster-mgr.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: cost-{mode}-{i}}}\n"
                        f"spec:\n  owners: [{{kind: User, name: u{i}@example.com, role: edit}}]\n"
                        "  namespaces: [app, ci]\n")
                jobs.append(operations.Job(spec.parse_spec(yaml.safe_load(text), policy=policy), target, blueprint))
            row: dict[str, Any] = {"objects_per_tenant": len(render.render_tenant(jobs[0].tenant, policy=policy))}
            for run in ("apply", "reapply"):
                started = time.monotonic()
                outcomes = operations.run_jobs(settings, jobs, "apply")
                row[f"{run}_s"] = round(time.monotonic() - started, 1)
                row[f"{run}_load"] = round(os.getloadavg()[0], 1)
                failed = [o.error for o in outcomes if not o.ok]
                if failed:
                    raise SystemExit(f"cost apply failed: {failed}")
            rows[mode] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase (s)")
    parser.add_argument("--flooders", type=int, default=16, help="distinct users of tenant A that flood")
    parser.add_argument("--threads", type=int, default=2, help="concurrent LISTs per flooding user")
    parser.add_argument("--objects", type=int, default=100, help="ConfigMaps in A's namespace (cost of a LIST)")
    parser.add_argument("--inflight", type=int, default=20, help="kube-apiserver --max-requests-inflight")
    parser.add_argument("--max-requests", type=int, default=20000, help="bound on flood requests per phase")
    parser.add_argument("--cost-tenants", type=int, default=10, help="tenants applied per mode for the cost (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    name = f"bench-apf-{os.getpid()}"
    cluster = localcluster.up(name, apiserver_args=[
        "--enable-priority-and-fairness=true", f"--max-requests-inflight={args.inflight}",
        f"--max-mutating-requests-inflight={max(1, args.inflight // 2)}"])
    try:
        if not cluster.server.startswith("https://127.0.0.1:"):
            raise SystemExit(f"refusing to flood {cluster.server}: loopback only")
        with tempfile.TemporaryDirectory() as state:
            _setup(cluster, Path(state), args.objects)
        bob = _api(cluster, "bob@example.com")
        flooders = [localcluster.user_kubeconfig(cluster.name, f"a{i}@example.com", ("a-team",))
                    for i in range(args.flooders)]
        ctx = multiprocessing.get_context("spawn")
        results: dict[str, Any] = {"settings": vars(args) | {"json": str(args.json) if args.json else None}}
        stop = threading.Event()
        results["baseline"] = _stats(_measure(bob, stop, args.seconds))
        for phase, precedence in (("without", 9950), ("with", 5000)):
            _precedence(cluster, precedence)
            queue = ctx.Queue()
            proc = ctx.Process(target=_flood, args=(flooders, args.threads, args.seconds, args.max_requests, queue))
            proc.start()
            time.sleep(2)  # let the flood start and fill the queues
            latencies = _measure(bob, stop, args.seconds - 2)
            results[phase] = _stats(latencies) | {"flood": queue.get(timeout=args.seconds + 120)}
            proc.join(timeout=60)
        if args.cost_tenants:
            results["cost"] = _cost(cluster, args.cost_tenants)
    finally:
        localcluster.down(name)
    base = results["baseline"]
    print(f"{'phase':<9} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p95/base':>9}  flood")
    for phase in ("baseline", "without", "with"):
        r = results[phase]
        flood = r.get("flood", {})
        print(f"{phase:<9} {r['n']:>5} {r['p50']:>8} {r['p95']:>8} {r['p99']:>8} {r['max']:>8} "
              f"{r['p95'] / base['p95']:>9.1f}  {flood}")
    for mode, row in results.get("cost", {}).items():
        print(f"cost, apiFairness {mode}: {row}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
