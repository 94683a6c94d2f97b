"""Pure: when a request the server turned away is worth sending again, and after how long.

Only answers that say the request was NOT carried out are retried, so a create is never sent twice:
429 Too Many Requests (API Priority and Fairness queues full, an eviction blocked by a budget) and
503 Service Unavailable (the server starting, an aggregated API down). A ``Retry-After`` the server sends is
honoured (capped); without one the wait doubles from ``first_delay``. No answer at all (connection refused,
timeout) is not retried: the caller learns at once that the server is unreachable.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils

#: statuses retried, with the words the wait message uses
RETRIED = {429: "429 Too Many Requests", 503: "503 Service Unavailable"}


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long the funnel retries one request."""

    #: tries in all, the first one included (1: never retry)
    attempts: int = 5
    #: seconds before the second try when the server names no ``Retry-After``; doubled for each further try
    first_delay: float = 0.5
    #: seconds, the longest single wait; a longer ``Retry-After`` is cut to this
    max_delay: float = 10.0


DEFAULT = RetryPolicy()


def retry_after_seconds(value: str | None, *, now: datetime.datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or
    unreadable. A date in the past means zero."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    return max(0.0, (when - now).total_seconds())


def delay(policy: RetryPolicy, status: int | None, retry_after: str | None, tries: int, *,
          now: datetime.datetime | None = None) -> float | None:
    """Seconds to wait before try ``tries + 1``, or None to give up now (not retryable, or no tries left)."""
    if status not in RETRIED or tries >= policy.attempts:
        return None
    told = retry_after_seconds(retry_after, now=now)
    backoff = policy.first_delay * 2 ** (tries - 1)
    return min(policy.max_delay, told if told is not None else backoff)


def waiting_message(*, server: str, what: str, status: int, seconds: float, tries: int, policy: RetryPolicy,
                    retry_after: str | None) -> str:
    """What the funnel says while it waits: the answer, for what, how long and why that long, which try next."""
    why = "as its Retry-After asks" if retry_after_seconds(retry_after) is not None else "backing off"
    return (f"the API server {server} answered {RETRIED.get(status, status)} to {what}; waiting {seconds:.1f}s "
            f"({why}) before try {tries + 1} of {policy.attempts}")
