"""What a long run reports about each tenant while it works: typed events, one vocabulary for the sender
(``workspace``: the engine's events, a worker's start and end) and the receiver (the CLI's live lines).

Pure data, no imports of ours: events cross from worker processes over a queue, so they pickle, and both
sides name a kind by its enum member rather than spelling the same string twice.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable


class Kind(enum.Enum):
    """What an event says about its tenant."""

    #: the tenant's run began; ``text`` is the action (apply, plan, delete, verify, ...)
    STARTED = "started"
    #: one change the engine is making, as a line (``create NetworkPolicy networkpolicy:ns/name``)
    STEP = "step"
    #: the engine finished one resource of the program (created, updated, deleted or unchanged)
    RESOURCE_DONE = "resource done"
    #: the engine read one live object before an update (its refresh)
    RESOURCE_READ = "resource read"
    #: a message for the user that is not a step of the run (a dead run's lock removed); ``text`` is it
    NOTICE = "notice"
    #: something failed; ``text`` is the message (the engine's own, or why it never ran)
    ERROR = "error"
    #: the tenant's run ended well
    DONE = "done"
    #: the tenant's run ended in failure
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Event:
    """One report about a tenant; ``text`` is empty for the kinds that carry none."""

    kind: Kind
    text: str = ""

    def line(self) -> str:
        """The event as one line of text, as ``--verbose`` prints it and an outcome's steps keep it."""
        if self.kind in (Kind.STEP, Kind.NOTICE):
            return self.text
        if self.kind is Kind.STARTED:
            return f"{self.text} started"
        if self.kind is Kind.ERROR:
            return f"error: {self.text}"
        return str(self.kind.value)


def started(action: str) -> Event:
    """The start of ``action`` for a tenant."""
    return Event(Kind.STARTED, action)


def step(text: str) -> Event:
    """One change the engine is making."""
    return Event(Kind.STEP, text)


def notice(message: str) -> Event:
    """A message for the user, printed by every view but the quiet one."""
    return Event(Kind.NOTICE, message)


def error(message: str) -> Event:
    """A failure, with its message."""
    return Event(Kind.ERROR, message)


def finished(ok: bool) -> Event:
    """The end of a tenant's run: ``DONE`` or ``FAILED``."""
    return DONE if ok else FAILED


RESOURCE_DONE = Event(Kind.RESOURCE_DONE)
RESOURCE_READ = Event(Kind.RESOURCE_READ)
DONE = Event(Kind.DONE)
FAILED = Event(Kind.FAILED)

Callback = Callable[[str, Event], None]
"""Where a run sends its events: ``callback(tenant, event)``."""
