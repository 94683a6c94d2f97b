"""Attempts and verdicts: how one refused or accepted request is classified, and how several combine. Pure.

A probe that must be refused differs from an accepted control in exactly one property, so a refusal is
attributable to that property; when the control itself is refused the check says ``error`` (it cannot be
judged) rather than ``pass``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vcluster_mgr.verify import catalogue

# ---------------------------------------------------------------------------------------------
# Attempts, verdicts and their classification (pure)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One request sent as the owner: what it was, and whether the API server accepted it."""

    what: str
    allowed: bool
    status: int | None = None
    message: str = ""

    @property
    def refused(self) -> bool:
        """Refused by authorization or admission (403, or 422 from an admission policy or webhook).

        Other answers (404, 409, a 422 from plain validation, 5xx) mean the probe itself was wrong or the
        cluster failed, so they never count as a refusal.
        """
        if self.allowed:
            return False
        if self.status == 403:
            return True
        return self.status == 422 and any(m in self.message for m in ("ValidatingAdmissionPolicy", "admission webhook"))


Verdict = tuple[catalogue.Result, str]


def refused_by(message: str) -> str:
    """Which layer refused a request, from the API server's message."""
    if "violates PodSecurity" in message:
        return "Pod Security admission"
    if "ValidatingAdmissionPolicy '" in message:
        name = message.split("ValidatingAdmissionPolicy '", 1)[1].split("'", 1)[0]
        return f"admission policy {name}"
    if "exceeded quota" in message or "status unknown for quota" in message:
        return "ResourceQuota"
    if "attempting to grant RBAC permissions not currently held" in message or "escalat" in message:
        return "RBAC escalation prevention"
    if " cannot " in message and "resource" in message:
        return "RBAC"
    if "admission webhook" in message:
        return "admission webhook"
    return "the API server"


def short_message(message: str) -> str:
    """A refusal message without the leading ``pods "x" is forbidden:`` and cut to a readable length."""
    for marker in (" is forbidden: ", " is invalid: "):
        if marker in message:
            message = message.split(marker, 1)[1]
            break
    message = " ".join(message.split())
    return message if len(message) <= 300 else message[:297] + "..."


def refusal_summary(what: str, attempts: Sequence[Attempt]) -> str:
    """One line for probes refused alike in several namespaces: who refused, and the first message."""
    layers = sorted({refused_by(a.message) for a in attempts})
    first = short_message(attempts[0].message) if attempts else ""
    return f"{what}: refused in {len(attempts)} namespace(s) by {', '.join(layers)} ({first})"


def must_refuse(attempt: Attempt, control: Attempt | None = None) -> Verdict:
    """A probe that must be refused; ``control`` is the same request without the bad property."""
    if attempt.allowed:
        return "fail", f"{attempt.what}: ACCEPTED"
    if not attempt.refused:
        return "error", f"{attempt.what}: unexpected answer {attempt.status}: {short_message(attempt.message)}"
    if control is not None and not control.allowed:
        return "error", (
            f"{attempt.what}: refused, but so was the compliant control ({control.what}: "
            f"{short_message(control.message)}), so the refusal proves nothing"
        )
    return "pass", f"{attempt.what}: refused by {refused_by(attempt.message)} ({short_message(attempt.message)})"


def must_allow(attempt: Attempt) -> Verdict:
    """A request the owner must be able to make."""
    if attempt.allowed:
        return "pass", f"{attempt.what}: accepted"
    if attempt.refused:
        return "fail", f"{attempt.what}: refused by {refused_by(attempt.message)} ({short_message(attempt.message)})"
    return "error", f"{attempt.what}: unexpected answer {attempt.status}: {short_message(attempt.message)}"


def combine(verdicts: Sequence[Verdict], summary: str | None = None) -> Verdict:
    """One result for many verdicts: any fail fails, else any error errors, else pass.

    The detail lists what did not pass, one line each; for a pass it is ``summary`` if given, else the
    passing lines.
    """
    if not verdicts:
        return "error", "nothing was checked"
    results = {r for r, _ in verdicts}
    result: catalogue.Result = "fail" if "fail" in results else "error" if "error" in results else "pass"
    if result == "pass" and summary is not None:
        return result, summary
    lines = [text for r, text in verdicts if r != "pass"] if result != "pass" else [t for _, t in verdicts]
    return result, "\n".join(dict.fromkeys(lines))
