"""The CoreDNS a tenant's virtual cluster runs, as one complete manifest of literal values. Pure.

The vcluster chart deploys CoreDNS inside the virtual cluster from a manifest it ships, and that manifest fixes
``imagePullPolicy: IfNotPresent`` with no value to change it, so the host's ``vcm-image-pull-always`` policy
refuses the synced CoreDNS pod and DNS inside the virtual cluster never works. The chart's
``controlPlane.coredns.overwriteManifests`` replaces that manifest whole; this module writes ours: the same
kinds (ServiceAccount, ClusterRole and binding, the Corefile ConfigMap, the Deployment, the ``kube-dns``
Service), every value literal (no ``{{.IMAGE}}``-style placeholders left for the syncer), with pull policy
Always, the policy's image, the tenant's nodeSelector, resources within the tenant's LimitRange and a security
context the restricted Pod Security profile admits. Its upstream is the node's resolver (``dnsPolicy:
Default``, ``forward . /etc/resolv.conf``), which is why strict tenants get an egress rule for it
(``templates/tenant/networkpolicies.yaml.j2``).
"""

from __future__ import annotations

from typing import Any

import yaml

#: the port CoreDNS listens on inside its pod (the Service maps 53 to it): above 1024, so no capability is needed
DNS_PORT = 1053
#: labels of the CoreDNS pods and Service, as the Kubernetes add-on and vcluster's own manifest use
DNS_LABELS = {"k8s-app": "kube-dns"}

COREFILE = f""".:{DNS_PORT} {{
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    hosts /etc/coredns/NodeHosts {{
        ttl 60
        reload 15s
        fallthrough
    }}
    forward . /etc/resolv.conf
    cache 30
    loop
    loadbalance
}}
"""
"""The virtual cluster's Corefile: its own names from its API server, the syncer's NodeHosts, the rest forwarded
to the node's resolver."""


def coredns_objects(
    *, image: str, node_selector: dict[str, str], resources: dict[str, Any], run_as: int
) -> list[dict[str, Any]]:
    """The objects of the virtual cluster's CoreDNS, in apply order."""
    read = ["list", "watch"]
    pod_security = {"runAsNonRoot": True, "runAsUser": run_as, "runAsGroup": run_as,
                    "seccompProfile": {"type": "RuntimeDefault"}}
    container_security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
                          "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": run_as,
                          "runAsGroup": run_as, "seccompProfile": {"type": "RuntimeDefault"}}
    probe = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": read},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
         "data": {"Corefile": COREFILE, "NodeHosts": ""}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dict(DNS_LABELS)},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": dict(DNS_LABELS)},
             "template": {
                 "metadata": {"labels": dict(DNS_LABELS)},
                 "spec": {
                     "serviceAccountName": "coredns",
                     "dnsPolicy": "Default",
                     "nodeSelector": {"kubernetes.io/os": "linux", **node_selector},
                     "securityContext": pod_security,
                     "containers": [{
                         "name": "coredns", "image": image, "imagePullPolicy": "Always",
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "ports": [{"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"}],
                         "resources": resources,
                         "securityContext": container_security,
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 60,
                                           **probe},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, **probe},
                         "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
                     }],
                     "volumes": [{"name": "config-volume", "configMap": {
                         "name": "coredns",
                         "items": [{"key": "Corefile", "path": "Corefile"}, {"key": "NodeHosts", "path": "NodeHosts"}],
                     }}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": dict(DNS_LABELS)},
         "spec": {"type": "ClusterIP", "selector": dict(DNS_LABELS),
                  "ports": [{"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"}]}},
    ]


def coredns_manifest(*, image: str, node_selector: dict[str, str], resources: dict[str, Any], run_as: int) -> str:
    """``coredns_objects`` as the multi-document YAML text ``controlPlane.coredns.overwriteManifests`` takes."""
    docs = coredns_objects(image=image, node_selector=node_selector, resources=resources, run_as=run_as)
    return str(yaml.safe_dump_all(docs, sort_keys=False, width=120))
