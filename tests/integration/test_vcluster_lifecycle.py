"""A REAL vcluster's life on the local node: upgrade 0.36.0 -> 0.36.1, sleep and wake, and what keeps its data.

Driven as ``real_control_plane``'s tests drive theirs (``RealControlPlane``: ``vcm`` and ``kubectl`` in subprocesses,
a state of the module's own), with tenants of this module's own at either chart version. Both syncers are the
toolchain's builds of vcluster's Go module (0.36.1, and 0.36.0 from ``vcm toolchain ensure
--upgrade-from``; ``make test`` builds both before the node starts, which then writes both images), their charts come
from the same modules (``toolchain.chart_dir``: the air-gapped route of a local chart directory), the virtual
Kubernetes is our kube-apiserver and kube-controller-manager with kine (SQLite), or our etcd. Nothing imitates
vcluster. Every step goes through ``vcm`` as a user runs it; objects are made inside through the kubeconfig
``vcm kubeconfig`` hands out.

Covered, each with a twin that weakens it and sees it fail:

- **upgrade with persistence**: a tenant at chart 0.36.0 with objects made inside; its spec moved to 0.36.1;
  ``vcm plan`` names the chart and the syncer image that change; ``vcm apply`` does it; the syncer that answers is
  0.36.1 (asked of the binary in the pod) and the objects are still there. Twin without persistence: the data-loss
  guard refuses the same upgrade, and forced (``--allow-data-loss``) the virtual cluster comes back empty;
- **sleep and wake with persistence**: nothing of the tenant runs while asleep (no control plane pod, none of the
  pods it synced), and after ``vcm wake`` the objects are there and the Deployment made inside runs again. Twin
  without persistence: ``vcm sleep`` is refused, and forced the virtual cluster wakes up empty;
- **the etcd-aware guard**: with ``backingStore: etcd`` and no persistence, a change to the control plane pod alone
  passes the guard, replaces that pod and keeps the data (it lives in the etcd pod); twin: a change to the etcd's
  own values is refused.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from vcluster_mgr import localcluster, toolchain, traffic

from .real_control_plane import RealControlPlane

OLD, NEW = toolchain.VCLUSTER_UPGRADE_FROM_VERSION, toolchain.VCLUSTER_VERSION
#: how long a control plane may take to come up on the loaded 2-core machine (by hand, idle: about 22 s)
UP = 420


class Env:
    """The node cluster as the real control plane tests drive it (``RealControlPlane``: ``vcm`` and ``kubectl`` in
    subprocesses, a state dir of this module's own), with both charts allowed and tenants at either version."""

    def __init__(self, cluster: localcluster.Cluster, folder: Path) -> None:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.real = RealControlPlane(cluster, folder)
        self.folder = folder
        self.probe_image = self.real.probe_image
        self.charts = {OLD: toolchain.chart_dir(OLD), NEW: toolchain.chart_dir(NEW)}
        self.policy = folder / "both-charts-policy.yaml"
        self.policy.write_text(yaml.safe_dump(yaml.safe_load(self.real.policy.read_text())
                                              | {"allowedChartSources": [str(p) for p in self.charts.values()]}))

    def vcm(self, *args: str) -> tuple[int, str, str]:
        return self.real.vcm(*args)

    def spec_file(self, name: str, version: str, *, persistence: bool, store: str = "embedded",
                  values: dict[str, Any] | None = None) -> Path:
        """A control plane tenant (``RealControlPlane.tenant_doc``) at chart ``version``, from its local chart."""
        doc = self.real.tenant_doc(name, values=values, persistence=persistence)
        doc["spec"]["controlPlane"] |= {"backingStore": store,
                                        "chart": {"version": version, "path": str(self.charts[version])}}
        return self.real.write(doc)

    def apply(self, path: Path, *extra: str) -> tuple[int, str, str]:
        return self.vcm("apply", str(path), "--yes", "--policy", str(self.policy), "--timeout", str(UP), *extra)

    def kubeconfig(self, name: str) -> Path:
        path = self.folder / f"{name}.kubeconfig"
        code, out, err = self.vcm("kubeconfig", name, "--output-file", str(path), "--timeout", "120")
        assert code == 0, out + err
        return path

    def kubectl(self, kubeconfig: Path, *args: str, stdin: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubectl`` inside a virtual cluster."""
        return self.real.kubectl(*args, stdin=stdin, kubeconfig=kubeconfig, timeout=timeout)

    def pods(self, name: str) -> list[Any]:
        """Every pod in the tenant's namespace that is not on its way out."""
        return [p for p in self.core.list_namespaced_pod(f"{name}-cp").items if not p.metadata.deletion_timestamp]

    def control_plane_pods(self, name: str) -> list[Any]:
        return [p for p in self.core.list_namespaced_pod(f"{name}-cp", label_selector=f"app=vcluster,release={name}")
                .items if not p.metadata.deletion_timestamp]

    def syncer_version(self, name: str) -> str | None:
        """The version the syncer binary in the one Ready control plane pod reports (asked of the binary); None while
        there is not exactly one such pod (a rollout: the old pod is still there, or the new one not Ready yet)."""
        pods = self.control_plane_pods(name)
        if len(pods) != 1 or not _ready(pods[0]):
            return None
        proc = self.real.host("exec", "-n", f"{name}-cp", pods[0].metadata.name, "-c", "syncer", "--", "/vcluster",
                              "version")
        lines = proc.stdout.strip().splitlines()
        return lines[-1] if proc.returncode == 0 and lines else None

    def wait_syncer(self, name: str, version: str) -> None:
        """Until the one control plane pod runs syncer ``version`` (a Helm upgrade replaces the pod after ``vcm
        apply`` returns: the old pod is Ready until it goes)."""
        _wait(lambda: self.syncer_version(name) == version, UP, f"{name}'s control plane runs syncer {version}")


def _ready(pod: Any) -> bool:
    st = pod.status
    return bool(st and st.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                    for c in st.conditions or []))


def _wait(probe: Callable[[], object], seconds: float, what: str) -> None:
    assert traffic.eventually(lambda: bool(probe()), True, seconds=seconds), f"never held within {seconds:.0f}s: {what}"


@pytest.fixture(scope="module")
def env(node_cluster: localcluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not (toolchain.bin_dir() / toolchain.VCLUSTER_UPGRADE_FROM.name).exists():
        pytest.fail(f"the vcluster {OLD} syncer is not built: run `vcm toolchain ensure --upgrade-from` (make test "
                    "does) before the node starts")
    e = Env(node_cluster, tmp_path_factory.mktemp("vcluster-life"))
    code, out, err = e.vcm("platform", "apply", "--yes")
    assert code == 0, out + err
    made: list[str] = []
    e.made = made  # type: ignore[attr-defined]
    try:
        yield e
    finally:
        for name in made:
            e.vcm("delete", name, "--yes")


def _make(e: Env, name: str, path: Path) -> Path:
    """Apply a tenant (removed when the module ends) and write a ConfigMap and a namespace inside it."""
    e.made.append(name)  # type: ignore[attr-defined]
    code, out, err = e.apply(path)
    assert code == 0, out + err
    kc = e.kubeconfig(name)
    made = e.kubectl(kc, "create", "configmap", "kept", "--from-literal=data=written-before")
    assert made.returncode == 0, made.stderr
    assert e.kubectl(kc, "create", "namespace", "kept-ns").returncode == 0
    return kc


def _kept(e: Env, kc: Path) -> bool:
    got = e.kubectl(kc, "get", "configmap", "kept", "-o", "jsonpath={.data.data}")
    return got.returncode == 0 and got.stdout == "written-before"


def _answers(e: Env, kc: Path) -> bool:
    return e.kubectl(kc, "get", "--raw", "/readyz").returncode == 0


# ---------------------------------------------------------------------------------------------------
# upgrade 0.36.0 -> 0.36.1
# ---------------------------------------------------------------------------------------------------


def test_upgrade_with_persistence_keeps_the_data(env: Env) -> None:
    kc = _make(env, "vup", env.spec_file("vup", OLD, persistence=True))
    env.wait_syncer("vup", OLD)
    upgraded = env.spec_file("vup", NEW, persistence=True)
    code, out, err = env.vcm("plan", str(upgraded), "--policy", str(env.policy))
    assert code == 0, out + err
    assert (f"chart {OLD} -> {NEW}, syncer image loft-sh/vcluster-oss:{OLD} -> loft-sh/vcluster-oss:{NEW}"
            in " ".join(out.split())), out
    assert "update Release" in out, out
    assert env.syncer_version("vup") == OLD, "plan changed nothing"
    code, out, err = env.apply(upgraded)
    assert code == 0, out + err
    env.wait_syncer("vup", NEW)
    _wait(lambda: _answers(env, kc), 120, "the virtual API answers after the upgrade")
    image = env.control_plane_pods("vup")[0].spec.containers[0].image
    assert image.endswith(f"/loft-sh/vcluster-oss:{NEW}"), image
    assert _kept(env, kc), "the ConfigMap made inside before the upgrade is gone"
    assert "kept-ns" in env.kubectl(kc, "get", "ns", "-o", "name").stdout


def test_twin_an_upgrade_without_persistence_is_refused_and_forced_it_loses_the_data(env: Env) -> None:
    kc = _make(env, "vnp", env.spec_file("vnp", OLD, persistence=False))
    upgraded = env.spec_file("vnp", NEW, persistence=False)
    code, out, err = env.apply(upgraded)
    assert code != 0 and "refusing to change the control plane of vnp" in " ".join((out + err).split()), out + err
    assert env.syncer_version("vnp") == OLD and _kept(env, kc), "the refused upgrade changed nothing"
    code, out, err = env.apply(upgraded, "--allow-data-loss")
    assert code == 0, out + err
    env.wait_syncer("vnp", NEW)
    _wait(lambda: _answers(env, kc), 120, "the virtual API answers after the forced upgrade")
    assert not _kept(env, kc), "without persistence the upgraded virtual cluster still had its data"


# ---------------------------------------------------------------------------------------------------
# sleep and wake
# ---------------------------------------------------------------------------------------------------


def _deployment(image: str) -> str:
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                  "seccompProfile": {"type": "RuntimeDefault"}}
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                     "name": "web", "image": image, "imagePullPolicy": "Always", "securityContext": restricted,
                     "resources": {"requests": {"cpu": "20m", "memory": "16Mi"},
                                   "limits": {"cpu": "100m", "memory": "64Mi"}},
                     "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2}}]}}}})


def _rolled_out(e: Env, kc: Path) -> subprocess.CompletedProcess[str]:
    return e.kubectl(kc, "rollout", "status", "deployment/web", "--timeout=180s", timeout=200)


def test_sleep_and_wake_with_persistence_keep_the_data_and_nothing_runs_asleep(env: Env) -> None:
    kc = env.folder / "vup.kubeconfig"
    if "vup" not in env.made:  # type: ignore[attr-defined]
        kc = _make(env, "vup", env.spec_file("vup", NEW, persistence=True))
    assert env.kubectl(kc, "apply", "-f", "-", stdin=_deployment(env.probe_image)).returncode == 0
    rolled = _rolled_out(env, kc)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert any(p.metadata.labels.get("vcluster.loft.sh/managed-by") == "vup" for p in env.pods("vup"))
    code, out, err = env.vcm("sleep", "vup")
    assert code == 0, out + err
    _wait(lambda: not env.pods("vup"), 120, "no pod of vup runs while asleep")
    assert env.apps.read_namespaced_stateful_set("vup", "vup-cp").spec.replicas == 0
    assert env.core.list_namespaced_persistent_volume_claim("vup-cp").items, "asleep, its volume is kept"
    code, out, err = env.vcm("wake", "vup")
    assert code == 0, out + err
    _wait(lambda: _answers(env, kc), UP, "the virtual API answers after the wake")
    assert _kept(env, kc), "the ConfigMap made inside before the sleep is gone"
    rolled = _rolled_out(env, kc)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    _wait(lambda: any(p.metadata.labels.get("app") == "web" and _ready(p) for p in env.pods("vup")), 180,
          "the Deployment's pod runs on the host again")


def test_twin_sleep_without_persistence_is_refused_and_forced_it_wakes_up_empty(env: Env) -> None:
    name = "vnp" if "vnp" in env.made else "vsn"  # type: ignore[attr-defined]
    if name == "vsn":
        kc = _make(env, name, env.spec_file(name, NEW, persistence=False))
    else:
        kc = env.folder / "vnp.kubeconfig"
        made = env.kubectl(kc, "create", "configmap", "kept", "--from-literal=data=written-before")
        assert made.returncode == 0, made.stderr
    code, out, err = env.vcm("sleep", name)
    assert code == 2 and "no persistence" in " ".join(err.split()), out + err
    assert env.control_plane_pods(name), "the refused sleep stopped the control plane"
    code, out, err = env.vcm("sleep", name, "--allow-data-loss")
    assert code == 0, out + err
    _wait(lambda: not env.pods(name), 120, f"no pod of {name} runs while asleep")
    code, out, err = env.vcm("wake", name, "--allow-data-loss")
    assert code == 0, out + err
    _wait(lambda: _answers(env, kc), UP, "the virtual API answers after the wake")
    assert not _kept(env, kc), "without persistence the woken virtual cluster still had its data"


# ---------------------------------------------------------------------------------------------------
# the etcd-aware data-loss guard
# ---------------------------------------------------------------------------------------------------


def test_with_etcd_a_change_to_the_control_plane_pod_alone_keeps_the_data(env: Env) -> None:
    kc = _make(env, "vet", env.spec_file("vet", NEW, persistence=False, store="etcd"))
    before = {p.metadata.name: p.metadata.uid for p in env.control_plane_pods("vet")}
    changed = env.spec_file("vet", NEW, persistence=False, store="etcd",
                            values={"controlPlane": {"statefulSet": {"pods": {"annotations": {"vcm-test": "1"}}}}})
    code, out, err = env.apply(changed)
    assert code == 0, out + err
    _wait(lambda: {p.metadata.uid for p in env.control_plane_pods("vet")} - set(before.values()), 120,
          "a new control plane pod")
    _wait(lambda: _answers(env, kc), 120, "the virtual API answers after the change")
    assert _kept(env, kc), "the data in the etcd pod was lost though only the control plane pod changed"


def test_twin_with_etcd_a_change_to_the_etcd_is_refused(env: Env) -> None:
    if "vet" not in env.made:  # type: ignore[attr-defined]
        _make(env, "vet", env.spec_file("vet", NEW, persistence=False, store="etcd"))
    etcd = {"controlPlane": {"backingStore": {"etcd": {"deploy": {"statefulSet": {
        "pods": {"annotations": {"vcm-test": "2"}}}}}}}}
    code, out, err = env.apply(env.spec_file("vet", NEW, persistence=False, store="etcd", values=etcd))
    text = " ".join((out + err).split())
    assert code != 0 and "refusing to change the control plane of vet" in text and "etcd's pod" in text, text
    etcd_pods = env.core.list_namespaced_pod("vet-cp", label_selector="app=vcluster-etcd").items
    assert etcd_pods and not any((p.metadata.annotations or {}).get("vcm-test") for p in etcd_pods)
