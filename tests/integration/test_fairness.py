"""API Priority and Fairness per tenant on a real API server (APF turned on in a cluster of this module).

With the policy's apiFairness enabled, an owner's requests are classified into the tenant's FlowSchema and
the shared priority level vcm-tenants, as the API server's X-Kubernetes-PF-FlowSchema-UID and
X-Kubernetes-PF-PriorityLevel-UID response headers show; the twin moves the FlowSchema behind
global-default and sees the same request land elsewhere. The flood itself is measured by
benchmarks/bench_fairness.py (tests never assert on time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from vcluster_mgr import localcluster, operations, platformconfig, spec, workspace

TENANT = """\
apiVersion: vcluster-mgr.dev/v1alpha1
kind: Tenant
metadata: {name: fair}
spec:
  owners: [{kind: User, name: fay@example.com, role: admin}, {kind: Group, name: fair-team, role: view}]
  namespaces: [app]
"""


@pytest.fixture(scope="module")
def fair_env(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[localcluster.Cluster, workspace.Settings, platformconfig.Target]]:
    name = f"apf-{os.getpid()}"
    cluster = localcluster.up(name, apiserver_args=["--enable-priority-and-fairness=true"])
    try:
        policy = spec.parse_policy({"apiFairness": {"enabled": True}})
        state = tmp_path_factory.mktemp("apf-state")
        settings = workspace.settings(state_dir=state, backend_url=(state / "pulumi").as_uri(),
                                      kubeconfig=str(cluster.kubeconfig))
        target = platformconfig.load(None, kubeconfig=str(cluster.kubeconfig)).target(None)
        blueprint = platformconfig.Blueprint(policy=policy)
        operations.platform_apply(settings, target, blueprint)
        tenant = spec.parse_spec(yaml.safe_load(TENANT), policy=policy)
        (outcome,) = operations.run_jobs(settings, [operations.Job(tenant, target, blueprint)], "apply")
        assert outcome.ok, outcome.error
        yield cluster, settings, target
    finally:
        localcluster.down(name)


@pytest.fixture(scope="module")
def fair_cluster(fair_env: tuple[localcluster.Cluster, workspace.Settings, platformconfig.Target]
                 ) -> localcluster.Cluster:
    return fair_env[0]


def _classified(cluster: localcluster.Cluster, user: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """(FlowSchema UID, PriorityLevel UID) the API server reports for a request of ``user``."""
    api = config.new_client_from_config_dict(yaml.safe_load(localcluster.user_kubeconfig(cluster.name, user, groups)))
    # GET /version: any authenticated user may, so strangers' requests are classified too
    _, status, headers = client.VersionApi(api).get_code_with_http_info()
    assert status == 200
    if user.endswith("@example.com") and user != "stranger@example.com":
        _, status, listed = client.CoreV1Api(api).list_namespaced_config_map_with_http_info("fair-app")
        assert status == 200
        assert listed["X-Kubernetes-PF-FlowSchema-UID"] == headers["X-Kubernetes-PF-FlowSchema-UID"]
    return headers["X-Kubernetes-PF-FlowSchema-UID"], headers["X-Kubernetes-PF-PriorityLevel-UID"]


def _uids(cluster: localcluster.Cluster) -> dict[str, str]:
    flow = client.FlowcontrolApiserverV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    return {**{f"fs/{f.metadata.name}": f.metadata.uid for f in flow.list_flow_schema().items},
            **{f"pl/{p.metadata.name}": p.metadata.uid for p in flow.list_priority_level_configuration().items}}


def test_owners_requests_are_classified_into_the_tenants_flow(fair_cluster: localcluster.Cluster) -> None:
    uids = _uids(fair_cluster)
    expected = (uids["fs/vcm-tenant-fair"], uids["pl/vcm-tenants"])
    assert _classified(fair_cluster, "fay@example.com") == expected
    assert _classified(fair_cluster, "gus@example.com", ("fair-team",)) == expected  # a Group owner's member
    # someone else (no owner of the tenant) is not in the tenant's flow
    assert _classified(fair_cluster, "stranger@example.com")[0] != expected[0]


def test_twin_behind_global_default_the_owner_lands_in_the_shared_default(fair_cluster: localcluster.Cluster) -> None:
    flow = client.FlowcontrolApiserverV1Api(config.new_client_from_config(str(fair_cluster.kubeconfig)))
    flow.patch_flow_schema("vcm-tenant-fair", {"spec": {"matchingPrecedence": 9950}})
    try:
        uids = _uids(fair_cluster)
        assert _classified(fair_cluster, "fay@example.com") == (uids["fs/global-default"], uids["pl/global-default"])
    finally:
        flow.patch_flow_schema("vcm-tenant-fair", {"spec": {"matchingPrecedence": 5000}})


def test_vcm_verify_checks_the_tenants_flow_and_sees_the_twin_fail(
    fair_env: tuple[localcluster.Cluster, workspace.Settings, platformconfig.Target]
) -> None:
    from vcluster_mgr import verify

    cluster, settings, target = fair_env
    checks = verify.select_checks(["tenant-api-fairness"])

    def result() -> tuple[str, str]:
        recorded = workspace.tenant_record(settings, target.name, "fair")
        (checked,) = verify.verify_live(target, recorded, checks=checks).checks
        return checked.result, checked.detail

    assert result() == ("pass", "the owner's requests are in FlowSchema vcm-tenant-fair, priority level vcm-tenants")
    flow = client.FlowcontrolApiserverV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    flow.patch_flow_schema("vcm-tenant-fair", {"spec": {"matchingPrecedence": 9950}})
    try:
        assert result() == ("fail", "the owner's requests land in FlowSchema global-default, not vcm-tenant-fair")
    finally:
        flow.patch_flow_schema("vcm-tenant-fair", {"spec": {"matchingPrecedence": 5000}})
