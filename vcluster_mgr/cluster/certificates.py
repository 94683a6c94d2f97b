"""``vcm kubeconfig --user/--member``: a client certificate issued by the host cluster's own signer.

Uses the Kubernetes CSR API (signer ``kubernetes.io/kube-apiserver-client``): the admin's credentials create
and approve the request, the cluster's signer issues the certificate, the request is deleted again. The
private key never leaves this process except in the returned kubeconfig.
"""

from __future__ import annotations

import base64
import contextlib
import time

from vcluster_mgr import errors, naming
from vcluster_mgr.cluster import connection, kubeconfigs

SIGNER = "kubernetes.io/kube-apiserver-client"


def owner_kubeconfig(conn: connection.Connection, *, user: str, groups: tuple[str, ...], namespaces: list[str],
                     expiration_seconds: int = 24 * 3600, timeout: float = 60.0) -> str:
    """A kubeconfig authenticating as ``user`` (in ``groups``) with one context per tenant namespace
    (``kubeconfigs.owner_kubeconfig``); waits up to ``timeout`` seconds for the signer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not namespaces:
        raise errors.ProvisionError(f"no namespaces to make a kubeconfig for {user}")
    certs = conn.certificates
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
                        + [x509.NameAttribute(NameOID.COMMON_NAME, user)])
    csr_pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    name = f"vcm-{naming.owner_binding_name('user', 'User', user)}-{int(time.time())}"
    body = {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "labels": {naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE}},
        "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": SIGNER, "usages": ["client auth"],
                 "expirationSeconds": expiration_seconds},
    }
    what = f"the certificate request for {user}"
    conn.call(f"creating {what}", certs.create_certificate_signing_request, body)
    try:
        csr = conn.call(f"reading {what}", certs.read_certificate_signing_request, name)
        approval = conn.plain(csr)
        approval.setdefault("status", {})["conditions"] = [{
            "type": "Approved", "status": "True", "reason": "VcmKubeconfig", "message": "issued by vcm kubeconfig"}]
        conn.call(f"approving {what}", certs.replace_certificate_signing_request_approval, name, approval)
        deadline = time.monotonic() + timeout
        cert_b64 = None
        while time.monotonic() < deadline:
            status = conn.call(f"reading {what}", certs.read_certificate_signing_request, name).status
            cert_b64 = status.certificate if status else None
            if cert_b64:
                break
            time.sleep(0.2)
        if not cert_b64:
            raise errors.ProvisionError(
                f"the cluster at {conn.server} approved but did not sign the certificate for {user} within "
                f"{timeout:.0f}s (is the {SIGNER} signer enabled in kube-controller-manager?)")
    finally:
        with contextlib.suppress(errors.ClusterError):
            conn.call(f"deleting {what}", certs.delete_certificate_signing_request, name)
    cfg = conn.api.configuration
    ca = open(cfg.ssl_ca_cert, "rb").read() if cfg.ssl_ca_cert else b""  # noqa: SIM115
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return kubeconfigs.owner_kubeconfig(cluster=conn.target.name, server=str(cfg.host), ca=ca, user=user,
                                        certificate_b64=str(cert_b64), key_pem=key_pem, namespaces=namespaces)
