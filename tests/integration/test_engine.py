"""The real Pulumi engine against the real local API server: an inline program with a Namespace
and a ConfigMap goes up, is visible through the kubernetes client, and is destroyed again."""

from __future__ import annotations

import uuid

import pulumi
import pulumi_kubernetes as k8s
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import localcluster, workspace


def _api(cluster: localcluster.Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))


def test_up_and_destroy_namespace_and_configmap(engine_settings: workspace.Settings,
                                                host_cluster: localcluster.Cluster) -> None:
    ns_name = f"smoke-{uuid.uuid4().hex[:6]}"

    def program() -> None:
        provider = k8s.Provider("host", kubeconfig=engine_settings.kubeconfig)
        opts = pulumi.ResourceOptions(provider=provider)
        ns = k8s.core.v1.Namespace("ns", metadata={"name": ns_name}, opts=opts)
        cm = k8s.core.v1.ConfigMap(
            "cm", metadata={"name": "greeting", "namespace": ns.metadata["name"]},
            data={"hello": "world"}, opts=opts)
        pulumi.export("namespace", ns.metadata["name"])
        pulumi.export("configmap_uid", cm.metadata["uid"])

    st = workspace.stack(engine_settings, f"smoke-{ns_name}", program)
    result = workspace.up(st)
    assert result.summary.result == "succeeded"
    assert result.outputs["namespace"].value == ns_name

    api = _api(host_cluster)
    cm = api.read_namespaced_config_map("greeting", ns_name)
    assert cm.data == {"hello": "world"}
    assert cm.metadata.uid == result.outputs["configmap_uid"].value

    # a second up with no change does nothing
    again = workspace.up(st)
    assert again.summary.resource_changes == {"same": 4}

    workspace.destroy(st)
    try:
        api.read_namespace(ns_name)
    except ApiException as exc:
        assert exc.status == 404
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError(f"namespace {ns_name} still exists after destroy")
