"""OpenProject's HAL error model (contract/openproject.md §11), as the emulator renders it.

Every API v3 error is a ``_type: "Error"`` object with an ``errorIdentifier`` URN and an English
``message``. Validation failures are ``PropertyConstraintViolation`` objects naming the API property
in ``_embedded.details.attribute``; several of them are wrapped in one ``MultipleErrors`` (one error
stays unwrapped, like upstream's ``MultipleErrors.create_if_many``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opnc.sandbox.app import Response

HAL_JSON = "application/hal+json; charset=utf-8"
ERROR_URN_PREFIX = "urn:openproject-org:api:v3:errors:"
# The realm upstream sends with 401 answers of API v3 (spec/requests/api/v3/authentication_spec.rb).
API_REALM = 'realm="OpenProject API"'


@dataclass(frozen=True)
class PropertyError:
    """One failed validation: the API property, the upstream error key and the full English message.

    The key is not rendered (upstream does not render it either); it is kept so the emulator's own
    code and tests can reason about which check failed.
    """

    attribute: str
    key: str
    message: str

    def to_hal(self) -> dict[str, Any]:
        return {
            "_type": "Error",
            "errorIdentifier": ERROR_URN_PREFIX + "PropertyConstraintViolation",
            "message": self.message,
            "_embedded": {"details": {"attribute": self.attribute}},
        }


def hal_error(status: int, identifier: str, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    body = {"_type": "Error", "errorIdentifier": ERROR_URN_PREFIX + identifier, "message": message}
    return Response.json(status, body, content_type=HAL_JSON, headers=headers)


def unauthenticated(scheme: str = "Basic", error: str | None = None) -> Response:
    """401 with the WWW-Authenticate challenge of the scheme the client tried (Basic when none)."""
    challenge = f"{scheme} {API_REALM}"
    if error:
        challenge += f', error="{error}"'
    return hal_error(401, "Unauthenticated", "You did not provide the correct credentials.",
                     headers=[("WWW-Authenticate", challenge)])


def missing_permission() -> Response:
    return hal_error(403, "MissingPermission", "You are not authorized to access this resource.")


def not_found() -> Response:
    return hal_error(404, "NotFound", "The requested resource could not be found.")


def invalid_request_body() -> Response:
    return hal_error(400, "InvalidRequestBody", "The request body was not a single JSON object.")


def invalid_query(message: str = "The query parameter 'filters' is missing or malformed.") -> Response:
    return hal_error(400, "InvalidQuery", message)


def missing_content_type() -> Response:
    # Grape's error! with the default JSON formatter; the contract accepts this or plain text.
    return Response.json(406, {"error": "Missing content-type header"})


def type_not_supported(actual: str) -> Response:
    return hal_error(
        415, "TypeNotSupported",
        f"Expected CONTENT-TYPE to be (application/json or application/hal+json) but got ({actual}).")


def constraint_violations(errors: list[PropertyError]) -> Response:
    """422 for one or more validation failures.

    Upstream iterates the ActiveModel errors attribute by attribute (in the order each attribute
    first failed), so errors of the same attribute stay together in ``MultipleErrors``.
    """
    if not errors:
        raise ValueError("constraint_violations needs at least one error")
    ordered: list[PropertyError] = []
    for attribute in dict.fromkeys(error.attribute for error in errors):
        ordered.extend(error for error in errors if error.attribute == attribute)
    if len(ordered) == 1:
        return Response.json(422, ordered[0].to_hal(), content_type=HAL_JSON)
    body = {
        "_type": "Error",
        "errorIdentifier": ERROR_URN_PREFIX + "MultipleErrors",
        "message": "Multiple field constraints have been violated.",
        "_embedded": {"errors": [error.to_hal() for error in ordered]},
    }
    return Response.json(422, body, content_type=HAL_JSON)
