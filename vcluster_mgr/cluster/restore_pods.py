"""Pure: the pieces of a snapshot or a restore that the syncer is given, made from what the host shows.

``options_value``: vCluster's snapshot options for a file on the syncer's own filesystem (``container://`` in its
URLs), as its ``VCLUSTER_STORAGE_OPTIONS`` variable carries them. ``restore_pod``: the pod that runs ``/vcluster
restore``, made from the control plane StatefulSet's own pod template as upstream's restore pod is, but pulled
Always and without the template's labels, so the tenant's admission policies admit it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from vcluster_mgr import errors

#: the syncer's container in the chart's pod template
SYNCER = "syncer"
#: vCluster's environment variable for the snapshot options (base64 of their JSON)
OPTIONS_ENV = "VCLUSTER_STORAGE_OPTIONS"
#: the label of the restore pod
RESTORE_LABEL = "vcluster-mgr.dev/restore"


def options_value(path: str) -> str:
    """The syncer's snapshot options for a file on its own filesystem (``container://`` in vCluster's URLs)."""
    return base64.b64encode(json.dumps({"type": "container", "container": {"path": path}}).encode()).decode()


def restore_pod(sts: Any, release: str, options: str) -> dict[str, Any]:
    """The restore pod made from the control plane StatefulSet's pod template (a dict of it, camelCase), as
    upstream's snapshot pod is: the ``syncer`` container's image, environment, mounts and security context; the
    init containers and volumes; the data volume's claim; pulled Always (``vcm-image-pull-always``), with none
    of the template's labels (``release`` is the control plane's own, ``vcm-control-plane-labels``)."""
    template = sts["spec"]["template"]["spec"]
    syncer = next((c for c in template.get("containers", []) if c.get("name") == SYNCER), None)
    if syncer is None:
        raise errors.ProvisionError(f"the control plane StatefulSet {release} has no {SYNCER!r} container")
    env = [e for e in syncer.get("env", []) if e.get("name") not in {"POD_NAME", OPTIONS_ENV}]
    env += [{"name": "POD_NAME", "value": f"{release}-0"}, {"name": OPTIONS_ENV, "value": options}]
    volumes = list(template.get("volumes", []))
    if not any(v.get("name") == "data" for v in volumes):
        claims = sts["spec"].get("volumeClaimTemplates") or []
        claim = f"{claims[0]['metadata']['name']}-{release}-0" if claims else f"data-{release}-0"
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
    inits = [{**c, "imagePullPolicy": "Always"} for c in template.get("initContainers", [])]
    container = {
        "name": "restore", "image": syncer["image"], "imagePullPolicy": "Always",
        "command": ["sleep", "86400"], "env": env, "volumeMounts": syncer.get("volumeMounts", []),
    }
    for key in ("envFrom", "securityContext", "resources", "workingDir"):
        if syncer.get(key):
            container[key] = syncer[key]
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                "volumes": volumes, "initContainers": inits, "containers": [container]}
    for key in ("serviceAccountName", "automountServiceAccountToken", "nodeSelector", "affinity", "tolerations",
                "securityContext", "imagePullSecrets", "priorityClassName", "enableServiceLinks"):
        if template.get(key) is not None:
            pod_spec[key] = template[key]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"{release}-restore-",
                         "labels": {"app": "vcluster-restore", RESTORE_LABEL: release}},
            "spec": pod_spec}
