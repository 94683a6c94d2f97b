"""The built-in throwaway local host cluster: etcd, kube-apiserver and kube-controller-manager.

Enough of a Kubernetes control plane to provision and test tenants for real: RBAC authorization, the
admission plugins tenants rely on (NamespaceLifecycle, LimitRanger, ServiceAccount, ResourceQuota,
PodSecurity, ValidatingAdmissionPolicy) and the controllers that quotas, namespace deletion,
service-account tokens, deployments and garbage collection need. With ``nodes=0`` there is no scheduler
and no kubelet: pods are accepted but never run; with ``nodes=1`` ``localnode.node`` adds a node (kubelet,
containerd, kube-scheduler, kube-proxy, a NetworkPolicy firewall, CoreDNS) after the control plane is ready.

Every process listens on 127.0.0.1 only, on free ports picked at start; with a node, the API server and
the kubelet listen on the node's bridge address instead (``localnode.node.BRIDGE_IP``). The PKI (a CA, the API server's
serving certificate, client certificates for the admin and the controller manager, the service-account
signing key) is generated with ``cryptography``. Each cluster lives in
``<cache>/local/<name>/`` (``state.json``, ``pki/``, ``etcd/``, ``logs/``, ``admin.kubeconfig``);
``down`` stops exactly the processes recorded there and removes the folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vcluster_mgr import errors, toolchain
from vcluster_mgr.localnode import node as localnode

DEFAULT_NAME = "default"
#: how long ``up`` waits for ``/readyz`` before giving up, seconds
READY_TIMEOUT = 90.0
SERVICE_CIDR = "10.96.0.0/16"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


def clusters_dir() -> Path:
    return toolchain.cache_dir() / "local"


def cluster_dir(name: str) -> Path:
    if not _NAME_RE.match(name):
        raise errors.UsageError(f"local cluster name {name!r} must be a DNS label of at most 32 characters")
    return clusters_dir() / name


@dataclasses.dataclass
class Cluster:
    """What ``state.json`` records about a running local cluster."""

    name: str
    server: str
    etcd_client_port: int
    etcd_peer_port: int
    apiserver_port: int
    pids: dict[str, int]
    started_at: float
    ready_seconds: float
    #: each process's command line, so one can be restarted alone (fault drills)
    commands: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: the node (``--nodes 1``): name, registry, image references; empty for a control plane only
    node: dict[str, object] = dataclasses.field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return cluster_dir(self.name)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    def running(self) -> dict[str, bool]:
        return {proc: _alive(pid, self.dir) for proc, pid in self.pids.items()}


# ----------------------------------------------------------------------------------------------------
# PKI
# ----------------------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vcluster-mgr local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str, *,
           organizations: tuple[str, ...] = (), server: bool = False,
           days: int = 365, extra_ips: tuple[str, ...] = ()) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(next(ipaddress.IPv4Network(SERVICE_CIDR).hosts())),
            *[x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips],
        ]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_pki(pki: Path, node: str | None = None) -> None:
    """The CA and every identity; with a ``node`` also the node's components (and the bridge address SAN)."""
    ca_key, ca_cert = _make_ca()
    _write_private(pki / "ca.key", _pem_key(ca_key))
    (pki / "ca.crt").write_bytes(_pem_cert(ca_cert))
    identities: list[tuple[str, str, tuple[str, ...], bool]] = [
        ("apiserver", "kube-apiserver", (), True),
        ("admin", "vcm-admin", ("system:masters",), False),
        # the controllers run under this one identity (no per-controller service accounts on a throwaway
        # cluster), so it needs every right they need together
        ("controller-manager", "system:kube-controller-manager", ("system:masters",), False),
    ]
    if node:
        # the node's components get the identities the default RBAC (and the Node authorizer) know
        identities += [("kubelet", f"system:node:{node}", ("system:nodes",), False),
                       ("kube-scheduler", "system:kube-scheduler", (), False),
                       ("kube-proxy", "system:kube-proxy", (), False),
                       ("kube-router", "system:kube-router", (), False)]
    extra_ips = (localnode.BRIDGE_IP,) if node else ()
    for stem, cn, orgs, server in identities:
        key, cert = _issue(ca_key, ca_cert, cn, organizations=orgs, server=server, extra_ips=extra_ips)
        _write_private(pki / f"{stem}.key", _pem_key(key))
        (pki / f"{stem}.crt").write_bytes(_pem_cert(cert))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(pki / "sa.key", _pem_key(sa))
    (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _kubeconfig(server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, *, cluster: str,
                user: str) -> str:
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem),
                                           "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def user_kubeconfig(name: str, user: str, groups: tuple[str, ...] = (), *, days: int = 1) -> str:
    """A kubeconfig (text) authenticating as ``user`` in ``groups`` by a client certificate.

    Tests use it to act as a tenant's owner; the certificate is signed by the cluster's own CA.
    """
    c = load(name)
    pki = c.dir / "pki"
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key, cert = _issue(ca_key, ca_cert, user, organizations=groups, days=days)
    return _kubeconfig(c.server, (pki / "ca.crt").read_bytes(), _pem_cert(cert), _pem_key(key),
                       cluster=f"vcm-local-{name}", user=user)


# ----------------------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` runs and is one of ours (its command line names our data dir)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return str(data_dir) in cmdline and state != "Z"


def _spawn(args: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    return proc.pid


def _start(c: Cluster, proc: str, args: list[str]) -> int:
    c.commands[proc] = args
    return _spawn(args, c.dir / "logs" / f"{proc}.log")


def _save(c: Cluster) -> None:
    (c.dir / "state.json").write_text(json.dumps(dataclasses.asdict(c), indent=2))


def stop_process(name: str, proc: str) -> None:
    """Kill one process of a running cluster (SIGKILL, as a crash would); its data stays."""
    c = load(name)
    pid = c.pids[proc]
    if _alive(pid, c.dir):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid, c.dir) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)


def start_process(name: str, proc: str, *, timeout: float = READY_TIMEOUT) -> None:
    """Start one stopped process again with its original command line (same ports, same data)."""
    c = load(name)
    if _alive(c.pids[proc], c.dir):
        raise errors.LocalClusterError(f"{proc} of local cluster {name!r} is already running")
    c.pids[proc] = _start(c, proc, c.commands[proc])
    _save(c)
    if proc == "kube-apiserver":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _readyz(c.server, c.dir / "pki")[0]:
                return
            time.sleep(0.1)
        raise errors.LocalClusterError(f"kube-apiserver of {name!r} did not become ready again within {timeout:.0f}s")


def load(name: str = DEFAULT_NAME) -> Cluster:
    """The recorded state of a local cluster; ``LocalClusterError`` if there is none."""
    path = cluster_dir(name) / "state.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise errors.LocalClusterError(
            f"no local cluster named {name!r} is running (start one with `vcm local up --name {name}`)") from None
    except ValueError as exc:
        raise errors.LocalClusterError(f"{path} is damaged ({exc}); run `vcm local down --name {name}`") from exc
    try:
        return Cluster(**data)
    except TypeError as exc:  # a state file of another vcm version (other fields)
        raise errors.LocalClusterError(f"{path} was written by another version of vcm ({exc})") from exc


def _readyz(server: str, pki: Path) -> tuple[bool, str]:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(server + "/readyz", context=ctx, timeout=2) as resp:  # noqa: S310 - https only
            return resp.status == 200, resp.read().decode()[:200]
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace")[-300:]
    except OSError as exc:
        return False, str(exc)


def _wait_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def up(name: str = DEFAULT_NAME, *, nodes: int = 0, timeout: float = READY_TIMEOUT,
       progress: Callable[[str], object] = lambda _: None, apiserver_args: Sequence[str] = ()) -> Cluster:
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
    d = cluster_dir(name)
    if (d / "state.json").exists():
        existing = load(name)
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
    pki = d / "pki"
    _write_pki(pki, node_name)
    ports = {"etcd_client": _free_port(), "etcd_peer": _free_port(), "apiserver": _free_port()}
    while len(set(ports.values())) < 3:
        ports["etcd_peer"] = _free_port()
    server = f"https://{host}:{ports['apiserver']}"
    pids: dict[str, int] = {}
    cluster = Cluster(name, server, ports["etcd_client"], ports["etcd_peer"], ports["apiserver"], pids,
                      time.time(), 0.0)

    def record() -> None:
        _save(cluster)

    etcd_url = f"http://127.0.0.1:{ports['etcd_client']}"
    peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
    progress("starting etcd")
    pids["etcd"] = _start(cluster, "etcd", [
        str(bins / "etcd"), "--name", "vcm", "--data-dir", str(d / "etcd"),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"vcm={peer_url}", "--initial-cluster-state", "new",
        "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn",
    ])
    record()
    if not _wait_port(ports["etcd_client"], time.monotonic() + 20):
        down(name)
        raise errors.LocalClusterError(f"etcd did not start; see {d / 'logs' / 'etcd.log'}")
    progress("starting kube-apiserver")
    pids["kube-apiserver"] = _start(cluster, "kube-apiserver", [
        str(bins / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={host}", f"--advertise-address={host}", f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=" + ("Node,RBAC" if nodes else "RBAC"),
        "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,"
        "PodSecurity,ValidatingAdmissionPolicy,DefaultTolerationSeconds" + (",NodeRestriction" if nodes else ""),
        # with a node, the `kubernetes` Service's endpoint is the bridge address pods can reach
        "--endpoint-reconciler-type=" + ("lease" if nodes else "none"),
        *([f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
           "--kubelet-preferred-address-types=InternalIP"] if nodes else []),
        "--allow-privileged=true", "--profiling=false",
        "--enable-priority-and-fairness=false", "--storage-media-type=application/vnd.kubernetes.protobuf",
        "--watch-cache=true", "--v=1",
        f"--cert-dir={pki}", *apiserver_args,
    ])
    record()
    progress("starting kube-controller-manager")
    kcm_kubeconfig = d / "controller-manager.kubeconfig"
    kcm_kubeconfig.write_text(_kubeconfig(server, (pki / "ca.crt").read_bytes(),
                                          (pki / "controller-manager.crt").read_bytes(),
                                          (pki / "controller-manager.key").read_bytes(),
                                          cluster="local", user="system:kube-controller-manager"))
    kcm_kubeconfig.chmod(0o600)
    admin = _kubeconfig(server, (pki / "ca.crt").read_bytes(), (pki / "admin.crt").read_bytes(),
                        (pki / "admin.key").read_bytes(), cluster=f"vcm-local-{name}", user="vcm-admin")
    _write_private(cluster.kubeconfig, admin.encode())
    pids["kube-controller-manager"] = _start(cluster, "kube-controller-manager", [
        str(bins / "kube-controller-manager"),
        f"--kubeconfig={kcm_kubeconfig}", "--secure-port=0", "--leader-elect=false",
        "--controllers=" + ",".join(f"{c}-controller" for c in (
            "namespace", "garbage-collector", "serviceaccount", "serviceaccount-token", "resourcequota",
            "deployment", "replicaset", "statefulset", "endpointslice", "root-ca-certificate-publisher",
            "ttl-after-finished", "job", "clusterrole-aggregation", "validatingadmissionpolicy-status",
            "certificatesigningrequest-signing",
            # with a node: its podCIDR, and the not-ready taint lifted once it is Ready
            *(("node-ipam", "node-lifecycle") if nodes else ()))),
        *(["--allocate-node-cidrs=true", f"--cluster-cidr={localnode.POD_CIDR}", "--node-cidr-mask-size=24",
           f"--service-cluster-ip-range={SERVICE_CIDR}"] if nodes else []),
        # the CSR signer lets `vcm kubeconfig` issue owners' client certificates, as on a real cluster
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=false", "--concurrent-gc-syncs=5", "--v=1",
    ])
    record()
    progress("waiting for /readyz")
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = _readyz(server, pki)
        if ok:
            break
        if not _alive(pids["kube-apiserver"], d):
            break
        time.sleep(0.1)
    else:
        ok = False
    if not ok:
        log_tail = _tail(d / "logs" / "kube-apiserver.log")
        down(name)
        raise errors.LocalClusterError(
            f"kube-apiserver of local cluster {name!r} did not become ready within {timeout:.0f}s "
            f"({detail.strip()[:200]}); last log lines:\n{log_tail}")
    if node_name:
        kubeconfigs = {}
        for stem in ("kubelet", "kube-scheduler", "kube-proxy", "kube-router"):
            path = d / f"{stem}.kubeconfig"
            _write_private(path, _kubeconfig(server, (pki / "ca.crt").read_bytes(), (pki / f"{stem}.crt").read_bytes(),
                                             (pki / f"{stem}.key").read_bytes(), cluster="local", user=stem).encode())
            kubeconfigs[stem] = path

        def spawn(proc: str, args: list[str]) -> int:
            pids[proc] = _start(cluster, proc, args)
            record()
            return pids[proc]

        try:
            cluster.node = localnode.start(d, name, bins, cluster.kubeconfig, pki / "ca.crt", kubeconfigs, spawn,
                                           progress)
        except BaseException:
            down(name)
            raise
    cluster.ready_seconds = round(time.monotonic() - started, 2)
    record()
    return cluster


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _cleanup(c: Cluster) -> None:
    procs = [(proc, pid) for proc, pid in c.pids.items() if _alive(pid, c.dir)]
    # stop in reverse start order, so the API server never outlives etcd by much
    for _, pid in reversed(procs):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for _, pid in procs:
        while _alive(pid, c.dir) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _alive(pid, c.dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def down(name: str = DEFAULT_NAME) -> bool:
    """Stop a local cluster's processes and remove its data. False if there was nothing to stop."""
    d = cluster_dir(name)
    if not d.exists():
        return False
    try:
        c = load(name)
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


def list_clusters() -> list[Cluster]:
    if not clusters_dir().exists():
        return []
    found = []
    for d in sorted(clusters_dir().iterdir()):
        try:
            found.append(load(d.name))
        except errors.VcmError:
            continue
    return found


def listening_sockets(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN state owned by ``pids`` (from /proc)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    result = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if parts[3] != "0A" or parts[9] not in inodes:
                continue
            addr_hex, port_hex = parts[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if v6:
                addr = str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
            else:
                addr = str(ipaddress.IPv4Address(raw[::-1]))
            result.append((inodes[parts[9]], addr, int(port_hex, 16)))
    return result
