"""Pulumi components that apply what ``render`` produced.

``Tenant`` applies one tenant's objects; ``Platform`` applies what every tenant relies on (the
ValidatingAdmissionPolicies, the project's own namespace). Both take plain manifest dicts: the decisions
are made in ``render``; a component only turns each object into a pulumi-kubernetes resource, in
dependency order (namespaces first, everything else after the namespace it lives in).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from vcluster_mgr import naming

TENANT_TYPE = "vcluster-mgr:index:Tenant"
PLATFORM_TYPE = "vcluster-mgr:index:Platform"

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def resource_class(api_version: str, kind: str) -> type[pulumi.CustomResource] | None:
    """The pulumi-kubernetes class for a built-in kind (``v1``/``Namespace`` -> ``core.v1.Namespace``)."""
    group, _, version = api_version.rpartition("/")
    module_name = (group.split(".")[0] if group else "core").replace("-", "_")
    module = getattr(k8s, module_name, None)
    module = getattr(module, version, None) if module is not None else None
    cls = getattr(module, kind, None) if module is not None else None
    return cls if isinstance(cls, type) and issubclass(cls, pulumi.CustomResource) else None


def logical_name(obj: Mapping[str, Any]) -> str:
    """A stable, unique-per-stack Pulumi name for a manifest: ``kind:namespace/name``."""
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{obj['kind'].lower()}:{ns}/{meta['name']}" if ns else f"{obj['kind'].lower()}:{meta['name']}"


def apply_object(obj: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Create the resource for one manifest dict; nested fields keep their Kubernetes (camelCase) names."""
    name = logical_name(obj)
    cls = resource_class(obj["apiVersion"], obj["kind"])
    if cls is None:
        fields = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        return k8s.apiextensions.CustomResource(name, api_version=obj["apiVersion"], kind=obj["kind"],
                                                metadata=obj["metadata"], opts=opts, **fields)
    kwargs = {_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return cls(name, opts=opts, **kwargs)


@dataclasses.dataclass
class TenantArgs:
    """What a ``Tenant`` applies."""

    #: the rendered manifests (``render.render_tenant``), namespaces among them
    objects: Sequence[Mapping[str, Any]]
    #: owners as rendered in the spec, exported for ``vcm status``
    owners: Sequence[Mapping[str, str]] = ()
    #: free-form facts recorded as outputs (cluster name, expiry, ...)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: annotations added to the tenant's namespaces (e.g. the expiry of an ephemeral tenant)
    namespace_annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: the virtual control plane, if any: ``chart`` (``render.control_plane_chart``) and Helm ``values``
    control_plane: Mapping[str, Any] | None = None
    #: the control plane's kubeconfig (already rewritten for its exposure), exported as a secret
    kubeconfig: str | None = None
    #: Pulumi's ``protect`` on the tenant's objects, namespaces first (deletion protection): the engine refuses to
    #: delete any of them, so a destroy (a GitOps removal) leaves the tenant whole, quota and policies included
    protect: bool = False


STACK_ANNOTATION = naming.STACK_ANNOTATION


def _owned(obj: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    """The namespace with the owning stack recorded, so another stack never takes it over silently."""
    meta = dict(obj["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), **extra,
                           STACK_ANNOTATION: f"{pulumi.get_project()}/{pulumi.get_stack()}"}
    return {**obj, "metadata": meta}


def _apply_all(parent: pulumi.ComponentResource, objects: Sequence[Mapping[str, Any]],
               namespace_annotations: Mapping[str, str] | None = None, *,
               protect: bool = False) -> dict[str, pulumi.CustomResource]:
    namespaces: dict[str, pulumi.CustomResource] = {}
    resources: dict[str, pulumi.CustomResource] = {}
    for obj in objects:
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            res = apply_object(_owned(obj, namespace_annotations or {}),
                               pulumi.ResourceOptions(parent=parent, protect=protect))
            namespaces[obj["metadata"]["name"]] = res
            resources[logical_name(obj)] = res
    cluster_scoped: list[pulumi.CustomResource] = []
    for obj in objects:
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            continue
        ns = obj["metadata"].get("namespace")
        deps = [namespaces[ns]] if ns in namespaces else []
        # bindings name their policies: keep the order the API server needs
        if obj["kind"].endswith("Binding") and not ns:
            deps += cluster_scoped
        res = apply_object(obj, pulumi.ResourceOptions(parent=parent, depends_on=deps, protect=protect))
        if not ns:
            cluster_scoped.append(res)
        resources[logical_name(obj)] = res
    return resources


class Tenant(pulumi.ComponentResource):
    """One tenant's isolated slice of the host cluster."""

    namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TENANT_TYPE, name, None, opts)
        self.resources = _apply_all(self, args.objects, args.namespace_annotations, protect=args.protect)
        ns_names = [o["metadata"]["name"] for o in args.objects if o["kind"] == "Namespace"]
        self.namespaces = pulumi.Output.all(*[self.resources[f"namespace:{n}"].metadata["name"]  # type: ignore[attr-defined]
                                              for n in ns_names]).apply(list)
        self.release: pulumi.CustomResource | None = None
        if args.control_plane:
            # after every host-side policy of its namespace: the quota, limits, network policies and pod
            # security must already hold for everything the chart creates
            self.release = control_plane_release(name, args.control_plane, pulumi.ResourceOptions(
                parent=self, depends_on=list(self.resources.values())))
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig) if args.kubeconfig else None
        self.register_outputs({"namespaces": self.namespaces, "owners": list(args.owners),
                               "objects": len(self.resources), "kubeconfig": self.kubeconfig, **dict(args.info)})


def control_plane_release(name: str, control_plane: Mapping[str, Any],
                          opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """The vcluster chart as a Helm release in the tenant's first namespace (never waited on: without
    nodes its pods cannot run, and with nodes readiness is the chart's business)."""
    chart = control_plane["chart"]
    source = chart.get("path") or chart.get("oci") or chart["chart"]
    repository: k8s.helm.v3.RepositoryOptsArgsDict | None = (
        {"repo": chart["repository"]} if chart.get("repository") else None)
    return k8s.helm.v3.Release(
        f"{name}-control-plane", chart=source, version=None if chart.get("path") else chart["version"],
        name=chart["release"], namespace=chart["namespace"], values=dict(control_plane["values"]),
        repository_opts=repository, skip_await=True, max_history=5, opts=opts)


class Platform(pulumi.ComponentResource):
    """What all tenants of one host cluster rely on: admission policies and the project's namespace."""

    def __init__(self, name: str, objects: Sequence[Mapping[str, Any]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(PLATFORM_TYPE, name, None, opts)
        self.resources = _apply_all(self, objects)
        self.register_outputs({"objects": len(self.resources)})
