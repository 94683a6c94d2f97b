"""The fingerprint of an applied tenant: proof that a refresh and an update would change nothing.

After every successful apply a tenant's stack records (``record.TenantRecord.fingerprint``, in its outputs, so
it travels with the stack to another machine, a shard, any backend):

- ``desired``: one digest of everything that decides the desired state (``desired_digest``): the rendered
  manifests and Helm values, the spec and policy as recorded, the stack's settings (host cluster, expiry,
  sleep), this tool's version and the pinned engine, provider and chart versions, and ``FORMAT``;
- ``objects``: per object the stack owns, a digest of its content as the API server returned it right after
  that apply (``object_digest``), keyed by ``object_key``.

A later run holds the fingerprint when the desired digest it computes offline is the recorded one and every
recorded object is on the cluster with the same content digest (``verdict``); then the engine would find
nothing to do, and it is not started. Anything this module cannot prove is a reason to run the engine.

**What counts as content** (``content``, the one place this is decided): every top-level field of an object
but ``apiVersion``, ``kind``, ``metadata`` and ``status``, and of its metadata only ``labels`` and
``annotations``. ``status`` is out because the cluster writes it, not the apply: a ResourceQuota's
``status.used`` moves whenever a pod starts, a FlowSchema's conditions whenever the API server re-evaluates
them, and neither is something the engine would put back. The rest of ``metadata`` (``resourceVersion``,
``uid``, ``generation``, ``managedFields``, ``creationTimestamp``) changes with every write or names a copy;
a field someone else wrote through another field manager shows in the content itself. Values are compared in
one canonical form (``canonical``): absent, ``null`` and empty are one thing, and a whole number is an
integer whether it came back from the engine as a float or from the API server as an int.

**Secrets**: a Secret's ``data`` and ``stringData`` never enter a digest (skipped, not keyed: a digest of
secret data would let anyone holding the state test guesses against it). Since a change to them could then
go unseen, an owned Secret makes the fingerprint unprovable (``PROVABLE`` does not list it) and its tenant
goes to the engine every time. No tenant object is a Secret today.

Pure: no Pulumi, no Kubernetes client, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

#: the fingerprint's own format: bumped whenever what a digest covers changes, so that an older record is
#: never compared with a newer computation (it then reads as no fingerprint, and the engine runs)
FORMAT = 1

#: the top-level fields that are never content (see the module docstring)
NOT_CONTENT = frozenset({"apiVersion", "kind", "metadata", "status"})
#: the only metadata fields that are content
METADATA_CONTENT = ("labels", "annotations")
#: fields of a kind that hold secret data: never read into a digest
SECRET_FIELDS = {("v1", "Secret"): frozenset({"data", "stringData"})}

#: the kinds whose objects a run can read back with one label-selected LIST each: (apiVersion, kind) ->
#: (the API path of the group version, the resource's plural, namespaced). A kind not listed here makes the
#: fingerprint unprovable and its tenant goes to the engine
PROVABLE: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "ResourceQuota"): ("/api/v1", "resourcequotas", True),
    ("v1", "LimitRange"): ("/api/v1", "limitranges", True),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"): ("/apis/flowcontrol.apiserver.k8s.io/v1", "flowschemas",
                                                        False),
    ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration"): (
        "/apis/flowcontrol.apiserver.k8s.io/v1", "prioritylevelconfigurations", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): (
        "/apis/admissionregistration.k8s.io/v1", "validatingadmissionpolicies", False),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): (
        "/apis/admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings", False),
}


class Fingerprint(pydantic.BaseModel):
    """What a tenant's stack records of its last successful apply (the record's ``fingerprint``)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="ignore")

    #: ``FORMAT`` of the vcm that wrote it
    format: int
    #: ``desired_digest`` of that apply
    desired: str
    #: ``object_key`` -> ``object_digest`` of every object the stack owns, as read back right after the apply
    objects: dict[str, str]


def object_key(api_version: str, kind: str, namespace: str | None, name: str) -> str:
    """How an object is named in a fingerprint: ``apiVersion|kind|namespace|name`` (namespace empty when
    cluster-scoped)."""
    return f"{api_version}|{kind}|{namespace or ''}|{name}"


def key_of(obj: Mapping[str, Any]) -> str:
    """``object_key`` of a manifest or a live object."""
    meta = obj.get("metadata") or {}
    return object_key(str(obj.get("apiVersion")), str(obj.get("kind")), meta.get("namespace"), str(meta.get("name")))


def kind_of(key: str) -> tuple[str, str]:
    """(apiVersion, kind) of an ``object_key``."""
    api_version, kind, _, _ = key.split("|", 3)
    return api_version, kind


def canonical(value: Any) -> Any:
    """``value`` in the one form digests compare: keys sorted (by ``json.dumps``), ``None`` and empty
    mappings and lists dropped, whole floats as ints."""
    if isinstance(value, Mapping):
        out = {str(k): canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def content(api_version: str, kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The content of an object (module docstring): its labels and annotations and every top-level field but
    the ones that are never content, secret data left out."""
    meta = obj.get("metadata") or {}
    secret = SECRET_FIELDS.get((api_version, kind), frozenset())
    found: dict[str, Any] = {k: v for k, v in obj.items() if k not in NOT_CONTENT and k not in secret}
    found["metadata"] = {k: meta.get(k) for k in METADATA_CONTENT}
    result: dict[str, Any] = canonical(found)
    return result


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def object_digest(api_version: str, kind: str, obj: Mapping[str, Any]) -> str:
    """The digest of an object's ``content``."""
    return digest(content(api_version, kind, obj))


def desired_digest(parts: Mapping[str, Any]) -> str:
    """The digest of everything that decides a stack's desired state, ``FORMAT`` included; the caller
    (``program.desired_parts``) says what the parts are."""
    return digest({"format": FORMAT, **parts})


def provable(keys: Iterable[str]) -> str | None:
    """Why objects of these keys cannot be read back to prove a fingerprint (a kind with no LIST here, or a
    Secret), or None when they all can."""
    for key in keys:
        found = kind_of(key)
        if found not in PROVABLE:
            return f"{found[1]} ({found[0]}) is not a kind the fast path reads back"
    return None


def state_objects(keys: Iterable[str]) -> frozenset[tuple[str, str]]:
    """The objects of these keys as a stack's state names them: (kind, ``namespace/name`` or ``name``)."""
    pairs = set()
    for key in keys:
        _, kind, namespace, name = key.split("|", 3)
        pairs.add((kind, f"{namespace}/{name}" if namespace else name))
    return frozenset(pairs)


def verdict(recorded: Fingerprint | None, desired: str, live: Mapping[str, str]) -> str | None:
    """None when the fingerprint holds: ``recorded`` exists in this ``FORMAT``, its desired digest is
    ``desired`` and each recorded object has its digest in ``live`` (key -> digest of the objects read now).
    Otherwise the first reason it does not hold, for the output."""
    if recorded is None:
        return "no fingerprint recorded"
    if recorded.format != FORMAT:
        return f"a fingerprint of format {recorded.format} (this vcm writes {FORMAT})"
    if recorded.desired != desired:
        return "the desired state changed"
    if not recorded.objects:
        return "no objects recorded"
    why = provable(recorded.objects)
    if why:
        return why
    for key, expected in sorted(recorded.objects.items()):
        found = live.get(key)
        _, kind, namespace, name = key.split("|", 3)
        what = f"{kind} {namespace + '/' if namespace else ''}{name}"
        if found is None:
            return f"{what} is missing"
        if found != expected:
            return f"{what} changed on the cluster"
    return None
