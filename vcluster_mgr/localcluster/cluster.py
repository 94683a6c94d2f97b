"""A local cluster's lifecycle: ``up`` (PKI, etcd, kube-apiserver, kube-controller-manager, a node),
``down``, and stopping or starting one of its processes alone (fault drills).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence

from vcluster_mgr import errors, toolchain
from vcluster_mgr.localcluster import controller_manager, layout, pki, processes
from vcluster_mgr.localnode import node as localnode


def start(c: layout.Cluster, proc: str, args: list[str]) -> int:
    c.commands[proc] = args
    return processes.start_logged(args, c.dir / "logs" / f"{proc}.log")


def stop_process(name: str, proc: str) -> None:
    """Kill one process of a running cluster (SIGKILL, as a crash would); its data stays."""
    c = layout.load(name)
    pid = c.pids[proc]
    if processes.alive(pid, c.dir):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while processes.alive(pid, c.dir) and time.monotonic() < deadline:
            processes.reap(pid)
            time.sleep(0.05)
    processes.reap(pid)


def start_process(name: str, proc: str, *, timeout: float = layout.READY_TIMEOUT,
                  args: Sequence[str] | None = None) -> None:
    """Start one stopped process again with its original command line (same ports, same data), or with
    ``args`` instead, which are then recorded as its command line (a twin test runs an older configuration)."""
    c = layout.load(name)
    if processes.alive(c.pids[proc], c.dir):
        raise errors.LocalClusterError(f"{proc} of local cluster {name!r} is already running")
    c.pids[proc] = start(c, proc, list(args) if args is not None else c.commands[proc])
    layout.save(c)
    if proc == "kube-apiserver":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if processes.readyz(c.server, c.dir / "pki")[0]:
                return
            time.sleep(0.1)
        raise errors.LocalClusterError(f"kube-apiserver of {name!r} did not become ready again within {timeout:.0f}s")


def up(name: str = layout.DEFAULT_NAME, *, nodes: int = 0, timeout: float = layout.READY_TIMEOUT,
       progress: Callable[[str], object] = lambda _: None, apiserver_args: Sequence[str] = ()) -> layout.Cluster:
    """Start a local cluster and wait for ``/readyz``; refuses if one of that name already runs.

    ``nodes=1`` adds a node (``localnode.node``): the API server then listens on the node's bridge address
    instead of 127.0.0.1, so pods reach it through the ``kubernetes`` Service. ``nodes=0`` is a control
    plane only, where pods are accepted but never run. ``apiserver_args`` come last on kube-apiserver's
    command line, so they override the flags above (tests and benchmarks turn on API Priority and Fairness
    with ``--enable-priority-and-fairness=true``).
    """
    if nodes not in (0, 1):
        raise errors.UsageError(
            f"--nodes {nodes}: a local cluster has 0 or 1 nodes (every node would share this machine's one "
            "network namespace, whose netfilter tables kube-proxy and the firewall own)")
    d = layout.cluster_dir(name)
    if (d / "state.json").exists():
        existing = layout.load(name)
        if any(existing.running().values()):
            raise errors.LocalClusterError(
                f"local cluster {name!r} is already running at {existing.server} "
                f"(KUBECONFIG={existing.kubeconfig}); `vcm local down --name {name}` stops it")
        _cleanup(existing)
    bins = toolchain.require()
    if nodes:
        localnode.check_host()
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    d.chmod(0o700)
    started = time.monotonic()
    node_name = localnode.node_name(name) if nodes else None
    host = "127.0.0.1"
    if nodes:
        progress("node: recording the host's state, creating bridge " + localnode.BRIDGE)
        localnode.prepare(d, name)
        host = localnode.BRIDGE_IP
    pki_dir = d / "pki"
    pki.write_pki(pki_dir, node_name)
    ports = {"etcd_client": processes.free_port(), "etcd_peer": processes.free_port(),
             "apiserver": processes.free_port()}
    while len(set(ports.values())) < 3:
        ports["etcd_peer"] = processes.free_port()
    server = f"https://{host}:{ports['apiserver']}"
    pids: dict[str, int] = {}
    cluster = layout.Cluster(name, server, ports["etcd_client"], ports["etcd_peer"], ports["apiserver"], pids,
                      time.time(), 0.0)

    def record() -> None:
        layout.save(cluster)

    etcd_url = f"http://127.0.0.1:{ports['etcd_client']}"
    peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
    progress("starting etcd")
    pids["etcd"] = start(cluster, "etcd", [
        str(bins / "etcd"), "--name", "vcm", "--data-dir", str(d / "etcd"),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"vcm={peer_url}", "--initial-cluster-state", "new",
        "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn",
    ])
    record()
    if not processes.wait_port(ports["etcd_client"], time.monotonic() + 20):
        down(name)
        raise errors.LocalClusterError(f"etcd did not start; see {d / 'logs' / 'etcd.log'}")
    progress("starting kube-apiserver")
    pids["kube-apiserver"] = start(cluster, "kube-apiserver", [
        str(bins / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={host}", f"--advertise-address={host}", f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={pki_dir / 'apiserver.crt'}", f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        f"--service-account-key-file={pki_dir / 'sa.pub'}", f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
        "--authorization-mode=" + ("Node,RBAC" if nodes else "RBAC"),
        "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,"
        "PodSecurity,ValidatingAdmissionPolicy,DefaultTolerationSeconds" + (",NodeRestriction" if nodes else ""),
        # with a node, the `kubernetes` Service's endpoint is the bridge address pods can reach
        "--endpoint-reconciler-type=" + ("lease" if nodes else "none"),
        *([f"--kubelet-client-certificate={pki_dir / 'admin.crt'}", f"--kubelet-client-key={pki_dir / 'admin.key'}",
           "--kubelet-preferred-address-types=InternalIP"] if nodes else []),
        "--allow-privileged=true", "--profiling=false",
        "--enable-priority-and-fairness=false", "--storage-media-type=application/vnd.kubernetes.protobuf",
        "--watch-cache=true", "--v=1",
        f"--cert-dir={pki_dir}", *apiserver_args,
    ])
    record()
    progress("starting kube-controller-manager")
    kcm_kubeconfig = d / "controller-manager.kubeconfig"
    kcm_kubeconfig.write_text(pki.kubeconfig_text(server, (pki_dir / "ca.crt").read_bytes(),
                                                  (pki_dir / "controller-manager.crt").read_bytes(),
                                                  (pki_dir / "controller-manager.key").read_bytes(),
                                                  cluster="local", user="system:kube-controller-manager"))
    kcm_kubeconfig.chmod(0o600)
    admin = pki.kubeconfig_text(server, (pki_dir / "ca.crt").read_bytes(), (pki_dir / "admin.crt").read_bytes(),
                                (pki_dir / "admin.key").read_bytes(), cluster=f"vcm-local-{name}", user="vcm-admin")
    pki.write_private(cluster.kubeconfig, admin.encode())
    pids["kube-controller-manager"] = start(cluster, "kube-controller-manager", controller_manager.command(
        bins / "kube-controller-manager", kcm_kubeconfig, pki_dir, nodes=nodes))
    record()
    progress("waiting for /readyz")
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = processes.readyz(server, pki_dir)
        if ok:
            break
        if not processes.alive(pids["kube-apiserver"], d):
            break
        time.sleep(0.1)
    else:
        ok = False
    if not ok:
        log_tail = processes.tail(d / "logs" / "kube-apiserver.log")
        down(name)
        raise errors.LocalClusterError(
            f"kube-apiserver of local cluster {name!r} did not become ready within {timeout:.0f}s "
            f"({detail.strip()[:200]}); last log lines:\n{log_tail}")
    if node_name:
        kubeconfigs = {}
        for stem in ("kubelet", "kube-scheduler", "kube-proxy", "kube-router", "local-path-provisioner"):
            path = d / f"{stem}.kubeconfig"
            text = pki.kubeconfig_text(server, (pki_dir / "ca.crt").read_bytes(),
                                       (pki_dir / f"{stem}.crt").read_bytes(), (pki_dir / f"{stem}.key").read_bytes(),
                                       cluster="local", user=stem)
            pki.write_private(path, text.encode())
            kubeconfigs[stem] = path

        def spawn(proc: str, args: list[str]) -> int:
            pids[proc] = start(cluster, proc, args)
            record()
            return pids[proc]

        try:
            cluster.node = localnode.start(d, name, bins, cluster.kubeconfig, pki_dir / "ca.crt", kubeconfigs, spawn,
                                           progress)
        except BaseException:
            down(name)
            raise
    cluster.ready_seconds = round(time.monotonic() - started, 2)
    record()
    return cluster


def _cleanup(c: layout.Cluster) -> None:
    procs = [(proc, pid) for proc, pid in c.pids.items() if processes.alive(pid, c.dir)]
    # stop in reverse start order, so the API server never outlives etcd by much
    for _, pid in reversed(procs):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for _, pid in procs:
        while processes.alive(pid, c.dir) and time.monotonic() < deadline:
            processes.reap(pid)
            time.sleep(0.05)
        if processes.alive(pid, c.dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        processes.reap(pid)


def down(name: str = layout.DEFAULT_NAME) -> bool:
    """Stop a local cluster's processes and remove its data. False if there was nothing to stop."""
    d = layout.cluster_dir(name)
    if not d.exists():
        return False
    try:
        c = layout.load(name)
    except errors.LocalClusterError:
        shutil.rmtree(d, ignore_errors=True)
        return False
    if (d / "hoststate.json").exists():
        # the node first: its containers, shims and mounts live under the cluster's folder; what differs from
        # the recorded host state afterwards is left for the caller to compare (``hoststate.diff``)
        localnode.stop(d, name, {p: pid for p, pid in c.pids.items() if p in localnode.PROCESSES})
        c.pids = {p: pid for p, pid in c.pids.items() if p not in localnode.PROCESSES}
    _cleanup(c)
    shutil.rmtree(d, ignore_errors=True)
    return True

