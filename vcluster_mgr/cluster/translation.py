"""Pure: the client library's exceptions -> the typed ``errors.ClusterError`` tree, with the server named.

The one place that knows how ``kubernetes.client.ApiException`` carries an answer (status, reason, a JSON
``Status`` body) and which HTTP status means which error; the funnel (``funnel.call``) is its only caller
outside the tests. It also holds the one wording of "not reachable", so every command says it alike.
"""

from __future__ import annotations

import json
import re

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from vcluster_mgr import errors

#: HTTP status -> the error a caller can catch by type; any other status is a plain ``ClusterError``
BY_STATUS: dict[int, type[errors.ClusterError]] = {
    404: errors.NotFoundError,
    403: errors.ForbiddenError,
    409: errors.ConflictError,
    429: errors.TooManyRequestsError,
}


#: how a Kubernetes health endpoint (``/readyz``, ``/livez``, ``/healthz``) names a check that failed, one per line
FAILED_CHECK = re.compile(r"^\[-\](\S+) failed", re.MULTILINE)


def server_message(reason: str | None, body: str | bytes | None) -> str:
    """What the server said: its ``Status.message`` when the body is one; the checks that failed when the body
    is a health endpoint's answer (``[-]etcd failed: reason withheld``, one line per check: the reason phrase of
    a 500 alone would not say which part is down); else the HTTP reason phrase."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body or ""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    failed = FAILED_CHECK.findall(text)
    if failed:
        return f"{reason or 'not ready'}: check(s) failed: {', '.join(failed)}"
    return str(reason or "no reason given")


def from_api_exception(exc: ApiException, *, server: str, what: str) -> errors.ClusterError:
    """The typed error for an answer the server gave: ``<what> on <server>: <status> <server's message>``."""
    status = int(exc.status) if isinstance(exc.status, int) else None
    if status == 0:
        # the client's status 0: a websocket (exec) the server answered with an error, else no answer at all
        status = handshake_status(str(exc.reason or ""))
    if status is None or status == 0:
        return unreachable(server, exc.reason or exc)
    detail = server_message(exc.reason, exc.body)
    kind = BY_STATUS.get(status, errors.ClusterError)
    return kind(f"{what} on {server}: {status} {detail}", server=server, status=status, detail=detail)


def handshake_status(reason: str) -> int | None:
    """The HTTP status of a refused websocket upgrade, from the stream client's ``Handshake status 403 Forbidden``."""
    match = re.search(r"Handshake status (\d{3})", reason)
    return int(match.group(1)) if match else None


def unreachable(server: str, cause: object) -> errors.UnreachableError:
    """The one message for a server that did not answer at all: ``NoAnswerError`` when it took the request and
    let the read time out (the transport's own retries wrap that in a ``MaxRetryError``), else not reachable."""
    reason = cause.reason if isinstance(cause, MaxRetryError) else cause
    if isinstance(reason, ReadTimeoutError):
        return errors.NoAnswerError(f"the API server {server} did not answer in time: {cause}", server=server,
                                    detail=str(cause))
    return errors.UnreachableError(f"the API server {server} is not reachable: {cause}", server=server,
                                   detail=str(cause))
