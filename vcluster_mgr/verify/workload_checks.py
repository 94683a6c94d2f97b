"""The workload checks: Pod Security (one refused probe pod per property, against a compliant control),
no NodePort Services, storage only through PersistentVolumeClaims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcluster_mgr.verify import (
    analysis,
    catalogue,
    judging,
    probe_objects,
    runners,
    session,
)


def _pod_check(check_id: str) -> Callable[[session.Session], runners.Outcome]:
    probes = probe_objects.POD_PROBES[check_id]

    def run(s: session.Session) -> runners.Outcome:
        tried = (
            f"dry-run create, in {runners.namespaces_text(s)}, of a pod otherwise compliant (Pod Security restricted, "
            f"imagePullPolicy Always, the tenant's nodeSelector and limits) with "
            + " / with ".join(p.property for p in probes)
        )
        verdicts = []
        refusals: dict[str, list[judging.Attempt]] = {p.name: [] for p in probes}
        for ns in s.ns:
            control = s.compliant(ns)
            for probe in probes:
                attempt = s.create_pod(ns, s.pod(ns, probe), f"pod with {probe.property} in {ns}")
                verdicts.append(judging.must_refuse(attempt, control))
                refusals[probe.name].append(attempt)
        summary = "\n".join(judging.refusal_summary(p.property, refusals[p.name]) for p in probes)
        return tried, judging.combine(verdicts, summary)

    return run


for _check_id in probe_objects.POD_PROBES:
    runners.RUNNERS[_check_id] = _pod_check(_check_id)


@runners.runs("tenant-can-run-compliant-pod")
def _compliant_pod(s: session.Session) -> runners.Outcome:
    tried = (
        f"dry-run create, in {runners.namespaces_text(s)}, of a pod compliant with Pod Security restricted, "
        "imagePullPolicy "
        "Always, the tenant's nodeSelector (vcm-placement) and resources inside its LimitRange"
    )
    return tried, judging.combine(
        [judging.must_allow(s.compliant(ns)) for ns in s.ns], f"accepted in {runners.namespaces_text(s)}"
    )


@runners.runs("block-nodeport-services")
def _block_nodeports(s: session.Session) -> runners.Outcome:
    tried = (
        f"dry-run create of a NodePort Service in {runners.namespaces_text(s)} (control: the same Service as ClusterIP)"
    )
    verdicts = []
    attempts = []
    for ns in s.ns:
        create = s.core_o.create_namespaced_service
        control = s.attempt(
            f"ClusterIP Service in {ns}", create, ns, probe_objects.probe_service("ClusterIP"), dry_run="All"
        )
        attempts.append(
            s.attempt(f"NodePort Service in {ns}", create, ns, probe_objects.probe_service("NodePort"), dry_run="All")
        )
        verdicts.append(judging.must_refuse(attempts[-1], control))
    return tried, judging.combine(
        verdicts, judging.refusal_summary("NodePort Service", attempts) + "; ClusterIP control accepted"
    )


def _pv_body() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{catalogue.PROBE_PREFIX}-probe"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "csi": {"driver": "vcm-verify.invalid", "volumeHandle": "probe"},
        },
    }


@runners.runs("require-pvc-for-storage")
def _require_pvc(s: session.Session) -> runners.Outcome:
    tried = (
        f"SelfSubjectAccessReview for {', '.join(analysis.WRITE_VERBS)} persistentvolumes; dry-run create "
        "of a "
        "PersistentVolume (must be refused) and of a 1Mi PersistentVolumeClaim in "
        f"{runners.namespaces_text(s)} (must be accepted)"
    )
    verdicts = s.denied_matrix([("", "persistentvolumes")], analysis.WRITE_VERBS)
    verdicts.append(
        judging.must_refuse(
            s.attempt(
                "create PersistentVolume",
                s.core_o.create_persistent_volume,
                _pv_body(),
                dry_run="All",
            )
        )
    )
    for ns in s.ns:
        pvc = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{catalogue.PROBE_PREFIX}-probe"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
        }
        verdicts.append(
            judging.must_allow(
                s.attempt(
                    f"create PersistentVolumeClaim in {ns}",
                    s.core_o.create_namespaced_persistent_volume_claim,
                    ns,
                    pvc,
                    dry_run="All",
                )
            )
        )
    return tried, judging.combine(
        verdicts,
        "PersistentVolumes may not be written; PersistentVolumeClaims accepted in " + runners.namespaces_text(s),
    )


@runners.runs("block-existing-persistent-volumes")
def _block_existing_pvs(s: session.Session) -> runners.Outcome:
    tried = f"SelfSubjectAccessReview for {', '.join(analysis.READ_VERBS)} persistentvolumes; list persistentvolumes"
    verdicts = s.denied_matrix([("", "persistentvolumes")], analysis.READ_VERBS)
    verdicts.append(
        judging.must_refuse(
            s.attempt(
                "list persistentvolumes",
                s.core_o.list_persistent_volume,
                limit=1,
            )
        )
    )
    return tried, judging.combine(verdicts, "PersistentVolumes can be neither listed nor read (403)")
