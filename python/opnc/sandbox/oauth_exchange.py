"""The authorization-code exchange the emulators perform as OAuth *clients* of each other.

OpenProject exchanges a Nextcloud code at its callback (contract/openproject.md §13), Nextcloud an
OpenProject code at its ``/oauth-redirect`` (contract/nextcloud.md §12). Both use opnc's own OAuth
engine (:mod:`opnc.oauth`), so a user flow through the sandbox proves the engine against the
emulated token endpoints as well as the configured clients. The engine lives in the compiled
extension; it is imported on first use, and without it (a source checkout used only for the
sandbox) a plain form POST does the same request, so the rest of the sandbox keeps working.

The result is a :class:`GrantedTokens` whose reprs hide the tokens, or a :class:`Refusal` naming the
reason (the server's RFC 6749 error code, or a transport failure): never a secret.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from types import ModuleType
from urllib.parse import urlencode

from opnc.sandbox.http_call import http_call

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GrantedTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    engine: str  # "opnc.oauth" or "form-post": which code made the request


@dataclass(frozen=True)
class Refusal:
    reason: str  # e.g. "invalid_client", "invalid_request", "http 500", "connection failed"


def _engine() -> ModuleType | None:
    """The opnc.oauth module, or None without the compiled extension."""
    try:
        from opnc import oauth
    except ImportError:
        return None
    return oauth


def exchange_code(token_endpoint: str, client_id: str, client_secret: str, code: str, *, redirect_uri: str,
                  code_verifier: str | None = None, auth_method: str = "request_body",
                  ca_bundle: str | None = None) -> GrantedTokens | Refusal:
    """POST the code to `token_endpoint`. `auth_method` is ``request_body`` (client_secret_post, as
    Nextcloud sends it) or ``basic`` (HTTP Basic, Rack::OAuth2's default, as OpenProject sends it)."""
    oauth = _engine()
    if oauth is None:
        return _form_post(token_endpoint, client_id, client_secret, code, redirect_uri, code_verifier,
                          auth_method, ca_bundle)
    from opnc import errors

    config = oauth.ClientConfig(token_endpoint, client_id, client_secret, redirect_uri=redirect_uri,
                                auth_method=auth_method)
    try:
        token = oauth.exchange_code(config, code, code_verifier, ca_bundle=ca_bundle or "", timeout=TIMEOUT_S)
    except errors.Error as error:
        return Refusal(error.server_id or error.kind)
    refresh = token.refresh_token
    expires_in = int(round(token.expires_at - token.obtained_at)) if token.expires_at is not None else 0
    return GrantedTokens(token.access_token.expose(), refresh.expose() if refresh is not None else "",
                         expires_in, "opnc.oauth")


def _form_post(token_endpoint: str, client_id: str, client_secret: str, code: str, redirect_uri: str,
               code_verifier: str | None, auth_method: str, ca_bundle: str | None) -> GrantedTokens | Refusal:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if auth_method == "basic":
        pair = base64.b64encode(f"{client_id}:{client_secret}".encode("utf-8")).decode("ascii")
        headers["Authorization"] = f"Basic {pair}"
    else:
        form.update({"client_id": client_id, "client_secret": client_secret})
    answer = http_call("POST", token_endpoint, headers, urlencode(form).encode("ascii"), ca_bundle, TIMEOUT_S)
    if answer is None:
        return Refusal("connection failed")
    status, raw = answer
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Refusal(f"http {status}")
    if status != 200 or not data.get("access_token"):
        return Refusal(str(data.get("error") or f"http {status}"))
    return GrantedTokens(str(data["access_token"]), str(data.get("refresh_token") or ""),
                         int(data.get("expires_in") or 0), "form-post")

