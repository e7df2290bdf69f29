"""Validation of storage writes (contract/openproject.md §4.1 to §4.3, §6), in upstream's order:
name, host format, secure context, the live Nextcloud probe, the authentication method, the storage
audience, automatic management with the live application-password check, then uniqueness of host
and name. Messages are the English full messages (attribute label plus text) of upstream's locales.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opnc.sandbox.openproject_errors import PropertyError
from opnc.sandbox.openproject_model import (
    APPLICATION_PASSWORD_SINCE, AUTHENTICATION_METHOD_URNS, LATER_FIELDS_SINCE, MAX_LENGTH, NEXTCLOUD_TYPE,
    OAUTH2_SSO, SSO_FIELDS_SINCE, TWO_WAY_OAUTH2, Settings, Storage)
from opnc.sandbox.openproject_probes import NextcloudProbe

ENGLISH_MESSAGES = {
    ("name", "blank"): "Name can't be blank.",
    ("name", "too_long"): "Name is too long (maximum is 255 characters).",
    ("name", "taken"): "Name has already been taken.",
    ("providerType", "inclusion"): "Provider type is not set to one of the allowed values.",
    ("host", "invalid_host_url"): "Host is not a valid URL.",
    ("host", "too_long"): "Host is too long (maximum is 255 characters).",
    ("host", "invalid_url"): "Host is not a valid URL.",
    ("host", "url_not_secure_context"):
        'Host is not providing a "Secure Context". Either use HTTPS or a loopback address, such as localhost.',
    ("host", "cannot_be_connected_to"): "Host can not be connected to.",
    ("host", "not_nextcloud_server"): "Host is not a Nextcloud server",
    ("host", "minimal_nextcloud_version_unmet"):
        "Host does not meet minimal version requirements (must be Nextcloud 23 or higher)",
    ("host", "op_application_not_installed"):
        'Host appears to not have the app "OpenProject integration" installed. Please install it first and '
        "then try again.",
    ("host", "authorization_header_missing"):
        'Host is not fully set up. The Nextcloud instance does not receive the "Authorization" header, which is '
        "necessary for a Bearer token based authorization of API requests. Please double check your HTTP server "
        "configuration.",
    ("host", "taken"): "Host has already been taken.",
    ("authenticationMethod", "enterprise_plan_required"):
        "Authentication method is only available in the Enterprise Corporate plan.",
    ("storageAudience", "blank"): "Storage audience can't be blank.",
    ("password", "blank"): "Password can't be blank.",
    ("password", "invalid_password"): "Password is not valid.",
    ("password", "unknown_error"):
        "Password could not be validated. Please check your storage connection and try again.",
    ("clientId", "blank"): "Client ID can't be blank.",
    ("clientId", "too_long"): "Client ID is too long (maximum is 255 characters).",
    ("clientSecret", "blank"): "Client secret can't be blank.",
    ("clientSecret", "too_long"): "Client secret is too long (maximum is 255 characters).",
}


def property_error(attribute: str, key: str) -> PropertyError:
    return PropertyError(attribute, key, ENGLISH_MESSAGES[(attribute, key)])


def is_secure_context(host: str) -> bool:
    """https, localhost, *.localhost or a loopback IP literal (upstream SecureContextUriValidator)."""
    parts = urlsplit(host)
    if parts.scheme == "https":
        return True
    name = parts.hostname or ""
    if name == "localhost" or name.rstrip(".").endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_valid_host_url(host: str) -> bool:
    """An absolute http(s) URL with a host name and a valid port (the url validator's job)."""
    if any(ch.isspace() for ch in host):
        return False
    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass
class StorageChanges:
    """What a POST or PATCH body asks for; a field is None when the body does not set it."""

    name: str | None = None
    name_given: bool = False
    host: str | None = None
    provider_type: str | None = None
    authentication_method: str | None = None
    storage_audience: str | None = None
    storage_audience_given: bool = False
    token_exchange_scope: str | None = None
    token_exchange_scope_given: bool = False
    forbidden_file_name_characters: str | None = None
    application_password: str | None = field(default=None, repr=False)
    application_password_given: bool = False


def _href(links: dict[str, Any], name: str) -> str | None:
    link = links.get(name)
    if isinstance(link, dict):
        href = link.get("href")
        if isinstance(href, str):
            return href
    return None


def as_text(value: Any) -> str | None:
    """A JSON value as the string the Rails model would store (null stays None)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def parse_changes(body: Any, settings: Settings) -> StorageChanges:
    """The write model of §3.1. Fields the configured version does not know are ignored."""
    changes = StorageChanges()
    if "name" in body:
        changes.name_given = True
        changes.name = as_text(body["name"])
    if "applicationPassword" in body and settings.version >= APPLICATION_PASSWORD_SINCE:
        changes.application_password_given = True
        changes.application_password = as_text(body["applicationPassword"])
    links = body.get("_links") if isinstance(body.get("_links"), dict) else {}
    origin = _href(links, "origin")
    if origin is not None and origin.strip():
        changes.host = origin.rstrip("/")  # upstream: gsub(/\/+$/, "")
    changes.provider_type = _href(links, "type")
    if settings.version >= SSO_FIELDS_SINCE:
        method = _href(links, "authenticationMethod")
        changes.authentication_method = AUTHENTICATION_METHOD_URNS.get(method or "")
        if "storageAudience" in body:
            changes.storage_audience_given = True
            changes.storage_audience = as_text(body["storageAudience"])
    if settings.version >= LATER_FIELDS_SINCE:
        if "tokenExchangeScope" in body:
            changes.token_exchange_scope_given = True
            changes.token_exchange_scope = as_text(body["tokenExchangeScope"])
        if isinstance(body.get("forbiddenFileNameCharacters"), str):
            changes.forbidden_file_name_characters = body["forbiddenFileNameCharacters"]
    return changes


def validate_storage(draft: Storage, host_changed: bool, method_changed: bool, password_changed: bool,
                     settings: Settings, probe: NextcloudProbe) -> list[PropertyError]:
    """Every check up to (not including) uniqueness, in upstream's order, on the storage as it would
    be after the write. The live checks run only for a changed host or password (§4.2, §4.3)."""
    errors: list[PropertyError] = []
    if not draft.name or not draft.name.strip():
        errors.append(property_error("name", "blank"))
    elif len(draft.name) > MAX_LENGTH:
        errors.append(property_error("name", "too_long"))
    if draft.provider_type != NEXTCLOUD_TYPE:
        errors.append(property_error("providerType", "inclusion"))

    host_errors_before = len(errors)
    host = draft.host or ""
    if not is_valid_host_url(host):
        errors.append(property_error("host", "invalid_host_url"))
    elif len(host) > MAX_LENGTH:
        errors.append(property_error("host", "too_long"))
    if host_changed and len(errors) == host_errors_before and not is_secure_context(host):
        errors.append(property_error("host", "url_not_secure_context"))
    if host_changed and len(errors) == host_errors_before:
        key = probe.capabilities_error(host)
        if key:
            errors.append(property_error("host", key))
        elif not errors:  # the config check runs only when nothing at all failed so far
            key = probe.config_check_error(host)
            if key:
                errors.append(property_error("host", key))

    if method_changed:
        sso = draft.authentication_method == OAUTH2_SSO
        two_way_refused = (draft.authentication_method == TWO_WAY_OAUTH2
                           and settings.two_way_requires_enterprise)
        if (sso or two_way_refused) and not settings.enterprise:
            errors.append(property_error("authenticationMethod", "enterprise_plan_required"))
    if draft.authentication_method == OAUTH2_SSO and not draft.storage_audience:
        errors.append(property_error("storageAudience", "blank"))

    # Upstream checks the password whenever a host is present, even a refused one; a host that is
    # not a URL at all cannot be requested, so the emulator skips the check only then.
    if draft.automatic_management_enabled and password_changed and draft.host \
            and not any(e.key == "invalid_host_url" for e in errors):
        key = probe.application_password_error(draft.host, draft.username, draft.password or "")
        if key:
            errors.append(property_error("password", key))
    return errors


def uniqueness_errors(draft: Storage, storages: list[Storage]) -> list[PropertyError]:
    """`taken` errors against the other storages (step 7 of §4.1): host first, then name."""
    errors: list[PropertyError] = []
    others = [s for s in storages if s.id != draft.id]
    if draft.host and any(s.host == draft.host for s in others):
        errors.append(property_error("host", "taken"))
    if draft.name and any(s.name == draft.name for s in others):
        errors.append(property_error("name", "taken"))
    return errors
