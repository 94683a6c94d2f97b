"""The names vcluster-mgr gives things: its label and annotation keys, derived namespace and RoleBinding
names, reserved names, control plane releases and ephemeral tenant names.

Everything here is pure and raises nothing but ``ValueError`` (``spec`` turns those into ``FieldError``s with
a dotted path). The Kubernetes value syntax these lean on (DNS-1123 names, labels, quantities, durations) is in
``kube``.
"""

from __future__ import annotations

import hashlib
import re

from vcluster_mgr.kube import names

API_VERSION = "vcluster-mgr.dev/v1alpha1"
"""apiVersion of every document this project reads (Tenant, Policy)."""

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "vcluster-mgr"
TENANT_LABEL = "vcluster-mgr.dev/tenant"
TENANT_PRIORITY_LEVEL = "vcm-tenants"
"""The shared API Priority and Fairness level of every tenant's FlowSchema."""


def flow_schema_name(tenant: str) -> str:
    """The FlowSchema of a tenant's requests: ``vcm-tenant-<tenant>``."""
    return f"vcm-tenant-{tenant}"

"""Label on every tenant object; the platform's admission policies select tenant namespaces by it."""

STACK_ANNOTATION = "vcluster-mgr.dev/stack"
"""On every namespace: the stack that owns it (``project/stack``), checked before an apply. Here rather than
in ``components`` so that reading a cluster (``cluster``) does not import the Pulumi SDK."""

COST_CENTER_LABEL = "cost-center"
"""The spec label (``metadata.labels``) naming a tenant's cost center: ``vcm usage`` totals by it, and the
namespaces also carry it as ``department`` for cost tools (OpenCost/Kubecost label-mapping defaults)."""

SYSTEM_NAMESPACE = "vcluster-mgr-system"
"""The project's own namespace; no tenant may claim it."""

PLACEMENT_CONFIGMAP = "vcm-placement"
"""Per-namespace ConfigMap holding the tenant's nodeSelector; the vcm-placement admission policy reads it."""

POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set (immutably) by the API server on every Namespace; NetworkPolicies select namespaces by it."""

# Label-key prefixes a spec may not set: the API server's and this project's own. A spec label on
# a Namespace such as ``pod-security.kubernetes.io/enforce: privileged`` would undo the blueprint.
_RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "vcluster-mgr.dev")
_ALLOWED_RESERVED_PREFIXES = ("app.kubernetes.io",)
"""Recommended ``app.kubernetes.io/*`` labels stay usable, except the managed-by key."""


def reserved_reason(namespace: str) -> str | None:
    """Why a namespace name is reserved (``default``, ``kube-*``, the project's own), or None if it is free."""
    if namespace == "default":
        return "'default' is reserved"
    if namespace.startswith("kube-"):
        return "names starting with 'kube-' are reserved for Kubernetes"
    if namespace == SYSTEM_NAMESPACE:
        return f"'{SYSTEM_NAMESPACE}' is vcluster-mgr's own namespace"
    return None


def namespace_name(tenant: str, suffix: str) -> str:
    """The real namespace of a tenant's namespace entry: ``payments`` + ``app`` -> ``payments-app``."""
    return f"{tenant}-{suffix}"


def check_spec_label_key(key: str) -> None:
    """Like ``check_label_key``, and refuse the keys Kubernetes and vcluster-mgr reserve for themselves.

    Spec labels land on the tenant's Namespaces, so a key such as ``pod-security.kubernetes.io/enforce``
    or ``vcluster-mgr.dev/tenant`` would override the blueprint; ``app.kubernetes.io/*`` stays usable
    except ``app.kubernetes.io/managed-by``.
    """
    names.check_label_key(key)
    prefix = key.rpartition("/")[0]
    if key == MANAGED_BY_KEY:
        raise ValueError("is set by vcluster-mgr itself")
    if prefix and prefix not in _ALLOWED_RESERVED_PREFIXES:
        for domain in _RESERVED_LABEL_DOMAINS:
            if prefix == domain or prefix.endswith("." + domain):
                raise ValueError(f"is reserved: label keys under {domain!r} belong to Kubernetes and vcluster-mgr")


def owner_binding_name(role: str, kind: str, name: str, namespace: str | None = None) -> str:
    """The RoleBinding name for one owner: ``vcm-owner-<role>-<kind>-<hash>``.

    Owner names (``alice@example.com``, OIDC subjects) are not DNS names, so the name carries
    the first 10 hex digits of the SHA-256 of ``kind/namespace/name`` instead: stable, short,
    and distinct for every owner of a tenant in practice.
    """
    digest = hashlib.sha256(f"{kind}/{namespace or ''}/{name}".encode()).hexdigest()[:10]
    return f"vcm-owner-{role}-{kind.lower()}-{digest}"


# ---------------------------------------------------------------------------------------------
# Virtual control planes (the vcluster Helm chart)
# ---------------------------------------------------------------------------------------------

CONTROL_PLANE_CHART = "vcluster"
"""Name of the official vcluster Helm chart in its repository."""

CONTROL_PLANE_CHART_VERSION = "0.36.1"
"""The chart version vcluster-mgr generates values for (and tests them against); also the version of the syncer
image it asks for (``loft-sh/vcluster-oss``) and of the syncer the toolchain builds for the local node."""

CONTROL_PLANE_CHART_REPOSITORY = "https://charts.loft.sh"
"""The public Helm repository of the vcluster chart; the default chart source."""

KUBERNETES_VERSION_PATTERN = r"v?(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})"
_KUBERNETES_VERSION = re.compile(KUBERNETES_VERSION_PATTERN)

CHART_VERSION_PATTERN = (
    r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(-[0-9A-Za-z][-0-9A-Za-z.]{0,63})?"
)
_CHART_VERSION = re.compile(CHART_VERSION_PATTERN)


def check_kubernetes_version(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a full Kubernetes release such as ``1.33.4`` or ``v1.33.4``.

    The chart uses it as the tag of the ``ghcr.io/loft-sh/kubernetes`` image, which is published per
    patch release (``v1.33.4``), so a minor version alone (``1.33``) names no image.
    """
    if not _KUBERNETES_VERSION.fullmatch(value):
        raise ValueError(
            "is not a Kubernetes release: expected MAJOR.MINOR.PATCH such as 1.33.4 or v1.33.4 "
            "(it becomes the image tag ghcr.io/loft-sh/kubernetes:v1.33.4, published per patch release)"
        )


def kubernetes_image_tag(version: str) -> str:
    """The image tag of a checked Kubernetes release: ``1.33.4`` -> ``v1.33.4``."""
    return version if version.startswith("v") else f"v{version}"


def check_chart_version(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is an exact semantic version such as ``0.36.1`` (no ranges)."""
    if not _CHART_VERSION.fullmatch(value):
        raise ValueError(
            "is not an exact chart version: expected MAJOR.MINOR.PATCH with an optional -prerelease, "
            "such as 0.36.1 (ranges and a leading 'v' are not allowed)"
        )


def control_plane_release(tenant: str) -> str:
    """Helm release name of a tenant's virtual control plane: the tenant's name (``payments``).

    The chart names the StatefulSet and Service after it, and the kubeconfig Secret ``vc-<release>``.
    """
    return tenant


#: label the vcluster syncer puts on every object it syncs to the host (value: the release)
SYNCED_BY_LABEL = "vcluster.loft.sh/managed-by"
#: label the vcluster syncer puts on every synced object: the virtual namespace it came from
SYNCED_NAMESPACE_LABEL = "vcluster.loft.sh/namespace"
#: label the vcluster chart puts on its control plane's pods (value: the release); its etcd pods carry it too
CONTROL_PLANE_POD_LABEL = "release"
#: label that tells the control plane's pods (``app: vcluster``) from the etcd pods of the same release
#: (``app: vcluster-etcd``)
CONTROL_PLANE_APP_LABEL = "app"
CONTROL_PLANE_APP = "vcluster"


def control_plane_pod_selector(release: str) -> str:
    """The label selector of a release's control plane pods, not its etcd pods: ``app=vcluster,release=<release>``."""
    return f"{CONTROL_PLANE_APP_LABEL}={CONTROL_PLANE_APP},{CONTROL_PLANE_POD_LABEL}={release}"


def control_plane_kubeconfig_secret(release: str) -> str:
    """The Secret the vcluster control plane writes its admin kubeconfig to: ``vc-<release>``."""
    return f"vc-{release}"


# ---------------------------------------------------------------------------------------------
# Ephemeral tenants: expiry and generated names
# ---------------------------------------------------------------------------------------------

EXPIRES_AT_ANNOTATION = "vcluster-mgr.dev/expires-at"
"""Annotation on an expiring tenant's objects: when it expires, RFC 3339 in UTC (``2025-01-02T03:04:05Z``)."""

LAST_VERIFY_ANNOTATION = "vcluster-mgr.dev/last-verify"
"""On a tenant's first namespace: the last ``vcm verify`` result as JSON (``passed``, ``at``, counts), written
by vcm verify with field manager ``vcm-verify`` and read by ``vcm status``. Verify leaves no other trace."""

EXPIRES_AT_LABEL = "vcluster-mgr.dev/expires-at"
"""Label with the same meaning, so expiring tenants can be listed by selector. Label values allow no ':',
so its value is the compact ISO 8601 form ``20250102T030405Z`` (still UTC, to the second)."""

NAME_PREFIX_MAX = 30
"""Longest prefix of a generated tenant name; leaves room for the suffix and the namespace entries."""

NAME_SUFFIX_LENGTH = 6
"""Random characters appended to a prefix: 36**6, about 2.2e9 names per prefix."""

_NAME_PREFIX = re.compile(r"[a-z]([-a-z0-9]*)?")


def check_name_prefix(prefix: str) -> None:
    """Raise ``ValueError`` unless ``prefix`` can start a generated tenant name (``ci-``, ``pr-42-``)."""
    if not prefix or len(prefix) > NAME_PREFIX_MAX or not _NAME_PREFIX.fullmatch(prefix):
        raise ValueError(
            f"is not a name prefix: use 1-{NAME_PREFIX_MAX} characters of a-z, 0-9 and '-', "
            "starting with a letter, such as ci-"
        )
    reason = reserved_reason(prefix + "x")
    if reason:
        raise ValueError(f"makes reserved names: {reason}")
