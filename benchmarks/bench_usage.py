"""`vcm usage --all` on a large fleet: wall time and API calls, against baselines measured in the same run.

A fresh local host cluster gets N tenants created directly with the kubernetes client (not through Pulumi:
this measures reading, not applying): 2 namespaces each, labelled as the blueprint labels them, with a
ResourceQuota each; every tenth tenant runs 2 pods per namespace, so its quota shows use. Then:

* ``vcm usage --all -o json`` as a fresh process (what a user runs), ``--runs`` times, median;
* the same command in-process with the HTTP requests counted (every request the kubernetes client sends);
* baseline 1: ``kubectl get resourcequota -A -l <selector> -o json`` (one list, no processing);
* baseline 2: one quota list per tenant namespace (what a per-tenant loop would send), in-process.

    .venv/bin/python benchmarks/bench_usage.py [--tenants 1000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

from vcluster_mgr import localcluster, naming, toolchain

ROOT = Path(__file__).resolve().parent.parent
SELECTOR = f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE},{naming.TENANT_LABEL}"


def _pod(name: str) -> client.V1Pod:
    resources = {"cpu": "100m", "memory": "128Mi"}
    container = client.V1Container(name="c", image="registry.example/app:1",
                                   resources=client.V1ResourceRequirements(requests=resources, limits=resources))
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(containers=[container]))


def create_fleet(api: client.ApiClient, tenants: int) -> float:
    core = client.CoreV1Api(api)

    def one(i: int) -> None:
        name = f"t{i:04d}"
        for part in ("a", "b"):
            ns = f"{name}-{part}"
            labels = {
                naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE,
                naming.TENANT_LABEL: name,
                naming.COST_CENTER_LABEL: f"cc-{i % 7}",
            }
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels=labels)))
            hard = {"requests.cpu": "1", "limits.cpu": "1", "requests.memory": "2Gi", "limits.memory": "2Gi",
                    "requests.storage": "10Gi", "pods": "10", "services": "5"}
            quota = client.V1ResourceQuota(metadata=client.V1ObjectMeta(name="vcm-quota", labels=labels),
                                           spec=client.V1ResourceQuotaSpec(hard=hard))
            core.create_namespaced_resource_quota(ns, quota)

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(tenants)))
    return time.perf_counter() - start


def start_pods(api: client.ApiClient, tenants: int) -> None:
    """2 pods per namespace of every tenth tenant, retried while the namespace's service account or quota
    status is not there yet (admission refuses pods until both are)."""
    core = client.CoreV1Api(api)
    for i in range(0, tenants, 10):
        for part in ("a", "b"):
            for p in range(2):
                for _ in range(60):
                    try:
                        core.create_namespaced_pod(f"t{i:04d}-{part}", _pod(f"p{p}"))
                        break
                    except client.exceptions.ApiException as exc:
                        if exc.status == 409:
                            break
                        time.sleep(1)


def wait_quota_status(api: client.ApiClient, expected: int, timeout: float = 600) -> float:
    """Until the quota controller has filled status.hard of every quota (else usage falls back to spec)."""
    core = client.CoreV1Api(api)
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        items = core.list_resource_quota_for_all_namespaces(label_selector=SELECTOR).items
        if len(items) == expected and all(q.status and q.status.hard for q in items):
            break
        time.sleep(2)
    return time.perf_counter() - start


def run_cli(env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "vcluster_mgr", "usage", "--all", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    return wall, len(proc.stdout)


def counted_in_process(kubeconfig: str) -> tuple[int, float, int]:
    """Run `vcm usage --all -o json` in this process, counting the HTTP requests the client sends."""
    from typer.testing import CliRunner

    from vcluster_mgr import cli

    calls = 0
    original = client.rest.RESTClientObject.request

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)  # type: ignore[no-untyped-call]  # unannotated in the client

    client.rest.RESTClientObject.request = counting  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        res = CliRunner().invoke(cli.app, ["usage", "--all", "-o", "json", "--kubeconfig", kubeconfig])
        wall = time.perf_counter() - start
    finally:
        client.rest.RESTClientObject.request = original  # type: ignore[method-assign]
    assert res.exit_code == 0, res.stderr
    return calls, wall, len(json.loads(res.stdout)["tenants"])


def per_namespace_loop(api: client.ApiClient) -> tuple[float, int]:
    core = client.CoreV1Api(api)
    start = time.perf_counter()
    names = [str(n.metadata.name) for n in core.list_namespace(label_selector=SELECTOR).items if n.metadata]
    for ns in names:
        core.list_namespaced_resource_quota(ns)
    return time.perf_counter() - start, len(names) + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    toolchain.require()
    name = f"bench-usage-{os.getpid()}"
    cluster = localcluster.up(name)
    try:
        kubeconfig = str(cluster.kubeconfig)
        api: client.ApiClient = config.new_client_from_config(kubeconfig)  # type: ignore[no-untyped-call]
        created = create_fleet(api, args.tenants)
        settled = wait_quota_status(api, 2 * args.tenants)
        start_pods(api, args.tenants)
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        cli_runs = [run_cli(env) for _ in range(args.runs)]
        calls, in_process, rows = counted_in_process(kubeconfig)
        kubectl = str(toolchain.bin_dir() / "kubectl")
        kubectl_runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(
                [kubectl, "--kubeconfig", kubeconfig, "get", "resourcequota", "-A", "-l", SELECTOR, "-o", "json"],
                capture_output=True,
                check=True,
            )
            kubectl_runs.append(time.perf_counter() - start)
        loop_s, loop_calls = per_namespace_loop(api)
        cli_s = statistics.median(w for w, _ in cli_runs)
        kubectl_s = statistics.median(kubectl_runs)
        figures = {
            "tenants": args.tenants,
            "namespaces": 2 * args.tenants,
            "createSeconds": round(created, 1),
            "quotaStatusSeconds": round(settled, 1),
            "vcmUsageSeconds": round(cli_s, 2),
            "vcmUsageRuns": [round(w, 2) for w, _ in cli_runs],
            "vcmUsageJsonBytes": cli_runs[0][1],
            "vcmUsageInProcessSeconds": round(in_process, 2),
            "vcmUsageApiCalls": calls,
            "tenantsReported": rows,
            "kubectlListSeconds": round(kubectl_s, 2),
            "perNamespaceLoopSeconds": round(loop_s, 2),
            "perNamespaceLoopApiCalls": loop_calls,
            "xKubectl": round(cli_s / kubectl_s, 2),
        }
    finally:
        localcluster.down(name)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
