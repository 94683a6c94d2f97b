"""Provisioning speed: vcm apply (a stack per tenant) and the folder path (a few batch stacks of many
tenants, ``workspace.folder_up``: the GitOps program), against `kubectl apply --server-side` of the very
same rendered manifests, measured in one run.

    .venv/bin/python benchmarks/bench_apply.py --tenants 10,100 --parallel 1,2,4 --json results.json

For each N it starts a fresh local host cluster, writes N tenant specs, and measures each mode three times:
a first apply (everything created), a no-change re-apply and a re-apply with one tenant drifted (someone
relabelled one of its namespaces), both against the baseline `kubectl diff --server-side`. The re-applies
take the fast path where a tenant's (or a folder batch's) fingerprint holds. After a per-tenant mode's
no-change re-apply, `vcm drift --all` (every tenant unchanged) runs against one `kubectl get` of all their
objects (row phase ``drift``).
Between modes the tenants' namespaces are deleted and the cluster is waited on, so every mode starts
from the same empty cluster. Reported per run: wall time, tenants per minute, peak memory of the whole
process tree (sum of RSS, sampled every 0.2 s), bytes written to storage by the process tree
(/proc/self/io of this process, which includes waited-for children), the ratio to the baseline, and the
machine's 1-minute load average as each run ended (the machine is shared: the ratio is the figure to
compare).

This is a benchmark, not a test: it asserts nothing and prints a table (and with `--json FILE` writes each row
there as soon as it is measured, and at the end their chart beside them, FILE with .png: see chart.py; needs the
`bench` extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vcluster_mgr import localcluster, render, spec, toolchain  # noqa: E402

SPEC = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}, labels: {{bench: "yes"}}}}
spec:
  owners:
    - {{kind: User, name: {name}-lead@example.com, role: admin}}
    - {{kind: Group, name: {name}-devs, role: edit}}
  namespaces: [app, ci]
  quota: {{cpu: "4", memory: 8Gi, storage: 20Gi, pods: 40, services: 10}}
  network:
    isolation: strict
    allowIngressFrom: [{{namespace: ingress-nginx}}]
  podSecurity: restricted
"""


#: the kinds of a bench tenant's objects, and the label every object vcm renders carries
DRIFT_KINDS = "namespaces,resourcequotas,limitranges,networkpolicies,rolebindings,configmaps,flowschemas"
MANAGED = "app.kubernetes.io/managed-by=vcluster-mgr"


def proc_table() -> dict[int, tuple[int, int, float]]:
    """Every process now: pid -> (parent pid, RSS bytes, CPU seconds so far, user + system)."""
    table: dict[int, tuple[int, int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[21]) * PAGE,
                             (int(fields[11]) + int(fields[12])) / TICKS)
    return table


def tree(table: dict[int, tuple[int, int, float]], root: int) -> list[int]:
    """``root`` and all its descendants in ``table`` (``proc_table``)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def _written() -> int:
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["write_bytes"]) - int(io["cancelled_write_bytes"])


@dataclasses.dataclass
class Ran:
    """A finished command of ``run_sampled``."""

    seconds: float
    returncode: int
    output: str  # stdout and stderr


def run_sampled(cmd: list[str], env: dict[str, str], on_tick: Callable[[dict[int, tuple[int, int, float]], list[int]],
                                                                         None], cwd: Path | None = None) -> Ran:
    """Run a command to its end, calling ``on_tick(proc_table(), the command's process tree)`` every 0.2 s."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            table = proc_table()
            on_tick(table, tree(table, proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    return Ran(time.monotonic() - started, proc.returncode, out + err)


def measure(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> dict[str, Any]:
    """Run a command; wall seconds, peak tree RSS, bytes written, and exit code."""
    before = _written()
    peak = 0

    def tick(table: dict[int, tuple[int, int, float]], pids: list[int]) -> None:
        nonlocal peak
        peak = max(peak, sum(table[pid][1] for pid in pids))

    ran = run_sampled(cmd, env, tick, cwd)
    if ran.returncode != 0:
        print(f"  ! {' '.join(cmd[:3])} exited {ran.returncode}: {ran.output[-600:]}", file=sys.stderr)
    return {"seconds": round(ran.seconds, 2), "peak_rss_mib": round(peak / 2**20, 1),
            "written_mib": round((_written() - before) / 2**20, 2), "rc": ran.returncode}


class Bench:
    def __init__(self, n: int, work: Path) -> None:
        self.n = n
        self.work = work
        self.cluster = localcluster.up(f"bench-{os.getpid()}", timeout=600)  # a loaded machine is slow to start it
        self.specs = work / "specs"
        self.specs.mkdir()
        for i in range(n):
            (self.specs / f"b{i:04d}.yaml").write_text(SPEC.format(name=f"b{i:04d}"))
        tenants = spec.load_specs([self.specs])
        objects = [o for t in tenants for o in render.render_tenant(t)]
        self.objects = len(objects)
        self.manifests = work / "all.yaml"
        self.manifests.write_text(render.dump_manifests(objects))
        self.bin = toolchain.require()
        self.env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}

    def kubectl(self, *args: str) -> list[str]:
        return [str(self.bin / "kubectl"), f"--kubeconfig={self.cluster.kubeconfig}", *args]

    def reset(self) -> None:
        """Delete every bench namespace and wait until they are gone (the namespace controller runs)."""
        subprocess.run(self.kubectl("delete", "ns", "-l", MANAGED,
                                    "--wait=true", "--timeout=600s"), capture_output=True, check=False)

    def vcm_env(self, state: Path) -> dict[str, str]:
        return {**self.env, "VCM_STATE_DIR": str(state)}

    def close(self) -> None:
        localcluster.down(self.cluster.name)


def folder_cmd(bench: Bench, state: Path, parallel: int | None) -> list[str]:
    """The folder stack (``workspace.folder_up``: one stack, one engine run) in its own process."""
    code = (
        "import sys; from pathlib import Path;"
        "from vcluster_mgr import platformconfig, spec, workspace;"
        f"s = workspace.settings(state_dir=Path({str(state)!r}));"
        f"ts = spec.load_specs([Path({str(bench.specs)!r})]);"
        f"t = platformconfig.Target('default', {str(bench.cluster.kubeconfig)!r});"
        "r = workspace.folder_up(s, t, platformconfig.Blueprint(), ts, with_platform=False"
        + (f", parallel={parallel}" if parallel else "") + ");"
        "print(r.changes)"
    )
    return [sys.executable, "-c", code]


def vcm_apply_cmd(bench: Bench, parallel: int, _state: Path) -> list[str]:
    return [sys.executable, "-m", "vcluster_mgr", "apply", str(bench.specs), "--parallel", str(parallel), "--yes",
            "-o", "json"]


def run(n: int, parallels: list[int], with_folder: bool, folder_parallel: int | None,
        folder_env: dict[str, str], first_only: bool = False,
        on_row: Callable[[dict[str, Any]], None] = lambda _row: None) -> list[dict[str, Any]]:
    """Measure every mode at ``n`` tenants; each row goes to ``on_row`` as soon as it is measured (so a run
    stopped midway keeps what it had), and all of them are returned at the end."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vcm-bench-") as tmp:
        bench = Bench(n, Path(tmp))
        try:
            print(f"N={n}: {bench.objects} objects, cluster {bench.cluster.server}", file=sys.stderr)

            def record(mode: str, phase: str, result: dict[str, Any], baseline: dict[str, Any] | None) -> None:
                row = {"tenants": n, "mode": mode, "phase": phase, **result, "load": round(os.getloadavg()[0], 1),
                       "tenants_per_min": round(n / result["seconds"] * 60, 1) if result["seconds"] else None,
                       "ratio": round(result["seconds"] / baseline["seconds"], 2) if baseline else 1.0}
                rows.append(row)
                on_row(row)
                print(f"  {mode:28} {phase:8} {row['seconds']:8.1f}s  x{row['ratio']:<6} "
                      f"{row['peak_rss_mib']:7.0f} MiB  {row['written_mib']:8.1f} MiB written  rc={row['rc']}",
                      file=sys.stderr)

            base_apply = measure(bench.kubectl("apply", "--server-side", "--field-manager=bench",
                                               "-f", str(bench.manifests)), bench.env)
            record("kubectl --server-side", "apply", base_apply, None)
            base_diff = measure(bench.kubectl("diff", "--server-side", "--field-manager=bench",
                                              "-f", str(bench.manifests)), bench.env)
            base_diff["rc"] = 0 if base_diff["rc"] in (0, 1) else base_diff["rc"]  # 1 = differences found
            record("kubectl diff --server-side", "reapply", base_diff, None)
            bench.reset()

            modes: list[tuple[str, Callable[[Path], list[str]]]] = []
            for p in parallels:
                modes.append((f"vcm apply --parallel {p}", functools.partial(vcm_apply_cmd, bench, p)))
            if with_folder:
                modes.append(("folder stack", functools.partial(folder_cmd, bench, parallel=folder_parallel)))
            for mode, cmd in modes:
                state = bench.work / f"state-{len(rows)}"
                env = bench.vcm_env(state)
                env.update(folder_env if mode == "folder stack" else {})
                record(mode, "apply", measure(cmd(state), env), base_apply)
                if not first_only:
                    record(mode, "reapply", measure(cmd(state), env), base_diff)
                    if mode.startswith("vcm apply"):
                        # every tenant unchanged: `vcm drift --all` against one kubectl get of all their objects
                        base_get = measure(bench.kubectl("get", DRIFT_KINDS, "-A", "-l", MANAGED, "-o", "json"),
                                           bench.env)
                        record("kubectl get (their objects)", "drift", base_get, None)
                        record("vcm drift --all", "drift", measure(
                            [sys.executable, "-m", "vcluster_mgr", "drift", "--all", "-o", "json"], env), base_get)
                    # someone else loosens one tenant's namespace: that tenant (its batch, on the folder path)
                    # goes to the engine, every other one stays on the fingerprint
                    subprocess.run(bench.kubectl("label", "namespace", "b0000-app", "--overwrite",
                                                 "pod-security.kubernetes.io/enforce=privileged"),
                                   capture_output=True, check=True)
                    record(mode, "drifted1", measure(cmd(state), env), base_diff)
                bench.reset()
        finally:
            bench.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", default="10,100", help="comma-separated tenant counts (default 10,100)")
    ap.add_argument("--parallel", default="1,2,4", help="comma-separated --parallel values (default 1,2,4)")
    ap.add_argument("--no-folder", action="store_true", help="skip the folder stack")
    ap.add_argument("--first-apply-only", action="store_true", help="skip the no-change re-apply of each mode")
    ap.add_argument("--folder-parallel", type=int, help="engine --parallel of the folder stack (default: its own)")
    ap.add_argument("--folder-env", action="append", default=[], metavar="KEY=VALUE",
                    help="engine environment for the folder stack, over its own (tuning experiments)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []

    def keep(row: dict[str, Any]) -> None:
        """Every row into ``--json`` as soon as it is measured, the file replaced whole each time."""
        rows.append(row)
        if args.json:
            staged = args.json.with_suffix(".staged")
            staged.write_text(json.dumps(rows, indent=2))
            staged.replace(args.json)

    for n in (int(x) for x in args.tenants.split(",")):
        run(n, [int(p) for p in args.parallel.split(",") if p], not args.no_folder, args.folder_parallel,
            dict(kv.split("=", 1) for kv in args.folder_env), args.first_apply_only, keep)
    print("| tenants | mode | phase | seconds | tenants/min | x baseline | peak MiB | MiB written |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['tenants']} | {r['mode']} | {r['phase']} | {r['seconds']} | {r['tenants_per_min']} | "
              f"{r['ratio']} | {r['peak_rss_mib']} | {r['written_mib']} |")
    if args.json:
        try:
            import chart  # benchmarks/chart.py, beside this script

            print(f"chart: {chart.render(rows, args.json.with_suffix('.png'))}", file=sys.stderr)
        except ImportError as exc:  # matplotlib is in the bench extra only
            print(f"no chart: {exc} (pip install -e '.[bench]')", file=sys.stderr)


if __name__ == "__main__":
    main()
