"""Pure: the kubeconfigs ``vcm kubeconfig`` hands out, as text, from what the server issued."""

from __future__ import annotations

import base64
from typing import Any

import yaml


def owner_kubeconfig(*, cluster: str, server: str, ca: bytes, user: str, certificate_b64: str, key_pem: bytes,
                     namespaces: list[str]) -> str:
    """A kubeconfig for ``user`` with its client certificate and key, one context per tenant namespace
    (named ``<namespace>@vcm-<cluster>``), the first one current.

    Owners cannot list namespaces (that would show them every tenant), so the contexts are how they find
    their own: ``kubectl config get-contexts``, then ``kubectl get namespace <ns>``.
    """
    cluster_name = f"vcm-{cluster}"
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": user, "user": {"client-certificate-data": certificate_b64,
                                           "client-key-data": base64.b64encode(key_pem).decode()}}],
        "contexts": [{"name": f"{ns}@{cluster_name}", "context": {
            "cluster": cluster_name, "user": user, "namespace": ns}} for ns in namespaces],
        "current-context": f"{namespaces[0]}@{cluster_name}",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def pointed_at(kubeconfig: bytes, server: str) -> str:
    """A kubeconfig (the virtual cluster's own) with every cluster's server replaced by ``server``."""
    doc: Any = yaml.safe_load(kubeconfig)
    for entry in doc.get("clusters", []):
        entry.setdefault("cluster", {})["server"] = server
    return str(yaml.safe_dump(doc, sort_keys=False))
