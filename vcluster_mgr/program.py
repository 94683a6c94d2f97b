"""Inline Pulumi programs built from specs: one tenant, the platform, or a whole folder (GitOps).

A program is a plain function the engine calls; everything it creates goes through ``components``,
fed by ``render``. The same functions serve ``vcm`` (through ``workspace``) and the top-level
``Pulumi.yaml`` program run by plain ``pulumi up``, so both produce identical objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from vcluster_mgr import components, errors, naming, platformconfig, record, render, sharding, spec

#: the provider's client limits for a folder's stack: its default of 50 requests/s (burst 120) alone makes
#: 2,000 objects take 80 s (a refresh reads each, a diff dry-runs each); above ~200/s the 2-core API server
#: is the limit (measured: ``benchmarks/bench_apply.py --folder-env``, README "Apply")
FOLDER_CLIENT = {"qps": 200, "burst": 400}


def provider(target: platformconfig.Target, client: dict[str, int] | None = None) -> k8s.Provider:
    """The provider for a host cluster. Never a kubeconfig's content in the state; its path and context
    only when ``target.in_state``. An empty ``kubeconfig`` makes the provider use the usual resolution
    (``KUBECONFIG`` of its own process) and keeps the SDK from filling the input in from ours."""
    settings = k8s.KubeClientSettingsArgs(**client) if client else None
    if target.in_state:
        return k8s.Provider(f"host-{target.name}", kubeconfig=target.kubeconfig or "", context=target.context,
                            kube_client_settings=settings)
    return k8s.Provider(f"host-{target.name}", kubeconfig="", kube_client_settings=settings)


def owner_outputs(tenant: spec.Tenant) -> list[dict[str, str]]:
    """Owners as recorded in the stack (a ServiceAccount's namespace included)."""
    rows = []
    for o in tenant.spec.owners:
        row = {"kind": o.kind, "name": o.name, "role": o.role}
        if o.namespace:
            row["namespace"] = o.namespace
        rows.append(row)
    return rows


#: Helm values that put a control plane to sleep: no replicas, data (the PVC) kept
SLEEP_VALUES: dict[str, Any] = {"controlPlane": {"statefulSet": {"highAvailability": {"replicas": 0}}}}


def control_plane_args(tenant: spec.Tenant, blueprint: platformconfig.Blueprint) -> dict[str, Any] | None:
    """Chart and values of the tenant's control plane, awake (None without one)."""
    if not tenant.spec.control_plane.enabled:
        return None
    values = render.control_plane_values(tenant, policy=blueprint.policy, templates_dir=blueprint.templates_dir)
    chart = render.control_plane_chart(tenant)
    if chart.get("path") and not Path(chart["path"]).is_absolute():
        # relative to the spec file, never to the engine's working directory (a temp dir for inline programs)
        base = Path(tenant.source).resolve().parent if tenant.source else Path.cwd()
        chart["path"] = str(base / chart["path"])
    return {"chart": chart, "values": values}


@dataclasses.dataclass(frozen=True)
class Rendered:
    """One tenant rendered once per run: what its program declares, what the progress bar counts, what the
    data-loss guard compares. Plain data, so it crosses to a worker process with its job."""

    #: the manifests (``render.render_tenant``), namespaces first
    objects: list[dict[str, Any]]
    #: the control plane's chart and values, awake (None without one)
    control_plane: dict[str, Any] | None = None
    #: where pods reach the host's API server (``{"ip", "port"}`` each), as the objects were rendered with
    host_api: tuple[dict[str, Any], ...] = ()

    @property
    def resources(self) -> int:
        """The resources the tenant's program declares: its objects, the ``Tenant`` component, the Helm release."""
        return len(self.objects) + 1 + int(self.control_plane is not None)

    def release(self, *, asleep: bool = False) -> dict[str, Any] | None:
        """The control plane's chart and values; ``asleep`` scales it to zero (None without one)."""
        if self.control_plane is None:
            return None
        values = self.control_plane["values"]
        return {"chart": dict(self.control_plane["chart"]),
                "values": render.merge_values(values, SLEEP_VALUES) if asleep else values}

    def values_digest(self, *, asleep: bool = False) -> str | None:
        """A digest of the control plane's Helm values (None without one): when it changes, the release is
        updated, which may restart the control plane pod (recorded as ``controlPlane.valuesDigest``)."""
        release = self.release(asleep=asleep)
        if release is None:
            return None
        return hashlib.sha256(json.dumps(release["values"], sort_keys=True).encode()).hexdigest()


def render_tenant(tenant: spec.Tenant, blueprint: platformconfig.Blueprint, *,
                  host_api: Sequence[dict[str, Any]] = ()) -> Rendered:
    """Render ``tenant`` under ``blueprint`` (``RenderError`` if its templates fail); ``host_api`` as looked
    up for a tenant with a control plane (``cluster.host_api_addresses``)."""
    objects = render.render_tenant(tenant, policy=blueprint.policy, templates_dir=blueprint.templates_dir,
                                   host_api=host_api)
    return Rendered(objects, control_plane_args(tenant, blueprint), tuple(host_api))


def declare_tenant(tenant: spec.Tenant, rendered: Rendered, opts: pulumi.ResourceOptions, *,
                   expires_at: str | None = None, asleep: bool = False,
                   kubeconfig: str | None = None) -> components.Tenant:
    annotations = {naming.EXPIRES_AT_ANNOTATION: expires_at} if expires_at else {}
    args = components.TenantArgs(objects=rendered.objects, owners=owner_outputs(tenant),
                                 namespace_annotations=annotations, control_plane=rendered.release(asleep=asleep),
                                 kubeconfig=kubeconfig, protect=bool(tenant.spec.protect))
    return components.Tenant(tenant.name, args, opts)


#: stack output recording the host cluster a stack was applied to (the UID of its kube-system namespace)
CLUSTER_UID_OUTPUT = "clusterUID"


def tenant_record(tenant: spec.Tenant, target: platformconfig.Target, blueprint: platformconfig.Blueprint,
                  rendered: Rendered, *, expires_at: str | None = None, asleep: bool = False,
                  cluster_uid: str | None = None) -> record.TenantRecord:
    """What a tenant's stack records about it (``record``): the spec and the policy it was applied under, so
    the commands that later re-apply or read the stack (sleep, wake, kubeconfig, delete) need nothing else."""
    cp = tenant.spec.control_plane
    return record.TenantRecord(
        tenant=tenant.name, cluster=target.name, namespaces=tuple(tenant.namespace_names()),
        owners=tuple(record.Owner.model_validate(o) for o in owner_outputs(tenant)),
        expires_at=expires_at, asleep=asleep, ttl=tenant.spec.ttl, protected=bool(tenant.spec.protect),
        source=tenant.source,
        control_plane=record.ControlPlane(enabled=cp.enabled, persistence=cp.persistence.enabled,
                                          values_digest=rendered.values_digest(asleep=asleep)),
        cluster_uid=cluster_uid,
        host_api=tuple(record.HostApiAddress.model_validate(a) for a in rendered.host_api) if cp.enabled else None,
        spec_document=tenant.model_dump(mode="json", by_alias=True, exclude_none=True),
        policy_document=blueprint.policy.model_dump(mode="json", by_alias=True))


def tenant_program(tenant: spec.Tenant, target: platformconfig.Target, blueprint: platformconfig.Blueprint,
                   rendered: Rendered, *, expires_at: str | None = None, asleep: bool = False,
                   kubeconfig: str | None = None, cluster_uid: str | None = None) -> Callable[[], None]:
    """The program of one tenant's own stack, declaring what ``rendered`` holds; ``expires_at`` (RFC 3339)
    marks an ephemeral tenant, ``asleep`` scales its control plane to zero, ``kubeconfig`` is the control
    plane's (exported as a secret), ``cluster_uid`` the identity of the host cluster (checked before every
    run). Its outputs are the tenant's ``record.TenantRecord``, the one thing later commands read back."""

    def run() -> None:
        prov = provider(target)
        t = declare_tenant(tenant, rendered, pulumi.ResourceOptions(provider=prov), expires_at=expires_at,
                           asleep=asleep, kubeconfig=kubeconfig)
        outputs: dict[str, Any] = tenant_record(tenant, target, blueprint, rendered, expires_at=expires_at,
                                                asleep=asleep, cluster_uid=cluster_uid).to_outputs()
        # the namespaces as the engine made them: the outputs are recorded only once they exist
        outputs["namespaces"] = t.namespaces
        for key, value in outputs.items():
            pulumi.export(key, value)
        if t.kubeconfig is not None:
            pulumi.export("kubeconfig", t.kubeconfig)

    return run


def platform_program(target: platformconfig.Target, blueprint: platformconfig.Blueprint, *,
                     cluster_uid: str | None = None) -> Callable[[], None]:
    """What every tenant of a host cluster relies on (admission policies, the project's namespace)."""

    def run() -> None:
        prov = provider(target)
        objects = render.render_platform(policy=blueprint.policy, templates_dir=blueprint.templates_dir)
        components.Platform("platform", objects, pulumi.ResourceOptions(provider=prov))
        pulumi.export("cluster", target.name)
        pulumi.export(CLUSTER_UID_OUTPUT, cluster_uid)

    return run


def folder_program(tenants: Sequence[spec.Tenant], target: platformconfig.Target,
                   blueprint: platformconfig.Blueprint, *,
                   with_platform: bool = True, cluster_uid: str | None = None) -> Callable[[], None]:
    """GitOps: the platform and every tenant of a folder in one stack (the top-level Pulumi.yaml);
    ``cluster_uid`` as for ``tenant_program`` (recorded when the caller checked it)."""

    def run() -> None:
        prov = provider(target, FOLDER_CLIENT)
        opts = pulumi.ResourceOptions(provider=prov)
        if with_platform:
            objects = render.render_platform(policy=blueprint.policy, templates_dir=blueprint.templates_dir)
            components.Platform("platform", objects, opts)
        declared = {t.name: declare_tenant(t, render_tenant(t, blueprint), opts) for t in tenants}
        pulumi.export("tenants", {name: t.namespaces for name, t in declared.items()})
        pulumi.export("cluster", target.name)
        if cluster_uid:
            pulumi.export(CLUSTER_UID_OUTPUT, cluster_uid)

    return run


def _config_target(cfg: pulumi.Config) -> platformconfig.Target:
    """The host cluster of a plain ``pulumi up``: the stack config's kubeconfig and context, recorded in the
    provider's inputs as plain Pulumi programs do; without them the provider resolves ``KUBECONFIG`` itself
    at each run."""
    kubeconfig, context = cfg.get("kubeconfig"), cfg.get("context")
    return platformconfig.Target(cfg.get("cluster") or "default", kubeconfig, context,
                                 in_state=bool(kubeconfig or context))


def platform_main() -> None:
    """Entry point of ``stacks/platform`` (config: ``vcluster-mgr:policy``, ``kubeconfig``, ``context``)."""
    cfg = pulumi.Config("vcluster-mgr")
    policy_path = cfg.get("policy")
    policy = spec.load_policy(policy_path) if policy_path else spec.DEFAULT_POLICY
    platform_program(_config_target(cfg), platformconfig.Blueprint(policy, cfg.get("templatesDir")))()


def gitops_main() -> None:
    """Entry point of the top-level ``Pulumi.yaml`` program (``stacks/gitops/__main__.py``).

    Config (``pulumi config set``): ``vcluster-mgr:tenantsDir`` (default ``examples/tenants``),
    ``vcluster-mgr:policy`` (a policy file), ``vcluster-mgr:templatesDir``, ``vcluster-mgr:kubeconfig``
    and ``vcluster-mgr:context`` (default: the usual kubeconfig resolution), ``vcluster-mgr:cluster``
    (a name for the host cluster, default ``default``), ``vcluster-mgr:batch`` (``I/B``: this stack holds
    only batch I of B of the folder, by the stable split of ``sharding``; the platform objects go with
    batch 1. B stacks, one per batch, keep each engine run small: see ``workspace.folder``).
    """
    cfg = pulumi.Config("vcluster-mgr")
    # paths in config are relative to the project root (where Pulumi.yaml is), not the program folder
    root = Path(pulumi.get_root_directory())
    tenants_dir = root / (cfg.get("tenantsDir") or "examples/tenants")
    policy_path = cfg.get("policy")
    templates = cfg.get("templatesDir")
    try:
        policy = spec.load_policy(root / policy_path) if policy_path else spec.DEFAULT_POLICY
        tenants = spec.load_specs([tenants_dir], policy=policy)
    except errors.VcmError as exc:
        # a clean message in the engine's output instead of a Python traceback
        raise pulumi.RunError(f"invalid tenant specs in {tenants_dir}:\n{exc}") from exc
    batch = None
    if cfg.get("batch"):
        try:
            batch = sharding.parse_shard(cfg.require("batch"))
        except ValueError as exc:
            raise pulumi.RunError(f"vcluster-mgr:batch: {exc}") from exc
    tenants = sharding.select(tenants, batch, key=lambda t: t.name)
    blueprint = platformconfig.Blueprint(policy, str(root / templates) if templates else None)
    folder_program(tenants, _config_target(cfg), blueprint, with_platform=batch is None or batch.index == 1)()
