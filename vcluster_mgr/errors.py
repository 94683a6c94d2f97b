"""One error tree for the whole package: every error vcluster-mgr raises on purpose is a ``VcmError``.

Only the ``cli`` package turns these into messages and exit codes: a ``SpecError`` or ``UsageError`` (bad
input) exits 2, every other ``VcmError`` exits 1. Lower layers raise them with ``raise ... from exc`` so the
cause is kept; nothing below the CLI prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass


class VcmError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class FieldError:
    """One problem in one file, at one dotted path (``spec.owners[1].role``)."""

    path: str
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}"


class SpecError(VcmError):
    """A tenant spec or admin policy is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid spec")


class UsageError(VcmError):
    """The command line asked for something impossible."""

    exit_code = 2


class ToolchainError(VcmError):
    """A binary the engine needs could not be found or built."""


class LocalClusterError(VcmError):
    """The built-in local host cluster could not be started, found or stopped."""


class ProvisionError(VcmError):
    """Pulumi could not bring a tenant to the desired state."""


class ProtectedError(ProvisionError):
    """A tenant under deletion protection was asked to be deleted without the override."""


class RenderError(VcmError):
    """A template could not be rendered, or rendered something the blueprint does not allow (a template bug)."""


class VerifyError(VcmError):
    """A verification could not run at all (cluster unreachable, no owner to act as, no impersonation)."""


class ClusterError(VcmError):
    """A request to a Kubernetes API server failed. Raised only by ``vcluster_mgr.cluster``, whose funnel
    turns the client library's exceptions into this tree, so callers never see (or catch) the library's own.

    ``server`` is the API server's URL, ``status`` the HTTP status it answered (None: no answer at all) and
    ``detail`` the server's own message (its ``Status.message``), kept apart so a caller can quote it.
    """

    def __init__(self, message: str, *, server: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.server = server
        self.status = status
        self.detail = detail


class NotFoundError(ClusterError):
    """The object (or its namespace, or its kind) does not exist on the server (HTTP 404)."""


class ForbiddenError(ClusterError):
    """The server refused the request for these credentials: RBAC, an admission policy, impersonation (403)."""


class ConflictError(ClusterError):
    """The object already exists, or changed since it was read (HTTP 409)."""


class TooManyRequestsError(ClusterError):
    """The server kept answering 429 (API Priority and Fairness, or an eviction budget) after every retry."""


class UnreachableError(ClusterError):
    """No answer from the server: refused, reset, timed out, or a TLS failure. The message names the server."""


class NoAnswerError(UnreachableError):
    """The server took the connection and the request, then answered nothing in time (a read timeout): unlike a
    refused or unroutable connection, it is there and not serving, which a health check must tell apart."""
