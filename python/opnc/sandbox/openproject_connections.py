"""OpenProject as OAuth client of Nextcloud (contract §13): a user connects to the storage.

``GET /oauth_clients/<client_id>/ensure_connection?storage_id=&destination_url=`` sends a user who
has no Nextcloud token to Nextcloud's authorize page, remembering the destination in the cookie
``oauth_state_<nonce>``; ``GET /oauth_clients/<client_id>/callback?code=&state=`` exchanges the code
at Nextcloud's token endpoint with opnc's OAuth engine (``oauth_exchange``) and stores the user's
tokens on the storage's OAuth client; ``user_access_token`` hands a user's (refreshed) token to the
file listing (``openproject_files``). Replacing the client credentials or deleting the storage
drops those tokens.

When a storage is rendered for a user who holds a token, OP checks the connection live
(``authorization_states``): it refreshes the token when it expires within 10 s (Nextcloud's refresh
tokens are single use, so the new pair replaces the old), then asks Nextcloud for
``ocs/v1.php/cloud/user`` with it: 200 is Connected, 401 FailedAuthorization, anything else Error.

The steps and their failure "flashes" follow upstream's ``OAuthClientsController``: login, the
client found through the state cookie (``oauth_client_not_found``), the cookie itself
(``oauth_state_not_present``), the code (``oauth_code_not_present``), then the exchange
(``oauth_authorization_code_grant_had_errors``). A flash is invisible to an API client, so the
emulator keeps the last one in its state (``last_oauth_client_flash``).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from typing import Callable
from urllib.parse import quote

from opnc.sandbox.app import Request, Response
from opnc.sandbox.login import request_cookies
from opnc.sandbox.oauth_exchange import Refusal, exchange_code
from opnc.sandbox.openproject_probes import NextcloudProbe, join_path
from opnc.sandbox.openproject_model import NextcloudUserToken
from opnc.sandbox.openproject_storages import StorageService

STATE_COOKIE_MAX_AGE_S = 3600
REFRESH_MARGIN_S = 10  # OP refreshes a token that expires within this many seconds
NEXTCLOUD_TOKEN_PATH = "index.php/apps/oauth2/api/v1/token"


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response.empty(302, [("Location", location), *(headers or [])])


class NextcloudConnections:
    def __init__(self, lock: threading.RLock, storages: StorageService, clock: Callable[[], float],
                 probe_factory: Callable[[], NextcloudProbe], base_url: Callable[[], str],
                 ca_bundle: Callable[[], str | None] = lambda: None) -> None:
        self.lock = lock
        self.ca_bundle = ca_bundle
        self.storages = storages
        self.clock = clock
        self.probe_factory = probe_factory
        self.base_url = base_url
        self.last_flash: str | None = None
        # Why the last code exchange failed (an RFC 6749 error code, no secret): the flash alone
        # does not tell a wrong client secret from a used code.
        self.last_exchange_refusal: str | None = None

    def reset(self) -> None:
        self.last_flash = None
        self.last_exchange_refusal = None

    def callback_url(self, client_id: str) -> str:
        return f"{self.base_url()}/oauth_clients/{client_id}/callback"

    def ensure_connection(self, request: Request, client_id: str, user_id: int, admin: bool) -> Response:
        storage_id = request.query_one("storage_id") or ""
        root_url = self.base_url() + "/"
        destination = request.query_one("destination_url") or ""
        if not destination.startswith(root_url):
            destination = root_url  # only destinations on this OpenProject are followed
        with self.lock:
            client = next((c for c in self.storages.clients.values()
                           if c.client_id == client_id and str(c.storage_id) == storage_id), None)
            if client is None:
                self.last_flash = "oauth_client_not_found"
                return _redirect(self.base_url() + ("/admin/settings/storages" if admin else "/"))
            if user_id in client.user_tokens:
                return _redirect(destination)
            storage = self.storages.storages[client.storage_id]
            nonce = str(uuid.uuid4())
            authorize = self.storages.nextcloud_authorize_url(storage, client) + f"&state={nonce}"
        cookie_value = quote(json.dumps({"href": destination, "storageId": storage_id}, separators=(",", ":")), safe="")
        cookie = f"oauth_state_{nonce}={cookie_value}; path=/; max-age={STATE_COOKIE_MAX_AGE_S}; HttpOnly"
        return _redirect(authorize, [("Set-Cookie", cookie)])

    def callback(self, request: Request, client_id: str, user_id: int, admin: bool) -> Response:
        state = request.query_one("state") or ""
        cookie = request_cookies(request).get(f"oauth_state_{state}") if state else None
        try:
            remembered = json.loads(cookie) if cookie else None
        except ValueError:
            remembered = None
        if not isinstance(remembered, dict):
            remembered = None
        clear_cookie = [("Set-Cookie", f"oauth_state_{state}=; path=/; max-age=0")] if state else []
        with self.lock:
            client = None
            if remembered is not None:
                client = next((c for c in self.storages.clients.values()
                               if c.client_id == client_id and str(c.storage_id) == str(remembered.get("storageId"))),
                              None)
            if client is None:
                self.last_flash = "oauth_client_not_found"
                return _redirect(self.base_url() + "/", clear_cookie)
            destination = remembered.get("href") if remembered else None
            if not isinstance(destination, str) or not destination:
                self.last_flash = "oauth_state_not_present"
                return _redirect(self.base_url() + "/", clear_cookie)
            failure_target = (f"{self.base_url()}/admin/settings/storages/{client.storage_id}/edit"
                              if admin else destination)
            code = request.query_one("code") or ""
            if not code:
                self.last_flash = "oauth_code_not_present"
                return _redirect(failure_target, clear_cookie)
            host = self.storages.storages[client.storage_id].host or ""
            client_pk, client_secret = client.id, client.client_secret
        # Like upstream (Rack::OAuth2), the client authenticates with HTTP Basic.
        granted = exchange_code(join_path(host, NEXTCLOUD_TOKEN_PATH), client_id, client_secret, code,
                                redirect_uri=self.callback_url(client_id), auth_method="basic",
                                ca_bundle=self.ca_bundle())
        if isinstance(granted, Refusal):
            with self.lock:
                self.last_flash = "oauth_authorization_code_grant_had_errors"
                self.last_exchange_refusal = granted.reason
            return _redirect(failure_target, clear_cookie)
        self._store_tokens(client_pk, user_id, {"access_token": granted.access_token,
                                                "refresh_token": granted.refresh_token,
                                                "expires_in": granted.expires_in})
        with self.lock:
            self.last_flash = None
            self.last_exchange_refusal = None
        return _redirect(destination, clear_cookie)

    def authorization_states(self, user_id: int, storage_ids: list[int]) -> dict[int, str]:
        """The live authorization state of `user_id` for each storage where the user holds a
        Nextcloud token. Runs the network calls without holding the lock."""
        with self.lock:
            checks = []
            for storage_id in storage_ids:
                client = self.storages.client_of(storage_id)
                token = client.user_tokens.get(user_id) if client else None
                storage = self.storages.storages.get(storage_id)
                if client is not None and token is not None and storage is not None and storage.host:
                    checks.append((storage_id, client.id, client.client_id, client.client_secret, storage.host,
                                   dataclasses.replace(token)))
        states: dict[int, str] = {}
        probe = self.probe_factory()
        for storage_id, client_pk, client_id, client_secret, host, token in checks:
            if token.updated_at + token.expires_in < self.clock() + REFRESH_MARGIN_S:
                reachable, tokens = probe.refresh_tokens(host, client_id, client_secret, token.refresh_token)
                if not reachable:
                    states[storage_id] = "Error"
                    continue
                if tokens is None:
                    states[storage_id] = "FailedAuthorization"
                    continue
                token = self._store_tokens(client_pk, user_id, tokens)
            status = probe.current_user_status(host, token.access_token)
            states[storage_id] = {200: "Connected", 401: "FailedAuthorization"}.get(status or 0, "Error")
        return states

    def user_access_token(self, user_id: int, storage_id: int) -> tuple[str, str] | str:
        """(Nextcloud host, the user's access token), refreshed first when it expires within 10 s
        (the new pair replaces the old: Nextcloud's refresh tokens are single use); or why there is
        none: ``not_connected`` (the user holds no token), ``refresh_failed`` or ``unreachable``.
        Runs the network call without holding the lock."""
        with self.lock:
            client = self.storages.client_of(storage_id)
            token = client.user_tokens.get(user_id) if client else None
            storage = self.storages.storages.get(storage_id)
            if client is None or token is None or storage is None or not storage.host:
                return "not_connected"
            client_pk, client_id, client_secret, host = client.id, client.client_id, client.client_secret, storage.host
            token = dataclasses.replace(token)
        if token.updated_at + token.expires_in < self.clock() + REFRESH_MARGIN_S:
            reachable, tokens = self.probe_factory().refresh_tokens(host, client_id, client_secret, token.refresh_token)
            if not reachable:
                return "unreachable"
            if tokens is None:
                return "refresh_failed"
            token = self._store_tokens(client_pk, user_id, tokens)
        return host, token.access_token

    def _store_tokens(self, client_pk: int, user_id: int, tokens: dict) -> NextcloudUserToken:
        record = NextcloudUserToken(
            user_id=user_id, access_token=str(tokens["access_token"]),
            refresh_token=str(tokens.get("refresh_token") or ""), expires_in=int(tokens.get("expires_in") or 0),
            updated_at=self.clock())
        with self.lock:
            client = self.storages.clients.get(client_pk)
            if client is not None:  # replaced or deleted meanwhile: the tokens die with it
                client.user_tokens[user_id] = record
            self.storages.record_secret(record.access_token)
            if record.refresh_token:
                self.storages.record_secret(record.refresh_token)
        return record
