"""What ``vcm sleep`` does on the host after the control plane is scaled to zero: free what it synced.

Scaling the chart's StatefulSet (a Deployment without persistence) to zero stops the virtual API server and the
syncer, but the pods the syncer made on the host (the tenant's workloads, its CoreDNS) go on running and using the
tenant's quota. With the syncer gone nothing would ever stop them, so sleep waits for the control plane's pods to
be gone and then deletes every pod labelled ``vcluster.loft.sh/managed-by: <tenant>`` in the tenant's first
namespace. On wake the virtual cluster comes back with its data (it needs persistence for that) and its controllers
(Deployments, StatefulSets, Jobs) make their pods again; bare pods created directly inside the virtual cluster do
not come back.
"""

from __future__ import annotations

import time

from vcluster_mgr import cluster, errors, naming, platformconfig, spec


def free_synced_pods(target: platformconfig.Target, tenant: spec.Tenant, *, timeout: float = 120.0) -> list[str]:
    """Wait until the control plane's pods (``app=vcluster``, not its etcd's) are gone, then delete the pods it
    synced; their names."""
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    where = f"{tenant.name}'s control plane in {namespace}"
    with cluster.connect(target) as conn:
        deadline = time.monotonic() + timeout
        while conn.call(f"listing the pods of {where}", conn.core.list_namespaced_pod, namespace,
                        label_selector=naming.control_plane_pod_selector(release)).items:
            if time.monotonic() >= deadline:
                raise errors.ProvisionError(
                    f"the control plane pods of {tenant.name} in {namespace} were still there {timeout:.0f}s after "
                    "scaling to zero; the pods it synced were left running (run `vcm sleep` again)")
            time.sleep(1.0)
        synced = conn.call(f"listing the pods synced by {where}", conn.core.list_namespaced_pod, namespace,
                           label_selector=f"{naming.SYNCED_BY_LABEL}={release}").items
        names = sorted(str(pod.metadata.name) for pod in synced if pod.metadata is not None)
        for pod_name in names:
            # gone already (deleted by hand, or its node's eviction) is as good as deleted
            conn.read(f"freeing pod {namespace}/{pod_name} synced by {where}", conn.core.delete_namespaced_pod,
                      pod_name, namespace)
        return names
