"""Nextcloud's core ``oauth2`` app, as in oauth2 1.22.0 / Nextcloud 34.0.1 (contract/nextcloud.md §11).

Model (as upstream): an OAuth *client* (internal numeric id, 64-character identifier, secret kept
only as a digest, registered redirect URI) and, per granted user, an *access-token row* that holds
the digest of the current code (first the authorization code, then the refresh token; upstream
looks both up the same way), when the code was made, how many tokens were delivered, and the app
token (an ``OpenProject client`` app password of the user) whose value is the access token.

Quirks reproduced on purpose (§11.4): the code is looked up before the client is checked, so an
unknown code answers ``invalid_request`` whatever the client; a wrong client on a valid code answers
``invalid_client`` without consuming the code; refresh tokens are single use and rotate; every error
is 400 with a bare ``{"error":…}``; a missing ``grant_type`` is an empty HTML 400; a missing code a
500 page.

The user-facing grant is split out (:meth:`OAuth2.grant`) so that a later test-only login can drive
the authorization-code flow without a browser; today the control API calls it.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlencode

from opnc.sandbox.app import Request, Response
from opnc.sandbox.nextcloud_accounts import Accounts, SecretLedger, digest, parse_basic, random_string
from opnc.sandbox.nextcloud_http import html_response, json_response, server_error_page

CODE_LIFETIME_S = 600
ACCESS_TOKEN_LIFETIME_S = 3600
UNAUTHORIZED_CLIENT_PAGE = ("<!DOCTYPE html><html><head><title>Nextcloud</title></head><body><h2>Your client is "
                            "not authorized to connect. Please inform the administrator of your client.</h2>"
                            "</body></html>")


@dataclass
class OAuthClient:
    id: int  # internal database id (what integration_openproject stores as nc_oauth_client_id)
    name: str
    client_identifier: str
    secret_digest: str
    redirect_uri: str


@dataclass
class AccessTokenRow:
    id: int
    client_id: int  # internal id of the client
    uid: str
    code_digest: str  # the authorization code, later the current refresh token
    code_created_at: float
    token_count: int
    app_token_id: int


class OAuth2:
    """The clients and tokens of the oauth2 app. The app's lock guards every call."""

    def __init__(self, accounts: Accounts, ledger: SecretLedger, clock: Callable[[], float]) -> None:
        self.accounts = accounts
        self.ledger = ledger
        self.clock = clock
        self.clients: dict[int, OAuthClient] = {}
        self.rows: dict[int, AccessTokenRow] = {}
        self._next_client_id = 1
        self._next_row_id = 1

    # --- clients (used by integration_openproject) ----------------------------------------------

    def create_client(self, name: str, redirect_uri_template: str) -> tuple[OAuthClient, str]:
        """A new client; `redirect_uri_template` has one ``%s`` for the client identifier.
        Returns the client and its secret, which exists nowhere else afterwards."""
        identifier = random_string(64)  # public: it appears in URLs, so it is no secret
        secret = self.ledger.record(random_string(64)) or ""
        client = OAuthClient(self._next_client_id, name, identifier, digest(secret),
                             redirect_uri_template.replace("%s", identifier))
        self._next_client_id += 1
        self.clients[client.id] = client
        return client, secret

    def client_by_identifier(self, identifier: str | None) -> OAuthClient | None:
        return next((c for c in self.clients.values() if c.client_identifier == identifier), None)

    def set_redirect_uri(self, client_id: int, op_url: str) -> bool:
        client = self.clients.get(client_id)
        if client is None:
            return False
        client.redirect_uri = op_url.rstrip("/") + "/oauth_clients/" + client.client_identifier + "/callback"
        return True

    def delete_client(self, client_id: int) -> None:
        """ClientService::deleteClient (§11.5): the app passwords named like the client die for
        every user, and so do the client's access-token rows."""
        client = self.clients.pop(client_id, None)
        if client is None:
            return
        self.accounts.delete_tokens(None, client.name)
        for row_id in [r.id for r in self.rows.values() if r.client_id == client_id]:
            del self.rows[row_id]

    # --- authorization --------------------------------------------------------------------------

    def grant(self, client: OAuthClient, uid: str, state: str) -> str:
        """The user granted access: create the app password named like the client and a fresh
        authorization code; return the redirect to the registered URI (§11.2)."""
        code = self.ledger.record(random_string(128)) or ""
        initial_access = random_string(72)
        token = self.accounts.create_token(uid, client.name, initial_access, permanent=True)
        row = AccessTokenRow(self._next_row_id, client.id, uid, digest(code), self.clock(), 0, token.id)
        self._next_row_id += 1
        self.rows[row.id] = row
        return client.redirect_uri + "?" + urlencode({"state": state, "code": code})

    def authorize(self, request: Request, logged_in_uid: str | None, base_url: str) -> Response:
        client = self.client_by_identifier(request.query_one("client_id"))
        if client is None:
            return html_response(200, UNAUTHORIZED_CLIENT_PAGE)
        state = request.query_one("state", "") or ""
        if request.query_one("response_type") != "code":
            location = client.redirect_uri + "?" + urlencode({"error": "unsupported_response_type", "state": state})
            return html_response(303, "", [("Location", location)])
        if logged_in_uid is None:
            target = f"{base_url}/index.php/login?redirect_url={quote(request.raw_target or request.path, safe='')}"
            return html_response(303, "", [("Location", target)])
        # The redirect_uri parameter is ignored: NC always uses the registered one.
        location = (f"{base_url}/index.php/login/flow?"
                    + urlencode({"clientIdentifier": client.client_identifier, "providedRedirectUri": ""}))
        return html_response(303, "", [("Location", location)])

    # --- token endpoint -------------------------------------------------------------------------

    def token(self, request: Request, strip_authorization: bool) -> Response:
        if request.method != "POST":
            return html_response(405, "")
        params = _token_parameters(request)
        grant_type = params.get("grant_type")
        if grant_type is None:
            # The framework cannot call getToken() without its required string argument.
            return html_response(400, "")
        if grant_type not in ("authorization_code", "refresh_token"):
            return _error("invalid_grant")
        code = params.get("refresh_token") if grant_type == "refresh_token" else params.get("code")
        if code is None:
            return server_error_page()  # getByCode(null): an uncaught TypeError upstream
        row = self._row_by_code(code)
        if row is None:
            return _error("invalid_request")
        now = self.clock()
        if grant_type == "authorization_code":
            if row.token_count > 0:
                return _error("invalid_request")
            if row.code_created_at < now - CODE_LIFETIME_S:
                del self.rows[row.id]
                return _error("invalid_request")
        client = self.clients.get(row.client_id)
        if client is None:
            return _error("invalid_request")
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        basic = None if strip_authorization else parse_basic(request.headers.get("Authorization"))
        if basic is not None:
            client_id, client_secret = basic  # HTTP Basic overrides the body
        if client.client_identifier != client_id or not hmac.compare_digest(
                client.secret_digest, digest(client_secret or "")):
            return _error("invalid_client")
        app_token = self.accounts.tokens.get(row.app_token_id)
        if app_token is None:
            del self.rows[row.id]
            return _error("invalid_request")
        access_token = self.ledger.record(random_string(72)) or ""
        refresh_token = self.ledger.record(random_string(128)) or ""
        row.code_digest = digest(refresh_token)
        row.token_count += 1
        self.accounts.rotate_token(app_token, access_token, now + ACCESS_TOKEN_LIFETIME_S)
        return json_response(200, {"access_token": access_token, "token_type": "Bearer",
                                   "expires_in": ACCESS_TOKEN_LIFETIME_S, "refresh_token": refresh_token,
                                   "user_id": row.uid})

    def _row_by_code(self, code: str) -> AccessTokenRow | None:
        wanted = digest(code)
        return next((r for r in self.rows.values() if hmac.compare_digest(r.code_digest, wanted)), None)

    # --- state ----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "oauth_clients": [{"id": c.id, "client_id": c.client_identifier, "name": c.name,
                               "redirect_uri": c.redirect_uri} for c in self.clients.values()],
            "oauth_grants": [{"id": r.id, "client_internal_id": r.client_id, "user": r.uid,
                              "token_count": r.token_count} for r in self.rows.values()],
        }


def _error(code: str) -> Response:
    return json_response(400, {"error": code})


def _token_parameters(request: Request) -> dict[str, str]:
    """Query parameters, overridden by the body: form-encoded or JSON, both accepted (§11.3)."""
    params = {key: values[0] for key, values in request.query.items() if values}
    content_type = (request.headers.get("Content-Type") or "").lower()
    if "application/json" in content_type:
        try:
            body = json.loads(request.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict):
            params.update({key: value if isinstance(value, str) else json.dumps(value)
                           for key, value in body.items() if value is not None})
    else:
        params.update({key: values[0] for key, values in request.form().items() if values})
    return params
