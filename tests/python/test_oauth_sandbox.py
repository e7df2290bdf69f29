"""opnc.oauth against the sandbox emulators: the OpenProject (Doorkeeper) and Nextcloud (oauth2)
token endpoints, refresh rotation, the caching source and probe_client.

The clients are created the way the exchange creates them: an OpenProject storage (POST
/api/v3/storages) and Nextcloud's /setup. A user's consent comes from the emulators' stand-ins:
OpenProject's /oauth/authorize with the admin's API token, Nextcloud's control route
/_sandbox/nextcloud/oauth2/grant.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import urllib.parse
from typing import Any

import pytest

import opnc
from opnc import oauth


def _call(base_url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
          context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(base_url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def create_storage(op: Any, nc: Any, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Creates a two-way storage; returns its id and the OpenProject OAuth application."""
    body = {"name": "Nextcloud", "applicationPassword": "",
            "_links": {"origin": {"href": nc.url},
                       "type": {"href": "urn:openproject-org:api:v3:storages:Nextcloud"},
                       "authenticationMethod": {"href": "urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2"}}}
    status, _, raw = _call(op.url, "POST", "/api/v3/storages", body,
                           {"Authorization": _basic("apikey", op.token), "Content-Type": "application/json"}, context)
    assert status == 201, raw
    storage = json.loads(raw)
    application = storage["_embedded"]["oauthApplication"]
    return {"id": storage["id"], "client_id": application["clientId"], "client_secret": application["clientSecret"],
            "redirect_uri": application["_links"]["redirectUri"][0]["href"]}


def setup_nextcloud(nc: Any, op_url: str, storage: dict[str, Any]) -> dict[str, Any]:
    """POST /setup: Nextcloud stores the OpenProject client and answers with its own new client."""
    values = {"openproject_instance_url": op_url, "openproject_client_id": storage["client_id"],
              "openproject_client_secret": storage["client_secret"], "default_enable_navigation": False,
              "default_enable_unified_search": False, "setup_project_folder": False, "setup_app_password": False}
    status, _, raw = _call(nc.url, "POST", "/index.php/apps/integration_openproject/setup", {"values": values},
                           {"Authorization": _basic(nc.user, nc.password), "Content-Type": "application/json",
                            "Accept": "application/json", "OCS-APIRequest": "true"})
    assert status == 200, raw
    return json.loads(raw)


def op_consent(op: Any, request: oauth.AuthorizationRequest) -> opnc.Secret:
    """The admin approves at OpenProject's /oauth/authorize; returns the code from the redirect."""
    target = request.url[len(op.url):]
    status, headers, raw = _call(op.url, "GET", target, headers={"Authorization": _basic("apikey", op.token)})
    assert status == 302, raw
    return request.code_from_callback(headers["location"])


def nc_consent(nc: Any, client_id: str) -> opnc.Secret:
    status, _, raw = _call(nc.url, "POST", "/_sandbox/nextcloud/oauth2/grant", {"client_id": client_id},
                           {"Content-Type": "application/json"})
    assert status == 200, raw
    return opnc.Secret(json.loads(raw)["code"])


@pytest.fixture
def op_client(op: Any, nc: Any) -> tuple[oauth.ClientConfig, dict[str, Any]]:
    storage = create_storage(op, nc)
    config = oauth.openproject_client(op.url, storage["client_id"], storage["client_secret"],
                                      redirect_uri=storage["redirect_uri"])
    return config, storage


@pytest.fixture
def nc_client(op: Any, nc: Any, op_client: Any) -> oauth.ClientConfig:
    answer = setup_nextcloud(nc, op.url, op_client[1])
    return oauth.nextcloud_client(nc.url, answer["nextcloud_client_id"], answer["nextcloud_client_secret"])


def test_openproject_code_exchange_with_pkce_and_refresh_rotation(op: Any, op_client: Any) -> None:
    config, _ = op_client
    request = oauth.AuthorizationRequest(config, scope="api_v3")
    code = op_consent(op, request)
    token = oauth.exchange_code(config, code, request.pkce.verifier)
    assert token.token_type == "Bearer" and token.scope == "api_v3"
    assert token.expires_at is not None and 7199 <= token.expires_at - token.obtained_at <= 7200

    # The code is single use.
    with pytest.raises(opnc.OAuthError) as reused:
        oauth.exchange_code(config, code, request.pkce.verifier)
    assert reused.value.server_id == "invalid_grant" and reused.value.http_status == 400

    rotated = oauth.refresh(config, token)
    assert not rotated.refresh_token.equals(token.refresh_token)
    assert not rotated.access_token.equals(token.access_token)
    # The old refresh token died with the rotation.
    with pytest.raises(opnc.OAuthError) as old:
        oauth.refresh(config, token)
    assert old.value.server_id == "invalid_grant" and old.value.http_status == 400
    # The newest one still works.
    assert oauth.refresh(config, rotated).access_token


def test_openproject_refuses_a_wrong_verifier(op: Any, op_client: Any) -> None:
    config, _ = op_client
    request = oauth.AuthorizationRequest(config, scope="api_v3")
    code = op_consent(op, request)
    with pytest.raises(opnc.OAuthError) as caught:
        oauth.exchange_code(config, code, oauth.Pkce.generate().verifier)
    assert caught.value.server_id == "invalid_grant"


@pytest.mark.parametrize("auth_method", ["request_body", "basic", "basic_raw"])
def test_every_client_authentication_works_with_both_servers(op: Any, nc: Any, op_client: Any, nc_client: Any,
                                                              auth_method: str) -> None:
    config, storage = op_client
    op_config = oauth.openproject_client(op.url, storage["client_id"], storage["client_secret"],
                                         redirect_uri=storage["redirect_uri"], auth_method=auth_method)
    request = oauth.AuthorizationRequest(op_config, scope="api_v3")
    assert oauth.exchange_code(op_config, op_consent(op, request), request.pkce.verifier).access_token
    nc_config = oauth.nextcloud_client(nc.url, nc_client.client_id, nc_client.client_secret, auth_method=auth_method)
    assert oauth.exchange_code(nc_config, nc_consent(nc, nc_config.client_id)).access_token


def test_nextcloud_exchange_and_single_use_refresh(nc: Any, nc_client: oauth.ClientConfig) -> None:
    token = oauth.exchange_code(nc_client, nc_consent(nc, nc_client.client_id))
    assert token.token_type == "Bearer" and token.scope == ""
    assert token.expires_at is not None and 3599 <= token.expires_at - token.obtained_at <= 3600
    assert len(token.access_token) == 72 and len(token.refresh_token) == 128

    rotated = oauth.refresh(nc_client, token)
    assert not rotated.refresh_token.equals(token.refresh_token)
    # Nextcloud answers a used refresh token with a bare invalid_request: reported as invalid_grant.
    with pytest.raises(opnc.OAuthError) as old:
        oauth.refresh(nc_client, token)
    assert old.value.server_id == "invalid_grant" and old.value.http_status == 400
    assert "invalid_request" in old.value.hint
    assert oauth.refresh(nc_client, rotated).access_token


def test_nextcloud_wrong_secret_is_invalid_client(nc: Any, nc_client: oauth.ClientConfig) -> None:
    wrong = oauth.nextcloud_client(nc.url, nc_client.client_id, "not-the-secret")
    code = nc_consent(nc, nc_client.client_id)
    with pytest.raises(opnc.OAuthError) as caught:
        oauth.exchange_code(wrong, code)
    assert caught.value.server_id == "invalid_client" and caught.value.http_status == 400
    # The code was not consumed: the right client can still exchange it.
    assert oauth.exchange_code(nc_client, code).access_token


def test_caching_source_refreshes_once_and_persists_before_use(nc: Any, nc_client: oauth.ClientConfig) -> None:
    token = oauth.exchange_code(nc_client, nc_consent(nc, nc_client.client_id))
    now = [token.obtained_at]
    saved: list[oauth.Token] = []
    source = oauth.CachingTokenSource(nc_client, token, leeway=60, clock=lambda: now[0], on_rotated=saved.append)
    assert source.token().access_token.equals(token.access_token)
    assert source.refresh_count == 0

    now[0] = token.expires_at - 30  # inside the leeway
    results: list[Any] = []

    def ask() -> None:
        results.append(source.token())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.refresh_count == 1
    assert len(saved) == 1
    assert all(r.access_token.equals(saved[0].access_token) for r in results)
    assert not saved[0].refresh_token.equals(token.refresh_token)
    assert len(nc.requests("POST", "/index.php/apps/oauth2/api/v1/token")) == 2  # the exchange and one refresh


def test_on_rotated_exception_reaches_the_caller_and_keeps_the_token(nc: Any, nc_client: oauth.ClientConfig) -> None:
    token = oauth.exchange_code(nc_client, nc_consent(nc, nc_client.client_id))
    calls: list[oauth.Token] = []

    def persist(new: oauth.Token) -> None:
        calls.append(new)
        if len(calls) == 1:
            raise OSError("disk full")

    source = oauth.CachingTokenSource(nc_client, token, on_rotated=persist)
    with pytest.raises(OSError, match="disk full"):
        source.force_refresh()
    # The rotated token is kept (the old refresh token is dead) and persisted before it is used.
    assert source.token().access_token.equals(calls[0].access_token)
    assert len(calls) == 2 and source.refresh_count == 1


def test_caching_source_stops_after_invalid_grant(nc: Any, nc_client: oauth.ClientConfig) -> None:
    token = oauth.exchange_code(nc_client, nc_consent(nc, nc_client.client_id))
    oauth.refresh(nc_client, token)  # someone else used the refresh token
    source = oauth.CachingTokenSource(nc_client, token)
    for _ in range(3):
        with pytest.raises(opnc.OAuthError) as caught:
            source.force_refresh()
        assert caught.value.server_id == "invalid_grant"
    assert source.refresh_count == 1
    assert len(nc.requests("POST", "/index.php/apps/oauth2/api/v1/token")) == 3


def test_probe_openproject_client(op: Any, op_client: Any) -> None:
    config, storage = op_client
    accepted = oauth.probe_client(config)
    assert accepted.outcome == "accepted" and accepted.plausible
    assert accepted.http_status == 400 and accepted.server_error == "invalid_grant"

    wrong = oauth.openproject_client(op.url, storage["client_id"], "wrong-secret")
    rejected = oauth.probe_client(wrong)
    assert rejected.outcome == "rejected" and not rejected.plausible
    assert rejected.http_status == 401 and rejected.server_error == "invalid_client"
    assert "wrong-secret" not in repr(rejected) and "wrong-secret" not in rejected.detail

    # Deleting the storage deletes its OAuth application: the same credentials are now refused.
    # OpenProject wants a Content-Type on every non-GET request, DELETE included (contract 16.2).
    status, _, raw = _call(op.url, "DELETE", f"/api/v3/storages/{storage['id']}",
                           headers={"Authorization": _basic("apikey", op.token), "Content-Type": "application/json"})
    assert status == 204, raw
    gone = oauth.probe_client(config)
    assert gone.outcome == "rejected" and gone.http_status == 401
    assert gone.to_dict() == {"outcome": "rejected", "detail": gone.detail, "http_status": 401,
                              "server_error": "invalid_client", "plausible": False}


def test_probe_nextcloud_client(op: Any, nc: Any, op_client: Any, nc_client: oauth.ClientConfig) -> None:
    registered = oauth.probe_client(nc_client)
    assert registered.outcome == "registered" and registered.plausible
    assert registered.http_status == 303 and registered.server_error == "invalid_request"

    # A new /setup POST deletes the old client and creates a new one.
    answer = setup_nextcloud(nc, op.url, op_client[1])
    assert answer["nextcloud_client_id"] != nc_client.client_id
    stale = oauth.probe_client(nc_client)
    assert stale.outcome == "not_registered" and not stale.plausible and stale.http_status == 200

    # DELETE /setup deletes the client too.
    fresh = oauth.nextcloud_client(nc.url, answer["nextcloud_client_id"], answer["nextcloud_client_secret"])
    assert oauth.probe_client(fresh).outcome == "registered"
    status, _, raw = _call(nc.url, "DELETE", "/index.php/apps/integration_openproject/setup",
                           headers={"Authorization": _basic(nc.user, nc.password), "Accept": "application/json",
                                    "OCS-APIRequest": "true"})
    assert status == 200, raw
    assert oauth.probe_client(fresh).outcome == "not_registered"


@pytest.mark.opnc_sandbox(tls=True)
def test_tls_needs_the_ca_bundle(sandbox: Any, op: Any, nc: Any) -> None:
    storage = create_storage(op, nc, sandbox.ssl_context())
    config = oauth.openproject_client(op.url, storage["client_id"], storage["client_secret"])
    assert config.token_endpoint.startswith("https://")
    assert oauth.probe_client(config, ca_bundle=sandbox.ca_bundle).outcome == "accepted"
    with pytest.raises(opnc.TlsError):
        oauth.probe_client(config)  # the system's CAs do not know the sandbox's throwaway CA
