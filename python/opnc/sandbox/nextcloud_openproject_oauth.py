"""Nextcloud as OAuth client of OpenProject: a Nextcloud user connects to OpenProject
(contract/nextcloud.md §12, contract/openproject.md §12; upstream ``integration_openproject``'s
``OpenProjectAPIController::getOpenProjectOauthURLWithStateAndPKCE`` and
``ConfigController::oauthRedirect``).

- ``GET /index.php/apps/integration_openproject/op-oauth-url`` (a logged-in user): a fresh ``state``
  (10 hex digits) and PKCE verifier are stored as the user's values; the answer is the JSON string
  ``<op>/oauth/authorize?client_id=&redirect_uri=<nc>/index.php/apps/integration_openproject/oauth-redirect
  &response_type=code&state=&code_challenge=&code_challenge_method=S256`` (no scope).
- ``GET /index.php/apps/integration_openproject/oauth-redirect?code=&state=``: when the state matches,
  the code is exchanged at ``<stored op url>/oauth/token`` with the stored client id and secret as
  form fields and the verifier (with opnc's OAuth engine, ``oauth_exchange``); the tokens and their
  expiry are stored for the user, then ``GET <op>/api/v3/users/me`` with the new token gives the
  user's OpenProject id and name. The browser is sent to the personal settings with
  ``?openprojectToken=success``, or ``?openprojectToken=error&message=...``.

The exchange and the users/me call run without the app's lock (:meth:`prepare` under it,
:meth:`complete` without, :meth:`store` under it again).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, urlencode

from opnc.sandbox.app import Request, Response
from opnc.sandbox.http_call import http_call
from opnc.sandbox.nextcloud_accounts import SecretLedger
from opnc.sandbox.nextcloud_http import html_response, json_response
from opnc.sandbox.nextcloud_integration import Integration
from opnc.sandbox.oauth_exchange import Refusal, exchange_code

REDIRECT_PATH = "/index.php/apps/integration_openproject/oauth-redirect"
SETTINGS_PATH = "/index.php/settings/user/connected-accounts"
USER_AGENT = "Nextcloud OpenProject integration"
MINIMUM_SECRET_LENGTH = 10  # upstream refuses to exchange with a shorter stored client secret
EXCHANGE_ERROR = "Error during OAuth exchanges"
TOKEN_ERROR = "Error getting OAuth access token"


@dataclass
class PreparedExchange:
    """What the exchange needs, read under the lock."""
    uid: str
    op_url: str
    client_id: str
    client_secret: str = field(repr=False)
    code: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str


class OpenProjectUserOAuth:
    def __init__(self, integration: Integration, ledger: SecretLedger, lock: threading.RLock,
                 clock: Callable[[], float], base_url: Callable[[], str],
                 ca_bundle: Callable[[], str | None]) -> None:
        self.integration = integration
        self.ledger = ledger
        self.lock = lock
        self.clock = clock
        self.base_url = base_url
        self.ca_bundle = ca_bundle

    def redirect_uri(self) -> str:
        return self.base_url() + REDIRECT_PATH

    # --- GET /op-oauth-url (under the app's lock) ---

    def authorization_url(self, uid: str) -> Response:
        settings = self.integration.settings
        op_url, client_id = settings.get("openproject_instance_url"), settings.get("openproject_client_id")
        if not op_url or not client_id:
            return json_response(400, {"error": "OpenProject OAuth is not configured"})
        state = secrets.token_hex(5)
        verifier = secrets.token_urlsafe(96)[:128]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")
        values = self.integration.user_values.setdefault(uid, {})
        values["oauth_state"] = state
        values["code_verifier"] = self.ledger.record(verifier) or ""
        query = urlencode({"client_id": client_id, "redirect_uri": self.redirect_uri(), "response_type": "code",
                           "state": state, "code_challenge": challenge, "code_challenge_method": "S256"},
                          quote_via=quote)
        return json_response(200, f"{op_url.rstrip('/')}/oauth/authorize?{query}")

    # --- GET /oauth-redirect ---

    def prepare(self, uid: str, request: Request) -> PreparedExchange | Response:
        """Under the app's lock: the checks of oauthRedirect before any request leaves."""
        settings = self.integration.settings
        values = self.integration.user_values.get(uid, {})
        expected_state = values.pop("oauth_state", "")  # one use: a replayed redirect fails
        state, code = request.query_one("state") or "", request.query_one("code") or ""
        op_url, client_id = settings.get("openproject_instance_url"), settings.get("openproject_client_id")
        client_secret = settings.get("openproject_client_secret")
        verifier = values.get("code_verifier", "")
        if not (op_url and client_id and len(client_secret) >= MINIMUM_SECRET_LENGTH and code and expected_state
                and hmac.compare_digest(state.encode(), expected_state.encode()) and 43 <= len(verifier) <= 128):
            return self._back(error=EXCHANGE_ERROR)
        return PreparedExchange(uid, op_url, client_id, client_secret, code, verifier, self.redirect_uri())

    def complete(self, prepared: PreparedExchange) -> Response:
        """Without the lock: exchange the code, store the tokens, read the user's OpenProject identity."""
        # Upstream appends the path to the stored URL as it is: a trailing slash gives //oauth/token.
        granted = exchange_code(prepared.op_url + "/oauth/token", prepared.client_id, prepared.client_secret,
                                prepared.code, redirect_uri=prepared.redirect_uri,
                                code_verifier=prepared.code_verifier, auth_method="request_body",
                                ca_bundle=self.ca_bundle())
        if isinstance(granted, Refusal):
            return self._back(error=f"{TOKEN_ERROR}. {granted.reason}")
        if not granted.refresh_token:
            return self._back(error="Error getting OAuth refresh token")
        self.ledger.record(granted.access_token)
        self.ledger.record(granted.refresh_token)
        identity = self._current_user(prepared.op_url, granted.access_token)
        with self.lock:
            values = self.integration.user_values.setdefault(prepared.uid, {})
            values.pop("code_verifier", None)
            values.update({"token": granted.access_token, "refresh_token": granted.refresh_token,
                           "token_expires_at": str(int(self.clock()) + granted.expires_in)})
            if identity is not None:  # upstream does not check this answer either ("ToDo")
                values.update({"user_id": identity[0], "user_name": identity[1]})
        return self._back()

    def _current_user(self, op_url: str, access_token: str) -> tuple[str, str] | None:
        answer = http_call("GET", op_url.rstrip("/") + "/api/v3/users/me",
                           {"Authorization": f"Bearer {access_token}", "Accept": "application/json",
                            "User-Agent": USER_AGENT}, ca_bundle=self.ca_bundle())
        if answer is None or answer[0] != 200:
            return None
        try:
            user = json.loads(answer[1])
            return str(user["id"]), f"{user['firstName']} {user['lastName']}"
        except (ValueError, KeyError, TypeError):
            return None

    def _back(self, error: str | None = None) -> Response:
        query = "openprojectToken=success" if error is None else urlencode(
            {"openprojectToken": "error", "message": error})
        return html_response(303, "", [("Location", f"{self.base_url()}{SETTINGS_PATH}?{query}")])
