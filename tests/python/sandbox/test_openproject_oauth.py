"""OpenProject emulator: the Doorkeeper OAuth 2.0 provider (contract/openproject.md §12, §16.10)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from test_openproject_support import (  # noqa: F401 - fixtures
    ADMIN_TOKEN, REDIRECT_SUFFIX, USER_TOKEN, FakeClock, OpenProjectClient, apikey, basic, call, nextcloud,
    openproject, openproject_with)

INVALID_CLIENT = ("Client authentication failed due to unknown client, no client authentication included, "
                  "or unsupported authentication method.")
INVALID_GRANT = ("The provided authorization grant is invalid, expired, revoked, does not match the redirection "
                 "URI used in the authorization request, or was issued to another client.")
VERIFIER = "v" * 43 + "-._~0123456789"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Integration:
    op: OpenProjectClient
    client_id: str
    client_secret: str
    redirect_uri: str
    clock: FakeClock

    def authorize(self, token: str | None = ADMIN_TOKEN, **params: str):
        query = {"client_id": self.client_id, "redirect_uri": self.redirect_uri, "response_type": "code",
                 "state": "0123456789", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}
        query.update(params)
        return call("GET", f"{self.op.url}/oauth/authorize?{urlencode(query)}", headers=apikey(token) if token else {})

    def code(self, **params: str) -> str:
        reply = self.authorize(**params)
        assert reply.status == 302, reply.body
        return parse_qs(urlsplit(reply.header("Location")).query)["code"][0]

    def token(self, form: dict[str, str], path: str = "/oauth/token", **kw):
        return call("POST", self.op.url + path, form=form, **kw)

    def exchange(self, code: str, **overrides: str):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "client_id": self.client_id, "client_secret": self.client_secret, "code_verifier": VERIFIER}
        form.update(overrides)
        return self.token({k: v for k, v in form.items() if v is not None})

    def tokens(self) -> dict:
        reply = self.exchange(self.code())
        assert reply.status == 200, reply.body
        return reply.json()

    def refresh(self, refresh_token: str, secret: str | None = None):
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id,
                           "client_secret": secret or self.client_secret})


@pytest.fixture
def integration(openproject, nextcloud) -> Integration:
    clock = FakeClock()
    openproject.app.clock = clock
    created = openproject.create_storage(nextcloud.url).json()["_embedded"]["oauthApplication"]
    return Integration(openproject, created["clientId"], created["clientSecret"], nextcloud.url + REDIRECT_SUFFIX,
                       clock)


def me(op: OpenProjectClient, access_token: str):
    return call("GET", op.url + "/api/v3/users/me", headers={"Authorization": f"Bearer {access_token}"})


# --- /oauth/authorize (§12.1) ---

def test_authorize_redirects_back_with_code_and_state(integration):
    reply = integration.authorize()
    assert reply.status == 302
    location = urlsplit(reply.header("Location"))
    assert f"{location.scheme}://{location.netloc}{location.path}" == integration.redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == ["0123456789"]
    assert len(query["code"][0]) == 43


def test_authorize_sends_anonymous_browsers_to_the_login_page(integration):
    reply = integration.authorize(token=None)
    assert reply.status == 302
    back_url = quote("/oauth/authorize?", safe="")
    assert reply.header("Location").startswith(f"{integration.op.url}/login?back_url={back_url}")


def test_authorize_unknown_client_renders_an_error_page(integration):
    reply = integration.authorize(client_id="nope")
    assert reply.status == 401
    assert reply.header("Location") is None
    assert b"invalid_client" in reply.body


def test_authorize_redirect_uri_must_match_exactly(integration):
    reply = integration.authorize(redirect_uri=integration.redirect_uri + "/")
    assert reply.status == 400
    assert reply.header("Location") is None
    assert b"invalid_redirect_uri" in reply.body


def test_authorize_other_errors_redirect_with_error_and_state(integration):
    reply = integration.authorize(response_type="token")
    query = parse_qs(urlsplit(reply.header("Location")).query)
    assert reply.status == 302
    assert (query["error"], query["state"]) == (["unsupported_response_type"], ["0123456789"])
    scope = parse_qs(urlsplit(integration.authorize(scope="admin").header("Location")).query)
    assert scope["error"] == ["invalid_scope"]


# --- /oauth/token (§12.2) ---

def test_code_exchange_with_form_client_auth(integration):
    reply = integration.exchange(integration.code())
    assert reply.status == 200
    assert reply.header("Cache-Control") == "no-store"
    data = reply.json()
    assert set(data) == {"access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"}
    assert (data["token_type"], data["expires_in"], data["scope"]) == ("Bearer", 7200, "api_v3")
    assert data["created_at"] == int(integration.clock.now)


def test_code_exchange_with_basic_client_auth(integration):
    form = {"grant_type": "authorization_code", "code": integration.code(), "redirect_uri": integration.redirect_uri,
            "code_verifier": VERIFIER}
    reply = integration.token(form, headers={"Authorization": basic(integration.client_id, integration.client_secret)})
    assert reply.status == 200


def test_token_endpoint_refuses_json_with_415(integration):
    reply = call("POST", integration.op.url + "/oauth/token",
                 json_body={"grant_type": "authorization_code", "code": integration.code()})
    assert (reply.status, reply.json()) == (415, {})


@pytest.mark.parametrize("secret", ["wrong-secret", None])
def test_wrong_or_missing_client_secret_is_invalid_client_401(integration, secret):
    reply = integration.exchange(integration.code(), client_secret=secret)
    assert reply.status == 401
    assert reply.json() == {"error": "invalid_client", "error_description": INVALID_CLIENT}
    assert reply.header("WWW-Authenticate").startswith('Bearer realm="Doorkeeper", error="invalid_client"')


def test_code_is_single_use(integration):
    code = integration.code()
    assert integration.exchange(code).status == 200
    reply = integration.exchange(code)
    assert reply.status == 400
    assert reply.json() == {"error": "invalid_grant", "error_description": INVALID_GRANT}


def test_code_expires_after_ten_minutes(integration):
    code = integration.code()
    integration.clock.advance(600)
    assert integration.exchange(code).json()["error"] == "invalid_grant"


def test_redirect_uri_at_exchange_must_match(integration):
    reply = integration.exchange(integration.code(), redirect_uri=integration.redirect_uri + "x")
    assert (reply.status, reply.json()["error"]) == (400, "invalid_grant")


def test_pkce_verifier_mismatch_is_invalid_grant_and_missing_is_invalid_request(integration):
    assert integration.exchange(integration.code(), code_verifier="x" * 43).json()["error"] == "invalid_grant"
    missing = integration.exchange(integration.code(), code_verifier=None)
    assert missing.status == 400
    assert missing.json() == {"error": "invalid_request",
                              "error_description": "Missing required parameter: code_verifier."}


def test_missing_code_is_invalid_request(integration):
    reply = integration.token({"grant_type": "authorization_code", "redirect_uri": integration.redirect_uri,
                               "client_id": integration.client_id, "client_secret": integration.client_secret})
    assert reply.status == 400
    assert reply.json() == {"error": "invalid_request", "error_description": "Missing required parameter: code."}


def test_unknown_grant_type_and_missing_grant_type(integration):
    unknown = integration.token({"grant_type": "password", "client_id": integration.client_id})
    assert unknown.status == 400
    assert unknown.json()["error"] == "unsupported_grant_type"
    missing = integration.token({"client_id": integration.client_id})
    assert (missing.status, missing.json()["error"]) == (400, "invalid_request")


def test_double_slash_token_path_is_accepted(integration):
    code = integration.code()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": integration.redirect_uri,
            "client_id": integration.client_id, "client_secret": integration.client_secret, "code_verifier": VERIFIER}
    assert integration.token(form, path="//oauth/token").status == 200


def test_access_token_works_on_users_me_for_the_authorizing_user(integration):
    code = integration.code(**{})
    admin_token = integration.exchange(code).json()["access_token"]
    user_code_reply = integration.authorize(token=USER_TOKEN)
    user_code = parse_qs(urlsplit(user_code_reply.header("Location")).query)["code"][0]
    user_token = integration.exchange(user_code).json()["access_token"]
    assert me(integration.op, admin_token).json()["login"] == "admin"
    data = me(integration.op, user_token).json()
    assert (data["id"], data["firstName"], data["lastName"]) == (2, "Alice", "Hansen")


def test_access_token_expires_after_two_hours(integration):
    access = integration.tokens()["access_token"]
    integration.clock.advance(7199)
    assert me(integration.op, access).status == 200
    integration.clock.advance(1)
    assert me(integration.op, access).status == 401


def test_refresh_rotates_and_the_old_refresh_token_dies(integration):
    first = integration.tokens()
    reply = integration.refresh(first["refresh_token"])
    assert reply.status == 200
    second = reply.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 7200
    assert integration.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert me(integration.op, first["access_token"]).status == 401
    assert me(integration.op, second["access_token"]).status == 200


def test_refresh_token_revoked_on_first_use_of_the_new_access_token(openproject_with, nextcloud):
    op = openproject_with(refresh_token_revoked_on_use=True)
    created = op.create_storage(nextcloud.url).json()["_embedded"]["oauthApplication"]
    flow = Integration(op, created["clientId"], created["clientSecret"], nextcloud.url + REDIRECT_SUFFIX, FakeClock())
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json()
    assert flow.refresh(first["refresh_token"]).status == 200  # still alive: the new token was not used yet
    third = flow.refresh(second["refresh_token"]).json()
    assert me(op, third["access_token"]).status == 200  # first use revokes the refresh token it came from
    assert flow.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_errors_follow_doorkeeper_order(integration):
    tokens = integration.tokens()
    wrong_secret = integration.refresh(tokens["refresh_token"], secret="wrong")
    assert (wrong_secret.status, wrong_secret.json()["error"]) == (401, "invalid_client")
    unknown_token = integration.refresh("unknown", secret="wrong")  # the token is checked first
    assert (unknown_token.status, unknown_token.json()["error"]) == (400, "invalid_grant")
    no_client = integration.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert (no_client.status, no_client.json()["error"]) == (400, "invalid_grant")
    missing = integration.token({"grant_type": "refresh_token", "client_id": integration.client_id,
                                 "client_secret": integration.client_secret})
    assert missing.json() == {"error": "invalid_request",
                              "error_description": "Missing required parameter: refresh_token."}


def test_code_of_another_client_is_invalid_grant(integration, nextcloud):
    other = integration.op.create_storage(nextcloud.url.replace("127.0.0.1", "localhost"), name="Other").json()
    other_app = other["_embedded"]["oauthApplication"]
    reply = integration.exchange(integration.code(), client_id=other_app["clientId"],
                                 client_secret=other_app["clientSecret"])
    assert (reply.status, reply.json()["error"]) == (400, "invalid_grant")


# --- /oauth/revoke (§12.3) ---

def test_revoke_with_token_in_query_string_as_nextcloud_sends_it(integration):
    access = integration.tokens()["access_token"]
    reply = call("POST", f"{integration.op.url}/oauth/revoke?token={access}", body=b"",
                 content_type="application/x-www-form-urlencoded",
                 headers={"Authorization": basic(integration.client_id, integration.client_secret)})
    assert (reply.status, reply.json()) == (200, {})
    assert me(integration.op, access).status == 401


def test_revoke_unknown_token_is_200(integration):
    reply = call("POST", integration.op.url + "/oauth/revoke",
                 form={"token": "unknown", "client_id": integration.client_id,
                       "client_secret": integration.client_secret})
    assert (reply.status, reply.json()) == (200, {})


def test_revoke_of_another_clients_token_is_refused(integration, nextcloud):
    access = integration.tokens()["access_token"]
    other = integration.op.create_storage(nextcloud.url.replace("127.0.0.1", "localhost"), name="Other").json()
    other_app = other["_embedded"]["oauthApplication"]
    reply = call("POST", integration.op.url + "/oauth/revoke",
                 form={"token": access, "client_id": other_app["clientId"], "client_secret": other_app["clientSecret"]})
    assert reply.status == 403
    assert reply.json()["error"] == "unauthorized_client"
    assert me(integration.op, access).status == 200


def test_revoke_refuses_json(integration):
    reply = call("POST", integration.op.url + "/oauth/revoke", json_body={"token": "x"})
    assert (reply.status, reply.json()) == (415, {})


# --- side effects on tokens ---

def test_deleting_the_storage_kills_its_tokens(integration):
    access = integration.tokens()["access_token"]
    assert integration.op.delete("/api/v3/storages/1").status == 204
    assert me(integration.op, access).status == 401
    assert integration.op.server.state()["oauth_tokens"] == []


def test_state_shows_tokens_without_secrets_and_issued_secrets_has_them(integration):
    tokens = integration.tokens()
    state = integration.op.server.state()
    assert state["oauth_tokens"] == [{"application_id": 1, "user_id": 1, "scopes": "api_v3", "revoked": False,
                                      "expired": False}]
    assert state["storages"][0]["oauth_application_live_tokens"] == 1
    text = str(state)
    for secret in (tokens["access_token"], tokens["refresh_token"], integration.client_secret):
        assert secret not in text
        assert secret in integration.op.app.issued_secrets()


def test_token_info_describes_a_live_token_and_refuses_others(integration):
    tokens = integration.tokens()
    integration.clock.advance(200)
    reply = call("GET", integration.op.url + "/oauth/token/info",
                 headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert reply.status == 200
    assert reply.json() == {"resource_owner_id": 1, "scope": ["api_v3"], "expires_in": 7000,
                            "application": {"uid": integration.client_id}, "created_at": tokens["created_at"]}
    refused = call("GET", integration.op.url + "/oauth/token/info", headers={"Authorization": "Bearer nope"})
    assert (refused.status, refused.json()["error"]) == (401, "invalid_token")


def test_login_comes_before_the_client_checks(integration):
    reply = integration.authorize(token=None, client_id="unknown")
    assert reply.status == 302
    login_page = call("GET", reply.header("Location"))
    assert login_page.status == 200
    assert b"login-form" in login_page.body


def test_introspect_needs_the_client_and_reports_its_own_tokens_only(integration, nextcloud):
    tokens = integration.tokens()
    own = call("POST", integration.op.url + "/oauth/introspect", form={"token": tokens["access_token"]},
               headers={"Authorization": basic(integration.client_id, integration.client_secret)})
    assert own.status == 200
    assert own.json() == {"active": True, "scope": "api_v3", "client_id": integration.client_id,
                          "token_type": "Bearer", "exp": tokens["created_at"] + 7200, "iat": tokens["created_at"]}
    anonymous = call("POST", integration.op.url + "/oauth/introspect", form={"token": tokens["access_token"]})
    assert (anonymous.status, anonymous.json()["error"]) == (401, "invalid_client")
    other = integration.op.create_storage(nextcloud.url.replace("127.0.0.1", "localhost"), name="Other").json()
    other_app = other["_embedded"]["oauthApplication"]
    foreign = call("POST", integration.op.url + "/oauth/introspect",
                   form={"token": tokens["access_token"], "client_id": other_app["clientId"],
                         "client_secret": other_app["clientSecret"]})
    assert foreign.json() == {"active": False}


def test_no_secret_reaches_the_request_log_or_the_state(integration):
    tokens = integration.tokens()
    refreshed = integration.refresh(tokens["refresh_token"]).json()
    call("POST", f"{integration.op.url}/oauth/revoke?token={refreshed['access_token']}", body=b"",
         content_type="application/x-www-form-urlencoded",
         headers={"Authorization": basic(integration.client_id, integration.client_secret)})
    exposed = call("GET", integration.op.url + "/_sandbox/requests").body + \
        call("GET", integration.op.url + "/_sandbox/state").body
    secrets = integration.op.app.issued_secrets()
    assert len(secrets) == 8  # two API tokens, the client secret, the code, two access and refresh pairs
    for secret in secrets:
        assert secret.encode() not in exposed
