"""Before an apply: who owns the namespaces a tenant is about to take (the rules are in ``claims``)."""

from __future__ import annotations

from vcluster_mgr import errors
from vcluster_mgr.cluster import claims, connection, namespaces


def namespace_owners(conn: connection.Connection, names: list[str]) -> dict[str, claims.Claim]:
    """For each of ``names`` that exists: its tenant label, managed-by label and owning stack annotation."""
    found: dict[str, claims.Claim] = {}
    for ns in names:
        obj = namespaces.read_namespace(conn, ns)
        if obj is not None:
            found[ns] = claims.claim_of(obj)
    return found


def check_ownership(conn: connection.Connection, tenant: str, names: list[str], stack: str) -> None:
    """Refuse to take over namespaces that belong to someone else, naming the owner."""
    problems = claims.problems(namespace_owners(conn, names), tenant, stack)
    if problems:
        raise errors.ProvisionError(f"refusing to apply tenant {tenant!r} to host cluster {conn.target.name!r}: "
                                    + "; ".join(problems))
