"""``pulumi_kubernetes.helm.v3.Release`` through the real engine and the upstream provider, against the real
local API server. Releases are applied with ``skip_await`` (upstream would otherwise wait for the chart's
pods to become ready, which cannot happen on a cluster without nodes). The chart is the test double
``tests/data/charts/fake-vcluster`` (the kinds of objects the vcluster chart makes), installed from its
local path (air-gapped); a changed value upgrades it to revision 2; destroy uninstalls it and leaves nothing
of it behind. It stays a double on purpose: this test is about the provider's Release resource (preview
counts, revisions, values as a secret output, what uninstall leaves), and a chart whose every object is known
keeps those counts exact whatever vcluster's next release adds; the real chart is installed by
``test_control_plane.py`` and runs in ``test_vcluster_node.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pulumi.automation._stack import ImportResource  # not re-exported by pulumi.automation in 3.259

from vcluster_mgr import localcluster, workspace

CHART = Path(__file__).resolve().parents[1] / "data" / "charts" / "fake-vcluster"
NODE_SELECTOR = {"vcluster-mgr.dev/pool": "tenants"}


def _gone(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _wait_for(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_helm_release_install_upgrade_destroy(engine_settings: workspace.Settings,
                                              host_cluster: localcluster.Cluster) -> None:
    suffix = uuid.uuid4().hex[:6]
    ns_name, rel_name = f"helm-{suffix}", f"vc-{suffix}"
    secret_value = f"s3cr3t-{uuid.uuid4().hex}"
    wanted = {"replicas": 1, "pool_label": "one"}

    def program() -> None:
        provider = k8s.Provider("host", kubeconfig=engine_settings.kubeconfig)
        opts = pulumi.ResourceOptions(provider=provider)
        # Kept on destroy, so that the test sees what uninstalling the release leaves (nothing).
        ns = k8s.core.v1.Namespace(
            "ns", metadata={"name": ns_name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=pulumi.ResourceOptions(provider=provider, retain_on_delete=True))
        release = k8s.helm.v3.Release(
            "vcluster", chart=str(CHART), version="0.35.3", name=rel_name, namespace=ns.metadata["name"],
            max_history=3, skip_await=True,
            values={
                # flat values of the test double ...
                "replicas": wanted["replicas"],
                "nodeSelector": NODE_SELECTOR,
                "podLabels": {"pool": wanted["pool_label"]},
                # ... and the real chart's shape, ignored where the flat values win or not understood
                "controlPlane": {"statefulSet": {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}},
                "sync": {"toHost": {"ingresses": {"enabled": True}}},
                "exportKubeConfig": {"token": pulumi.Output.secret(secret_value)},
            },
            opts=opts)
        pulumi.export("status", release.status)
        pulumi.export("values", release.values)
        pulumi.export("resource_names", release.resource_names)

    api = config.new_client_from_config(str(host_cluster.kubeconfig))
    core, apps, rbac = client.CoreV1Api(api), client.AppsV1Api(api), client.RbacAuthorizationV1Api(api)
    st = workspace.stack(engine_settings, f"helm-{suffix}", program)
    try:
        # ---- install (previewed first: nothing is touched, the status is not known yet) ----
        planned = workspace.preview(st)
        assert planned.change_summary.get("create") == 4, planned.change_summary
        assert _gone(core.read_namespace, ns_name)
        result = workspace.up(st)
        assert result.summary.result == "succeeded"
        status = result.outputs["status"].value
        assert (status["name"], status["namespace"], status["revision"], status["status"]) == \
            (rel_name, ns_name, 1, "deployed")
        assert status["version"] == "0.35.3" and status["chart"] == "vcluster"
        assert result.outputs["values"].secret, "values holding a secret must be a secret output"
        assert result.outputs["values"].value["sync"] == {"toHost": {"ingresses": {"enabled": True}}}
        names = result.outputs["resource_names"].value  # upstream names them namespace/name
        assert sorted(names["Service/v1"]) == sorted([f"{ns_name}/{rel_name}", f"{ns_name}/{rel_name}-headless"])
        assert names["StatefulSet.apps/apps/v1"] == [f"{ns_name}/{rel_name}"]

        sts = apps.read_namespaced_stateful_set(rel_name, ns_name)
        assert sts.spec.replicas == 1
        pod = sts.spec.template.spec
        assert pod.node_selector == NODE_SELECTOR
        assert sts.spec.template.metadata.labels["pool"] == "one"
        assert pod.containers[0].image_pull_policy == "Always"
        assert pod.containers[0].resources.requests == {"cpu": "50m", "memory": "64Mi"}
        assert core.read_namespaced_service(rel_name, ns_name).spec.ports[0].port == 443
        assert core.read_namespaced_service(f"{rel_name}-headless", ns_name).spec.cluster_ip == "None"
        core.read_namespaced_service_account(f"vc-{rel_name}", ns_name)
        rbac.read_namespaced_role(f"vc-{rel_name}", ns_name)
        assert rbac.read_namespaced_role_binding(f"vc-{rel_name}", ns_name).subjects[0].name == f"vc-{rel_name}"
        # the kubeconfig Secret is the real vcluster's job at run time, not the chart's
        assert _gone(core.read_namespaced_secret, f"vc-{rel_name}", ns_name)

        record = core.read_namespaced_secret(f"sh.helm.release.v1.{rel_name}.v1", ns_name)
        assert record.type == "helm.sh/release.v1"
        assert record.metadata.labels["owner"] == "helm" and record.metadata.labels["status"] == "deployed"

        # The StatefulSet controller's pod passes Pod Security "restricted" (nothing runs it: no nodes).
        _wait_for("the StatefulSet's pod", lambda: _pod(core, ns_name, f"{rel_name}-0"))

        # The secret value is a secret in the state: encrypted on disk, wrapped as a secret where the
        # release's inputs and outputs hold it (export_stack shows secrets decrypted, so it can tell).
        backend = Path(engine_settings.backend_url.removeprefix("file://"))
        on_disk = "".join(p.read_text(errors="replace") for p in backend.rglob("*") if p.is_file())
        assert f"{rel_name}" in on_disk and secret_value not in on_disk
        exported = st.export_stack().deployment
        (state,) = [r for r in exported["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"]
        for part in ("inputs", "outputs"):
            token = state[part]["values"]["exportKubeConfig"]["token"]
            assert isinstance(token, dict) and token.get("plaintext") == json.dumps(secret_value), (part, token)

        # ---- nothing changed: nothing to do (the refresh sees no drift) ----
        again = workspace.up(st)
        assert again.summary.resource_changes == {"same": 4}

        # ---- a changed value: helm upgrade, revision 2 ----
        wanted.update(replicas=2, pool_label="two")
        planned = workspace.preview(st)
        assert planned.change_summary == {"same": 3, "update": 1}, planned.change_summary
        assert apps.read_namespaced_stateful_set(rel_name, ns_name).spec.replicas == 1
        upgraded = workspace.up(st)
        assert upgraded.summary.resource_changes == {"same": 3, "update": 1}
        status = upgraded.outputs["status"].value
        assert (status["revision"], status["status"]) == (2, "deployed")
        sts = apps.read_namespaced_stateful_set(rel_name, ns_name)
        assert sts.spec.replicas == 2
        assert sts.spec.template.metadata.labels["pool"] == "two"
        assert core.read_namespaced_secret(f"sh.helm.release.v1.{rel_name}.v2", ns_name).metadata.labels[
            "status"] == "deployed"
        assert core.read_namespaced_secret(f"sh.helm.release.v1.{rel_name}.v1", ns_name).metadata.labels[
            "status"] == "superseded"

        # ---- destroy: helm uninstall, and every object of the release is gone ----
        workspace.destroy(st)
        for call, name in [
            (apps.read_namespaced_stateful_set, rel_name),
            (core.read_namespaced_service, rel_name),
            (core.read_namespaced_service, f"{rel_name}-headless"),
            (core.read_namespaced_service_account, f"vc-{rel_name}"),
            (rbac.read_namespaced_role, f"vc-{rel_name}"),
            (rbac.read_namespaced_role_binding, f"vc-{rel_name}"),
        ]:
            assert _gone(call, name, ns_name), f"{call.__name__} {name} is still there after destroy"
        records = core.list_namespaced_secret(ns_name, label_selector=f"owner=helm,name={rel_name}").items
        assert records == [], [s.metadata.name for s in records]
        assert not [s for s in core.list_namespaced_secret(ns_name).items if s.type == "helm.sh/release.v1"]
    finally:
        try:
            workspace.destroy(st)
        except Exception:  # noqa: BLE001 - already destroyed, or the test failed before; clean up below
            pass
        try:
            core.delete_namespace(ns_name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _pod(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_helm_release_recovers_failed_install_and_lost_state(engine_settings: workspace.Settings,
                                                             host_cluster: localcluster.Cluster) -> None:
    """A failed install stays in the state and the next ``up`` repairs it; a release of ours whose state
    was lost (a run killed between the install and the state write) is adopted by upgrading it."""
    suffix = uuid.uuid4().hex[:6]
    ns_name, rel_name = f"helmfix-{suffix}", f"vc-{suffix}"
    node_selector = {"not a valid label key!": "x"}  # the API server rejects the StatefulSet

    def program() -> None:
        provider = k8s.Provider("host", kubeconfig=engine_settings.kubeconfig)
        ns = k8s.core.v1.Namespace("ns", metadata={"name": ns_name},
                                   opts=pulumi.ResourceOptions(provider=provider))
        release = k8s.helm.v3.Release(
            "vcluster", chart=str(CHART), name=rel_name, namespace=ns.metadata["name"], skip_await=True,
            values={"nodeSelector": dict(node_selector)}, opts=pulumi.ResourceOptions(provider=provider))
        pulumi.export("status", release.status)

    api = config.new_client_from_config(str(host_cluster.kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    st = workspace.stack(engine_settings, f"helmfix-{suffix}", program)
    try:
        try:
            workspace.up(st)
        except Exception as exc:  # noqa: BLE001 - the failure is the point
            assert "StatefulSet" in str(exc), exc
        else:
            raise AssertionError("the install must fail")
        record = core.read_namespaced_secret(f"sh.helm.release.v1.{rel_name}.v1", ns_name)
        assert record.metadata.labels["status"] == "failed"
        releases = [r for r in st.export_stack().deployment["resources"]
                    if r["type"] == "kubernetes:helm.sh/v3:Release"]
        assert len(releases) == 1 and releases[0]["id"] == f"{ns_name}/{rel_name}", "kept in the state"

        node_selector.clear()
        node_selector.update(NODE_SELECTOR)
        fixed = workspace.up(st)
        assert (fixed.outputs["status"].value["revision"], fixed.outputs["status"].value["status"]) == \
            (2, "deployed")
        assert apps.read_namespaced_stateful_set(rel_name, ns_name).spec.template.spec.node_selector == NODE_SELECTOR

        # Lose the release from the state, as a run killed right after `helm install` would. Upstream does
        # not take over a release it did not record: the re-run says the name is in use, and the release
        # is adopted the Pulumi way, by importing it (id namespace/name); the next up has nothing to do.
        deployment = st.export_stack()
        deployment.deployment["resources"] = [r for r in deployment.deployment["resources"]
                                              if r["type"] != "kubernetes:helm.sh/v3:Release"]
        st.import_stack(deployment)
        try:
            workspace.up(st)
        except Exception as exc:  # noqa: BLE001 - the refusal is the point
            assert "cannot re-use a name that is still in use" in str(exc), exc
        else:
            raise AssertionError("a release missing from the state must not be installed over")
        provider_urn = next(r["urn"] for r in st.export_stack().deployment["resources"]
                            if r["type"] == "pulumi:providers:kubernetes")
        st.import_resources(resources=[ImportResource(
            type="kubernetes:helm.sh/v3:Release", name="vcluster", id=f"{ns_name}/{rel_name}",
            provider="host")], name_table={"host": provider_urn}, protect=False, generate_code=False)
        adopted = workspace.up(st)
        assert adopted.summary.result == "succeeded"
        assert adopted.outputs["status"].value["status"] == "deployed"
        releases = [r for r in st.export_stack().deployment["resources"]
                    if r["type"] == "kubernetes:helm.sh/v3:Release"]
        assert len(releases) == 1

        workspace.destroy(st)
        assert _gone(apps.read_namespaced_stateful_set, rel_name, ns_name)
        assert _gone(core.read_namespace, ns_name) or \
            core.read_namespace(ns_name).status.phase == "Terminating"
    finally:
        try:
            workspace.destroy(st)
        except Exception:  # noqa: BLE001 - already destroyed
            pass
