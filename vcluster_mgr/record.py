"""What a tenant's stack records about it: one model, written by the program and read back by everything else.

The tenant program (``program.tenant_program``) exports a ``TenantRecord`` as the stack's outputs
(``to_outputs``); every command that later works on the applied tenant (status, kubeconfig, sleep, wake,
delete, gc, verify, drift, the guards of the next apply) reads it back through ``read``. Keys are the
outputs' own camelCase names, declared once here as the fields' aliases.

Why a pydantic model rather than a dataclass or a ``TypedDict``: the outputs come back from a state file that
older versions of vcm wrote (or a person edited), so the reader has to check types and say which key is wrong,
and has to upgrade older shapes; pydantic does both from one declaration (the same one the writer dumps), as
the spec models already do. The model is frozen: a record is what was applied, never changed in place.

Only ``read`` knows older shapes (see ``_upgrade``): ``controlPlane`` as a bare boolean, or missing (then
taken from the recorded spec, else from the spec file the tenant was applied from), and stacks without a
recorded spec or policy. A key this reader does not know is ignored, so a record written by a newer vcm (a
fingerprint of the applied state, say, for a run that can skip the engine) still reads here; such a field is
added as optional with a default, so records written before it read too.

Pure but for that one fallback (reading the spec file named by an old record's ``source``): no Pulumi, no
Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
import yaml

from vcluster_mgr import errors, reading, spec
from vcluster_mgr import fingerprint as fingerprints


class _Part(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Owner(_Part):
    """An owner of the tenant as applied (the RoleBinding subjects): kind, name, role; a ServiceAccount's
    namespace when the spec named one."""

    kind: str
    name: str
    role: str
    namespace: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The owner as recorded (``namespace`` only when set), the shape tables and JSON show."""
        row = {"kind": self.kind, "name": self.name, "role": self.role}
        if self.namespace:
            row["namespace"] = self.namespace
        return row


class ControlPlane(_Part):
    """The tenant's virtual control plane as applied."""

    enabled: bool = False
    #: whether its data outlives its pod (``spec.controlPlane.persistence.enabled``); None: not recorded
    persistence: bool | None = None
    #: sha256 of its Helm values at the last apply: a change may restart its pod (the data-loss guard)
    values_digest: str | None = pydantic.Field(None, alias="valuesDigest")
    #: sha256 of the values that shape the pod holding its data (``program.Rendered.data_digest``): with
    #: ``backingStore: etcd`` the etcd's, else all of them; None: recorded before it was (the guard then compares
    #: ``values_digest``)
    data_digest: str | None = pydantic.Field(None, alias="dataDigest")


class HostApiAddress(_Part):
    """Where pods reached the host's API server at apply (the ``default/kubernetes`` Service or an endpoint)."""

    ip: str
    port: int

    def as_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "port": self.port}


class TenantRecord(_Part):
    """A tenant as its stack recorded it at the last apply."""

    tenant: str = ""
    #: the host cluster's name in the platform config
    cluster: str = ""
    namespaces: tuple[str, ...] = ()
    owners: tuple[Owner, ...] = ()
    #: RFC 3339 expiry of a tenant with a ttl (``lifecycle.format_expiry``); None: never expires
    expires_at: str | None = pydantic.Field(None, alias="expiresAt")
    #: its control plane scaled to zero (``vcm sleep``)
    asleep: bool = False
    ttl: str | None = None
    #: under deletion protection (``spec.protect``)
    protected: bool = False
    #: the spec file it was applied from, if any
    source: str | None = None
    control_plane: ControlPlane = pydantic.Field(default_factory=ControlPlane, alias="controlPlane")
    #: the host cluster it was applied to: the UID of its kube-system namespace (None: recorded before that)
    cluster_uid: str | None = pydantic.Field(None, alias="clusterUID")
    #: with a control plane: where pods reached the host's API server at apply (None without one)
    host_api: tuple[HostApiAddress, ...] | None = pydantic.Field(None, alias="hostApi")
    #: the spec document as applied (defaults filled); read it with ``applied_tenant()``
    spec_document: dict[str, Any] | None = pydantic.Field(None, alias="spec")
    #: the admin policy document it was applied under (defaults filled); read it with ``applied_policy()``
    policy_document: dict[str, Any] | None = pydantic.Field(None, alias="policy")
    #: the control plane's kubeconfig as read back: ``[secret]`` (the program exports it as a secret of its own;
    #: its value is never read into a record)
    kubeconfig: str | None = None
    #: proof of the last successful apply that lets a run skip the engine (``fingerprint``); None: recorded
    #: before fingerprints, or unreadable (then the engine runs)
    fingerprint: fingerprints.Fingerprint | None = None

    def host_api_rows(self) -> list[dict[str, Any]] | None:
        """``host_api`` as the drift check compares it (``{"ip", "port"}`` each); None when not recorded."""
        return [a.as_dict() for a in self.host_api] if self.host_api else None

    def applied_tenant(self) -> spec.Tenant | None:
        """The spec as recorded (None for a stack applied before specs were recorded).

        Read as it was applied, not judged again: it passed its policy then, and a rule added since must not
        stop a sleep or a kubeconfig of a tenant already running. ``source`` is set as at apply."""
        if self.spec_document is None:
            return None
        try:
            found = spec.Tenant.model_validate(self.spec_document)
        except pydantic.ValidationError as exc:
            raise errors.ProvisionError(
                f"the stack of tenant {self.tenant} records a spec this vcm cannot read "
                f"({_problems(exc, 'spec')}); apply the tenant again") from None
        found._source = self.source
        return found

    def applied_policy(self) -> spec.Policy | None:
        """The admin policy the tenant was applied under (None for a stack applied before policies were
        recorded); ``SpecError`` naming each bad field if it no longer reads."""
        if not self.policy_document:
            return None
        return spec.parse_policy(self.policy_document, source=f"the policy recorded with tenant {self.tenant}")

    def to_outputs(self) -> dict[str, Any]:
        """The stack outputs of this record, as the program exports them: plain JSON values under their
        recorded names; ``hostApi`` only for a tenant with a control plane; never the kubeconfig (a secret
        the program exports itself)."""
        out = self.model_dump(mode="json", by_alias=True, exclude={"kubeconfig", "owners"})
        out["owners"] = [o.as_dict() for o in self.owners]
        if self.host_api is None:
            del out["hostApi"]
        if self.fingerprint is None:
            del out["fingerprint"]
        return out

    def as_data(self) -> dict[str, Any]:
        """What ``vcm status -o json`` shows of the record: its outputs, and ``kubeconfig`` (masked) when the
        stack holds one."""
        out = self.to_outputs()
        if self.kubeconfig is not None:
            out["kubeconfig"] = self.kubeconfig
        return out


def _problems(exc: pydantic.ValidationError, root: str = "") -> str:
    """Every problem of a validation error, each with its dotted path."""
    parts = []
    for item in exc.errors(include_url=False):
        path = ".".join(str(p) for p in (root, *item["loc"]) if p != "")
        parts.append(f"{path or '(outputs)'}: {item['msg']}")
    return "; ".join(parts)


def _spec_file_control_plane(source: object) -> dict[str, Any]:
    """``spec.controlPlane.enabled`` of the spec file an old record names (stacks applied before the control
    plane was recorded at all); disabled when the file is gone or unreadable."""
    if not isinstance(source, str) or not source:
        return {"enabled": False}
    try:
        doc = yaml.safe_load(reading.read_text(source))
        return {"enabled": bool(((doc.get("spec") or {}).get("controlPlane") or {}).get("enabled"))}
    except (errors.SpecError, yaml.YAMLError, AttributeError):
        return {"enabled": False}


def _upgrade(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs in today's shape; the one place that knows the older ones."""
    data = dict(outputs)
    found = data.get("fingerprint")
    if found is not None:
        # a fingerprint that does not read (masked, another shape) proves nothing: the engine runs
        try:
            data["fingerprint"] = fingerprints.Fingerprint.model_validate(found)
        except pydantic.ValidationError:
            data["fingerprint"] = None
    recorded = data.get("controlPlane")
    if isinstance(recorded, bool):
        # first recorded shape: a bare flag
        data["controlPlane"] = {"enabled": recorded}
    elif recorded is None:
        # before it was recorded: the spec recorded with it, else the spec file it was applied from
        document = data.get("spec")
        section = (document.get("spec") or {}).get("controlPlane") if isinstance(document, Mapping) else None
        if isinstance(section, Mapping):
            persistence = section.get("persistence")
            data["controlPlane"] = {
                "enabled": bool(section.get("enabled")),
                "persistence": bool(persistence.get("enabled")) if isinstance(persistence, Mapping) else None}
        else:
            data["controlPlane"] = _spec_file_control_plane(data.get("source"))
    return data


def read(outputs: Mapping[str, Any], *, cluster: str = "", tenant: str = "") -> TenantRecord:
    """The record of a tenant stack's outputs (secrets masked as ``[secret]``), any shape vcm ever wrote.

    ``cluster`` and ``tenant`` (from the stack's name) fill in a record that lacks them. ``ProvisionError``
    naming every key that cannot be read."""
    data = _upgrade(outputs)
    if not data.get("cluster"):
        data["cluster"] = cluster
    if not data.get("tenant"):
        data["tenant"] = tenant
    try:
        return TenantRecord.model_validate(data)
    except pydantic.ValidationError as exc:
        who = data.get("tenant") or "?"
        raise errors.ProvisionError(
            f"the stack of tenant {who} records outputs this vcm cannot read ({_problems(exc)}); "
            "apply the tenant again") from None
