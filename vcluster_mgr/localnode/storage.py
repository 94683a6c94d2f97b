"""The node cluster's storage: rancher's local-path-provisioner, and ``local-path`` as the default StorageClass.

A claim of the default class gets a directory under the cluster's own folder (``<cluster>/storage/volumes``), so
``vcm local down`` removes every volume with the rest of the cluster and nothing is written elsewhere on the host.
The provisioner runs as a process of the local cluster on the host, like kube-scheduler (so ``down`` and the fault
drills know it), with a client certificate of its own (``IDENTITY``) and the RBAC upstream's manifest grants its
ServiceAccount. It creates and removes each volume's directory through a short-lived helper pod on the node, in
``NAMESPACE``, from the ``storage-helper`` image that ``images`` writes (busybox with ``sh``, ``mkdir`` and ``rm``,
running as root); the helper's scripts are upstream's (``mkdir -m 0777 -p``, ``rm -rf``).

The class binds a claim when its first pod is scheduled (``WaitForFirstConsumer``), so the volume is made on the
node the pod runs on, and deletes the volume with the claim (``reclaimPolicy: Delete``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vcluster_mgr.localnode import images

#: the namespace of the helper pods, their ServiceAccount and the ConfigMap with the scripts (upstream's names)
NAMESPACE = "local-path-storage"
SERVICE_ACCOUNT = "local-path-provisioner-service-account"
CONFIG_MAP = "local-path-config"
STORAGE_CLASS = "local-path"
#: the ``provisioner`` of the StorageClass (upstream's default name)
PROVISIONER = "rancher.io/local-path"
#: the user the provisioner authenticates as (its client certificate's common name)
IDENTITY = "system:local-path-provisioner"
#: a line the provisioner logs once its controller runs
STARTED = "Started provisioner controller"

SETUP = '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n'
TEARDOWN = '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n'


def volumes_dir(d: Path) -> Path:
    """Where the volumes of the cluster in folder ``d`` live (one directory per claim)."""
    return d / "storage" / "volumes"


def config(d: Path) -> dict[str, Any]:
    """The provisioner's ``config.json``: every node's volumes under ``volumes_dir``."""
    return {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(volumes_dir(d))]}],
            # a helper pod normally finishes in a second or two; give up on one long before upstream's 120 s
            "cmdTimeoutSeconds": 60}


def helper_pod(registry: str) -> dict[str, Any]:
    """The template of the helper pods; the provisioner adds the command, the volumes and the node."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
        "spec": {"priorityClassName": "system-node-critical",
                 "containers": [{"name": "helper-pod", "image": f"{registry}/vcm/storage-helper:{images.TAG}",
                                 "imagePullPolicy": "IfNotPresent"}]},
    }


def write_files(d: Path, registry: str) -> tuple[Path, Path]:
    """Write ``config.json`` and the helper pod's template into ``<cluster>/storage``; make the volumes' folder."""
    folder = d / "storage"
    volumes_dir(d).mkdir(parents=True, exist_ok=True)
    cfg, pod = folder / "config.json", folder / "helperPod.yaml"
    cfg.write_text(json.dumps(config(d), indent=2))
    pod.write_text(yaml.safe_dump(helper_pod(registry)))
    return cfg, pod


def command(binary: Path, d: Path, kubeconfig: Path, registry: str) -> list[str]:
    """The provisioner's command line (``write_files`` first)."""
    cfg, pod = write_files(d, registry)
    return [str(binary), "start", f"--config={cfg}", f"--helper-pod-file={pod}", f"--kubeconfig={kubeconfig}",
            f"--namespace={NAMESPACE}", f"--provisioner-name={PROVISIONER}",
            f"--service-account-name={SERVICE_ACCOUNT}", f"--configmap-name={CONFIG_MAP}"]


def manifests() -> list[dict[str, Any]]:
    """The namespace, ServiceAccount, scripts, RBAC and the default StorageClass, applied before it starts."""
    read = ["get", "list", "watch"]
    user = {"kind": "User", "name": IDENTITY, "apiGroup": "rbac.authorization.k8s.io"}
    name = "vcm:local-path-provisioner"
    return [
        # helper pods mount a hostPath: the namespace is privileged, on purpose and explicitly
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
         "data": {"setup": SETUP, "teardown": TEARDOWN}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": [""], "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods",
                                                      "pods/log"], "verbs": read},
                   {"apiGroups": [""], "resources": ["persistentvolumes"],
                    "verbs": [*read, "create", "patch", "update", "delete"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                   {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [user]},
        # it creates and deletes its helper pods in its own namespace only
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": NAMESPACE},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": [*read, "create", "patch", "update",
                                                                         "delete"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": NAMESPACE},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": [user]},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"},
    ]
