"""The ``integration_openproject`` app: ``/setup`` POST/PATCH/DELETE, project folders, the app
password of user ``OpenProject``, the status routes and the revocation loop
(contract/nextcloud.md §3 to §10).

The control flow follows ``ConfigController`` of the configured release step by step (validation,
project-folder entities, app password, writing the settings, redirect-URI rewrite, revocation,
``fresh_project_folder_setup``, client recreation), because clients depend on the side effects of
each step, not only on the answers.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from opnc.sandbox.app import Response
from opnc.sandbox.nextcloud_accounts import (
    FULL_PERMISSIONS,
    NO_AUTOMATIC_FOLDERS_GROUP,
    OPENPROJECT_ENTITY,
    SYMBOLS,
    ALPHANUMERIC,
    Accounts,
    SecretLedger,
    digest,
    random_string,
)
from opnc.sandbox.nextcloud_http import is_valid_openproject_url, json_response, server_error_page
from opnc.sandbox.nextcloud_oauth2 import OAuth2
from opnc.sandbox.nextcloud_outbound import Outbound
from opnc.sandbox.nextcloud_settings import (
    ACTION_FLAGS,
    ALL_SETTINGS,
    LEGACY_SETTINGS,
    NEXTCLOUD_HUB,
    NEXTCLOUD_HUB_LABEL,
    OAUTH2,
    OIDC,
    EXTERNAL,
    InvalidSettings,
    as_php_array,
    validate,
)
from opnc.sandbox.nextcloud_versions import AppVersion

if TYPE_CHECKING:
    from opnc.sandbox.nextcloud import NextcloudConfig

NC_CLIENT_NAME = "OpenProject client"
APP_PASSWORD_NAME = "OpenProject"
# Per-user values of the app that hold a user's OpenProject OAuth session (clearUserInfo).
USER_TOKEN_KEYS = ("token", "login", "user_id", "user_name", "refresh_token", "token_expires_at")


class SetupConflict(Exception):
    """409: a project-folder entity exists (OpenprojectGroupfolderSetupConflictException)."""


class MissingUser(Exception):
    """404: the app password is requested but user OpenProject does not exist (NoUserException)."""


class SetupFailure(Exception):
    """500 with the message as ``error`` (any other exception of the controller)."""


@dataclass
class RevocationBatch:
    """The users' OpenProject tokens to revoke with the old client credentials (§5.3). Planned under
    the app's lock, sent after it is released: a real Nextcloud serves other requests meanwhile, and
    an OpenProject that calls back into this Nextcloud must not wait for the lock."""
    op_url: str
    client_id: str
    client_secret: str
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (user id, access token)


@dataclass
class SetupOutcome:
    status: bool
    revocations: RevocationBatch | None
    app_password: str | None


@dataclass
class PreparedAnswer:
    """A /setup answer that still needs the revocation calls; :meth:`Integration.finish` sends them
    and inserts ``openproject_revocation_status`` where upstream puts it."""
    body: dict[str, Any]
    revocations: RevocationBatch | None
    report_revocations: bool = True  # an OIDC PATCH sends them but does not say how they went
    failure: Response | None = None  # answered instead of `body`, after the revocations were sent


@dataclass
class IntegrationSettings:
    """App config of integration_openproject (``occ config:app:get integration_openproject …``)."""
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.values.get(key, "")


class Integration:
    """integration_openproject's admin side. Every public method runs under the app's lock except
    :meth:`is_valid_op_instance` and :meth:`finish`, which wait on the network and touch only the
    records of outbound calls."""

    def __init__(self, accounts: Accounts, oauth2: OAuth2, outbound: Outbound, ledger: SecretLedger,
                 version: Callable[[], AppVersion], options: Callable[[], "NextcloudConfig"],
                 ca_bundle: Callable[[], str | None]) -> None:
        self.accounts = accounts
        self.oauth2 = oauth2
        self.outbound = outbound
        self.ledger = ledger
        self._version = version
        self._options = options  # the current config (groupfolders, password length, ...)
        self._ca_bundle = ca_bundle
        self.settings = IntegrationSettings()
        self.user_values: dict[str, dict[str, str]] = {}  # uid -> the user's OpenProject tokens
        self.revocations: list[dict[str, Any]] = []
        self.probes: list[dict[str, Any]] = []
        self.terms_signed = False
        self._records_lock = threading.Lock()  # guards revocations and probes, sent without the app lock

    @property
    def version(self) -> AppVersion:
        return self._version()

    # --- routes ---------------------------------------------------------------------------------

    def post_setup(self, raw_values: Any) -> Response | PreparedAnswer:
        values = as_php_array(raw_values)
        if values is not None:
            values = dict(values)
            if self.version.has_authorization_method:
                values.setdefault("authorization_method", OAUTH2)
                if (values["authorization_method"] == OIDC and values.get("sso_provider_type") == NEXTCLOUD_HUB
                        and not values.get("oidc_provider")):
                    values["oidc_provider"] = NEXTCLOUD_HUB_LABEL
        return self._run(lambda: self._post(values))

    def patch_setup(self, raw_values: Any) -> Response | PreparedAnswer:
        values = as_php_array(raw_values)
        if values is not None and values.get("sso_provider_type") == NEXTCLOUD_HUB and not values.get("oidc_provider") \
                and self.version.has_authorization_method:
            values = {**values, "oidc_provider": NEXTCLOUD_HUB_LABEL}
        return self._run(lambda: self._patch(values))

    def delete_setup(self) -> Response | PreparedAnswer:
        if self.version.has_authorization_method:
            defaults: dict[str, Any] = {key: None for key in ALL_SETTINGS}
        else:
            # Up to 2.8.x the reset sent setup_app_password=false, which deletes the app password.
            defaults = {key: None for key in LEGACY_SETTINGS}
            defaults["setup_app_password"] = False
        try:
            outcome = self._set_integration_config(defaults)
        except (SetupConflict, MissingUser, SetupFailure) as exc:
            return json_response(500, {"error": str(exc)})
        return PreparedAnswer({"status": True}, outcome.revocations)

    def check_admin_config(self) -> Response:
        return json_response(200, {"config_status_without_project_folder": self.is_admin_config_ok(),
                                   "project_folder_setup_status": self.has_app_password()})

    def project_folder_status(self) -> Response:
        return json_response(200, {"result": self.project_folder_ready()})

    def sign_terms_of_service(self) -> Response:
        if self._options().terms_of_service and OPENPROJECT_ENTITY in self.accounts.users:
            self.terms_signed = True
        return json_response(200, {"result": self.all_terms_signed()})

    def openproject_url(self) -> str:
        return self.settings.get("openproject_instance_url")

    # --- POST / PATCH ---------------------------------------------------------------------------

    def _run(self, action: Callable[[], PreparedAnswer]) -> Response | PreparedAnswer:
        try:
            return action()
        except InvalidSettings as exc:
            return json_response(400, {"error": str(exc)})
        except SetupConflict as exc:
            return json_response(409, {"error": str(exc)})
        except MissingUser as exc:
            return json_response(404, {"error": str(exc)})
        except SetupFailure as exc:
            return json_response(500, {"error": str(exc)})

    def _post(self, values: dict[str, Any] | None) -> PreparedAnswer:
        validate(values, True, self.version)
        assert values is not None
        outcome = self._set_integration_config(values)
        response: dict[str, Any] = {"status": outcome.status}
        method = values.get("authorization_method", OAUTH2)
        if method == OAUTH2 or self.version.oidc_creates_nextcloud_client:
            response.update(self._recreate_client())
            response["status"] = self.is_admin_config_ok()
        return self._answer(response, outcome)

    def _patch(self, values: dict[str, Any] | None) -> PreparedAnswer:
        validate(values, False, self.version)
        assert values is not None
        outcome = self._set_integration_config(values)
        response: dict[str, Any] = {"status": outcome.status}
        if self.settings.get("authorization_method") == OIDC:
            # Upstream returns here: neither a rotated app password (a known bug) nor the outcome of
            # the revocations is shown.
            prepared = self._answer(response, SetupOutcome(outcome.status, outcome.revocations, None))
            prepared.report_revocations = False
            return prepared
        internal_id = _php_int(self.settings.get("nc_oauth_client_id"))
        if internal_id:
            client = self.oauth2.clients.get(internal_id)
            if client is None:
                # nc_oauth_client_id names a client deleted by other means: upstream's
                # array_merge(null) is an uncaught TypeError, answered with the generic 500 page.
                return PreparedAnswer({}, outcome.revocations, failure=server_error_page())
            response.update({"id": client.id, "nextcloud_oauth_client_name": client.name,
                             "openproject_redirect_uri": client.redirect_uri,
                             "nextcloud_client_id": client.client_identifier})
        else:
            response.update(self._recreate_client())
            response["status"] = self.is_admin_config_ok()
        return self._answer(response, outcome)

    def _answer(self, response: dict[str, Any], outcome: SetupOutcome) -> PreparedAnswer:
        if outcome.app_password:
            response["openproject_user_app_password"] = outcome.app_password
        if not self.version.has_status_key:
            response.pop("status", None)
        return PreparedAnswer(response, outcome.revocations)

    def finish(self, answer: Response | PreparedAnswer) -> Response:
        """Send the planned revocations (without the app's lock) and answer."""
        if isinstance(answer, Response):
            return answer
        body = dict(answer.body)
        status = self._revoke(answer.revocations) if answer.revocations else ""
        if answer.failure is not None:
            return answer.failure
        if status and answer.report_revocations:
            app_password = body.pop("openproject_user_app_password", None)
            body["openproject_revocation_status"] = status
            if app_password is not None:
                body["openproject_user_app_password"] = app_password
        return json_response(200, body)

    # --- setIntegrationConfig -------------------------------------------------------------------

    def _set_integration_config(self, values: dict[str, Any]) -> SetupOutcome:
        app_password = None
        if values.get("setup_project_folder") is True:
            self._setup_project_folder()
        if values.get("setup_app_password") is True:
            self._delete_app_password()
            if OPENPROJECT_ENTITY not in self.accounts.users:
                raise MissingUser(f'User "{OPENPROJECT_ENTITY}" does not exists to create application password')
            app_password = self._create_app_password()

        stored = self.settings
        old_url = stored.get("openproject_instance_url")
        old_method = stored.get("authorization_method")
        has = values.__contains__
        if self.version.has_authorization_method:
            full_reset = (has("openproject_instance_url") and has("authorization_method")
                          and not values["openproject_instance_url"] and not values["authorization_method"])
        else:
            full_reset = has("openproject_instance_url") and not values["openproject_instance_url"]
            old_method = OAUTH2
        full_reset_oauth2 = full_reset and old_method == OAUTH2
        full_reset_oidc = full_reset and old_method == OIDC
        old_id = old_secret = ""
        if has("openproject_client_id") and has("openproject_client_secret"):
            old_id, old_secret = stored.get("openproject_client_id"), stored.get("openproject_client_secret")
        oauth2_reset = bool(has("openproject_client_id") and not values["openproject_client_id"]
                            and has("openproject_client_secret") and not values["openproject_client_secret"]
                            and old_url and old_id and old_secret)
        oidc_reset = False
        if has("oidc_provider") and has("targeted_audience_client_id"):
            oidc_reset = bool(stored.get("oidc_provider") and stored.get("targeted_audience_client_id")
                              and not values["oidc_provider"] and not values["targeted_audience_client_id"])

        for key, value in values.items():
            if key in ACTION_FLAGS:
                continue
            stored.values[key] = _php_string(value).strip(" \t\n\r\0\x0b")
            if key == "openproject_client_secret":
                self.ledger.record(stored.values[key])

        if has("openproject_instance_url") and old_url != values["openproject_instance_url"] \
                and (not oidc_reset or not full_reset_oidc):
            if values["openproject_instance_url"] in (None, ""):
                self._delete_client()
            else:
                self.oauth2.set_redirect_uri(_php_int(stored.get("nc_oauth_client_id")),
                                             str(values["openproject_instance_url"]))

        if values.get("setup_app_password") is False:
            self._delete_app_password()

        revocations = None
        client_changed = ((has("openproject_client_id") and values["openproject_client_id"] != old_id)
                          or (has("openproject_client_secret") and values["openproject_client_secret"] != old_secret))
        if (not full_reset_oidc and client_changed) or full_reset_oauth2 or oauth2_reset:
            revocations = self._plan_revocations(old_url, old_id, old_secret)
        elif full_reset_oidc or oidc_reset:
            self._reset_oidc_settings()
            self.user_values.clear()

        if full_reset:
            stored.values["fresh_project_folder_setup"] = "1"
        elif has("setup_app_password") and has("setup_project_folder"):
            stored.values["fresh_project_folder_setup"] = "0"

        if values.get("authorization_method") == OIDC and oauth2_reset:
            stored.values["openproject_client_id"] = ""
            stored.values["openproject_client_secret"] = ""
            self._delete_client()
        if values.get("authorization_method") == OAUTH2 and oidc_reset:
            self._reset_oidc_settings()
        return SetupOutcome(self.is_admin_config_ok(), revocations, app_password)

    def _reset_oidc_settings(self) -> None:
        self.settings.values["oidc_provider"] = ""
        self.settings.values["targeted_audience_client_id"] = ""

    # --- NC OAuth client ------------------------------------------------------------------------

    def _delete_client(self) -> None:
        internal_id = self.settings.get("nc_oauth_client_id")
        if internal_id != "":
            self.oauth2.delete_client(_php_int(internal_id))
            self.settings.values.pop("nc_oauth_client_id", None)

    def _recreate_client(self) -> dict[str, Any]:
        self._delete_client()
        op_url = self.settings.get("openproject_instance_url")
        client, secret = self.oauth2.create_client(NC_CLIENT_NAME, op_url.rstrip("/") + "/oauth_clients/%s/callback")
        self.settings.values["nc_oauth_client_id"] = str(client.id)
        return {"nextcloud_oauth_client_name": client.name, "openproject_redirect_uri": client.redirect_uri,
                "nextcloud_client_id": client.client_identifier, "nextcloud_client_secret": secret}

    # --- project folders and the app password ---------------------------------------------------

    def _groupfolders_missing_message(self) -> str:
        if self.version.has_no_automatic_folders_group:
            return 'The "groupfolders" app is not installed'
        return 'The "Group folders" app is not installed'

    def _setup_project_folder(self) -> None:
        """isSystemReadyForProjectFolderSetUp, in its order (§8), then the entities."""
        groupfolders = self._options().groupfolders
        user_exists = OPENPROJECT_ENTITY in self.accounts.users
        group_exists = OPENPROJECT_ENTITY in self.accounts.groups
        if user_exists and group_exists and not groupfolders:
            raise SetupFailure(self._groupfolders_missing_message())
        if user_exists:
            raise SetupConflict(f'The user "{OPENPROJECT_ENTITY}" already exists')
        if group_exists:
            raise SetupConflict(f'The group "{OPENPROJECT_ENTITY}" already exists')
        if not groupfolders:
            raise SetupFailure(self._groupfolders_missing_message())
        if self.accounts.team_folder_named(OPENPROJECT_ENTITY) is not None:
            noun = "team folder" if self.version.has_no_automatic_folders_group else "group folder"
            raise SetupConflict(f'The {noun} name "{OPENPROJECT_ENTITY}" already exists')
        self.accounts.add_user(OPENPROJECT_ENTITY, random_string(self._password_length(), ALPHANUMERIC + SYMBOLS))
        self.accounts.add_to_group(OPENPROJECT_ENTITY, OPENPROJECT_ENTITY, subadmin=True)
        if self.version.has_no_automatic_folders_group:
            self.accounts.add_to_group(OPENPROJECT_ENTITY, NO_AUTOMATIC_FOLDERS_GROUP, subadmin=True)
        folder = self.accounts.create_team_folder(OPENPROJECT_ENTITY)
        folder.groups[OPENPROJECT_ENTITY] = FULL_PERMISSIONS
        folder.acl = True
        folder.acl_managers.add(OPENPROJECT_ENTITY)
        if self._options().terms_of_service:
            self.terms_signed = True

    def _password_length(self) -> int:
        return max(72, int(self._options().password_min_length))

    def _create_app_password(self) -> str:
        password = random_string(self._password_length(), ALPHANUMERIC + SYMBOLS)
        self.accounts.create_token(OPENPROJECT_ENTITY, APP_PASSWORD_NAME, password, permanent=True)
        return password

    def _delete_app_password(self) -> None:
        self.accounts.delete_tokens(OPENPROJECT_ENTITY, APP_PASSWORD_NAME)

    def has_app_password(self) -> bool:
        return bool(self.accounts.tokens_of(OPENPROJECT_ENTITY, APP_PASSWORD_NAME))

    def app_password_digests(self) -> list[str]:
        return [t.password_digest for t in self.accounts.tokens_of(OPENPROJECT_ENTITY, APP_PASSWORD_NAME)]

    def project_folder_ready(self) -> bool:
        """/project-folder-status: the full criteria of §8."""
        group = self.accounts.groups.get(OPENPROJECT_ENTITY)
        if OPENPROJECT_ENTITY not in self.accounts.users or group is None:
            return False
        if OPENPROJECT_ENTITY not in group.members or OPENPROJECT_ENTITY not in group.subadmins:
            return False
        if not self._options().groupfolders:
            return False
        folder = self.accounts.team_folder_named(OPENPROJECT_ENTITY)
        return (folder is not None and folder.groups.get(OPENPROJECT_ENTITY) == FULL_PERMISSIONS and folder.acl
                and OPENPROJECT_ENTITY in folder.acl_managers)

    def all_terms_signed(self) -> bool:
        return self.terms_signed or not self._options().terms_of_service

    # --- admin configuration status -------------------------------------------------------------

    def is_admin_config_ok(self) -> bool:
        stored = self.settings
        if stored.get("fresh_project_folder_setup") == "1":
            return False
        url = stored.get("openproject_instance_url")
        if not url or not is_valid_openproject_url(url):
            return False
        method = stored.get("authorization_method") if self.version.has_authorization_method else OAUTH2
        if method == "" and self.version.empty_method_means_oauth2:
            method = OAUTH2
        if method == OAUTH2:
            return bool(stored.get("openproject_client_id") and stored.get("openproject_client_secret")
                        and stored.get("nc_oauth_client_id"))
        if method == OIDC:
            provider_type = stored.get("sso_provider_type")
            if not provider_type or not stored.get("oidc_provider"):
                return False
            if provider_type == NEXTCLOUD_HUB:
                return bool(stored.get("targeted_audience_client_id"))
            if provider_type == EXTERNAL:
                return stored.get("token_exchange") != "1" or bool(stored.get("targeted_audience_client_id"))
        return False

    # --- users' OpenProject tokens and their revocation (§5.3) ----------------------------------

    def seed_user_token(self, uid: str, access_token: str, refresh_token: str | None) -> None:
        self.ledger.record(access_token)
        self.ledger.record(refresh_token)
        entry = {"token": access_token}
        if refresh_token:
            entry["refresh_token"] = refresh_token
        self.user_values[uid] = entry

    def _plan_revocations(self, old_url: str, old_id: str, old_secret: str) -> RevocationBatch:
        """Every user's stored token is cleared (clearUserInfo); those that can be revoked, i.e. when
        the old URL, client id and secret were all set, are revoked afterwards by :meth:`finish`."""
        batch = RevocationBatch(old_url, old_id, old_secret)
        for uid in sorted(self.accounts.users):
            token = self.user_values.get(uid, {}).get("token", "")
            if token and old_url and old_id and old_secret:
                batch.tokens.append((uid, token))
            self.user_values.pop(uid, None)
        return batch

    def _revoke(self, batch: RevocationBatch) -> str:
        """One ``POST /oauth/revoke`` per token; the answer's status: ``success`` unless a call failed,
        the last failure winning (``connection_error`` or ``other_error``); "" when nothing was sent."""
        status = ""
        for uid, token in batch.tokens:
            result = self.outbound.revoke(batch.op_url, token, batch.client_id, batch.client_secret,
                                          self._ca_bundle())
            if result.status == 200:
                outcome = "success"
                if status == "":
                    status = "success"
            elif result.status is None and result.failure in ("connect", "resolve", "timeout"):
                outcome = status = "connection_error"
            else:
                outcome = status = "other_error"
            with self._records_lock:
                self.revocations.append({
                    "user": uid, "method": "POST", "url": batch.op_url.rstrip("/") + "/oauth/revoke",
                    "client_id": batch.client_id, "token_sha256": digest(token), "status": result.status,
                    "outcome": outcome, "duration_ms": result.duration_ms,
                })
        return status

    # --- POST /is-valid-op-instance (§10.7) -----------------------------------------------------

    def is_valid_op_instance(self, url: Any) -> Response:
        if not isinstance(url, str) or not is_valid_openproject_url(url):
            return json_response(200, {"result": "invalid"})
        if not self._options().allow_local_remote_servers and _is_local(url):
            return json_response(200, {"result": "local_remote_servers_not_allowed"})
        verdict, result = self.outbound.probe_openproject(url, self._ca_bundle())
        with self._records_lock:
            self.probes.append({"method": "GET", "url": result.url, "status": result.status,
                                "result": verdict["result"], "duration_ms": result.duration_ms})
        return json_response(200, verdict)

    # --- state ----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        stored: dict[str, Any] = dict(self.settings.values)
        secret = stored.pop("openproject_client_secret", None)
        stored["openproject_client_secret_set"] = bool(secret)
        stored.setdefault("openproject_instance_url", "")
        stored.setdefault("openproject_client_id", "")
        with self._records_lock:
            probes = list(self.probes)
            revocations = list(self.revocations)
        return {
            "integration": stored,
            "project_folder_setup": self.project_folder_ready(),
            "app_password_set": self.has_app_password(),
            "app_password_sha256": self.app_password_digests(),
            "terms_of_service_signed": self.all_terms_signed(),
            "openproject_tokens": {uid: sorted(values) for uid, values in self.user_values.items()},
            "revocations": revocations,
            "probes": probes,
        }


def _php_string(value: Any) -> str:
    """PHP's (string) cast of a decoded JSON scalar."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    return str(value)


def _php_int(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local
