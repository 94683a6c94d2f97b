"""GitOps: plain `pulumi up` of the top-level Pulumi.yaml makes the same objects as `vcm apply`.

The session cluster holds the examples applied by vcm (platform stack + a stack per tenant). A second
local host cluster gets the same folder through the real `pulumi` CLI and our language host, in one
stack. Every object labelled managed-by vcluster-mgr is compared, minus what the API server assigns,
the annotation naming the owning stack and the expiry only vcm records.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config, dynamic

from vcluster_mgr import components, localcluster, naming, workspace

from .conftest import EXAMPLES, Applied

REPO = Path(__file__).resolve().parents[2]
KINDS = [
    ("v1", "Namespace"), ("v1", "ResourceQuota"), ("v1", "LimitRange"), ("v1", "ConfigMap"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
]
ASSIGNED = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def managed_objects(kubeconfig: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    dyn = dynamic.DynamicClient(config.new_client_from_config(str(kubeconfig)))
    found = {}
    for api_version, kind in KINDS:
        res = dyn.resources.get(api_version=api_version, kind=kind)
        for item in res.get(label_selector="app.kubernetes.io/managed-by=vcluster-mgr").items:
            obj = item.to_dict()
            meta = obj["metadata"]
            for key in ASSIGNED:
                meta.pop(key, None)
            (meta.get("annotations") or {}).pop(components.STACK_ANNOTATION, None)
            # vcm records a ttl tenant's expiry; the GitOps program does not (see README, Known limitations)
            (meta.get("annotations") or {}).pop(naming.EXPIRES_AT_ANNOTATION, None)
            # and the last `vcm verify` result, which vcm verify writes on a tenant's first namespace
            (meta.get("annotations") or {}).pop(naming.LAST_VERIFY_ANNOTATION, None)
            if not meta.get("annotations"):
                meta.pop("annotations", None)
            obj.pop("status", None)
            found[(kind, meta.get("namespace", ""), meta["name"])] = obj
    return found


def test_pulumi_up_of_gitops_program_matches_vcm_apply(examples_applied: Applied, tmp_path: Path) -> None:
    name = f"gitops-{os.getpid()}"
    second = localcluster.up(name)
    try:
        state = tmp_path / "state"
        settings = workspace.settings(state_dir=state, backend_url=(state / "pulumi").as_uri())
        env = {**os.environ, **workspace.engine_env(settings)}
        # the repository's Pulumi.yaml, moved to a scratch folder so stack files stay out of the checkout
        project = tmp_path / "project"
        project.mkdir()
        doc = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
        doc["main"] = str(REPO / doc["main"])
        doc["runtime"]["options"]["virtualenv"] = sys.prefix  # the venv running the tests
        (project / "Pulumi.yaml").write_text(yaml.safe_dump(doc))
        (project / "Pulumi.gitops.yaml").write_text(yaml.safe_dump({"config": {
            "vcluster-mgr:kubeconfig": str(second.kubeconfig), "vcluster-mgr:tenantsDir": str(EXAMPLES)}}))
        pulumi = str(Path(env["PATH"].split(os.pathsep)[0]) / "pulumi")
        init = subprocess.run([pulumi, "stack", "init", "gitops"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert init.returncode == 0, init.stderr
        up = subprocess.run([pulumi, "up", "--yes", "--skip-preview", "--stack", "gitops"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        via_vcm = managed_objects(examples_applied.cluster.kubeconfig)
        via_gitops = managed_objects(second.kubeconfig)
        tenant_namespaces = {ns for t in examples_applied.tenants.values() for ns in t.namespace_names()}
        made = {k[2] for k in via_gitops if k[0] == "Namespace"}
        assert made == tenant_namespaces | {"vcluster-mgr-system"}
        assert len(via_gitops) > 60
        # the session cluster may hold more (tenants of other tests); everything GitOps made is there, equal
        for key in sorted(via_gitops):
            assert via_vcm.get(key) == via_gitops[key], key
    finally:
        localcluster.down(name)
