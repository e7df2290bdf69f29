"""Nextcloud emulator: Nextcloud 34 with integration_openproject, groupfolders and oauth2, as
described by contract/nextcloud.md.

Served routes (``<nc>`` is ``base_url``):

- ``GET /status.php``; OCS ``cloud/capabilities``, ``cloud/user``, ``cloud/users/<id>`` and
  ``apps/integration_openproject/api/v1/url`` under ``/ocs/v1.php`` and ``/ocs/v2.php``;
- ``/index.php/apps/integration_openproject/``: ``setup`` (POST, PATCH, DELETE),
  ``check-admin-config``, ``project-folder-status``, ``check-config``, ``is-valid-op-instance``,
  ``sign-term-of-service``;
- ``/index.php/apps/oauth2/authorize`` and ``/index.php/apps/oauth2/api/v1/token``;
- ``/remote.php/dav`` (and ``/remote.php/webdav``): HEAD, GET, OPTIONS, PROPFIND with Basic auth;
- ``/index.php/login``: a stand-in login page, the target of the framework's 303;
- ``/index.php/login/flow``: the page where a logged-in user grants an OAuth client, and the grant
  (``nextcloud_login_flow``);
- ``/index.php/apps/integration_openproject/op-oauth-url`` and ``oauth-redirect``: a user connects to
  OpenProject (``nextcloud_openproject_oauth``).

Browser sessions come from the test-only login ``POST /_sandbox/login {"user": "<uid>"}`` (loopback
only, ``login.py``): its cookie makes later requests count as that user's, where no
``Authorization`` header is sent.

Configuration (:class:`NextcloudConfig`, changeable at runtime with ``configure(**changes)``, i.e.
``POST /_sandbox/config``): server version, app version (``"3.1.1"`` by default, ``"2.8.1"`` and
``"3.2.0-dev"`` style available), groupfolders installed, app installed, the ``Authorization``
header stripped by a misconfigured web server (then no request carries credentials), maintenance
mode, pretty URLs, password logins allowed (off: only app passwords work, as with enforced 2FA),
the password policy's minimum length, Terms of Service, ``allow_local_remote_servers``, and the
timeout of outbound calls to OpenProject.

Control-API extras, answered by this app for loopback clients (the server framework handles
``/_sandbox/state``, ``requests``, ``faults``, ``latency``, ``reset`` and ``config``):

- ``POST /_sandbox/nextcloud/app-password`` ``{"user": "admin", "name": "opnc"}`` -> 201
  ``{"user", "name", "app_password"}``: mints an app password (defaults: the admin, name "opnc").
- ``POST /_sandbox/nextcloud/users`` ``{"user": "alice", "password"?: "...", "admin"?: false}`` -> 201
  ``{"user", "password", "admin"}``: creates a user (a random password when none is given).
- ``POST /_sandbox/nextcloud/openproject-tokens`` ``{"user", "access_token", "refresh_token"?}`` ->
  200 ``{"user", "stored": true}``: stores a user's OpenProject OAuth token as if the user had
  connected; ``/setup`` revokes these at OpenProject when the OpenProject client changes (§5.3).
- ``POST /_sandbox/nextcloud/oauth2/grant`` ``{"client_id", "user"?: admin, "state"?: ""}`` -> 200
  ``{"location", "code", "state"}``: the user grants the client; the location is the registered
  redirect URI with ``state`` and a fresh authorization code (§11.2), for flows without a browser.
- ``POST /_sandbox/nextcloud/clock`` ``{"advance_s": N}`` -> 200 ``{"offset_s"}``: moves the
  emulator's clock forward (expires codes after 600 s, access tokens after 3600 s).
- ``POST /_sandbox/nextcloud/project-folder-entities`` ``{"user"?: bool, "group"?: bool,
  "team_folder"?: bool}`` -> 200 ``{"created": [...]}``: creates single ``OpenProject`` entities, as a
  half-finished earlier setup leaves them, to provoke the 409 answers of §8.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from opnc.sandbox import nextcloud_login_flow
from opnc.sandbox.app import Request, Response
from opnc.sandbox.login import LOGIN_PATH, TestSessions
from opnc.sandbox.nextcloud_accounts import (
    OPENPROJECT_ENTITY,
    Accounts,
    Group,
    SecretLedger,
    parse_basic,
    parse_bearer,
    random_string,
)
from opnc.sandbox.nextcloud_http import (
    DAV_REALM,
    framework_error,
    html_response,
    json_response,
    maintenance_page,
    method_not_allowed,
    not_found_page,
    ocs_response,
)
from opnc.sandbox.nextcloud_integration import Integration
from opnc.sandbox.nextcloud_oauth2 import OAuth2
from opnc.sandbox.nextcloud_openproject_oauth import OpenProjectUserOAuth, PreparedExchange
from opnc.sandbox.nextcloud_outbound import Outbound
from opnc.sandbox.nextcloud_versions import AppVersion

APP_PREFIX = "/index.php/apps/integration_openproject"
PRETTY_APP_PREFIX = "/apps/integration_openproject"
OAUTH2_PREFIX = "/index.php/apps/oauth2"
CONTROL_PREFIX = "/_sandbox/nextcloud"
SESSION_COOKIE = "nc_session_id"
# What a new user finds in the home folder (a small part of Nextcloud's default skeleton):
# (name, content type; None for a folder).
USER_SKELETON: tuple[tuple[str, str | None], ...] = (("Documents/", None), ("Readme.md", "text/markdown"))


@dataclass
class NextcloudConfig:
    admin_user: str = "admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    version: str = "34.0.1"  # Nextcloud server
    build: int = 2  # fourth component of status.php's "version" (34.0.1.2)
    app_version: str = "3.1.1"  # integration_openproject
    groupfolders_version: str = "22.0.6"
    groupfolders: bool = True  # groupfolders installed and enabled
    app_installed: bool = True  # integration_openproject installed and enabled
    strip_authorization: bool = False  # the web server drops the Authorization header
    maintenance: bool = False
    pretty_urls: bool = False
    allow_password_login: bool = True  # False: Basic auth needs an app password (2FA, token-only)
    password_min_length: int = 0  # password policy; the OpenProject passwords are max(72, this)
    terms_of_service: bool = False  # the terms_of_service app is enabled
    allow_local_remote_servers: bool = True
    outbound_timeout_s: float = 5.0


@dataclass
class _Caller:
    """Who the request is from, after Nextcloud's login checks."""
    uid: str | None = None
    bad_credentials: bool = False  # Basic credentials were sent and were wrong
    session: Any = None  # the browser session (login.Session) when the caller used one


class NextcloudApp:
    """The emulated Nextcloud. Thread-safe: one lock guards the state; outbound probes run outside."""

    def __init__(self, config: NextcloudConfig | None = None, clock: Callable[[], float] | None = None) -> None:
        self.config = config or NextcloudConfig()
        self._validate_config(self.config)
        self.base_url = ""
        self.ca_bundle: str | None = None
        self._wall_clock = clock or time.time
        self._clock_offset = 0.0
        self._lock = threading.RLock()
        self._ledger = SecretLedger()
        self.sessions = TestSessions(SESSION_COOKIE, self._ledger.record)
        self._build_state()

    # --- App interface --------------------------------------------------------------------------

    def clock(self) -> float:
        return self._wall_clock() + self._clock_offset

    def reset(self) -> None:
        """Back to a fresh installation: the admin and the admin password are kept; everything else
        (users, app passwords minted through the control API, clients, tokens, records) is gone."""
        with self._lock:
            self._build_state()

    def configure(self, **changes: Any) -> None:
        with self._lock:
            names = {f.name for f in dataclasses.fields(NextcloudConfig)}
            unknown = sorted(set(changes) - names)
            if unknown:
                raise ValueError(f"unknown Nextcloud setting(s): {', '.join(unknown)}")
            updated = dataclasses.replace(self.config, **changes)
            self._validate_config(updated)
            if updated.admin_password != self.config.admin_password or updated.admin_user != self.config.admin_user:
                self.accounts.add_user(updated.admin_user, updated.admin_password, admin=True)
            self.integration.outbound.timeout_s = updated.outbound_timeout_s
            self.config = updated

    def issued_secrets(self) -> list[str]:
        return self._ledger.values()

    def state(self) -> dict[str, Any]:
        with self._lock:
            integration = self.integration.state()
            oauth = self.oauth2.state()
            accounts = self.accounts
            return {
                "version": self.config.version,
                "app_version": self.config.app_version,
                "groupfolders": self.config.groupfolders,
                "maintenance": self.config.maintenance,
                "clock_offset_s": self._clock_offset,
                "sessions": self.sessions.count(),
                **integration,
                **oauth,
                "users": [{"id": u.uid, "admin": accounts.is_admin(u.uid),
                           "groups": sorted(g.name for g in accounts.groups.values() if u.uid in g.members)}
                          for u in accounts.users.values()],
                "groups": [{"name": g.name, "members": sorted(g.members), "subadmins": sorted(g.subadmins)}
                           for g in accounts.groups.values()],
                "team_folders": [{"id": f.id, "mount_point": f.mount_point, "groups": dict(f.groups),
                                  "acl": f.acl, "acl_managers": sorted(f.acl_managers)}
                                 for f in accounts.team_folders.values()],
                "app_passwords": [{"id": t.id, "user": t.uid, "name": t.name, "sha256": t.password_digest,
                                   "expires_at": t.expires_at} for t in accounts.tokens.values()],
            }

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        if self.config.maintenance and request.path != "/status.php":
            return maintenance_page()
        path = request.path
        if path == "/status.php":
            return self._status(request)
        if path.startswith("/ocs/v1.php/") or path.startswith("/ocs/v2.php/"):
            return self._ocs(request)
        if path == "/remote.php/dav" or path.startswith("/remote.php/dav/") or path.startswith("/remote.php/webdav"):
            return self._dav(request)
        if path.startswith(OAUTH2_PREFIX + "/"):
            return self._oauth2(request)
        if path.startswith(APP_PREFIX + "/"):
            return self._integration_route(request, path[len(APP_PREFIX):])
        if self.config.pretty_urls and path.startswith(PRETTY_APP_PREFIX + "/"):
            return self._integration_route(request, path[len(PRETTY_APP_PREFIX):])
        if path == nextcloud_login_flow.LOGIN_FLOW_PATH:
            with self._lock:
                return nextcloud_login_flow.handle(request, self._caller(request).session, self.oauth2, self.base_url)
        if path in ("/index.php/login", "/login"):
            return html_response(200, "<!DOCTYPE html><html><head><title>Login – Nextcloud</title></head>"
                                      "<body><form method=\"post\"></form></body></html>")
        return not_found_page()

    # --- state construction ---------------------------------------------------------------------

    @staticmethod
    def _validate_config(config: NextcloudConfig) -> None:
        AppVersion.parse(config.app_version)
        _server_version(config.version)

    def _build_state(self) -> None:
        self.accounts = Accounts(self._ledger, self.clock)
        self.accounts.add_user(self.config.admin_user, self.config.admin_password, admin=True)
        self.oauth2 = OAuth2(self.accounts, self._ledger, self.clock)
        self.integration = Integration(
            self.accounts, self.oauth2, Outbound(self.config.outbound_timeout_s), self._ledger,
            version=lambda: AppVersion.parse(self.config.app_version), options=lambda: self.config,
            ca_bundle=lambda: self.ca_bundle)
        self.openproject_oauth = OpenProjectUserOAuth(self.integration, self._ledger, self._lock, self.clock,
                                                      lambda: self.base_url, lambda: self.ca_bundle)
        self.sessions.reset()
        self._clock_offset = 0.0

    @property
    def app_version(self) -> AppVersion:
        return AppVersion.parse(self.config.app_version)

    # --- authentication -------------------------------------------------------------------------

    def _authorization(self, request: Request) -> str | None:
        if self.config.strip_authorization:
            return None
        return request.headers.get("Authorization")

    def _caller(self, request: Request) -> _Caller:
        header = self._authorization(request)
        basic = parse_basic(header)
        if basic is not None:
            uid = self.accounts.login_basic(basic[0], basic[1], self.config.allow_password_login)
            return _Caller(uid, bad_credentials=uid is None)
        bearer = parse_bearer(header)
        if bearer is not None:
            return _Caller(self.accounts.login_bearer(bearer))
        if header is None:
            session = self.sessions.session(request)
            if session is not None and session.user in self.accounts.users:
                return _Caller(session.user, session=session)
        return _Caller()

    # --- status.php and OCS ---------------------------------------------------------------------

    def _status(self, request: Request) -> Response:
        major, minor, micro = _server_version(self.config.version)
        body = {"installed": True, "maintenance": self.config.maintenance, "needsDbUpgrade": False,
                "version": f"{major}.{minor}.{micro}.{self.config.build}", "versionstring": self.config.version,
                "edition": "", "productname": "Nextcloud", "extendedSupport": False}
        return Response(200, json.dumps(body, separators=(",", ":")).encode("utf-8"),
                        [("Content-Type", "application/json")])

    def _ocs(self, request: Request) -> Response:
        api_version = 1 if request.path.startswith("/ocs/v1.php/") else 2
        route = request.path[len("/ocs/v1.php"):].rstrip("/")
        if (request.headers.get("OCS-APIRequest") or "").lower() != "true":
            return json_response(412, {"message": "CSRF check failed"})
        with self._lock:
            caller = self._caller(request)
            if caller.bad_credentials:
                return ocs_response(request, api_version, [], status=401, message="")
            if route == "/cloud/capabilities" and request.method == "GET":
                return ocs_response(request, api_version, self._capabilities())
            if route == "/apps/integration_openproject/api/v1/url" and self.config.app_installed \
                    and self.app_version.has_ocs_api and request.method == "GET":
                if caller.uid is None:
                    return ocs_response(request, api_version, [], status=401,
                                        message="Current user is not logged in", ocs_status=997)
                return ocs_response(request, api_version, self.integration.openproject_url())
            if route == "/cloud/user" and request.method == "GET":
                if caller.uid is None:
                    return ocs_response(request, api_version, [], status=401,
                                        message="Current user is not logged in", ocs_status=997)
                return ocs_response(request, api_version, self._user_data(caller.uid))
            if route.startswith("/cloud/users/") and request.method == "GET":
                if caller.uid is None:
                    return ocs_response(request, api_version, [], status=401,
                                        message="Current user is not logged in", ocs_status=997)
                uid = route[len("/cloud/users/"):]
                if uid != caller.uid and not self.accounts.is_admin(caller.uid):
                    return ocs_response(request, api_version, [], status=403, message="", ocs_status=997)
                if uid not in self.accounts.users:
                    return ocs_response(request, api_version, [], status=404, message="User does not exist",
                                        ocs_status=404)
                return ocs_response(request, api_version, self._user_data(uid))
        return ocs_response(request, api_version, [], status=404, message="Invalid query, please check the syntax. "
                            "API specifications are here: http://www.freedesktop.org/wiki/Specifications/"
                            "open-collaboration-services.", ocs_status=998)

    def _capabilities(self) -> dict[str, Any]:
        major, minor, micro = _server_version(self.config.version)
        capabilities: dict[str, Any] = {
            "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav", "reference-api": True},
            "files": {"bigfilechunking": True},
        }
        if self.config.app_installed and self.app_version.has_capability_block:
            capabilities["integration_openproject"] = {
                "app_version": self.config.app_version,
                "groupfolder_version": self.config.groupfolders_version if self.config.groupfolders else "",
                "groupfolders_enabled": self.config.groupfolders,
            }
        return {"version": {"major": major, "minor": minor, "micro": micro, "string": self.config.version,
                            "edition": "", "extendedSupport": False},
                "capabilities": capabilities}

    def _user_data(self, uid: str) -> dict[str, Any]:
        user = self.accounts.users[uid]
        groups = sorted(g.name for g in self.accounts.groups.values() if uid in g.members)
        return {"id": uid, "enabled": True, "display-name": user.display_name, "displayname": user.display_name,
                "email": None, "groups": groups}

    # --- WebDAV ---------------------------------------------------------------------------------

    def _dav(self, request: Request) -> Response:
        with self._lock:
            caller = self._caller(request)
            if caller.uid is None:
                body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">'
                        "<s:exception>Sabre\\DAV\\Exception\\NotAuthenticated</s:exception>"
                        "<s:message>No public access to this resource., No 'Authorization: Basic' header found. "
                        "Either the client didn't send one, or the server is misconfigured, No 'Authorization: "
                        "Bearer' header found. Either the client didn't send one, or the server is "
                        "mis-configured</s:message></d:error>")
                return Response(401, body.encode("utf-8"), [("Content-Type", "application/xml; charset=utf-8"),
                                                            ("WWW-Authenticate", DAV_REALM)])
            if request.method in ("HEAD", "GET"):
                return html_response(200, "" if request.method == "HEAD" else
                                     "This is the WebDAV interface. It can only be accessed by WebDAV clients "
                                     "such as the Nextcloud desktop sync client.")
            if request.method == "OPTIONS":
                return Response(200, b"", [("DAV", "1, 3, extended-mkcol"),
                                           ("Allow", "OPTIONS, GET, HEAD, DELETE, PROPFIND, PUT, PROPPATCH, COPY, "
                                                     "MOVE, REPORT")])
            if request.method == "PROPFIND":
                return self._propfind(request, caller.uid)
        return html_response(405, "")

    def _propfind(self, request: Request, uid: str) -> Response:
        path = request.path if request.path.endswith("/") else request.path + "/"
        entries: list[tuple[str, str | None]] = [(path, None)]  # (href, content type; None: a folder)
        if path == f"/remote.php/dav/files/{uid}/":
            if uid != OPENPROJECT_ENTITY:  # the system user gets no skeleton
                entries += [(path + name, content_type) for name, content_type in USER_SKELETON]
            for folder in self.accounts.team_folders.values():
                if any(uid in self.accounts.groups[g].members for g in folder.groups if g in self.accounts.groups):
                    entries.append((f"{path}{folder.mount_point}/", None))
        responses = "".join(
            f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>"
            + ("<d:resourcetype><d:collection/></d:resourcetype>" if content_type is None else
               f"<d:resourcetype/><d:getcontenttype>{content_type}</d:getcontenttype>")
            + "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            for href, content_type in entries)
        body = (f'<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" '
                f'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">{responses}</d:multistatus>\n')
        return Response(207, body.encode("utf-8"), [("Content-Type", "application/xml; charset=utf-8")])

    # --- oauth2 ---------------------------------------------------------------------------------

    def _oauth2(self, request: Request) -> Response:
        route = request.path[len(OAUTH2_PREFIX):]
        with self._lock:
            if route == "/api/v1/token":
                return self.oauth2.token(request, self.config.strip_authorization)
            if route == "/authorize":
                if request.method != "GET":
                    return method_not_allowed()
                caller = self._caller(request)
                answer = self.oauth2.authorize(request, caller.uid, self.base_url)
                location = dict((k.lower(), v) for k, v in answer.headers).get("location", "")
                to_login_flow = location.startswith(self.base_url + nextcloud_login_flow.LOGIN_FLOW_PATH)
                if caller.session is not None and to_login_flow:
                    nextcloud_login_flow.remember_authorization(caller.session, request.query_one("client_id") or "",
                                                                request.query_one("state") or "")
                return answer
        return not_found_page()

    # --- integration_openproject ----------------------------------------------------------------

    # route -> (methods, who may call it: "admin", "user" or "public", needs OCS-APIRequest (CSRF),
    #           whether the configured app version has the route)
    _ROUTES: dict[str, tuple[tuple[str, ...], str, bool, Callable[[AppVersion], bool]]] = {
        "/setup": (("POST", "PATCH", "DELETE"), "admin", False, lambda v: v.has_setup_routes),
        "/check-admin-config": (("GET",), "admin", False, lambda v: v.has_check_admin_config),
        "/project-folder-status": (("GET",), "admin", False, lambda v: v.has_project_folders),
        "/check-config": (("GET",), "public", False, lambda v: True),
        "/is-valid-op-instance": (("POST",), "user", True, lambda v: True),
        "/sign-term-of-service": (("POST",), "admin", False, lambda v: v.has_terms_of_service_route),
        "/op-oauth-url": (("GET",), "user", False, lambda v: True),
        "/oauth-redirect": (("GET",), "user", False, lambda v: True),
    }

    def _integration_route(self, request: Request, route: str) -> Response:
        if not self.config.app_installed:
            return not_found_page()
        entry = self._ROUTES.get(route)
        if entry is None or not entry[3](self.app_version):
            return not_found_page()
        methods, access, csrf, _ = entry
        if request.method not in methods:
            return method_not_allowed()
        if route == "/is-valid-op-instance":
            # Authenticate under the lock, then probe OpenProject without holding it.
            with self._lock:
                refusal = self._refuse(request, access, csrf)
            if refusal is not None:
                return refusal
            return self.integration.is_valid_op_instance(_body_value(request, "url"))
        if route == "/oauth-redirect":
            # The checks under the lock, the exchange with OpenProject without it.
            with self._lock:
                refusal = self._refuse(request, access, csrf)
                if refusal is not None:
                    return refusal
                prepared = self.openproject_oauth.prepare(self._caller(request).uid or "", request)
            if isinstance(prepared, PreparedExchange):
                return self.openproject_oauth.complete(prepared)
            return prepared
        with self._lock:
            refusal = self._refuse(request, access, csrf)
            if refusal is not None:
                return refusal
            if route == "/check-config":
                caller = self._caller(request)
                return json_response(200, {"user_id": caller.uid or "",
                                           "authorization_header": self._authorization(request)})
            if route == "/check-admin-config":
                return self.integration.check_admin_config()
            if route == "/project-folder-status":
                return self.integration.project_folder_status()
            if route == "/sign-term-of-service":
                return self.integration.sign_terms_of_service()
            if route == "/op-oauth-url":
                return self.openproject_oauth.authorization_url(self._caller(request).uid or "")
            if request.method == "DELETE":
                prepared = self.integration.delete_setup()
            elif request.method == "POST":
                prepared = self.integration.post_setup(_body_value(request, "values"))
            else:
                prepared = self.integration.patch_setup(_body_value(request, "values"))
        # /setup: the revocation calls go out after the lock is released (see RevocationBatch).
        return self.integration.finish(prepared)

    def _refuse(self, request: Request, access: str, csrf: bool) -> Response | None:
        """Nextcloud's SecurityMiddleware: login, then admin, then CSRF (§1.3)."""
        caller = self._caller(request)
        if caller.bad_credentials:
            return json_response(401, {"message": ""})
        if access == "public":
            return None
        if caller.uid is None:
            return framework_error(request, 401, "Current user is not logged in", self.base_url)
        if access == "admin" and not self.accounts.is_admin(caller.uid):
            return framework_error(request, 403, "Logged in account must be an admin", self.base_url)
        if csrf and (request.headers.get("OCS-APIRequest") or "").lower() != "true":
            return json_response(412, {"message": "CSRF check failed"})
        return None

    # --- control API extras ---------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        if request.path == LOGIN_PATH:  # loopback only: the server answers others itself
            with self._lock:
                return self.sessions.login(request, lambda uid: uid if uid in self.accounts.users else None)
        route = request.path[len(CONTROL_PREFIX):] if request.path.startswith(CONTROL_PREFIX + "/") else None
        if route is None or request.method != "POST":
            return Response.json(404, {"error": "not_found", "path": request.path})
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            return Response.json(400, {"error": "body is not JSON"})
        if not isinstance(body, dict):
            return Response.json(400, {"error": "body must be a JSON object"})
        with self._lock:
            handler = {
                "/app-password": self._control_app_password,
                "/users": self._control_user,
                "/openproject-tokens": self._control_openproject_token,
                "/oauth2/grant": self._control_grant,
                "/clock": self._control_clock,
                "/project-folder-entities": self._control_entities,
            }.get(route)
            if handler is None:
                return Response.json(404, {"error": "not_found", "path": request.path})
            return handler(body)

    def _control_app_password(self, body: dict[str, Any]) -> Response:
        uid = body.get("user", self.config.admin_user)
        if uid not in self.accounts.users:
            return Response.json(404, {"error": f"no user {uid}"})
        name = str(body.get("name", "opnc"))
        password = random_string(72)
        self.accounts.create_token(uid, name, password, permanent=True)
        return Response.json(201, {"user": uid, "name": name, "app_password": password})

    def _control_user(self, body: dict[str, Any]) -> Response:
        uid = body.get("user")
        if not isinstance(uid, str) or not uid:
            return Response.json(400, {"error": "user is required"})
        if uid in self.accounts.users:
            return Response.json(409, {"error": f"user {uid} exists"})
        password = body.get("password") or secrets.token_urlsafe(18)
        admin = bool(body.get("admin", False))
        self.accounts.add_user(uid, password, admin=admin)
        return Response.json(201, {"user": uid, "password": password, "admin": admin})

    def _control_openproject_token(self, body: dict[str, Any]) -> Response:
        uid, token = body.get("user"), body.get("access_token")
        if uid not in self.accounts.users:
            return Response.json(404, {"error": f"no user {uid}"})
        if not isinstance(token, str) or not token:
            return Response.json(400, {"error": "access_token is required"})
        self.integration.seed_user_token(uid, token, body.get("refresh_token"))
        return Response.json(200, {"user": uid, "stored": True})

    def _control_grant(self, body: dict[str, Any]) -> Response:
        client = self.oauth2.client_by_identifier(body.get("client_id"))
        if client is None:
            return Response.json(404, {"error": "unknown client_id"})
        uid = body.get("user", self.config.admin_user)
        if uid not in self.accounts.users:
            return Response.json(404, {"error": f"no user {uid}"})
        state = str(body.get("state", ""))
        location = self.oauth2.grant(client, uid, state)
        code = location.rsplit("code=", 1)[1]
        return Response.json(200, {"location": location, "code": code, "state": state})

    def _control_clock(self, body: dict[str, Any]) -> Response:
        advance = body.get("advance_s")
        if not isinstance(advance, (int, float)) or isinstance(advance, bool) or advance < 0:
            return Response.json(400, {"error": "advance_s must be a non-negative number"})
        self._clock_offset += float(advance)
        return Response.json(200, {"offset_s": self._clock_offset})

    def _control_entities(self, body: dict[str, Any]) -> Response:
        created = []
        if body.get("user") and OPENPROJECT_ENTITY not in self.accounts.users:
            self.accounts.add_user(OPENPROJECT_ENTITY, random_string(72))
            created.append("user")
        if body.get("group") and OPENPROJECT_ENTITY not in self.accounts.groups:
            self.accounts.groups[OPENPROJECT_ENTITY] = Group(OPENPROJECT_ENTITY)
            created.append("group")
        if body.get("team_folder") and self.accounts.team_folder_named(OPENPROJECT_ENTITY) is None:
            self.accounts.create_team_folder(OPENPROJECT_ENTITY)
            created.append("team_folder")
        return Response.json(200, {"created": created})


def _server_version(text: str) -> tuple[int, int, int]:
    parts = (text.split(".") + ["0", "0"])[:3]
    try:
        return int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError as exc:
        raise ValueError(f"not a Nextcloud version: {text!r}") from exc


def _body_value(request: Request, name: str) -> Any:
    """A controller argument: from a JSON body (only with a JSON content type), else form or query.
    Malformed JSON leaves the argument unset (null)."""
    content_type = (request.headers.get("Content-Type") or "").lower()
    if "application/json" in content_type:
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return body.get(name) if isinstance(body, dict) else None
    form = request.form() if "application/x-www-form-urlencoded" in content_type else {}
    values = form.get(name) or request.query.get(name)
    return values[0] if values else None


__all__ = ["NextcloudApp", "NextcloudConfig"]
