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

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors, hostcluster, naming, platformconfig, spec


def free_synced_pods(target: platformconfig.Target, tenant: spec.Tenant, *, timeout: float = 120.0) -> list[str]:
    """Wait until the control plane's pods (``app=vcluster``, not its etcd's) are gone, then delete the pods it
    synced; their names."""
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    api = hostcluster.api_client(target)
    core = client.CoreV1Api(api)
    try:
        deadline = time.monotonic() + timeout
        while core.list_namespaced_pod(namespace, label_selector=naming.control_plane_pod_selector(release),
                                       _request_timeout=15).items:
            if time.monotonic() >= deadline:
                raise errors.ProvisionError(
                    f"the control plane pods of {tenant.name} in {namespace} were still there {timeout:.0f}s after "
                    "scaling to zero; the pods it synced were left running (run `vcm sleep` again)")
            time.sleep(1.0)
        synced = core.list_namespaced_pod(namespace, label_selector=f"{naming.SYNCED_BY_LABEL}={release}",
                                          _request_timeout=15).items
        names = sorted(str(pod.metadata.name) for pod in synced if pod.metadata is not None)
        for pod_name in names:
            try:
                core.delete_namespaced_pod(pod_name, namespace, _request_timeout=15)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return sorted(names)
    except ApiException as exc:
        raise errors.ProvisionError(f"freeing the pods synced by {tenant.name}'s control plane in {namespace} on "
                                    f"{hostcluster.server_of(api)}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise errors.ProvisionError(f"the API server {hostcluster.server_of(api)} is not reachable: {exc}") from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
