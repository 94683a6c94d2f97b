"""The local cluster's PKI and kubeconfigs, generated with ``cryptography``.

A CA, the API server's serving certificate, client certificates for the admin, the controller manager and
(with a node) the node's components, and the service-account signing key; all private keys mode 600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from vcluster_mgr import lazy_modules
from vcluster_mgr.localcluster import layout
from vcluster_mgr.localnode import node as localnode
from vcluster_mgr.localnode import storage as localnode_storage

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509 import oid
else:
    # imported when a certificate is made, not by every command that loads the CLI (``lazy_modules``)
    x509 = lazy_modules.module("cryptography.x509")
    hashes = lazy_modules.module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_modules.module("cryptography.hazmat.primitives.serialization")
    ec = lazy_modules.module("cryptography.hazmat.primitives.asymmetric.ec")
    rsa = lazy_modules.module("cryptography.hazmat.primitives.asymmetric.rsa")
    oid = lazy_modules.module("cryptography.x509.oid")


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
    name = x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, "vcluster-mgr local CA")])
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
    attrs = [x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(oid.NameOID.COMMON_NAME, common_name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [oid.ExtendedKeyUsageOID.SERVER_AUTH] if server else [oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(next(ipaddress.IPv4Network(layout.SERVICE_CIDR).hosts())),
            *[x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips],
        ]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_pki(pki: Path, node: str | None = None) -> None:
    """The CA and every identity; with a ``node`` also the node's components (and the bridge address SAN)."""
    ca_key, ca_cert = _make_ca()
    write_private(pki / "ca.key", _pem_key(ca_key))
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
                       ("kube-router", "system:kube-router", (), False),
                       # the storage provisioner: RBAC of its own (``localnode.storage.manifests``)
                       ("local-path-provisioner", localnode_storage.IDENTITY, (), False)]
    extra_ips = (localnode.BRIDGE_IP,) if node else ()
    for stem, cn, orgs, server in identities:
        key, cert = _issue(ca_key, ca_cert, cn, organizations=orgs, server=server, extra_ips=extra_ips)
        write_private(pki / f"{stem}.key", _pem_key(key))
        (pki / f"{stem}.crt").write_bytes(_pem_cert(cert))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(pki / "sa.key", _pem_key(sa))
    (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def kubeconfig_text(server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, *, cluster: str,
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
    c = layout.load(name)
    pki = c.dir / "pki"
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key, cert = _issue(ca_key, ca_cert, user, organizations=groups, days=days)
    return kubeconfig_text(c.server, (pki / "ca.crt").read_bytes(), _pem_cert(cert), _pem_key(key),
                       cluster=f"vcm-local-{name}", user=user)

