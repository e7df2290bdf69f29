"""The data of the emulated OpenProject's file storages (contract/openproject.md §3, §8, §10, §13)
and the constants and version gates they are rendered with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

TYPE_URN_PREFIX = "urn:openproject-org:api:v3:storages:"
NEXTCLOUD_TYPE = TYPE_URN_PREFIX + "Nextcloud"
AUTH_URN_PREFIX = TYPE_URN_PREFIX + "authenticationMethod:"
TWO_WAY_OAUTH2 = "two_way_oauth2"
OAUTH2_SSO = "oauth2_sso"
# The fallback method upstream defines is disabled ("temporarily removed"), so its URN is unknown
# and ignored like any other unknown href.
AUTHENTICATION_METHOD_URNS = {
    AUTH_URN_PREFIX + "TwoWayOAuth2": TWO_WAY_OAUTH2,
    AUTH_URN_PREFIX + "OAuth2SSO": OAUTH2_SSO,
}
AUTHORIZATION_STATE_PREFIX = TYPE_URN_PREFIX + "authorization:"
AUTHORIZATION_STATE_TITLES = {"Connected": "Connected", "FailedAuthorization": "Authorization failed",
                              "Error": "Error", "NotConnected": "Not connected"}
DEFAULT_FORBIDDEN_CHARACTERS = '<>:"/\\|?*'
DEFAULT_STORAGE_USERNAME = "OpenProject"
REDIRECT_PATH = "index.php/apps/integration_openproject/oauth-redirect"
MAX_LENGTH = 255

# Version gates (contract §14). 16.0.0 brought OAuth2SSO, storageAudience and the
# authenticationMethod link. The release of the "later" fields is unverified; one constant
# keeps that guess in one place.
APPLICATION_PASSWORD_SINCE = (13, 0, 0)  # ≈13.0, automatically managed folders through the API
SSO_FIELDS_SINCE = (16, 0, 0)
LATER_FIELDS_SINCE = (16, 1, 0)


def iso8601(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_version(text: str) -> tuple[int, int, int]:
    """A version as three numbers, so versions compare numerically ("16.0" and "16.0.0-rc1" give
    (16, 0, 0))."""
    numbers = [int(m.group()) if (m := re.match(r"\d+", piece)) else 0 for piece in text.split(".")[:3]]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


@dataclass
class NextcloudUserToken:
    """A user's Nextcloud tokens held by OP (OP as OAuth client of Nextcloud, contract §13)."""

    user_id: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    updated_at: float


@dataclass
class OAuthClient:
    """The Nextcloud OAuth client stored in OP (POST .../oauth_client_credentials)."""

    id: int
    client_id: str
    client_secret: str = field(repr=False)
    storage_id: int
    created_at: float
    updated_at: float
    user_tokens: dict[int, NextcloudUserToken] = field(default_factory=dict)


@dataclass
class ProjectStorage:
    id: int
    storage_id: int
    project_id: int
    project_name: str
    project_folder_mode: str
    creator_id: int
    created_at: float
    updated_at: float


@dataclass
class Storage:
    id: int
    name: str
    host: str | None
    provider_type: str
    authentication_method: str
    creator_id: int
    created_at: float
    updated_at: float
    storage_audience: str | None = None
    token_exchange_scope: str | None = None
    forbidden_file_name_characters: str = DEFAULT_FORBIDDEN_CHARACTERS
    username: str = DEFAULT_STORAGE_USERNAME
    password: str | None = field(default=None, repr=False)
    oauth_application_id: int | None = None

    @property
    def automatic_management_enabled(self) -> bool:
        return bool(self.password)


@dataclass
class Caller:
    """The authenticated user as the storages need it."""

    id: int
    name: str
    admin: bool
    active: bool
    anonymous: bool = False

    @property
    def may_manage_storages(self) -> bool:
        return self.admin and self.active and not self.anonymous


@dataclass
class Settings:
    """The parts of the OpenProject config the storages depend on (read at each request)."""

    version: tuple[int, int, int]
    enterprise: bool
    two_way_requires_enterprise: bool
