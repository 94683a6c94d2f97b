"""The registry of check functions: ``RUNNERS`` maps each check id of the catalogue to the function that
runs it as the tenant's owner through a ``session.Session``; and ``whoami``, how the server sees that owner.

The functions themselves live in ``access_checks``, ``workload_checks`` and ``policy_checks``, which register
here when imported (``live`` imports them all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcluster_mgr import errors
from vcluster_mgr.verify import (
    judging,
    session,
)

Outcome = tuple[str, judging.Verdict]
"""What a check tried, and its verdict."""

RUNNERS: dict[str, Callable[[session.Session], Outcome]] = {}


def runs(check_id: str) -> Callable[[Callable[[session.Session], Outcome]], Callable[[session.Session], Outcome]]:
    def register(fn: Callable[[session.Session], Outcome]) -> Callable[[session.Session], Outcome]:
        RUNNERS[check_id] = fn
        return fn

    return register


def namespaces_text(s: session.Session) -> str:
    return ", ".join(s.ns)


def whoami(s: session.Session) -> dict[str, Any] | None:
    """How the API server sees the impersonated owner (SelfSubjectReview); None if the server cannot say."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        review = s.owner.call("SelfSubjectReview", s.owner.authentication.create_self_subject_review, body)
    except errors.UnreachableError:
        raise
    except errors.ClusterError as exc:
        if exc.status == 403 and "impersonate" in exc.detail:
            raise errors.VerifyError(
                f"the admin credentials for {s.server} may not impersonate {s.identity.describe()}: {exc.detail}"
            ) from exc
        return None
    info = review.status.user_info if review.status is not None else None
    if info is None:
        return None
    return {"username": info.username, "groups": list(info.groups or [])}
