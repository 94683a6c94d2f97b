"""How fast a tenant's virtual cluster is usable: from ``vcm apply`` to the virtual API answering, and to a
Deployment made inside it being Ready; with the control plane pod's memory.

    .venv/bin/python benchmarks/bench_control_plane.py --runs 3 --json cp.json

It starts a local host cluster with a node (one per machine: hold the node lock), applies the platform, then for
each run applies one control plane tenant (vcluster 0.36.1 from the toolchain's local chart directory, images from
the node's registry, embedded store through kine, no persistence: the chart's Deployment) and measures, from the
moment ``vcm apply`` starts:

- ``api``: until ``kubectl get ns`` with the virtual cluster's kubeconfig answers (polled every 0.25 s: the
  kubeconfig Secret is read from the host as soon as the control plane writes it, and pointed at the Service's
  ClusterIP, as ``vcm kubeconfig`` does on a node; ``vcm kubeconfig`` itself needs the stack's record, written
  when ``vcm apply`` returns);
- ``deployment``: until a Deployment applied inside (one replica of the node's probe image) is Ready;
- ``memory``: the control plane pod's working set as the kubelet reports it (``stats/summary``), once the
  Deployment is Ready;
- ``apply``: until ``vcm apply`` itself returns (the engine's run and its bookkeeping, no health wait), as seen
  by the same polling loop.

Each run's tenant is deleted before the next. It prints every run, the medians and the machine's load average;
``--json FILE`` writes them there. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from vcluster_mgr import localcluster, naming, toolchain  # noqa: E402
from vcluster_mgr.localnode import images  # noqa: E402
from vcluster_mgr.localnode import node as localnode  # noqa: E402

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello, namespace: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      containers:
        - name: hello
          image: {image}
          imagePullPolicy: Always
          command: ["/bin/httpd", "-f", "-p", "8080", "-h", "/srv"]
          readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            capabilities: {{drop: [ALL]}}
            seccompProfile: {{type: RuntimeDefault}}
"""


def tenant(name: str, chart: Path, registry: str) -> dict[str, Any]:
    return {
        "apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
        "spec": {
            "owners": [{"kind": "Group", "name": f"{name}-devs", "role": "admin"}],
            "namespaces": ["cp"],
            "quota": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "pods": 20, "services": 10},
            "limits": {"max": {"cpu": "1", "memory": "1Gi"}},
            "network": {"isolation": "strict"},
            "podSecurity": "restricted",
            "placement": {"nodeSelector": {"pool": "tenants"}},
            "controlPlane": {"enabled": True, "chart": {"path": str(chart)}, "persistence": {"enabled": False},
                             "values": images.chart_values(registry)},
        },
    }


class Bench:
    def __init__(self, cluster: localcluster.Cluster, work: Path) -> None:
        assert cluster.node is not None
        self.cluster, self.work = cluster, work
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "VCM_STATE_DIR": str(work / "state")}
        self.kubectl_bin = str(toolchain.bin_dir() / "kubectl")
        self.registry = str(cluster.node["registry"])
        images = cluster.node["images"]
        assert isinstance(images, dict), "the node has no images"
        self.probe = str(images["probe"])
        self.node_name = str(cluster.node["name"])
        self.chart = toolchain.chart_dir()
        self.policy = work / "policy.yaml"
        self.policy.write_text(yaml.safe_dump({
            "allowedChartSources": [str(self.chart)],
            "controlPlaneCorednsImage": images["coredns"],
            "controlPlaneDnsUpstreams": [f"{localnode.BRIDGE_IP}/32"],
        }))

    def vcm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vcluster_mgr", *args], env=self.env, capture_output=True,
                              text=True, timeout=900, check=False)

    def kubectl(self, kubeconfig: Path, *args: str, stdin: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.kubectl_bin, "--kubeconfig", str(kubeconfig), "--request-timeout=5s", *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def virtual_kubeconfig(self, name: str, dest: Path) -> bool:
        """The kubeconfig of ``name``'s virtual cluster as soon as the control plane writes its Secret
        (``vc-<release>``), pointed at the Service's ClusterIP as ``vcm kubeconfig`` points it on a node. Read from the
        host directly: ``vcm kubeconfig`` reads the tenant's stack record, which exists only once ``vcm apply`` has
        returned, so it would time the apply rather than the virtual API."""
        namespace = f"{name}-cp"
        secret = self.kubectl(self.cluster.kubeconfig, "get", "secret", naming.control_plane_kubeconfig_secret(name),
                              "-n", namespace, "-o", "jsonpath={.data.config}")
        ip = self.kubectl(self.cluster.kubeconfig, "get", "service", name, "-n", namespace, "-o",
                          "jsonpath={.spec.clusterIP}").stdout.strip()
        if secret.returncode != 0 or not secret.stdout.strip() or not ip:
            return False
        doc = yaml.safe_load(base64.b64decode(secret.stdout.strip()))
        for entry in doc.get("clusters") or []:
            entry["cluster"]["server"] = f"https://{ip}:443"
        dest.write_text(yaml.safe_dump(doc))
        return True

    def memory(self, name: str) -> int | None:
        raw = self.kubectl(self.cluster.kubeconfig, "get", "--raw",
                           f"/api/v1/nodes/{self.node_name}/proxy/stats/summary").stdout
        try:
            pods = json.loads(raw)["pods"]
        except (ValueError, KeyError):
            return None
        for pod in pods:
            ref = pod["podRef"]
            if ref["namespace"] == f"{name}-cp" and ref["name"].startswith(f"{name}-") and "etcd" not in ref["name"]:
                return int(pod.get("memory", {}).get("workingSetBytes") or 0) or None
        return None

    def run(self, name: str) -> dict[str, Any]:
        spec_file = self.work / f"{name}.yaml"
        spec_file.write_text(yaml.safe_dump(tenant(name, self.chart, self.registry)))
        kubeconfig = self.work / f"{name}.kubeconfig"
        log = self.work / f"{name}.apply.log"
        started = time.monotonic()
        with log.open("w") as sink:
            apply = subprocess.Popen([sys.executable, "-m", "vcluster_mgr", "apply", str(spec_file), "--yes",
                                      "--policy", str(self.policy), "--no-wait"], env=self.env, stdout=sink,
                                     stderr=subprocess.STDOUT, text=True)
        row: dict[str, Any] = {"tenant": name}
        returned: float | None = None
        while time.monotonic() - started < 600:
            if returned is None and apply.poll() is not None:
                returned = time.monotonic() - started
            if (kubeconfig.exists() or self.virtual_kubeconfig(name, kubeconfig)) and \
                    self.kubectl(kubeconfig, "get", "ns").returncode == 0:
                row["api"] = round(time.monotonic() - started, 2)
                break
            time.sleep(0.25)
        apply.wait(timeout=900)
        if returned is None:
            returned = time.monotonic() - started
        row["apply"] = round(returned, 2) if apply.returncode == 0 else None
        if apply.returncode != 0:
            row["error"] = log.read_text()[-2000:]
            return row
        proc = self.kubectl(kubeconfig, "apply", "-f", "-", stdin=DEPLOYMENT.format(image=self.probe))
        if proc.returncode == 0:
            rolled = self.kubectl(kubeconfig, "--request-timeout=0", "rollout", "status", "deployment/hello",
                                  "--timeout=300s", timeout=330)
            if rolled.returncode == 0:
                row["deployment"] = round(time.monotonic() - started, 2)
            else:
                row["error"] = (rolled.stdout + rolled.stderr)[-2000:]
        row["memory_mib"] = round((self.memory(name) or 0) / 2**20, 1) or None
        return row

    def delete(self, name: str) -> None:
        self.vcm("delete", name, "--yes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    name = f"bench-cp-{os.getpid()}"
    cluster = localcluster.up(name, nodes=1)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cp-") as tmp:
            bench = Bench(cluster, Path(tmp))
            proc = bench.vcm("platform", "apply", "--yes")
            if proc.returncode != 0:
                raise SystemExit(proc.stdout + proc.stderr)
            for i in range(args.runs):
                tenant_name = f"vbench{i}"
                row = bench.run(tenant_name)
                row["load1"] = round(os.getloadavg()[0], 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
                bench.delete(tenant_name)
    finally:
        localcluster.down(name)
    summary: dict[str, Any] = {"runs": len(rows), "load1_end": round(os.getloadavg()[0], 2),
                               "cpus": os.cpu_count()}
    for key in ("api", "deployment", "apply", "memory_mib"):
        values = [r[key] for r in rows if r.get(key) is not None]
        summary[f"median_{key}"] = round(statistics.median(values), 2) if values else None
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
