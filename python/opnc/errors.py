"""The exception hierarchy of opnc.

Every error raised by opnc derives from :class:`opnc.Error`. Classes also derive from the fitting
built-in exception, so ``except ConnectionError`` or ``except ValueError`` work as expected.
The C++ core reports errors as values with a ``kind``; the bindings raise the class registered for
that kind in :data:`KIND_TO_CLASS` (one translator, in ``bindings/errors.cpp``).

No error message, attribute or ``repr`` ever contains a secret.
"""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """Base class of all opnc errors.

    Attributes: ``kind`` (stable identifier, e.g. ``"invalid_input"``), ``message``, ``hint`` (what
    to do about it), ``step`` (the exchange step, or ``""``), ``http_status`` (0 when none),
    ``server_id`` (the server's error identifier) and ``server_message``.
    """

    kind = "internal"

    def __init__(
        self,
        message: str = "",
        *,
        hint: str = "",
        step: str = "",
        http_status: int = 0,
        server_id: str = "",
        server_message: str = "",
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.step = step
        self.http_status = http_status
        self.server_id = server_id
        self.server_message = server_message
        if kind is not None:
            self.kind = kind

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" Hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data (what ``--json`` prints under ``error``)."""
        return {
            "kind": self.kind,
            "step": self.step,
            "message": self.message,
            "hint": self.hint,
            "http_status": self.http_status,
            "server_id": self.server_id,
        }


class InvalidInput(Error, ValueError):
    """The caller's input is invalid; nothing was sent to any server."""

    kind = "invalid_input"


class ConnectionFailed(Error, ConnectionError):
    """A server could not be reached, or the connection broke."""

    kind = "connection_failed"


class TlsError(ConnectionFailed):
    """The TLS handshake or certificate check failed."""

    kind = "tls"


class Timeout(ConnectionFailed, TimeoutError):
    """A server did not answer in time."""

    kind = "timeout"


class ResponseTooLarge(Error):
    """A server answered with more data than opnc accepts."""

    kind = "too_large"


class AuthenticationFailed(Error, PermissionError):
    """A server refused the credentials (HTTP 401)."""

    kind = "unauthenticated"


class PermissionDenied(Error, PermissionError):
    """The credentials are valid but not allowed to do this (for example not an administrator)."""

    kind = "forbidden"


class NotFound(Error, LookupError):
    """A resource or route does not exist."""

    kind = "not_found"


class Conflict(Error):
    """The server's state conflicts with the request (for example a name already taken)."""

    kind = "conflict"


class ValidationFailed(Error, ValueError):
    """The server refused the values sent (HTTP 400 or 422)."""

    kind = "validation"


class ServerError(Error):
    """The server failed (HTTP 5xx)."""

    kind = "server_error"


class ProtocolError(Error):
    """An answer that does not follow the server's contract (unexpected JSON, status or redirect)."""

    kind = "protocol"


class UnsupportedVersion(Error):
    """A server version opnc cannot work with."""

    kind = "unsupported_version"


class EnterpriseRequired(Error):
    """OpenProject refuses Two-way OAuth 2.0 without an Enterprise token."""

    kind = "enterprise_required"


class PreflightFailed(Error):
    """A read-only check before any change failed; nothing was changed."""

    kind = "preflight_failed"


class ConfirmationRequired(Error):
    """The only way forward destroys something; an explicit option allows it (see ``hint``)."""

    kind = "confirmation_required"


class InProgress(Error):
    """Another run holds the lock of this integration."""

    kind = "in_progress"


class JournalError(Error):
    """The journal of an integration cannot be read or written."""

    kind = "journal"


class VerifyFailed(Error):
    """The integration exists but a consistency or credential check failed."""

    kind = "verify_failed"


class OAuthError(Error):
    """An OAuth 2.0 error answer; ``server_id`` holds the RFC 6749 error code."""

    kind = "oauth"


class Aborted(Error):
    """The operation was interrupted."""

    kind = "aborted"


class InternalError(Error):
    """A bug in opnc."""

    kind = "internal"


KIND_TO_CLASS: dict[str, type[Error]] = {
    cls.kind: cls
    for cls in (
        InvalidInput, ConnectionFailed, TlsError, Timeout, ResponseTooLarge, AuthenticationFailed,
        PermissionDenied, NotFound, Conflict, ValidationFailed, ServerError, ProtocolError,
        UnsupportedVersion, EnterpriseRequired, PreflightFailed, ConfirmationRequired, InProgress,
        JournalError, VerifyFailed, OAuthError, Aborted, InternalError,
    )
}


def from_core(kind: str, message: str, hint: str, step: str, http_status: int, server_id: str,
              server_message: str) -> Error:
    """Builds the exception for an error reported by the core (called by the bindings' translator)."""
    cls = KIND_TO_CLASS.get(kind, InternalError)
    return cls(message, hint=hint, step=step, http_status=http_status, server_id=server_id,
               server_message=server_message, kind=kind)


__all__ = [name for name, value in globals().items()
           if isinstance(value, type) and issubclass(value, Error)] + ["KIND_TO_CLASS", "from_core"]
