"""OpenProject's OAuth 2.0 provider (Doorkeeper), as configured by OpenProject (contract §12).

It holds the OAuth applications (one per two-way Nextcloud storage), the authorization grants and
the access tokens, and answers ``/oauth/authorize``, ``/oauth/token`` and ``/oauth/revoke``.
Doorkeeper's validation order is kept, because it decides which error a client sees when several
things are wrong (for example, an unknown refresh token sent with a wrong client secret is
``invalid_grant``, not ``invalid_client``).

The provider is not thread-safe by itself: the OpenProject app calls it under its own lock.
Who the logged-in user is at ``/oauth/authorize`` is decided by the app (``resource_owner``), so a
test-only login can be plugged in later without touching this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, urlencode, urlsplit, urlunsplit, parse_qsl

from opnc.sandbox.app import Request, Response

GRANT_LIFETIME_S = 600  # authorization codes live 10 minutes
ACCESS_TOKEN_LIFETIME_S = 7200
DEFAULT_SCOPES = "api_v3"
# Scopes OpenProject configures; `enforce_configured_scopes` refuses anything else.
CONFIGURED_SCOPES = frozenset({"api_v3", "scim_v2"})

INVALID_CLIENT_DESCRIPTION = ("Client authentication failed due to unknown client, no client authentication "
                              "included, or unsupported authentication method.")
INVALID_GRANT_DESCRIPTION = ("The provided authorization grant is invalid, expired, revoked, does not match the "
                             "redirection URI used in the authorization request, or was issued to another client.")
UNSUPPORTED_GRANT_TYPE_DESCRIPTION = "The authorization grant type is not supported by the authorization server."
INVALID_SCOPE_DESCRIPTION = "The requested scope is invalid, unknown, or malformed."
UNAUTHORIZED_CLIENT_DESCRIPTION = "The client is not authorized to perform this request using this method."
REVOKE_UNAUTHORIZED_DESCRIPTION = "You are not authorized to revoke this token."
INVALID_REDIRECT_URI_DESCRIPTION = "The requested redirect uri is malformed or doesn't match client redirect URI."
UNSUPPORTED_RESPONSE_TYPE_DESCRIPTION = "The authorization server does not support this response type."
INVALID_CODE_CHALLENGE_METHOD_DESCRIPTION = "The code challenge method must be plain or S256."
PKCE_METHODS = ("plain", "S256")


def _new_token() -> str:
    # Doorkeeper's default generator: 32 random bytes, URL-safe base64 without padding (43 characters).
    return secrets.token_urlsafe(32)


@dataclass
class OAuthApplication:
    id: int
    name: str
    uid: str
    # upstream stores it hashed; the emulator keeps it only to check client authentication
    secret: str = field(repr=False)
    redirect_uri: str
    owner_id: int
    integration_id: int | None
    created_at: float
    updated_at: float
    scopes: str = DEFAULT_SCOPES
    confidential: bool = True


@dataclass
class AccessGrant:
    code: str = field(repr=False)
    application_id: int
    user_id: int
    redirect_uri: str
    scopes: str
    created_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    application_id: int
    user_id: int
    scopes: str
    created_at: float
    expires_in: int = ACCESS_TOKEN_LIFETIME_S
    revoked: bool = False
    # Doorkeeper's "refresh_token_revoked_on_use" mode: the refresh token that produced this access
    # token is revoked only when this access token is used for the first time.
    previous_refresh_token: str | None = field(default=None, repr=False)


@dataclass
class ClientCredentials:
    uid: str
    secret: str | None = field(repr=False)


def _oauth_error(status: int, error: str, description: str | None,
                 headers: list[tuple[str, str]] | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Response.json(status, body, content_type="application/json; charset=utf-8",
                         headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache"), *(headers or [])])


def _invalid_client() -> Response:
    challenge = (f'Bearer realm="Doorkeeper", error="invalid_client", '
                 f'error_description="{INVALID_CLIENT_DESCRIPTION}"')
    return _oauth_error(401, "invalid_client", INVALID_CLIENT_DESCRIPTION, [("WWW-Authenticate", challenge)])


def _invalid_grant() -> Response:
    return _oauth_error(400, "invalid_grant", INVALID_GRANT_DESCRIPTION)


def _missing_parameter(name: str) -> Response:
    return _oauth_error(400, "invalid_request", f"Missing required parameter: {name}.")


def _is_form_encoded(request: Request) -> bool:
    content_type = request.headers.get("Content-Type") or ""
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), parts.fragment))


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _html_error(status: int, error: str, description: str) -> Response:
    page = (f"<!DOCTYPE html><html><head><title>OpenProject</title></head><body>"
            f"<h1>An error has occurred</h1><main><p>{description}</p>"
            f"<p class=\"error\" data-error=\"{error}\">{error}</p></main></body></html>")
    return Response.text(status, page)


class DoorkeeperProvider:
    """Applications, grants and tokens of OpenProject's OAuth provider."""

    def __init__(self, clock: Callable[[], float], refresh_token_revoked_on_use: bool = False) -> None:
        self.clock = clock
        self.refresh_token_revoked_on_use = refresh_token_revoked_on_use
        self.applications: dict[int, OAuthApplication] = {}
        self.grants: dict[str, AccessGrant] = {}
        self.tokens: dict[str, AccessToken] = {}  # by access token
        self._next_application_id = 1
        # Every secret ever issued, kept after deletion and reset so leak scans can look for it.
        self._issued: list[str] = []

    # --- applications (managed by the storages, never through an API) ---

    def create_application(self, name: str, redirect_uri: str, owner_id: int,
                           integration_id: int | None) -> OAuthApplication:
        now = self.clock()
        application = OAuthApplication(
            id=self._next_application_id, name=name, uid=_new_token(), secret=_new_token(),
            redirect_uri=redirect_uri, owner_id=owner_id, integration_id=integration_id,
            created_at=now, updated_at=now)
        self._next_application_id += 1
        self.applications[application.id] = application
        self._issued.append(application.secret)
        return application

    def update_application(self, application_id: int, name: str, redirect_uri: str) -> None:
        application = self.applications[application_id]
        application.name = name
        application.redirect_uri = redirect_uri
        application.updated_at = self.clock()

    def destroy_application(self, application_id: int) -> None:
        """Deletes the application with its grants and tokens (dependent: :delete_all upstream)."""
        self.applications.pop(application_id, None)
        self.grants = {code: g for code, g in self.grants.items() if g.application_id != application_id}
        self.tokens = {tok: t for tok, t in self.tokens.items() if t.application_id != application_id}

    def by_uid(self, uid: str) -> OAuthApplication | None:
        return next((a for a in self.applications.values() if a.uid == uid), None)

    def reset(self) -> None:
        self.applications.clear()
        self.grants.clear()
        self.tokens.clear()
        self._next_application_id = 1

    # --- bearer authentication of API requests ---

    def authenticate(self, token: str, scope: str = "api_v3") -> AccessToken | None:
        """The access token if it is usable for `scope` now, else None. Using a token for the first
        time revokes the refresh token it was refreshed from (in refresh_token_revoked_on_use mode)."""
        record = self.tokens.get(token)
        if record is None or record.revoked or self._expired(record):
            return None
        if scope not in record.scopes.split():
            return None
        if record.previous_refresh_token:
            previous = self._by_refresh_token(record.previous_refresh_token)
            if previous is not None:
                previous.revoked = True
            record.previous_refresh_token = None
        return record

    def _expired(self, record: AccessToken) -> bool:
        return self.clock() >= record.created_at + record.expires_in

    def _by_refresh_token(self, refresh_token: str) -> AccessToken | None:
        return next((t for t in self.tokens.values() if t.refresh_token == refresh_token), None)

    # --- client authentication ---

    @staticmethod
    def _credentials(request: Request, form: dict[str, list[str]]) -> ClientCredentials | None:
        """Basic client_id:client_secret first, then form fields (Doorkeeper's from_basic, from_params)."""
        header = request.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value.strip():
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            uid, sep, secret = decoded.partition(":")
            if sep and uid:
                return ClientCredentials(uid, secret)
        uid = (form.get("client_id") or [""])[0]
        if uid:
            return ClientCredentials(uid, (form.get("client_secret") or [None])[0])
        return None

    def _authenticate_client(self, credentials: ClientCredentials | None) -> OAuthApplication | None:
        if credentials is None or credentials.secret is None:
            return None
        application = self.by_uid(credentials.uid)
        if application is None or not hmac.compare_digest(application.secret.encode(), credentials.secret.encode()):
            return None
        return application

    # --- GET /oauth/authorize ---

    def authorize(self, request: Request, user_id: int | None, login_url: str) -> Response:
        """Login, then the pre-authorization checks in Doorkeeper's order, then auto-approval for the
        logged-in user (whether OpenProject skips the consent page is unverified).

        Errors about the client or the redirect URI render an HTML page (never a redirect, so a
        wrong redirect URI cannot be abused); the others redirect back with `error` and `state`.
        """
        if user_id is None:
            # authenticate_resource_owner! runs before anything else: anonymous browsers go to the
            # login page and come back afterwards, whatever the parameters.
            back_url = quote(request.raw_target or request.path, safe="")
            return Response.empty(302, [("Location", f"{login_url}?back_url={back_url}")])
        q = request.query_one
        client_id = q("client_id") or ""
        if not client_id:
            return _html_error(400, "invalid_request", "Missing required parameter: client_id.")
        application = self.by_uid(client_id)
        if application is None:
            return _html_error(401, "invalid_client", INVALID_CLIENT_DESCRIPTION)
        redirect_uri = q("redirect_uri") or ""
        if redirect_uri != application.redirect_uri:
            return _html_error(400, "invalid_redirect_uri", INVALID_REDIRECT_URI_DESCRIPTION)
        state = q("state")

        def redirect_error(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description}
            if state is not None:
                params["state"] = state
            return Response.empty(302, [("Location", _with_query(redirect_uri, params))])

        if q("response_type") != "code":
            return redirect_error("unsupported_response_type", UNSUPPORTED_RESPONSE_TYPE_DESCRIPTION)
        scopes = q("scope") or DEFAULT_SCOPES
        if not set(scopes.split()) <= (set(application.scopes.split()) & CONFIGURED_SCOPES):
            return redirect_error("invalid_scope", INVALID_SCOPE_DESCRIPTION)
        challenge = q("code_challenge") or None
        method = q("code_challenge_method") or None
        if challenge is not None:
            method = method or "plain"
            if method not in PKCE_METHODS:
                return redirect_error("invalid_code_challenge_method", INVALID_CODE_CHALLENGE_METHOD_DESCRIPTION)
        grant = AccessGrant(code=_new_token(), application_id=application.id, user_id=user_id,
                            redirect_uri=redirect_uri, scopes=scopes, created_at=self.clock(),
                            code_challenge=challenge, code_challenge_method=method if challenge else None)
        self.grants[grant.code] = grant
        self._issued.append(grant.code)
        params = {"code": grant.code}
        if state is not None:
            params["state"] = state
        return Response.empty(302, [("Location", _with_query(redirect_uri, params))])

    # --- POST /oauth/token ---

    def token(self, request: Request) -> Response:
        if not _is_form_encoded(request):
            return Response.json(415, {})
        form = request.form()
        grant_type = (form.get("grant_type") or [""])[0]
        if not grant_type:
            return _missing_parameter("grant_type")
        if grant_type == "authorization_code":
            return self._authorization_code(request, form)
        if grant_type == "refresh_token":
            return self._refresh(request, form)
        if grant_type == "client_credentials":
            # OpenProject enables the flow, but only for applications with a client-credentials
            # user; the storage applications have none.
            if self._authenticate_client(self._credentials(request, form)) is None:
                return _invalid_client()
            return _oauth_error(400, "unauthorized_client", UNAUTHORIZED_CLIENT_DESCRIPTION)
        return _oauth_error(400, "unsupported_grant_type", UNSUPPORTED_GRANT_TYPE_DESCRIPTION)

    def _authorization_code(self, request: Request, form: dict[str, list[str]]) -> Response:
        def field_(name: str) -> str:
            return (form.get(name) or [""])[0]

        code, redirect_uri, verifier = field_("code"), field_("redirect_uri"), field_("code_verifier")
        if not code:
            return _missing_parameter("code")
        grant = self.grants.get(code)
        if grant is not None and grant.code_challenge and not verifier:
            return _missing_parameter("code_verifier")
        if not redirect_uri:
            return _missing_parameter("redirect_uri")
        client = self._authenticate_client(self._credentials(request, form))
        if client is None:
            return _invalid_client()
        if (grant is None or grant.application_id != client.id or grant.revoked
                or self.clock() >= grant.created_at + GRANT_LIFETIME_S):
            return _invalid_grant()
        if redirect_uri != grant.redirect_uri:
            return _invalid_grant()
        if grant.code_challenge:
            expected = _s256(verifier) if grant.code_challenge_method == "S256" else verifier
            if not hmac.compare_digest(expected.encode(), grant.code_challenge.encode()):
                return _invalid_grant()
        grant.revoked = True  # single use
        return self._issue(grant.application_id, grant.user_id, grant.scopes, previous_refresh_token=None)

    def _refresh(self, request: Request, form: dict[str, list[str]]) -> Response:
        refresh_token = (form.get("refresh_token") or [""])[0]
        if not refresh_token:
            return _missing_parameter("refresh_token")
        record = self._by_refresh_token(refresh_token)
        if record is None or record.revoked:
            return _invalid_grant()
        credentials = self._credentials(request, form)
        client = self._authenticate_client(credentials)
        if credentials is not None and client is None:
            return _invalid_client()
        if client is None or client.id != record.application_id:
            return _invalid_grant()
        requested = (form.get("scope") or [""])[0]
        if requested and not set(requested.split()) <= set(record.scopes.split()):
            return _oauth_error(400, "invalid_scope", INVALID_SCOPE_DESCRIPTION)
        if not self.refresh_token_revoked_on_use:
            record.revoked = True  # the old access and refresh token die at once
        return self._issue(record.application_id, record.user_id, requested or record.scopes,
                           previous_refresh_token=refresh_token if self.refresh_token_revoked_on_use else None)

    def _issue(self, application_id: int, user_id: int, scopes: str, previous_refresh_token: str | None) -> Response:
        now = self.clock()
        record = AccessToken(token=_new_token(), refresh_token=_new_token(), application_id=application_id,
                             user_id=user_id, scopes=scopes, created_at=now,
                             previous_refresh_token=previous_refresh_token)
        self.tokens[record.token] = record
        self._issued.extend([record.token, record.refresh_token])
        body = {"access_token": record.token, "token_type": "Bearer", "expires_in": record.expires_in,
                "refresh_token": record.refresh_token, "scope": record.scopes, "created_at": int(now)}
        return Response.json(200, body, content_type="application/json; charset=utf-8",
                             headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # --- GET /oauth/token/info ---

    def token_info(self, request: Request) -> Response:
        """Doorkeeper's token introspection for the bearer of an access token."""
        header = request.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        record = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if record is None or record.revoked or self._expired(record):
            challenge = ('Bearer realm="Doorkeeper", error="invalid_token", '
                         'error_description="The access token is invalid"')
            return _oauth_error(401, "invalid_token", "The access token is invalid", [("WWW-Authenticate", challenge)])
        application = self.applications.get(record.application_id)
        body = {"resource_owner_id": record.user_id, "scope": record.scopes.split(),
                "expires_in": int(record.created_at + record.expires_in - self.clock()),
                "application": {"uid": application.uid if application else None},
                "created_at": int(record.created_at)}
        return Response.json(200, body, content_type="application/json; charset=utf-8")

    # --- POST /oauth/introspect ---

    def introspect(self, request: Request) -> Response:
        """RFC 7662 for confidential clients: the client authenticates (Basic or form) and learns
        whether a token is active; tokens of other applications are reported inactive."""
        if not _is_form_encoded(request):
            return Response.json(415, {})
        form = request.form()
        client = self._authenticate_client(self._credentials(request, form))
        if client is None:
            return _invalid_client()
        token = (form.get("token") or [""])[0]
        record = self.tokens.get(token) or (self._by_refresh_token(token) if token else None)
        if record is None or record.revoked or self._expired(record) or record.application_id != client.id:
            return Response.json(200, {"active": False}, content_type="application/json; charset=utf-8")
        body = {"active": True, "scope": record.scopes, "client_id": client.uid, "token_type": "Bearer",
                "exp": int(record.created_at + record.expires_in), "iat": int(record.created_at)}
        return Response.json(200, body, content_type="application/json; charset=utf-8")

    # --- POST /oauth/revoke ---

    def revoke(self, request: Request) -> Response:
        """RFC 7009. The token may be in the body or in the query string (Nextcloud sends it there
        with an empty body). An unknown token answers 200 {} like a successful revocation."""
        if not _is_form_encoded(request):
            return Response.json(415, {})
        form = request.form()
        token = (form.get("token") or [""])[0] or (request.query_one("token") or "")
        credentials = self._credentials(request, form)
        client = self._authenticate_client(credentials)
        if credentials is not None and client is None:
            return _invalid_client()
        record = self.tokens.get(token) or (self._by_refresh_token(token) if token else None)
        if record is None:
            return Response.json(200, {})
        application = self.applications.get(record.application_id)
        if application is not None and application.confidential and (client is None or client.id != application.id):
            return _oauth_error(403, "unauthorized_client", REVOKE_UNAUTHORIZED_DESCRIPTION)
        record.revoked = True
        return Response.json(200, {})

    # --- inspection (control API, leak scans) ---

    def issued_secrets(self) -> list[str]:
        """Every client secret, code, access and refresh token issued so far (also deleted ones)."""
        return list(self._issued)

    def live_tokens(self, application_id: int) -> int:
        return sum(1 for t in self.tokens.values()
                   if t.application_id == application_id and not t.revoked and not self._expired(t))
