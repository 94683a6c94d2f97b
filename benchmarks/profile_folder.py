"""Where the folder path's first apply spends its CPU: by process, beside `kubectl apply --server-side` of the same
manifests.

    .venv/bin/python benchmarks/profile_folder.py [--tenants 100] [--json F]

On a fresh node-less local host cluster with N bench tenants (the specs of ``bench_apply.py``), it runs the baseline
``kubectl apply --server-side``, deletes the namespaces again, then the folder path's first apply
(``workspace.folder_up`` in its own process, as ``bench_apply.py`` runs it). During each, every process under the
command is sampled (``/proc/PID/stat`` every 0.2 s, the last reading of each process kept) and named by role: the
``vcm`` process itself, the engine CLI, the language host, our program, the provider; the local cluster's API
server, etcd and controller manager are read before and after, and so is the API server's own count of the
requests it served (``apiserver_request_total`` of its ``/metrics``, by verb and resource). Reported: wall seconds,
CPU seconds per role, and requests per verb and resource.
The machine has 2 cores, so what the engine side costs in CPU is what it costs in time once the API server needs
its share. A benchmark, not a test: it asserts nothing but that both commands succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_apply  # (beside this script: the bench tenants, the cluster, the folder command)

#: the local cluster's own processes, read before and after each command
CLUSTER = ("kube-apiserver", "etcd", "kube-controller")


def _role(pid: int) -> str:
    """What a process under the command is, from its command line."""
    cmd = _cmdline(pid)
    exe = Path(cmd.split("\0", 1)[0]).name
    if "folder_up" in cmd:
        return "vcm (the folder process)"
    if exe == "kubectl":
        return "kubectl"
    if exe.startswith("pulumi-resource-kubernetes"):
        return "provider (pulumi-resource-kubernetes)"
    if exe.startswith("pulumi-language-python"):
        return "language host"
    if exe == "pulumi":
        return "engine (pulumi CLI)"
    if "python" in exe:
        return "our program (Python SDK)"
    return exe or "?"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _cluster_cpu() -> dict[str, float]:
    """CPU seconds so far of the local cluster's processes, by name (one cluster runs at a time here)."""
    out: dict[str, float] = {}
    for pid, (_, _, cpu) in bench_apply.proc_table().items():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in CLUSTER:
            out[comm] = out.get(comm, 0.0) + cpu
    return out


def _requests(bench: bench_apply.Bench) -> dict[str, float]:
    """The API server's count of the requests it has served, by "VERB resource" (its ``/metrics``)."""
    text = subprocess.run(bench.kubectl("get", "--raw", "/metrics"), capture_output=True, text=True,
                          check=True).stdout
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            key = f"{labels.get('verb', '?')} {labels.get('resource', '?')}"
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def profile(bench: bench_apply.Bench, cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, CPU seconds per role of the processes under it and the cluster's, and the
    requests the API server served meanwhile."""
    requests_before = _requests(bench)
    cluster_before = _cluster_cpu()
    seen: dict[int, tuple[str, float]] = {}

    def tick(table: dict[int, tuple[int, int, float]], pids: list[int]) -> None:
        for pid in pids:
            seen[pid] = (seen[pid][0] if pid in seen else _role(pid), table[pid][2])

    ran = bench_apply.run_sampled(cmd, env, tick)
    if ran.returncode != 0:
        raise SystemExit(f"{cmd[0]} exited {ran.returncode}: {ran.output[-800:]}")
    roles: dict[str, float] = {}
    for role, cpu in seen.values():
        roles[role] = round(roles.get(role, 0.0) + cpu, 2)
    cluster_after = _cluster_cpu()
    for name, cpu in cluster_after.items():
        roles[f"cluster: {name}"] = round(cpu - cluster_before.get(name, 0.0), 2)
    requests = {k: int(v - requests_before.get(k, 0.0)) for k, v in _requests(bench).items()}
    return {"seconds": round(ran.seconds, 2), "cpu": roles, "load": round(os.getloadavg()[0], 1),
            "requests": {k: v for k, v in sorted(requests.items(), key=lambda kv: -kv[1]) if v > 0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vcm-profile-") as tmp:
        bench = bench_apply.Bench(args.tenants, Path(tmp))
        try:
            print(f"N={args.tenants}: {bench.objects} objects", file=sys.stderr)
            results = {"tenants": args.tenants, "objects": bench.objects}
            results["kubectl"] = profile(bench, bench.kubectl("apply", "--server-side", "--field-manager=bench",
                                                       "-f", str(bench.manifests)), bench.env)
            bench.reset()
            state = bench.work / "state"
            results["folder"] = profile(bench, bench_apply.folder_cmd(bench, state, None), bench.vcm_env(state))
        finally:
            bench.close()
    for name in ("kubectl", "folder"):
        r = results[name]
        print(f"{name}: {r['seconds']} s wall, load {r['load']}; CPU s: "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["cpu"].items(), key=lambda kv: -kv[1])))
        print(f"  requests ({sum(r['requests'].values())}): "
              + ", ".join(f"{k} {v}" for k, v in list(r["requests"].items())[:12]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
