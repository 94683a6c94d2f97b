"""What ``vcm plan`` and ``vcm apply`` say of a control plane upgrade, offline (``operations.control_plane_changes``).

Covers: against the spec and policy the stack recorded, a new chart version is named with the syncer image it
brings (``loft-sh/vcluster-oss:0.36.0 -> ...:0.36.1``), a new Kubernetes version with its distro tag, and a chart
moved to another source at the same version with both sources; the twins say nothing: the same spec again, a tenant
never applied, a tenant without a control plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vcluster_mgr import operations, platformconfig, program, record, spec

REPO = Path(__file__).resolve().parent.parent
VTEAM = REPO / "examples" / "controlplane" / "vteam.yaml"
PAYMENTS = REPO / "examples" / "tenants" / "payments.yaml"
POLICY = spec.parse_policy(yaml.safe_load((REPO / "examples" / "policy.yaml").read_text())
                           | {"allowedChartSources": ["https://charts.loft.sh", "/opt/charts"]})
BLUEPRINT = platformconfig.Blueprint(POLICY)
TARGET = platformconfig.Target("east", "/nowhere/kubeconfig")
HOST_API = [{"ip": "10.96.0.1", "port": 443}]


def _tenant(path: Path = VTEAM, **control_plane: Any) -> spec.Tenant:
    doc = yaml.safe_load(path.read_text())
    if control_plane:
        doc["spec"]["controlPlane"] |= control_plane
    return spec.parse_spec(doc, source=str(path), policy=POLICY)


def _changes(before: spec.Tenant | None, after: spec.Tenant) -> list[str]:
    recorded = None
    if before is not None:
        rendered = program.render_tenant(before, BLUEPRINT, host_api=HOST_API)
        recorded = record.read(program.tenant_record(before, TARGET, BLUEPRINT, rendered).to_outputs())
    job = operations.Job(after, TARGET, BLUEPRINT)
    return operations.control_plane_changes(job, program.render_tenant(after, BLUEPRINT, host_api=HOST_API), recorded)


def test_a_new_chart_version_is_named_with_the_syncer_image_it_brings() -> None:
    notes = _changes(_tenant(chart={"version": "0.36.0"}), _tenant(chart={"version": "0.36.1"}))
    assert notes == ["control plane: chart 0.36.0 -> 0.36.1, syncer image loft-sh/vcluster-oss:0.36.0 -> "
                     "loft-sh/vcluster-oss:0.36.1 (its pod is replaced)"]


def test_a_new_kubernetes_version_is_named() -> None:
    notes = _changes(_tenant(), _tenant(version="1.37.2"))
    assert len(notes) == 1 and "Kubernetes v1.36.0 -> v1.37.2" in notes[0], notes


def test_a_chart_moved_to_another_source_names_both() -> None:
    notes = _changes(_tenant(), _tenant(chart={"version": "0.36.1", "path": "/opt/charts/vcluster-0.36.1"}))
    assert notes == ["control plane: chart source repository https://charts.loft.sh -> path "
                     "/opt/charts/vcluster-0.36.1 (its pod is replaced)"]


def test_twins_nothing_to_say() -> None:
    assert _changes(_tenant(), _tenant()) == []
    assert _changes(None, _tenant()) == []
    assert _changes(_tenant(PAYMENTS), _tenant(PAYMENTS)) == []
