"""Inline Pulumi programs built from specs: one tenant, the platform, or a whole folder (GitOps).

A program is a plain function the engine calls; everything it creates goes through ``components``,
fed by ``render``. The same functions serve ``vcm`` (through ``workspace``) and the top-level
``Pulumi.yaml`` program run by plain ``pulumi up``, so both produce identical objects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vcluster_mgr
from vcluster_mgr import (
    errors,
    fingerprint,
    lazy_modules,
    naming,
    platformconfig,
    record,
    render,
    sharding,
    spec,
    toolchain,
)

if TYPE_CHECKING:
    import pulumi
    import pulumi_kubernetes as k8s
    from pulumi import _types as pulumi_types

    from vcluster_mgr import components
else:
    # imported when a program runs, not by the commands that only render and compare (``lazy_modules``)
    pulumi = lazy_modules.module("pulumi")
    k8s = lazy_modules.module("pulumi_kubernetes")
    pulumi_types = lazy_modules.module("pulumi._types")
    components = lazy_modules.module("vcluster_mgr.components")

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
#: asleep, the etcd of ``backingStore: etcd`` stops too (its PVC kept): nothing of the tenant runs
SLEEP_ETCD_VALUES: dict[str, Any] = {
    "controlPlane": {"backingStore": {"etcd": {"deploy": {"statefulSet": {"highAvailability": {"replicas": 0}}}}}}}
#: the keys of ``controlPlane.advanced`` the chart's etcd StatefulSet reads besides its own section (its image's
#: registry, the annotations every object gets, the ServiceAccount)
ETCD_ADVANCED_KEYS = ("defaultImageRegistry", "globalMetadata", "serviceAccount")


def etcd_deployed(values: dict[str, Any]) -> bool:
    """Whether the chart deploys an etcd beside the control plane (``backingStore: etcd``), read from the values
    themselves so that ``spec.controlPlane.values`` overrides count."""
    etcd = values.get("controlPlane", {}).get("backingStore", {}).get("etcd", {})
    return bool(isinstance(etcd, dict) and etcd.get("deploy", {}).get("enabled"))


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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
        if asleep:
            values = render.merge_values(values, SLEEP_VALUES)
            if etcd_deployed(values):
                values = render.merge_values(values, SLEEP_ETCD_VALUES)
        return {"chart": dict(self.control_plane["chart"]), "values": values}

    def values_digest(self, *, asleep: bool = False) -> str | None:
        """A digest of the control plane's Helm values (None without one): when it changes, the release is
        updated, which may restart the control plane pod (recorded as ``controlPlane.valuesDigest``)."""
        release = self.release(asleep=asleep)
        if release is None:
            return None
        return _digest(release["values"])

    def data_digest(self, *, asleep: bool = False) -> str | None:
        """A digest of the values that shape the pod holding the virtual cluster's data (None without a control
        plane; recorded as ``controlPlane.dataDigest``), for the data-loss guard. With ``backingStore: etcd`` the
        data lives in the etcd pod, which the rest of the values leave alone: its section and the few
        ``controlPlane.advanced`` keys its StatefulSet reads (``ETCD_ADVANCED_KEYS``). Otherwise the data lives in
        the control plane pod, which any value may restart: all of them, as ``values_digest``."""
        release = self.release(asleep=asleep)
        if release is None:
            return None
        values = release["values"]
        if not etcd_deployed(values):
            return _digest(values)
        cp = values.get("controlPlane", {})
        advanced = cp.get("advanced", {})
        return _digest({"backingStore": cp.get("backingStore"),
                        "advanced": {k: advanced.get(k) for k in ETCD_ADVANCED_KEYS}})


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
                                          values_digest=rendered.values_digest(asleep=asleep),
                                          data_digest=rendered.data_digest(asleep=asleep)),
        cluster_uid=cluster_uid,
        host_api=tuple(record.HostApiAddress.model_validate(a) for a in rendered.host_api) if cp.enabled else None,
        spec_document=tenant.model_dump(mode="json", by_alias=True, exclude_none=True),
        policy_document=blueprint.policy.model_dump(mode="json", by_alias=True))


def desired_parts(tenant: spec.Tenant, target: platformconfig.Target, blueprint: platformconfig.Blueprint,
                  rendered: Rendered, *, expires_at: str | None = None, asleep: bool = False,
                  cluster_uid: str | None = None) -> dict[str, Any]:
    """Everything that decides a tenant stack's desired state (``fingerprint.desired_digest`` of it): the
    record it exports (spec, policy, expiry, sleep, owners, host cluster identity), the rendered objects (so a
    blueprint template that renders differently counts, one that renders the same does not), the Helm release,
    the stack's provider settings, and the versions of this tool, the engine, the provider and the chart.
    The same whether the program computes it (recorded) or a run does, offline, to compare."""
    made = tenant_record(tenant, target, blueprint, rendered, expires_at=expires_at, asleep=asleep,
                         cluster_uid=cluster_uid).to_outputs()
    return {
        "record": made,
        "objects": rendered.objects,
        "release": rendered.release(asleep=asleep),
        "provider": _provider_parts(target),
        "versions": _versions(),
    }


def _provider_parts(target: platformconfig.Target) -> dict[str, Any]:
    """The provider's settings a stack records (its kubeconfig and context only when ``in_state``)."""
    return {"cluster": target.name, "kubeconfig": target.kubeconfig if target.in_state else None,
            "context": target.context if target.in_state else None, "inState": target.in_state}


def _versions() -> dict[str, str]:
    """The versions that decide what an apply does besides our own rendering: this tool, the engine, the
    provider, the vcluster chart."""
    return {"vcm": vcluster_mgr.__version__, "pulumi": toolchain.PULUMI_VERSION,
            "provider": toolchain.KUBERNETES_PROVIDER_VERSION, "chart": toolchain.VCLUSTER_VERSION}


def _property_names(cls: type) -> list[tuple[str, str]]:
    """(Python name, Kubernetes name) of every property of an SDK resource or output type. The SDK keeps this
    table in a private helper; it is the only way back from its Python names to the API's own."""
    return [(py, name) for py, name, _ in pulumi_types._py_properties(cls)]


def _plain(value: Any) -> Any:
    """A resource output as the API server sent it. The SDK hands nested objects back as its output types:
    dicts keyed by Python names; their camelCase names are restored here (user keys, such as labels', are
    plain dicts and kept as they are)."""
    if pulumi_types.is_output_type(type(value)):
        names = dict(_property_names(type(value)))
        return {names.get(k, k): _plain(v) for k, v in dict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _object_digest(obj: dict[str, Any], res: pulumi.CustomResource) -> pulumi.Output[str]:
    """The content digest (``fingerprint.object_digest``) of one applied object, from its resource's outputs:
    the object as the API server returned it at this apply (or read it at the refresh before)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    secret = fingerprint.SECRET_FIELDS.get((api_version, kind), frozenset())
    # each property made plain on its own first: combining the SDK's output types (``Output.all``) fails on one
    # with a property named ``values`` (a label selector's), which hides the dict method the SDK calls. And made
    # JSON text, not a dict: the SDK walks whatever an ``apply`` returns, making an output of every value in it
    # (the live metadata's managedFields included), which cost a folder run half of the program's CPU time
    props = {name: getattr(res, py).apply(_plain_json) for py, name in _property_names(type(res))
             if (name not in fingerprint.NOT_CONTENT or name == "metadata") and name not in secret}
    return pulumi.Output.all(**props).apply(lambda live: fingerprint.object_digest(
        api_version, kind, {name: json.loads(text) for name, text in live.items()}))


def _plain_json(value: Any) -> str:
    """``_plain`` as JSON text."""
    return json.dumps(_plain(value))


def _object_digests(objects: Sequence[dict[str, Any]], resources: dict[str, pulumi.CustomResource]
                    ) -> dict[str, pulumi.Output[str]]:
    """``fingerprint.object_key`` -> content digest of each object declared as ``resources`` (by logical name)."""
    return {fingerprint.key_of(obj): _object_digest(obj, resources[components.logical_name(obj)]) for obj in objects}


def fingerprint_output(t: components.Tenant, rendered: Rendered, desired: str) -> pulumi.Output[dict[str, Any]]:
    """The fingerprint the stack records (``fingerprint.Fingerprint``): the desired digest, and each object's
    content digest once the engine has applied it; a control plane's Helm release is named with its revision
    (a kind the fast path does not read back, so such a tenant always goes to the engine)."""
    digests = _object_digests(rendered.objects, t.resources)
    if t.release is not None and rendered.control_plane is not None:
        chart = rendered.control_plane["chart"]
        key = fingerprint.object_key("helm.sh/v3", "Release", chart["namespace"], chart["release"])
        digests[key] = t.release.status.apply(  # type: ignore[attr-defined]  # the Release's output
            lambda status: fingerprint.digest({"revision": (_plain(status) or {}).get("revision")}))
    return pulumi.Output.all(**digests).apply(
        lambda objects: {"format": fingerprint.FORMAT, "desired": desired, "objects": dict(objects)})


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
        desired = fingerprint.desired_digest(desired_parts(tenant, target, blueprint, rendered,
                                                           expires_at=expires_at, asleep=asleep,
                                                           cluster_uid=cluster_uid))
        outputs["fingerprint"] = fingerprint_output(t, rendered, desired)
        for key, value in outputs.items():
            pulumi.export(key, value)
        if t.kubeconfig is not None:
            pulumi.export("kubeconfig", t.kubeconfig)

    return run


def platform_program(target: platformconfig.Target, blueprint: platformconfig.Blueprint, *,
                     cluster_uid: str | None = None) -> Callable[[], None]:
    """What every tenant of a host cluster relies on (admission policies, the project's namespace); its
    ``fingerprint`` output as a tenant stack's (the desired digest: its objects, provider settings, versions
    and the host cluster's identity)."""

    def run() -> None:
        prov = provider(target)
        objects = render.render_platform(policy=blueprint.policy, templates_dir=blueprint.templates_dir)
        platform = components.Platform("platform", objects, pulumi.ResourceOptions(provider=prov))
        pulumi.export("cluster", target.name)
        pulumi.export(CLUSTER_UID_OUTPUT, cluster_uid)
        desired = fingerprint.desired_digest({"platform": objects, "clusterUID": cluster_uid,
                                              "provider": _provider_parts(target), "versions": _versions()})
        pulumi.export("fingerprint", pulumi.Output.all(**_object_digests(objects, platform.resources)).apply(
            lambda digests: {"format": fingerprint.FORMAT, "desired": desired, "objects": dict(digests)}))

    return run


def folder_objects(tenants: Sequence[spec.Tenant], blueprint: platformconfig.Blueprint, *,
                   with_platform: bool = True) -> tuple[list[dict[str, Any]], dict[str, Rendered]]:
    """What a folder stack declares: the platform's objects (with ``with_platform``) and each tenant rendered."""
    platform = (render.render_platform(policy=blueprint.policy, templates_dir=blueprint.templates_dir)
                if with_platform else [])
    return platform, {t.name: render_tenant(t, blueprint) for t in tenants}


def folder_desired_digest(tenants: Sequence[spec.Tenant], target: platformconfig.Target,
                          blueprint: platformconfig.Blueprint, *, with_platform: bool = True,
                          cluster_uid: str | None = None) -> str:
    """The desired digest of a folder stack (``fingerprint.desired_digest``): its platform objects, each tenant's
    ``desired_parts`` and the folder's provider settings; the same computed by the program and offline."""
    platform, rendered = folder_objects(tenants, blueprint, with_platform=with_platform)
    return _folder_digest(tenants, target, blueprint, platform, rendered, cluster_uid)


def _folder_digest(tenants: Sequence[spec.Tenant], target: platformconfig.Target,
                   blueprint: platformconfig.Blueprint, platform: list[dict[str, Any]],
                   rendered: dict[str, Rendered], cluster_uid: str | None) -> str:
    """``folder_desired_digest`` of what ``folder_objects`` rendered."""
    return fingerprint.desired_digest({
        "platform": platform, "client": FOLDER_CLIENT, "clusterUID": cluster_uid,
        "tenants": {t.name: desired_parts(t, target, blueprint, rendered[t.name]) for t in tenants},
    })


def folder_program(tenants: Sequence[spec.Tenant], target: platformconfig.Target,
                   blueprint: platformconfig.Blueprint, *,
                   with_platform: bool = True, cluster_uid: str | None = None) -> Callable[[], None]:
    """GitOps: the platform and every tenant of a folder in one stack (the top-level Pulumi.yaml);
    ``cluster_uid`` as for ``tenant_program`` (recorded when the caller checked it). Its ``fingerprint``
    output covers the platform's objects and every tenant's, as a tenant stack's does."""

    def run() -> None:
        declare_folder(tenants, target, blueprint, with_platform=with_platform, cluster_uid=cluster_uid)

    return run


def declare_folder(tenants: Sequence[spec.Tenant], target: platformconfig.Target,
                    blueprint: platformconfig.Blueprint, *, with_platform: bool,
                    cluster_uid: str | None) -> list[pulumi.Resource]:
    """Declare a folder stack's resources and outputs (``folder_program``, and the GitOps program of plain
    ``pulumi up``); every resource declared."""
    prov = provider(target, FOLDER_CLIENT)
    opts = pulumi.ResourceOptions(provider=prov)
    platform, rendered = folder_objects(tenants, blueprint, with_platform=with_platform)
    digests: dict[str, pulumi.Output[str]] = {}
    resources: list[pulumi.Resource] = [prov]
    if with_platform:
        declared_platform = components.Platform("platform", platform, opts)
        digests |= _object_digests(platform, declared_platform.resources)
        resources += [declared_platform, *declared_platform.resources.values()]
    declared = {t.name: declare_tenant(t, rendered[t.name], opts) for t in tenants}
    for t in tenants:
        digests |= _object_digests(rendered[t.name].objects, declared[t.name].resources)
        resources += [declared[t.name], *declared[t.name].resources.values()]
    pulumi.export("tenants", {name: t.namespaces for name, t in declared.items()})
    pulumi.export("cluster", target.name)
    if cluster_uid:
        pulumi.export(CLUSTER_UID_OUTPUT, cluster_uid)
    desired = _folder_digest(tenants, target, blueprint, platform, rendered, cluster_uid)
    pulumi.export("fingerprint", pulumi.Output.all(**digests).apply(
        lambda objects: {"format": fingerprint.FORMAT, "desired": desired, "objects": dict(objects)}))
    pulumi.run(lambda: _registered(resources))
    return resources


async def _registered(resources: Sequence[pulumi.Resource]) -> dict[str, Any]:
    """Wait until the engine has answered the registration of every resource (their URNs resolve then, and with
    them every output of the resource), each awaited once, failures left to the SDK to report; run by the SDK
    after the program (``pulumi.run``), before it waits for what is still outstanding. No outputs of its own.

    Why: when a program returns, the Python SDK waits for its outstanding outputs in a loop that, each time one of
    them completes, waits on all the others again (``asyncio.wait(..., FIRST_COMPLETED)`` over the whole set), so
    a run of n resources costs the program O(n^2): measured on a folder batch of 1,300 resources, a third of the
    program's CPU time went there, on a machine whose 2 cores the engine, the provider and the API server share.
    Waiting here first leaves that loop almost nothing to wait for."""
    await asyncio.gather(*(r.urn.future() for r in resources), return_exceptions=True)
    return {}


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
    declare_folder(tenants, _config_target(cfg), blueprint, with_platform=batch is None or batch.index == 1,
                   cluster_uid=None)
