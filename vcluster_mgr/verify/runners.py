"""The registry of check functions: ``RUNNERS`` maps each check id of the catalogue to the function that
runs it as the tenant's owner through a ``session.Session``; and ``whoami``, how the server sees that owner.

The functions themselves live in ``access_checks``, ``workload_checks`` and ``policy_checks``, which register
here when imported (``live`` imports them all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors
from vcluster_mgr.verify import (
    catalogue,
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
    api = client.AuthenticationV1Api(s.owner)
    try:
        review = api.create_self_subject_review(
            client.V1SelfSubjectReview(), _request_timeout=catalogue.REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 403 and "impersonate" in session.api_message(exc):
            raise errors.VerifyError(
                f"the admin credentials for {s.server} may not impersonate {s.identity.describe()}: "
                f"{session.api_message(exc)}"
            ) from exc
        return None
    except (HTTPError, OSError) as exc:
        raise s._unreachable(exc) from exc
    info = review.status.user_info if review.status is not None else None
    if info is None:
        return None
    return {"username": info.username, "groups": list(info.groups or [])}
