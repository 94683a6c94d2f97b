"""The short durations the spec uses for TTLs and sleep timers (``30m``, ``2h``, ``1d``), and Go's format.

Pure; raises ``ValueError``.
"""

from __future__ import annotations

import re
from datetime import timedelta

# ---------------------------------------------------------------------------------------------
# Durations (TTLs)
# ---------------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?:(?P<w>[0-9]{1,6})w)?(?:(?P<d>[0-9]{1,6})d)?(?:(?P<h>[0-9]{1,7})h)?(?:(?P<m>[0-9]{1,9})m)?(?:(?P<s>[0-9]{1,10})s)?"
)
DURATION_PATTERN = re.sub(r"\?P<\w+>", "", _DURATION.pattern)
"""The duration grammar as a portable regular expression (used in the JSON Schema)."""
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``30m``, ``2h``, ``1d``, ``1w`` or ``1h30m`` into a positive timedelta.

    Units, largest first, each at most once: w (weeks), d (days), h (hours), m (minutes), s (seconds).
    Raises ``ValueError`` for anything else, for zero and for durations too long to represent.
    """
    match = _DURATION.fullmatch(text) if text else None
    if not match:
        raise ValueError(
            "is not a duration: expected a number and a unit, such as 30m, 2h, 1d or 1h30m (units w, d, h, m, s)"
        )
    parts = {_DURATION_UNITS[k]: int(v) for k, v in match.groupdict().items() if v}
    try:
        duration = timedelta(**parts)
    except OverflowError:
        raise ValueError("is too long a duration") from None
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest text ``parse_duration`` reads back as ``duration`` (whole seconds): ``90m`` -> ``1h30m``."""
    seconds = int(duration.total_seconds())
    out = ""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def go_duration(duration: timedelta) -> str:
    """``duration`` in Go's ``time.ParseDuration`` syntax (hours, minutes, seconds only): ``1d`` -> ``24h``.

    Tools written in Go (the vcluster chart's ``sleep.auto.afterInactivity``) know no ``d`` or ``w`` unit.
    """
    seconds = int(duration.total_seconds())
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"
