"""The objects the checks try to create (always with server-side dry-run): a compliant pod, pods that each
break one Pod Security or placement rule, probe Services. Pure.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vcluster_mgr.verify import catalogue

# ---------------------------------------------------------------------------------------------
# Probe objects (pure)
# ---------------------------------------------------------------------------------------------

PROBE_IMAGE = "registry.k8s.io/pause:3.10"
FALLBACK_RESOURCES = {"cpu": "100m", "memory": "128Mi"}
"""Requests and limits of probe pods in a namespace without a LimitRange default."""


def container_resources(limit_ranges: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Requests and limits inside the namespace's LimitRanges: their Container defaults, else a small fallback."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                requests |= {k: str(v) for k, v in (item.get("defaultRequest") or {}).items()}
                limits |= {k: str(v) for k, v in (item.get("default") or {}).items()}
    for key, value in FALLBACK_RESOURCES.items():
        limits.setdefault(key, requests.get(key, value))
        requests.setdefault(key, limits[key])
    return {"requests": requests, "limits": limits}


def placement_selector(configmap: Mapping[str, Any] | None) -> dict[str, str]:
    """The nodeSelector the vcm-placement policy asks for, from the namespace's vcm-placement ConfigMap."""
    data = (configmap or {}).get("data") or {}
    pairs = (str(v).split("=", 1) for v in data.values())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def compliant_pod(name: str, *, node_selector: Mapping[str, str], resources: Mapping[str, Any]) -> dict[str, Any]:
    """A pod every tenant namespace must accept: Pod Security restricted, imagePullPolicy Always, the
    tenant's nodeSelector and resources inside its LimitRange."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": catalogue.PROBE_PREFIX}},
        "spec": {
            "automountServiceAccountToken": False,
            "nodeSelector": dict(node_selector),
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "imagePullPolicy": "Always",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True,
                        "readOnlyRootFilesystem": True,
                    },
                    "resources": copy.deepcopy(dict(resources)),
                }
            ],
        },
    }


def _add_capabilities(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_ADMIN", "SYS_ADMIN"]


def _no_run_as_non_root(pod: dict[str, Any]) -> None:
    pod["spec"]["securityContext"].pop("runAsNonRoot")
    pod["spec"]["securityContext"].pop("runAsUser")
    pod["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")


def _run_as_root(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0


def _privileged(pod: dict[str, Any]) -> None:
    context = pod["spec"]["containers"][0]["securityContext"]
    context.pop("allowPrivilegeEscalation")  # the API refuses privileged with allowPrivilegeEscalation: false
    context["privileged"] = True


def _privilege_escalation(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True


def _image_pull_if_not_present(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"


def _host_path(pod: dict[str, Any]) -> None:
    pod["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/etc", "type": "Directory"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host", "readOnly": True}]


def _host_network(pod: dict[str, Any]) -> None:
    pod["spec"]["hostNetwork"] = True


def _host_port(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]


def _host_pid(pod: dict[str, Any]) -> None:
    pod["spec"]["hostPID"] = True


def _host_ipc(pod: dict[str, Any]) -> None:
    pod["spec"]["hostIPC"] = True


@dataclasses.dataclass(frozen=True)
class PodProbe:
    """A compliant pod with ONE bad property, which the tenant's namespaces must refuse."""

    name: str
    property: str
    mutate: Callable[[dict[str, Any]], None]

    def pod(self, *, node_selector: Mapping[str, str], resources: Mapping[str, Any]) -> dict[str, Any]:
        pod = compliant_pod(f"{catalogue.PROBE_PREFIX}-{self.name}", node_selector=node_selector, resources=resources)
        self.mutate(pod)
        return pod


POD_PROBES: dict[str, tuple[PodProbe, ...]] = {
    "block-add-capabilities": (
        PodProbe("add-capabilities", "capabilities.add: [NET_ADMIN, SYS_ADMIN]", _add_capabilities),
    ),
    "require-run-as-non-root": (
        PodProbe(
            "no-run-as-non-root", "no runAsNonRoot and no runAsUser (the image's user, often root)", _no_run_as_non_root
        ),
        PodProbe("run-as-root", "runAsUser: 0", _run_as_root),
    ),
    "block-privileged-containers": (PodProbe("privileged", "privileged: true", _privileged),),
    "block-privilege-escalation": (
        PodProbe("privilege-escalation", "allowPrivilegeEscalation: true", _privilege_escalation),
    ),
    "require-always-image-pull": (PodProbe("image-pull", "imagePullPolicy: IfNotPresent", _image_pull_if_not_present),),
    "block-host-path-volumes": (PodProbe("host-path", "a hostPath volume (/etc, read-only)", _host_path),),
    "block-host-networking-and-ports": (
        PodProbe("host-network", "hostNetwork: true", _host_network),
        PodProbe("host-port", "hostPort: 8080", _host_port),
    ),
    "block-host-pid": (PodProbe("host-pid", "hostPID: true", _host_pid),),
    "block-host-ipc": (PodProbe("host-ipc", "hostIPC: true", _host_ipc),),
}
"""The pod probes of each pod check; each must be refused in every tenant namespace."""


def probe_service(service_type: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{catalogue.PROBE_PREFIX}-{service_type.lower()}"},
        "spec": {
            "type": service_type,
            "selector": {"app.kubernetes.io/name": catalogue.PROBE_PREFIX},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }
