"""Start and stop the local cluster's node: containerd, kubelet, kube-scheduler, kube-proxy, kube-router, CoreDNS.

One node, on this machine's own network namespace, joined to the control plane of ``localcluster``:

- a bridge ``vcm0`` (``BRIDGE_IP``/24) that the CNI bridge plugin attaches pods to; the API server and the
  kubelet listen on its address, everything else on 127.0.0.1;
- containerd (Debian's 1.6) with a config, root, state and socket of its own, pulling every image from the
  loopback registry of ``registry`` (its mirror for ``127.0.0.1:<port>``), so ``imagePullPolicy: Always`` works;
- the kubelet (cgroupfs driver under a cgroup root of its own; cgroup v1, so ``failCgroupV1: false``);
- kube-scheduler, kube-proxy in nftables mode, kube-router's firewall controller (NetworkPolicies, iptables +
  ipset) and CoreDNS (``k8s-app=kube-dns`` in ``kube-system``, Service ``CLUSTER_DNS``);
- the storage provisioner and the default StorageClass (``storage``), volumes under the cluster's folder;
- the node's own resolver (``node-dns``, a CoreDNS process on ``BRIDGE_IP``:53): what pods with ``dnsPolicy:
  Default`` get as their nameserver, as on a real node. It answers ``NODE_DNS_NAMES`` only (nothing is forwarded),
  so a pod that resolves one of them through a forwarder has reached the node's resolver.

The order matters and each step waits for the one before: the kubelet needs containerd's socket, kube-proxy
exits if its Node does not exist yet, CoreDNS needs a Ready node and a scheduler. Processes are started
through ``localcluster``'s spawner (so ``down`` and the fault drills know them); ``stop`` ends them, the
containers and their shims, and ``hoststate.restore`` puts the host back.

It is above 400 lines: the configuration documents (``containerd_config`` to ``system_manifests``) could
move to a module of their own with the addresses they share with ``start``; that is left for its own change.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from vcluster_mgr import errors
from vcluster_mgr.localnode import hoststate, images, storage

BRIDGE = "vcm0"
POD_CIDR = "10.244.0.0/16"
NODE_SUBNET = "10.244.0.0/24"
BRIDGE_IP = "10.244.0.1"
CLUSTER_DNS = "10.96.0.10"
SERVICE_CIDR = "10.96.0.0/16"
CNI_BIN = Path("/usr/lib/cni")
#: labels every node carries: the example tenants' placement asks for ``pool: tenants``
NODE_LABELS = {"pool": "tenants"}
#: processes of the node, in start order (``stop`` ends them in reverse)
PROCESSES = ("registry", "node-dns", "containerd", "kubelet", "kube-scheduler", "kube-proxy", "kube-router",
             "local-path-provisioner")
#: the zone the node's resolver serves, and its names (a forwarder's upstream can be told apart from cluster DNS)
NODE_DNS_ZONE = "node.vcm.test"
NODE_DNS_NAMES = {f"upstream.{NODE_DNS_ZONE}": BRIDGE_IP}
#: how long each start step may take, seconds
STEP_TIMEOUT = 120.0

Spawn = Callable[[str, list[str]], int]
Progress = Callable[[str], object]


def node_name(cluster: str) -> str:
    return f"{cluster}-node-0"[:63]


def check_host() -> None:
    """Refuse early, and say what to do, when the node cannot run here."""
    if os.geteuid() != 0:
        raise errors.LocalClusterError(
            "a node (--nodes 1) needs root: the kubelet, containerd and the CNI plugins create network "
            "devices, mounts and cgroups. Run as root, or use --nodes 0 for a control plane only")
    missing = [tool for tool in ("containerd", "containerd-shim-runc-v2", "runc", "iptables", "ipset", "nft", "ip",
                                 "ctr") if shutil.which(tool) is None]
    missing += [str(p) for p in (CNI_BIN / "bridge", CNI_BIN / "host-local", CNI_BIN / "loopback",
                                 images.BUSYBOX) if not p.exists()]
    if missing:
        raise errors.LocalClusterError(
            "the node needs Debian packages that are missing (" + ", ".join(missing) + "): run "
            "scripts/install-node-packages.sh as root (`make node-packages`)")
    if not Path("/sys/fs/cgroup/memory").is_dir():
        raise errors.LocalClusterError("the node needs the cgroup v1 memory hierarchy at /sys/fs/cgroup/memory")
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        raise errors.LocalClusterError(
            f"network device {BRIDGE} exists: another local cluster with a node runs on this machine (one at a "
            "time: kube-proxy and the firewall own the host's netfilter tables); `vcm local down` it first")


def cgroup_root(cluster: str) -> str:
    return f"/vcm-{cluster}"


def prepare(d: Path, cluster: str) -> hoststate.Snapshot:
    """Record the host's state, then create the bridge the API server will listen on and the cgroup root."""
    check_host()
    snapshot = hoststate.take()
    snapshot.save(d / "hoststate.json")
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        root = cgroup_root(cluster)
        for hierarchy in sorted(hoststate.CGROUP_ROOT.iterdir()):
            if not hierarchy.is_dir():
                continue
            path = hierarchy / root.lstrip("/")
            path.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (path / f).write_text((hierarchy / f).read_text())
    except BaseException:
        hoststate.restore(snapshot)
        raise
    return snapshot


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise errors.LocalClusterError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Callable[[], bool], log: Path, timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else "(no log)"
    raise errors.LocalClusterError(f"{what} within {timeout:.0f}s; last lines of {log}:\n{tail}")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def kubectl(bins: Path, kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run([str(bins / "kubectl"), f"--kubeconfig={kubeconfig}", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise errors.LocalClusterError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def containerd_config(d: Path, registry: str) -> str:
    c = d / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{c / 'root'}"
state = "{c / 'state'}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{c / 'containerd.sock'}"
[ttrpc]
  address = "{c / 'containerd.sock.ttrpc'}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / 'opt'}"
[{cri}]
  sandbox_image = "{registry}/vcm/pause:{images.TAG}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # the VM lacks CAP_SYS_RESOURCE in its bounding set: without this every sandbox fails to start
  restrict_oom_score_adj = true
  disable_apparmor = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d / 'runc'}"
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d / 'cni' / 'net.d'}"
  [{cri}.registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
"""


def cni_config(d: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0", "name": "vcm",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "dataDir": str(d / "cni" / "ipam"),
                     "ranges": [[{"subnet": NODE_SUBNET, "gateway": BRIDGE_IP}]],
                     "routes": [{"dst": "0.0.0.0/0"}]},
        }],
    }


def node_dns_corefile() -> str:
    """The node resolver's Corefile: ``NODE_DNS_NAMES`` on the bridge address, every other name refused."""
    hosts = "".join(f"        {ip} {name}\n" for name, ip in sorted(NODE_DNS_NAMES.items()))
    return f"{NODE_DNS_ZONE}:53 {{\n    bind {BRIDGE_IP}\n    errors\n    hosts {{\n{hosts}    }}\n}}\n"


def kubelet_config(d: Path, cluster: str, ca: Path, port: int, healthz: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": BRIDGE_IP, "port": port, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(ca)}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs", "cgroupRoot": cgroup_root(cluster), "cgroupsPerQOS": True,
        # these machines offer cgroup v1 only; kubelet 1.37 refuses it unless told otherwise
        "failCgroupV1": False, "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{d / 'containerd' / 'containerd.sock'}",
        # dnsPolicy Default pods (and forwarders) get the node's own resolver, as on a real node
        "clusterDNS": [CLUSTER_DNS], "clusterDomain": "cluster.local",
        "resolvConf": str(d / "node-dns" / "resolv.conf"),
        "podLogsDir": str(d / "pod-logs"), "serializeImagePulls": False,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "enforceNodeAllocatable": ["pods"], "registerNode": True, "maxPods": 110,
        "rotateCertificates": False, "serverTLSBootstrap": False,
    }


def kube_proxy_config(kubeconfig: Path, cluster: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)}, "mode": "nftables",
        "clusterCIDR": POD_CIDR, "hostnameOverride": node_name(cluster),
        "healthzBindAddress": f"127.0.0.1:{_free_port()}", "metricsBindAddress": f"127.0.0.1:{_free_port()}",
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        # leave the host's conntrack table size and timeouts alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
                      "udpTimeout": "0s", "udpStreamTimeout": "0s"},
    }


def system_manifests(registry: str) -> list[dict[str, Any]]:
    """CoreDNS and the RBAC kube-router needs, applied once the node is Ready."""
    labels = {"k8s-app": "kube-dns"}
    corefile = ("cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {\n    errors\n    health :8080\n    ready :8181\n"
                "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n    }\n"
                "    cache 30\n}\n"
                # no forwarding: names outside the cluster get no answer, so nothing leaves the machine
                ".:53 {\n    errors\n}\n")
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "vcm:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": read},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "vcm:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "vcm:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "vcm:kube-router"},
         "rules": [{"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
                    "verbs": read},
                   {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "vcm:kube-router"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "vcm:kube-router"},
         "subjects": [{"kind": "User", "name": "system:kube-router", "apiGroup": "rbac.authorization.k8s.io"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
         "data": {"Corefile": corefile}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "serviceAccountName": "coredns", "dnsPolicy": "Default",
                      "containers": [{
                          "name": "coredns", "image": f"{registry}/vcm/coredns:{images.TAG}",
                          "imagePullPolicy": "Always", "args": ["-conf", "/etc/coredns/Corefile"],
                          "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                    {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}],
                          "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                          "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                        "limits": {"memory": "128Mi"}},
                          "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}]}],
                      "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
         "spec": {"clusterIP": CLUSTER_DNS, "selector": labels,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
    ]


def start(d: Path, cluster: str, bins: Path, admin: Path, ca: Path, kubeconfigs: dict[str, Path],
          spawn: Spawn, progress: Progress) -> dict[str, Any]:
    """Start the node's processes in order, waiting for each; returns what ``state.json`` keeps about it."""
    name = node_name(cluster)
    logs = d / "logs"
    progress("node: writing images (pause, probe, coredns, kubectl, storage-helper; a virtual control plane's "
             "syncer, distro, etcd)")
    store = images.Store(d / "images")
    built = images.build_all(store, bins)
    control_plane = images.control_plane_images(store, bins)
    if not control_plane:
        progress("node: no images for a virtual control plane (the syncer and kine are not built: run `vcm "
                 "toolchain ensure`)")
    built.update(control_plane)
    reg_port = _free_port()
    registry = f"127.0.0.1:{reg_port}"
    spawn("registry", [sys.executable, "-m", "vcluster_mgr.localnode.registry", str(d / "images"), str(reg_port)])
    _wait("the image registry did not listen", lambda: _port_open(reg_port), logs / "registry.log", 20)

    progress("node: starting its resolver on " + BRIDGE_IP)
    (d / "node-dns").mkdir(parents=True, exist_ok=True)
    (d / "node-dns" / "Corefile").write_text(node_dns_corefile())
    (d / "node-dns" / "resolv.conf").write_text(f"nameserver {BRIDGE_IP}\n")
    spawn("node-dns", [str(bins / "coredns"), "-conf", str(d / "node-dns" / "Corefile")])
    _wait("the node's resolver did not listen", lambda: _port_open(53, BRIDGE_IP), logs / "node-dns.log", 20)

    progress("node: starting containerd")
    (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
    (d / "cni" / "net.d" / "10-vcm.conflist").write_text(json.dumps(cni_config(d), indent=2))
    cfg = d / "containerd" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(containerd_config(d, registry))
    sock = d / "containerd" / "containerd.sock"
    spawn("containerd", ["containerd", "--config", str(cfg)])
    _wait("containerd did not open its socket", sock.exists, logs / "containerd.log", 30)

    progress("node: starting the kubelet")
    kport, hport = _free_port(), _free_port()
    kcfg = d / "kubelet" / "config.yaml"
    kcfg.parent.mkdir(parents=True, exist_ok=True)
    kcfg.write_text(yaml.safe_dump(kubelet_config(d, cluster, ca, kport, hport)))
    spawn("kubelet", [str(bins / "kubelet"), f"--config={kcfg}", f"--kubeconfig={kubeconfigs['kubelet']}",
                      f"--root-dir={d / 'kubelet'}", f"--hostname-override={name}", f"--node-ip={BRIDGE_IP}",
                      "--node-labels=" + ",".join(f"{k}={v}" for k, v in NODE_LABELS.items()), "--v=1"])

    def node_ready() -> bool:
        out = kubectl(bins, admin, "get", "node", name, "-o",
                      "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
        return out.strip() == "True"

    _wait(f"node {name} did not become Ready", node_ready, logs / "kubelet.log")

    progress("node: starting kube-scheduler, kube-proxy and kube-router")
    spawn("kube-scheduler", [str(bins / "kube-scheduler"), f"--kubeconfig={kubeconfigs['kube-scheduler']}",
                             "--secure-port=0", "--leader-elect=false", "--v=1"])
    pcfg = d / "kube-proxy.yaml"
    pcfg.write_text(yaml.safe_dump(kube_proxy_config(kubeconfigs["kube-proxy"], cluster)))
    spawn("kube-proxy", [str(bins / "kube-proxy"), f"--config={pcfg}", "--v=1"])
    kubectl(bins, admin, "apply", "-f", "-", stdin=yaml.safe_dump_all(system_manifests(registry)))
    spawn("kube-router", [str(bins / "kube-router"), "--run-firewall=true", "--run-router=false",
                          "--run-service-proxy=false", "--run-loadbalancer=false",
                          f"--kubeconfig={kubeconfigs['kube-router']}", f"--hostname-override={name}",
                          "--health-port=0", "--metrics-port=0", f"--service-cluster-ip-range={SERVICE_CIDR}",
                          "--enable-ipv6=false", "--v=1"])
    progress("node: starting the storage provisioner (default StorageClass " + storage.STORAGE_CLASS + ")")
    kubectl(bins, admin, "apply", "-f", "-", stdin=yaml.safe_dump_all(storage.manifests()))
    spawn("local-path-provisioner", storage.command(bins / "local-path-provisioner", d,
                                                    kubeconfigs["local-path-provisioner"], registry))

    progress("node: waiting for CoreDNS")

    def dns_ready() -> bool:
        out = kubectl(bins, admin, "-n", "kube-system", "get", "deploy", "coredns", "-o",
                      "jsonpath={.status.availableReplicas}", check=False)
        return out.strip() == "1"

    _wait("CoreDNS did not become available", dns_ready, logs / "kubelet.log")
    provisioner_log = logs / "local-path-provisioner.log"
    _wait("the storage provisioner did not start",
          lambda: storage.STARTED in provisioner_log.read_text(errors="replace"), provisioner_log, 30)
    return {"name": name, "registry": registry, "images": {k: f"{registry}/{v.reference}"
                                                           for k, v in built.items()},
            "kubelet_port": kport, "bridge": BRIDGE, "bridge_ip": BRIDGE_IP,
            "resolver": f"{BRIDGE_IP}:53", "resolver_names": dict(NODE_DNS_NAMES),
            "storage_class": storage.STORAGE_CLASS, "volumes": str(storage.volumes_dir(d))}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and text in _cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


def _cgroup_pids(cluster: str) -> list[int]:
    root = hoststate.CGROUP_ROOT / "pids" / cgroup_root(cluster).lstrip("/")
    pids: list[int] = []
    if root.is_dir():
        for procs in root.rglob("cgroup.procs"):
            try:
                pids += [int(x) for x in procs.read_text().split()]
            except (OSError, ValueError):
                continue
    return pids


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in pids:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
            stat = Path(f"/proc/{p}/stat")
            try:
                if stat.read_text().split(") ", 1)[1][0] != "Z":
                    alive.append(p)
            except (OSError, IndexError):
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def stop(d: Path, cluster: str, pids: dict[str, int]) -> list[str]:
    """End the node: its processes, every container and shim, then put the host back as it was.

    Returns what differs from the recorded host state afterwards (empty when everything was put back).
    """
    ours = [pids[p] for p in reversed(PROCESSES) if p in pids and str(d) in _cmdline(pids[p])]
    node_procs = [pid for pid in ours if pid != pids.get("containerd") and pid != pids.get("registry")]
    _kill(node_procs, signal.SIGTERM)
    if not _gone(node_procs, 10):
        _kill(node_procs, signal.SIGKILL)
        _gone(node_procs, 5)
    # containers first (SIGKILL: they are throwaway), then their shims and containerd
    for _ in range(3):
        inside = _cgroup_pids(cluster)
        if not inside:
            break
        _kill(inside, signal.SIGKILL)
        _gone(inside, 5)
    rest = _pids_mentioning(str(d / "containerd")) + [pids[p] for p in ("containerd", "registry") if p in pids
                                                       and str(d) in _cmdline(pids[p])]
    _kill(rest, signal.SIGTERM)
    if not _gone(rest, 10):
        _kill(rest, signal.SIGKILL)
        _gone(rest, 5)
    snapshot_file = d / "hoststate.json"
    if not snapshot_file.exists():
        return []
    return hoststate.restore(hoststate.Snapshot.load(snapshot_file))
