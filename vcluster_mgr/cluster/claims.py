"""Pure: who a namespace belongs to, from its labels and annotation, and whether a tenant may take it.

``ownership`` reads the namespaces; the rules live here so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from vcluster_mgr import naming


class Claim(TypedDict):
    """What an existing namespace says about its owner (empty strings when it says nothing)."""

    tenant: str
    #: spelled as `vcm` has always reported it
    managedBy: str
    stack: str


def claim_of(namespace: Mapping[str, Any]) -> Claim:
    """A namespace's tenant label, managed-by label and owning stack annotation (raw JSON object)."""
    meta = namespace.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return {"tenant": labels.get(naming.TENANT_LABEL, ""), "managedBy": labels.get(naming.MANAGED_BY_KEY, ""),
            "stack": annotations.get(naming.STACK_ANNOTATION, "")}


def problems(claims: Mapping[str, Claim], tenant: str, stack: str) -> list[str]:
    """Why ``tenant`` (applied by ``stack``) may not take these existing namespaces; empty when it may.

    A namespace the stack itself recorded is ours even if its labels were changed by hand (the apply puts
    them back)."""
    found = []
    for ns, owner in claims.items():
        if owner["stack"] == stack:
            continue
        if owner["managedBy"] != naming.MANAGED_BY_VALUE:
            found.append(f"namespace {ns} already exists and is not managed by vcluster-mgr")
        elif owner["tenant"] != tenant:
            found.append(f"namespace {ns} belongs to tenant {owner['tenant']!r}")
        elif owner["stack"] and owner["stack"] != stack:
            found.append(f"namespace {ns} of tenant {tenant!r} is owned by stack {owner['stack']!r}")
    return found
