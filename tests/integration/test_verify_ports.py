"""``vcm verify``'s ``tenant-policy-ports-declared`` against the real API server, with its twin.

kube-router (the local node's enforcer) opens every port to a rule's peers when the rule names a port no container
declares (``test_conformance.py``). After a real ``pulumi up`` of the examples (``examples_applied``), the check
passes on payments (no policy of the tenant's own); a NetworkPolicy the owner could write, naming port ``web``,
makes it fail and name the policy; a pod the policy selects that declares ``web`` over TCP makes it pass again;
declaring it over UDP does not. Everything made here is deleted at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from vcluster_mgr import verify, workspace
from vcluster_mgr.verify import probe_objects

from .conftest import Applied

NS = "payments-ci"
CHECK = "tenant-policy-ports-declared"


@pytest.fixture(scope="module")
def apis(examples_applied: Applied) -> Iterator[tuple[client.CoreV1Api, client.NetworkingV1Api]]:
    admin = config.new_client_from_config(str(examples_applied.cluster.kubeconfig))
    yield client.CoreV1Api(admin), client.NetworkingV1Api(admin)
    admin.close()


def _result(applied: Applied) -> verify.CheckResult:
    recorded = workspace.tenant_record(applied.settings, applied.target.name, "payments")
    (result,) = verify.verify_live(applied.target, recorded, checks=verify.select_checks([CHECK])).checks
    return result


def _pod(name: str, protocol: str) -> dict[str, Any]:
    pod = probe_objects.compliant_pod(name, node_selector={"pool": "tenants"},
                                      resources=probe_objects.container_resources([]))
    pod["metadata"]["labels"] = {"app": "web"}
    pod["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": 8080, "protocol": protocol}]
    return pod


def test_a_named_port_nobody_declares_fails_the_check_until_a_selected_pod_declares_it(
        examples_applied: Applied, apis: tuple[client.CoreV1Api, client.NetworkingV1Api]) -> None:
    core, net = apis
    assert _result(examples_applied).result == "pass"
    policy = {"metadata": {"name": "owner-web"},
              "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"ports": [{"port": "web", "protocol": "TCP"}]}]}}
    net.create_namespaced_network_policy(NS, policy)  # type: ignore[arg-type]
    try:
        failed = _result(examples_applied)
        assert failed.result == "fail" and f"{NS}/owner-web ingress[0] names port 'web'/TCP" in failed.detail
        core.create_namespaced_pod(NS, _pod("ports-udp", "UDP"))  # type: ignore[arg-type]
        assert _result(examples_applied).result == "fail"  # the name, but another protocol
        core.create_namespaced_pod(NS, _pod("ports-tcp", "TCP"))  # type: ignore[arg-type]
        passed = _result(examples_applied)
        assert passed.result == "pass", passed.detail
    finally:
        with contextlib.suppress(ApiException):
            net.delete_namespaced_network_policy("owner-web", NS)
        for name in ("ports-udp", "ports-tcp"):
            with contextlib.suppress(ApiException):
                core.delete_namespaced_pod(name, NS, grace_period_seconds=0)
