"""Validation of the ``values`` of ``/setup`` in the order and wording of each app version (§3, §4).

Three dialects exist: 2.2.0 to 2.8.x (``OpenProjectAPIService::validateIntegrationSetupInformation``),
2.9.0 to 3.1.1 (``SettingsService::validateAdminSettingsForm``, the observed one) and 3.2.0-dev
(HEAD, with descriptive messages). Each raises :class:`InvalidSettings` with the exact message of
the release; the caller answers ``400 {"error": message}``.
"""

from __future__ import annotations

from typing import Any

from opnc.sandbox.nextcloud_http import is_valid_openproject_url
from opnc.sandbox.nextcloud_versions import AppVersion

OAUTH2 = "oauth2"
OIDC = "oidc"
NEXTCLOUD_HUB = "nextcloud_hub"
EXTERNAL = "external"
NEXTCLOUD_HUB_LABEL = "Nextcloud Hub"

# Setting -> expected type: "string", "boolean", or the tuple of allowed enum values.
GENERAL_SETTINGS: dict[str, Any] = {
    "openproject_instance_url": "string",
    "authorization_method": (OAUTH2, OIDC),
    "default_enable_navigation": "boolean",
    "default_enable_unified_search": "boolean",
    "setup_project_folder": "boolean",
    "setup_app_password": "boolean",
}
OAUTH_SETTINGS: dict[str, Any] = {
    "openproject_client_id": "string",
    "openproject_client_secret": "string",
}
OIDC_SETTINGS: dict[str, Any] = {
    "sso_provider_type": (NEXTCLOUD_HUB, EXTERNAL),
    "oidc_provider": "string",
    "targeted_audience_client_id": "string",
    "token_exchange": "boolean",
}
ALL_SETTINGS: dict[str, Any] = {**GENERAL_SETTINGS, **OAUTH_SETTINGS, **OIDC_SETTINGS}
ACTION_FLAGS = ("setup_project_folder", "setup_app_password")

# The seven keys of 2.2.0 to 2.8.x (no authorization_method, no OIDC).
LEGACY_SETTINGS: dict[str, Any] = {
    "openproject_instance_url": "string",
    "openproject_client_id": "string",
    "openproject_client_secret": "string",
    "default_enable_navigation": "boolean",
    "default_enable_unified_search": "boolean",
    "setup_project_folder": "boolean",
    "setup_app_password": "boolean",
}


class InvalidSettings(Exception):
    """A validation failure; ``str(exc)`` is the exact ``error`` text of the release."""


def php_type(value: Any) -> str:
    """PHP's gettype() of a decoded JSON value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "array"


def php_loose_in(value: Any, allowed: tuple[str, ...]) -> bool:
    """PHP 8 ``in_array($value, $allowed)`` (loose ==) against non-numeric strings."""
    if value is True:
        return True  # true == "oauth2"
    return isinstance(value, str) and value in allowed


def has_valid_type(value: Any, expected: Any, version: AppVersion) -> bool:
    if isinstance(expected, tuple):
        if version.strict_enums:
            return isinstance(value, str) and value in expected
        return php_loose_in(value, expected)
    return php_type(value) == expected


def is_empty(values: Any) -> bool:
    """PHP's ``!$values`` for the controller's ``?array $values``: null or an empty array."""
    return values is None or values == {} or values == []


def as_php_array(values: Any) -> dict[str, Any] | None:
    """The controller argument: JSON objects and lists are PHP arrays, anything else is no array."""
    if isinstance(values, dict):
        return values
    if isinstance(values, list):
        return {str(index): item for index, item in enumerate(values)}
    return None


# --- 2.9.0 to 3.1.1 --------------------------------------------------------------------------------

def _validate_settings_service(values: dict[str, Any] | None, complete: bool, version: AppVersion) -> None:
    if is_empty(values):
        raise InvalidSettings("The data is not a valid JSON.")
    assert values is not None
    given = list(values)
    if complete:
        if "authorization_method" not in given:
            raise InvalidSettings("'authorization_method' setting is missing")
        method = values["authorization_method"]
        if not has_valid_type(method, (OAUTH2, OIDC), version):
            raise InvalidSettings("Invalid authorization method")
        skip: list[str] = []
        if method == OIDC:
            required = [*GENERAL_SETTINGS, *OIDC_SETTINGS]
            if "sso_provider_type" not in values:
                raise InvalidSettings("Incomplete settings: 'sso_provider_type' is required with 'oidc' method")
            if values["sso_provider_type"] == NEXTCLOUD_HUB:
                skip += ["oidc_provider", "token_exchange"]
            elif values["sso_provider_type"] == EXTERNAL:
                if "token_exchange" not in values:
                    raise InvalidSettings("Incomplete settings: 'token_exchange' is required with external provider")
                if values["token_exchange"] is False:
                    skip.append("targeted_audience_client_id")
        else:
            required = [*GENERAL_SETTINGS, *OAUTH_SETTINGS]
        for key in required:
            if key not in skip and key not in given:
                raise InvalidSettings("invalid key")
        for key in given:
            if key not in required:
                raise InvalidSettings("invalid key")
        folder, password = values["setup_project_folder"], values["setup_app_password"]
        if (folder is True and password is False) or (folder is False and password is True):
            raise InvalidSettings("invalid data")
    else:
        for key in given:
            if key not in ALL_SETTINGS:
                raise InvalidSettings("invalid key")
    for key, value in values.items():
        if not has_valid_type(value, ALL_SETTINGS[key], version) or value == "":
            raise InvalidSettings("invalid data")
        if key == "openproject_instance_url" and not is_valid_openproject_url(value):
            raise InvalidSettings("invalid data")


# --- 3.2.0-dev (HEAD) ------------------------------------------------------------------------------

def _validate_head(values: dict[str, Any] | None, complete: bool, version: AppVersion) -> None:
    if is_empty(values):
        raise InvalidSettings("Invalid settings.")
    assert values is not None
    for key in values:
        if key not in ALL_SETTINGS:
            raise InvalidSettings(f"Unknown setting: {key}")
    if complete:
        for key in ("openproject_instance_url", "authorization_method"):
            if key not in values:
                raise InvalidSettings(f"Missing required field: {key}")
        method = values["authorization_method"]
        if not has_valid_type(method, (OAUTH2, OIDC), version):
            raise InvalidSettings("Invalid authorization method.")
        if method == OIDC:
            required = [key for key in GENERAL_SETTINGS if key != "openproject_instance_url"]
            required.append("sso_provider_type")
            if values.get("sso_provider_type") == NEXTCLOUD_HUB:
                required.append("targeted_audience_client_id")
            elif values.get("sso_provider_type") == EXTERNAL:
                required += ["oidc_provider", "token_exchange"]
                if values.get("token_exchange") is True:
                    required.append("targeted_audience_client_id")
        else:
            required = [key for key in GENERAL_SETTINGS if key != "openproject_instance_url"]
            required += list(OAUTH_SETTINGS)
        for key in required:
            if key not in values:
                raise InvalidSettings(f"Missing required field: {key}")
        folder, password = values["setup_project_folder"], values["setup_app_password"]
        if (folder is True and password is False) or (folder is False and password is True):
            raise InvalidSettings('Invalid team folder setup configuration: Both "setup_project_folder" and '
                                  '"setup_app_password" must be either true or false.')
    for key, value in values.items():
        if not has_valid_type(value, ALL_SETTINGS[key], version) or value == "":
            raise InvalidSettings(f"Invalid value for setting: {key}")
        if key == "openproject_instance_url" and not is_valid_openproject_url(value):
            raise InvalidSettings("Invalid OpenProject URL.")


# --- 2.2.0 to 2.8.x --------------------------------------------------------------------------------

def _validate_legacy(values: dict[str, Any] | None, complete: bool, version: AppVersion) -> None:
    if is_empty(values):
        raise InvalidSettings("The data is not a valid JSON.")
    assert values is not None
    if complete:
        for key in LEGACY_SETTINGS:
            if key not in values:
                raise InvalidSettings("invalid key")
        folder, password = values["setup_project_folder"], values["setup_app_password"]
        if (folder is True and password is False) or (folder is False and password is True):
            raise InvalidSettings("invalid data")
    else:
        for key in values:
            if key not in LEGACY_SETTINGS:
                raise InvalidSettings("invalid key")
    for key, value in values.items():
        # An unknown key on POST is not rejected; it is only checked like a string setting.
        expected = LEGACY_SETTINGS.get(key, "string")
        if php_type(value) != expected or value == "":
            raise InvalidSettings("invalid data")
        if key == "openproject_instance_url" and not is_valid_openproject_url(value):
            raise InvalidSettings("invalid data")


def validate(values: dict[str, Any] | None, complete: bool, version: AppVersion) -> None:
    """Raise InvalidSettings for `values` of a POST (complete=True) or a PATCH (complete=False)."""
    if version.has_new_error_messages:
        _validate_head(values, complete, version)
    elif version.has_authorization_method:
        _validate_settings_service(values, complete, version)
    else:
        _validate_legacy(values, complete, version)
