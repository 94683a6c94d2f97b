"""The funnel every request to an API server goes through: one default timeout, the retry policy, and the
translation of the client library's exceptions into ``errors.ClusterError`` (see ``translation``).

``Connection.call`` is how the rest of the package uses it; callers never catch ``ApiException`` or urllib3's
errors, so the client library stays replaceable and a new rule (a timeout, a retried status, an error class)
has one home.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors
from vcluster_mgr.cluster import retrying, translation

#: seconds one request may take (connect + read) unless the call passes its own ``_request_timeout``: long
#: enough for a list of a few thousand objects on a loaded server, short enough that a hung server is named
#: before a person gives up
REQUEST_TIMEOUT = 15.0

log = logging.getLogger("vcluster_mgr.cluster")

T = TypeVar("T")


def call(server: str, what: str, fn: Callable[..., T], /, *args: Any,
         policy: retrying.RetryPolicy = retrying.DEFAULT, notify: Callable[[str], object] | None = None,
         sleep: Callable[[float], object] = time.sleep, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with the default ``_request_timeout``, retried as ``policy`` allows.

    ``what`` says what the request does ("reading namespace kube-system") for the error and wait messages;
    ``notify`` hears each wait (default: a warning on the ``vcluster_mgr.cluster`` logger). Raises the typed
    ``errors.ClusterError`` for the last answer, or ``errors.UnreachableError`` when there was none.
    """
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    tries = 0
    while True:
        tries += 1
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            retry_after = header(exc, "Retry-After")
            wait = retrying.delay(policy, exc.status, retry_after, tries)
            if wait is None:
                raise translation.from_api_exception(exc, server=server, what=what) from exc
            message = retrying.waiting_message(server=server, what=what, status=int(exc.status), seconds=wait,
                                               tries=tries, policy=policy, retry_after=retry_after)
            (notify or log.warning)(message)
            sleep(wait)
        except (HTTPError, OSError) as exc:
            raise translation.unreachable(server, exc) from exc


def header(exc: ApiException, name: str) -> str | None:
    """One response header of an error answer (case-insensitive), or None."""
    headers = exc.headers or {}
    for key, value in dict(headers).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def raise_for_status(response: Any) -> Any:
    """A raw response (``_preload_content=False``, ``call_api``) as the typed methods treat it: an
    ``ApiException`` unless 2xx, so the funnel retries and translates it like any other answer."""
    if not 200 <= int(response.status) < 300:
        raise ApiException(http_resp=response)
    return response


def not_found_is_none(fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when it raises ``errors.NotFoundError``: for reads where absence is an answer."""
    try:
        return fn()
    except errors.NotFoundError:
        return None
