"""The OpenProject emulator: API v3 for file storages and the OAuth 2.0 provider.

It follows contract/openproject.md. This module holds the configuration, the users and their API
tokens, authentication and the request pipeline (401, then 406/415 on every non-GET request, then
403, then 422), the discovery endpoints and the routing; the storages live in
``openproject_storages``, the OAuth provider in ``openproject_oauth``, OP as OAuth client of
Nextcloud (users connecting) in ``openproject_connections``, the HAL error model in
``openproject_errors`` and the requests to Nextcloud in ``openproject_probes``.

Besides the App interface (handle, state, reset, configure, config, base_url, ca_bundle) the app
offers ``issued_secrets()`` for leak scans, ``fault_body()`` for the server's injected faults,
``enable_in_project()`` (what the admin UI does; API v3 cannot) and an injectable ``clock``.
Web routes that need a browser login (``/oauth/authorize``, ``/oauth_clients/...``) accept the
session cookie of the test-only login ``POST /_sandbox/login {"user": "<login>"}`` (``login.py``),
or the caller's API token instead (``_logged_in``); API v3 accepts the session cookie together with
``X-Requested-With: XMLHttpRequest``, as the web frontend sends it. ``GET
/api/v3/storages/{id}/files`` lists the caller's files with the caller's Nextcloud token
(``openproject_files``).
``POST /_sandbox/openproject/storages/{id}/replace-oauth-application`` does what the admin UI's
"Replace OAuth values" does (no API exists): a new OAuth application, whose client id and secret the
answer shows once.

Where the contract marks a behaviour **unverified**, the emulator picks one answer (a client must
tolerate the others):

- API tokens work as Bearer too (``bearer_api_tokens=False`` gives a release that only knows Basic);
- 406 answers ``{"error":"Missing content-type header"}``; host errors name the attribute ``host``;
- the Enterprise gate (§17) is a 422 on ``authenticationMethod``; like upstream, error keys are not
  rendered, only the attribute and the English message;
- a refresh kills the old refresh token at once (``refresh_token_revoked_on_use=True`` gives
  Doorkeeper's other mode); revoking another client's token answers 403 ``unauthorized_client``,
  failed client authentication 401 ``invalid_client``;
- ``/oauth/authorize`` approves without a consent page;
- applicationPassword is part of the API from 13.0, the SSO fields from 16.0 and
  tokenExchangeScope, forbiddenFileNameCharacters and the NotConnected state from 16.1;
- ``authorizationState`` asks Nextcloud only for users who hold a token (refreshing it first when
  it expires within 10 s); without a token it is computed locally;
- only Nextcloud storages exist (other provider types fail the provider-type check), and a PATCH
  that changes the authentication method leaves the OAuth application as it is.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

from opnc.sandbox.app import Request, Response
from opnc.sandbox.openproject_errors import (
    HAL_JSON, hal_error, invalid_request_body, missing_content_type, missing_permission, not_found,
    type_not_supported, unauthenticated)
from opnc.sandbox.login import LOGIN_PATH, TestSessions

_REPLACE_OAUTH_ROUTE = re.compile(r"/_sandbox/openproject/storages/(\d+)/replace-oauth-application")
from opnc.sandbox.openproject_connections import NextcloudConnections
from opnc.sandbox.openproject_files import StorageFiles
from opnc.sandbox.openproject_oauth import DoorkeeperProvider
from opnc.sandbox.openproject_probes import NextcloudProbe
from opnc.sandbox.openproject_model import Caller, Settings, iso8601, parse_version
from opnc.sandbox.openproject_storages import StorageService

ADMIN_ID = 1
USER_ID = 2
ANONYMOUS_ID = 3
JSON_TYPES = ("application/json", "application/hal+json")
SESSION_COOKIE = "_open_project_session"  # the name of the Rails session cookie


@dataclass
class OpenProjectConfig:
    """What the emulated OpenProject looks like. Change it at runtime with ``app.configure(...)``."""

    # Secrets stay out of reprs (repr=False), like every credential the emulator holds.
    admin_token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    user_token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)  # a non-admin's
    version: str = "16.0.0"  # rendered as coreVersion; gates the per-version fields of §14
    instance_name: str = "OpenProject sandbox"
    enterprise: bool = False  # an Enterprise token is active
    # §17: this version treats Two-way OAuth 2.0 as an Enterprise add-on.
    two_way_requires_enterprise: bool = False
    # Without it, requests without credentials run as the anonymous user instead of getting 401.
    login_required: bool = True
    admin_active: bool = True  # False: the admin is locked, so storage writes answer 403
    bearer_api_tokens: bool = True  # API tokens also work as Bearer (newer releases)
    # Doorkeeper mode: the old refresh token dies when the new access token is first used, instead
    # of at once when it is refreshed (which of the two OpenProject runs is unverified).
    refresh_token_revoked_on_use: bool = False
    admin_login: str = "admin"
    admin_first_name: str = "OpenProject"
    admin_last_name: str = "Admin"
    user_login: str = "alice"
    user_first_name: str = "Alice"
    user_last_name: str = "Hansen"


@dataclass(frozen=True)
class _User:
    id: int
    login: str
    first_name: str
    last_name: str
    admin: bool
    status: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


# An API v3 endpoint: (app, ids from the path, request, caller, settings) -> response.
_Endpoint = Callable[["OpenProjectApp", list[int], Request, Caller, Settings], Response]

_API_ROUTES: list[tuple[str, re.Pattern[str], _Endpoint]] = [
    (method, re.compile(pattern), endpoint) for method, pattern, endpoint in [
        ("GET", r"/api/v3", lambda app, ids, rq, caller, st: app._root(caller)),
        ("GET", r"/api/v3/configuration", lambda app, ids, rq, caller, st: app._configuration()),
        ("GET", r"/api/v3/users/me", lambda app, ids, rq, caller, st: app._render_user(caller.id, caller)),
        ("GET", r"/api/v3/users/(\d+)", lambda app, ids, rq, caller, st: app._render_user(ids[0], caller)),
        ("GET", r"/api/v3/storages", lambda app, ids, rq, caller, st: app.storages.list(rq, caller, st)),
        ("POST", r"/api/v3/storages", lambda app, ids, rq, caller, st: app.storages.create(rq, caller, st)),
        ("GET", r"/api/v3/storages/(\d+)", lambda app, ids, rq, caller, st: app.storages.show(ids[0], caller, st)),
        ("PATCH", r"/api/v3/storages/(\d+)",
         lambda app, ids, rq, caller, st: app.storages.update(ids[0], rq, caller, st)),
        ("DELETE", r"/api/v3/storages/(\d+)", lambda app, ids, rq, caller, st: app.storages.delete(ids[0], caller)),
        ("GET", r"/api/v3/storages/(\d+)/files", lambda app, ids, rq, caller, st: app.files.list(ids[0], caller)),
        ("POST", r"/api/v3/storages/(\d+)/oauth_client_credentials",
         lambda app, ids, rq, caller, st: app.storages.store_client(ids[0], rq, caller)),
        ("GET", r"/api/v3/oauth_applications/(\d+)",
         lambda app, ids, rq, caller, st: app.storages.show_application(ids[0], caller)),
        ("GET", r"/api/v3/oauth_client_credentials/(\d+)",
         lambda app, ids, rq, caller, st: app.storages.show_client(ids[0], caller)),
        ("GET", r"/api/v3/project_storages",
         lambda app, ids, rq, caller, st: app.storages.list_project_storages(rq, caller)),
        ("GET", r"/api/v3/project_storages/(\d+)",
         lambda app, ids, rq, caller, st: app.storages.show_project_storage(ids[0], caller)),
    ]
]


_OAUTH_CLIENT_ROUTE = re.compile(r"/oauth_clients/([^/]+)/(callback|ensure_connection)")


def _normalise_path(path: str) -> str:
    """Rails collapses repeated slashes (so ``//oauth/token`` works) and routes ignore a trailing one."""
    path = re.sub(r"/{2,}", "/", path or "/")
    return path.rstrip("/") or "/"


class OpenProjectApp:
    """An emulated OpenProject (see the module docstring). Thread-safe: one lock guards the state."""

    def __init__(self, config: OpenProjectConfig | None = None, clock: Callable[[], float] | None = None) -> None:
        self.config = config or OpenProjectConfig()
        self.clock: Callable[[], float] = clock or time.time
        self.base_url = "http://127.0.0.1"
        self.ca_bundle: str | None = None
        self._lock = threading.RLock()
        self.oauth = DoorkeeperProvider(lambda: self.clock(), self.config.refresh_token_revoked_on_use)
        self.storages = StorageService(
            self._lock, self.oauth, lambda: self.clock(), lambda: NextcloudProbe(self.ca_bundle),
            lambda: self.base_url, self._user_title)
        self.connections = NextcloudConnections(
            self._lock, self.storages, lambda: self.clock(), lambda: NextcloudProbe(self.ca_bundle),
            lambda: self.base_url, lambda: self.ca_bundle)
        self.storages.live_states = self.connections.authorization_states
        self.files = StorageFiles(self.storages, self.connections, lambda: self.ca_bundle)
        self.sessions = TestSessions(SESSION_COOKIE, self.storages.record_secret)

    # --- configuration ---

    def configure(self, **changes: Any) -> None:
        # Types are checked here, because a wrong one (say a number for `version`) would otherwise
        # break every later request instead of this one.
        kinds = {f.name: {"str": str, "bool": bool}[str(f.type)] for f in dataclasses.fields(OpenProjectConfig)}
        unknown = sorted(set(changes) - set(kinds))
        if unknown:
            raise ValueError(f"unknown OpenProject setting(s): {', '.join(unknown)}")
        for name, value in changes.items():
            if not isinstance(value, kinds[name]):
                raise ValueError(f"OpenProject setting {name} must be a {kinds[name].__name__}")
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            self.oauth.refresh_token_revoked_on_use = self.config.refresh_token_revoked_on_use

    def _settings(self) -> Settings:
        return Settings(version=parse_version(self.config.version), enterprise=self.config.enterprise,
                        two_way_requires_enterprise=self.config.two_way_requires_enterprise)

    # --- users and authentication ---

    def _users(self) -> dict[int, _User]:
        c = self.config
        return {
            ADMIN_ID: _User(ADMIN_ID, c.admin_login, c.admin_first_name, c.admin_last_name, True,
                            "active" if c.admin_active else "locked"),
            USER_ID: _User(USER_ID, c.user_login, c.user_first_name, c.user_last_name, False, "active"),
        }

    def _user_title(self, user_id: int) -> str | None:
        user = self._users().get(user_id)
        return user.name if user else None

    def _user_by_api_token(self, token: str) -> _User | None:
        users = self._users()
        for user_id, expected in ((ADMIN_ID, self.config.admin_token), (USER_ID, self.config.user_token)):
            if expected and hmac.compare_digest(token.encode(), expected.encode()):
                return users[user_id]
        return None

    @staticmethod
    def _caller(user: _User) -> Caller:
        return Caller(id=user.id, name=user.name, admin=user.admin, active=user.status == "active")

    @staticmethod
    def _anonymous() -> Caller:
        return Caller(id=ANONYMOUS_ID, name="Anonymous", admin=False, active=True, anonymous=True)

    def _authenticate(self, request: Request) -> Caller | Response:
        """The caller of an API v3 request, or the 401 answer."""
        header = request.headers.get("Authorization")
        if not header:
            # The web frontend calls API v3 with its session cookie; like upstream, the session
            # counts only with the X-Requested-With header (a CSRF guard).
            session_user = self._session_user(request)
            if session_user is not None and request.headers.get("X-Requested-With") == "XMLHttpRequest":
                return self._caller(session_user)
            return unauthenticated("Basic") if self.config.login_required else self._anonymous()
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                login, sep, token = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return unauthenticated("Basic")
            user = self._user_by_api_token(token) if sep and login == "apikey" else None
            return self._caller(user) if user else unauthenticated("Basic")
        if scheme.lower() == "bearer" and value:
            user = self._user_by_api_token(value) if self.config.bearer_api_tokens else None
            if user:
                return self._caller(user)
            with self._lock:
                access = self.oauth.authenticate(value, scope="api_v3")
            owner = self._users().get(access.user_id) if access else None
            if owner:
                return self._caller(owner)
            return unauthenticated("Bearer", error="invalid_token")
        return unauthenticated("Basic")

    def _logged_in(self, request: Request) -> Caller | None:
        """Who is logged in on the web routes (/oauth/authorize, /oauth_clients/...): the browser
        session of the test login (``/_sandbox/login``); the caller's API token (Basic apikey or
        Bearer) also stands in for one."""
        if not request.headers.get("Authorization"):
            session_user = self._session_user(request)
            return self._caller(session_user) if session_user is not None else None
        caller = self._authenticate(request)
        if isinstance(caller, Caller) and not caller.anonymous:
            return caller
        return None

    def _session_user(self, request: Request) -> _User | None:
        login = self.sessions.user(request)
        user = next((u for u in self._users().values() if u.login == login), None) if login else None
        return user if user is not None and user.status == "active" else None

    def _login_by_name(self, login: str) -> str | None:
        user = next((u for u in self._users().values() if u.login == login), None)
        return user.login if user is not None and user.status == "active" else None

    def _login_redirect(self, request: Request) -> Response:
        back_url = quote(request.raw_target or request.path, safe="")
        return Response.empty(302, [("Location", f"{self.base_url}/login?back_url={back_url}")])

    # --- the App interface ---

    def handle(self, request: Request) -> Response:
        if request.path == LOGIN_PATH:  # loopback only: the server answers others itself
            return self.sessions.login(request, self._login_by_name)
        replace = _REPLACE_OAUTH_ROUTE.fullmatch(request.path)
        if replace and request.method == "POST":  # loopback only, like every /_sandbox/ route
            # Stands in for the admin UI's "Replace OAuth values" button, which has no API: the
            # new values are shown once, here as the answer.
            with self._lock:
                application = self.storages.replace_oauth_application(int(replace.group(1)), owner_id=1)
            if application is None:
                return Response.json(404, {"error": "no two-way OAuth 2.0 storage with that id"})
            return Response.json(201, {"clientId": application.uid, "clientSecret": application.secret})
        path = _normalise_path(request.path)
        if path == "/api/v3" or path.startswith("/api/v3/"):
            return self._handle_api(request, path)
        if path == "/oauth/authorize" and request.method in ("GET", "HEAD"):
            owner = self._logged_in(request)
            with self._lock:
                return self.oauth.authorize(request, owner.id if owner else None, f"{self.base_url}/login")
        if path == "/oauth/token" and request.method == "POST":
            with self._lock:
                return self.oauth.token(request)
        if path == "/oauth/revoke" and request.method == "POST":
            with self._lock:
                return self.oauth.revoke(request)
        if path == "/oauth/introspect" and request.method == "POST":
            with self._lock:
                return self.oauth.introspect(request)
        if path == "/oauth/token/info" and request.method in ("GET", "HEAD"):
            with self._lock:
                return self.oauth.token_info(request)
        if path == "/login" and request.method in ("GET", "HEAD"):
            # The target of the login redirects. Signing in needs a browser session, which the
            # emulator does not have; API tokens stand in for it on the web routes.
            return Response.text(200, "<!DOCTYPE html><html><head><title>Sign in | OpenProject</title></head>"
                                      "<body><form id=\"login-form\" method=\"post\" action=\"/login\">"
                                      "</form></body></html>")
        client_route = _OAUTH_CLIENT_ROUTE.fullmatch(path)
        if client_route and request.method in ("GET", "HEAD"):
            user = self._logged_in(request)
            if user is None:
                return self._login_redirect(request)
            client_id, action = unquote(client_route.group(1)), client_route.group(2)
            if action == "callback":
                return self.connections.callback(request, client_id, user.id, user.admin)
            return self.connections.ensure_connection(request, client_id, user.id, user.admin)
        return Response.text(404, "<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>")

    def _handle_api(self, request: Request, path: str) -> Response:
        caller = self._authenticate(request)
        if isinstance(caller, Response):
            return caller
        if request.method not in ("GET", "HEAD"):
            content_type = request.headers.get("Content-Type")
            if not content_type:
                return missing_content_type()
            if content_type.split(";", 1)[0].strip().lower() not in JSON_TYPES:
                return type_not_supported(content_type)
        method = "GET" if request.method == "HEAD" else request.method
        # Like upstream's catch-all route, an unknown path or a method a path does not offer is 404.
        for route_method, pattern, endpoint in _API_ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return endpoint(self, [int(g) for g in match.groups()], request, caller, self._settings())
        return not_found()

    # --- discovery endpoints (§2) ---

    def _root(self, caller: Caller) -> Response:
        body: dict[str, Any] = {"_type": "Root", "instanceName": self.config.instance_name}
        if caller.admin and not caller.anonymous:
            body["coreVersion"] = self.config.version
        body["_links"] = {
            "self": {"href": "/api/v3"},
            "configuration": {"href": "/api/v3/configuration"},
            "memberships": {"href": "/api/v3/memberships"},
            "priorities": {"href": "/api/v3/priorities"},
            "relations": {"href": "/api/v3/relations"},
            "statuses": {"href": "/api/v3/statuses"},
            "time_entries": {"href": "/api/v3/time_entries"},
            "types": {"href": "/api/v3/types"},
            "user": {"href": f"/api/v3/users/{caller.id}", "title": caller.name},
            "userPreferences": {"href": "/api/v3/my_preferences"},
            "workPackages": {"href": "/api/v3/work_packages"},
        }
        return Response.json(200, body, content_type=HAL_JSON)

    def _configuration(self) -> Response:
        body = {
            "_type": "Configuration",
            "maximumAttachmentFileSize": 5242880,
            "perPageOptions": [20, 100],
            "hostName": urlsplit(self.base_url).netloc,
            "activeFeatureFlags": [],
            "_links": {"self": {"href": "/api/v3/configuration"}},
        }
        return Response.json(200, body, content_type=HAL_JSON)

    def _render_user(self, user_id: int, caller: Caller) -> Response:
        if caller.anonymous and user_id == ANONYMOUS_ID:
            body = {"_type": "User", "id": ANONYMOUS_ID, "name": "Anonymous",
                    "_links": {"self": {"href": f"/api/v3/users/{ANONYMOUS_ID}", "title": "Anonymous"}}}
            return Response.json(200, body, content_type=HAL_JSON)
        user = self._users().get(user_id)
        if user is None or (user.id != caller.id and not caller.admin):
            return not_found()
        body: dict[str, Any] = {"_type": "User", "id": user.id, "name": user.name}
        # login, names, status and language are rendered for the user itself and for admins;
        # `admin` only for admin callers (user_representer.rb).
        body.update({"login": user.login, "firstName": user.first_name, "lastName": user.last_name,
                     "status": user.status, "language": "en"})
        if caller.admin:
            body["admin"] = user.admin
        body["createdAt"] = iso8601(0)
        body["updatedAt"] = iso8601(0)
        body["_links"] = {"self": {"href": f"/api/v3/users/{user.id}", "title": user.name}}
        return Response.json(200, body, content_type=HAL_JSON)

    def fault_body(self, status: int, request: Request) -> Response | None:
        """A plausible answer for an injected fault status: HAL errors on API v3, Doorkeeper's error
        JSON on /oauth; None elsewhere (the server's default body)."""
        path = _normalise_path(request.path)
        if path == "/api/v3" or path.startswith("/api/v3/"):
            known = {401: lambda: unauthenticated("Basic"), 403: missing_permission, 404: not_found,
                     400: invalid_request_body}
            if status in known:
                return known[status]()
            if status >= 500:
                return hal_error(status, "InternalServerError", "An internal error has occurred.")
            return None
        if path.startswith("/oauth/"):
            return Response.json(status, {"error": "server_error" if status >= 500 else "invalid_request"},
                                 content_type="application/json; charset=utf-8")
        return None

    # --- control and inspection ---

    def enable_in_project(self, storage_id: int, project_name: str = "Demo project",
                          mode: str = "inactive") -> int:
        """What the admin UI's "Enabled in projects" does (no API exists); returns the record id."""
        return self.storages.enable_in_project(storage_id, project_name, mode, ADMIN_ID).id

    def state(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            return {
                "version": self.config.version,
                "enterprise": self.config.enterprise,
                "two_way_requires_enterprise": self.config.two_way_requires_enterprise,
                "storages": self.storages.state(),
                "oauth_applications": [
                    {"id": a.id, "name": a.name, "client_id": a.uid, "redirect_uri": a.redirect_uri,
                     "integration_id": a.integration_id, "scopes": a.scopes}
                    for a in sorted(self.oauth.applications.values(), key=lambda a: a.id)],
                "oauth_grants": [
                    {"application_id": g.application_id, "user_id": g.user_id, "used": g.revoked,
                     "pkce": g.code_challenge is not None}
                    for g in self.oauth.grants.values()],
                "oauth_tokens": [
                    {"application_id": t.application_id, "user_id": t.user_id, "scopes": t.scopes,
                     "revoked": t.revoked, "expired": now >= t.created_at + t.expires_in}
                    for t in self.oauth.tokens.values()],
                "last_oauth_client_flash": self.connections.last_flash,
                "last_oauth_exchange_refusal": self.connections.last_exchange_refusal,
                "nextcloud_user_tokens": [
                    {"storage_id": c.storage_id, "user_id": user_id}
                    for c in sorted(self.storages.clients.values(), key=lambda c: c.id)
                    for user_id in sorted(c.user_tokens)],
                "sessions": self.sessions.count(),
                "project_storages": [
                    {"id": p.id, "storage_id": p.storage_id, "project_id": p.project_id,
                     "project_folder_mode": p.project_folder_mode}
                    for p in sorted(self.storages.project_storages.values(), key=lambda p: p.id)],
            }

    def reset(self) -> None:
        with self._lock:
            self.storages.reset()
            self.oauth.reset()
            self.connections.reset()
            self.sessions.reset()

    def issued_secrets(self) -> list[str]:
        with self._lock:
            values = [self.config.admin_token, self.config.user_token]
            values += self.oauth.issued_secrets()
            values += self.storages.issued_secrets()
            return [v for v in values if v]
