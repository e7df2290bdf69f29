"""Nextcloud emulator: the oauth2 app, authorize and token endpoint, row by row of the quirks table
(contract/nextcloud.md §11, §14 items 12 to 14)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from test_nextcloud_support import BASE_VALUES, OP_URL, basic, nc, nc_factory  # noqa: F401 - fixtures

TOKEN = "/index.php/apps/oauth2/api/v1/token"
AUTHORIZE = "/index.php/apps/oauth2/authorize"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(nc):
    """The NC OAuth client created by /setup: (client_id, client_secret, redirect_uri)."""
    body = nc.setup("POST", BASE_VALUES).json()
    return body["nextcloud_client_id"], body["nextcloud_client_secret"], body["openproject_redirect_uri"]


def grant(nc, client_id, user="admin", state="st4te"):
    answer = nc.control("/oauth2/grant", {"client_id": client_id, "user": user, "state": state})
    assert answer.status == 200
    return answer.json()["code"]


def token(nc, fields, headers=None):
    return nc.request("POST", TOKEN, urlencode(fields), headers={**FORM, **(headers or {})})


def exchange(nc, client, code):
    return token(nc, {"grant_type": "authorization_code", "code": code, "client_id": client[0],
                      "client_secret": client[1]})


# --- authorize (§11.2) ---------------------------------------------------------------------------

def test_authorize_with_an_unknown_client_is_a_200_html_page(nc):
    answer = nc.request("GET", f"{AUTHORIZE}?client_id=nope&state=s&response_type=code")
    assert answer.status == 200
    assert answer.content_type == "text/html; charset=UTF-8"
    assert b"Your client is not authorized to connect. Please inform the administrator of your client." in answer.raw


def test_authorize_with_another_response_type_redirects_with_an_error(nc, client):
    answer = nc.request("GET", f"{AUTHORIZE}?client_id={client[0]}&state=abc&response_type=token")
    assert answer.status == 303
    assert answer.headers["location"] == f"{client[2]}?error=unsupported_response_type&state=abc"


def test_authorize_sends_an_anonymous_user_to_the_login_page(nc, client):
    answer = nc.request("GET", f"{AUTHORIZE}?client_id={client[0]}&state=abc&response_type=code")
    assert answer.status == 303
    assert answer.headers["location"].startswith(f"{nc.url}/index.php/login?redirect_url=")


def test_authorize_sends_a_logged_in_user_to_the_login_flow(nc, client):
    answer = nc.request("GET", f"{AUTHORIZE}?client_id={client[0]}&state=abc&response_type=code"
                               "&redirect_uri=https%3A%2F%2Fevil.example", auth=nc.admin)
    assert answer.status == 303
    assert answer.headers["location"] == (f"{nc.url}/index.php/login/flow?clientIdentifier={client[0]}"
                                          "&providedRedirectUri=")


def test_grant_redirects_to_the_registered_uri_with_state_and_a_128_char_code(nc, client):
    answer = nc.control("/oauth2/grant", {"client_id": client[0], "state": "xyz"}).json()
    parts = urlsplit(answer["location"])
    assert answer["location"].startswith(client[2] + "?")
    query = parse_qs(parts.query)
    assert query["state"] == ["xyz"]
    assert re.fullmatch(r"[A-Za-z0-9]{128}", query["code"][0])
    assert query["code"][0] == answer["code"]


def test_grant_creates_the_openproject_client_app_password(nc, client):
    grant(nc, client[0])
    names = [(t["user"], t["name"]) for t in nc.state()["app_passwords"]]
    assert names == [("admin", "OpenProject client")]


# --- token endpoint, success (§11.3) -------------------------------------------------------------

def test_code_exchange_answers_exactly_the_observed_keys(nc, client):
    answer = exchange(nc, client, grant(nc, client[0]))
    assert answer.status == 200
    assert answer.content_type == "application/json; charset=utf-8"
    body = answer.json()
    assert list(body) == ["access_token", "token_type", "expires_in", "refresh_token", "user_id"]
    assert re.fullmatch(r"[A-Za-z0-9]{72}", body["access_token"])
    assert re.fullmatch(r"[A-Za-z0-9]{128}", body["refresh_token"])
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user_id"] == "admin"


def test_code_exchange_with_basic_client_authentication(nc, client):
    code = grant(nc, client[0])
    answer = token(nc, {"grant_type": "authorization_code", "code": code},
                   headers={"Authorization": basic(client[0], client[1])})
    assert answer.status == 200


def test_basic_client_authentication_overrides_the_body(nc, client):
    code = grant(nc, client[0])
    wrong_basic = token(nc, {"grant_type": "authorization_code", "code": code, "client_id": client[0],
                             "client_secret": client[1]}, headers={"Authorization": basic(client[0], "wrong")})
    assert wrong_basic.status == 400
    assert wrong_basic.json() == {"error": "invalid_client"}
    right_basic = token(nc, {"grant_type": "authorization_code", "code": code, "client_secret": "wrong"},
                        headers={"Authorization": basic(client[0], client[1])})
    assert right_basic.status == 200


def test_stripped_authorization_falls_back_to_the_body(nc_factory):
    nc = nc_factory(strip_authorization=True)
    # /setup needs the admin, which a stripping server cannot see: configure first, then strip.
    nc.app.configure(strip_authorization=False)
    body = nc.setup("POST", BASE_VALUES).json()
    nc.app.configure(strip_authorization=True)
    code = grant(nc, body["nextcloud_client_id"])
    answer = token(nc, {"grant_type": "authorization_code", "code": code, "client_id": body["nextcloud_client_id"],
                        "client_secret": body["nextcloud_client_secret"]},
                   headers={"Authorization": basic("someone", "else")})
    assert answer.status == 200


def test_code_exchange_with_a_json_body(nc, client):
    code = grant(nc, client[0])
    answer = nc.request("POST", TOKEN, {"grant_type": "authorization_code", "code": code,
                                        "client_id": client[0], "client_secret": client[1]})
    assert answer.status == 200


def test_redirect_uri_scope_and_pkce_are_ignored(nc, client):
    code = grant(nc, client[0])
    answer = token(nc, {"grant_type": "authorization_code", "code": code, "client_id": client[0],
                        "client_secret": client[1], "redirect_uri": "https://elsewhere.example/cb",
                        "scope": "everything", "code_verifier": "x" * 43})
    assert answer.status == 200


def test_refresh_rotates_both_tokens_and_the_old_refresh_token_dies(nc, client):
    first = exchange(nc, client, grant(nc, client[0])).json()
    refreshed = token(nc, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                           "client_id": client[0], "client_secret": client[1]})
    assert refreshed.status == 200
    second = refreshed.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    again = token(nc, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                       "client_id": client[0], "client_secret": client[1]})
    assert again.status == 400
    assert again.json() == {"error": "invalid_request"}


def test_the_access_token_works_as_bearer_until_rotated(nc, client):
    first = exchange(nc, client, grant(nc, client[0])).json()
    me = nc.request("GET", "/ocs/v2.php/cloud/user?format=json", bearer=first["access_token"], ocs=True)
    assert me.status == 200
    assert me.json()["ocs"]["data"]["id"] == "admin"
    token(nc, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
               "client_id": client[0], "client_secret": client[1]})
    assert nc.request("GET", "/ocs/v2.php/cloud/user?format=json", bearer=first["access_token"],
                      ocs=True).status == 401


# --- token endpoint errors (§11.4), row by row ----------------------------------------------------

def test_row_31_unsupported_grant_type_is_invalid_grant(nc, client):
    answer = token(nc, {"grant_type": "password", "username": "admin", "password": "x"})
    assert answer.status == 400
    assert answer.raw == b'{"error":"invalid_grant"}'


def test_row_31_json_client_credentials_is_invalid_grant(nc, client):
    answer = nc.request("POST", TOKEN, {"grant_type": "client_credentials"})
    assert answer.json() == {"error": "invalid_grant"}


def test_row_30_bad_code_with_valid_client_is_invalid_request(nc, client):
    answer = exchange(nc, client, "badcode")
    assert answer.status == 400
    assert answer.raw == b'{"error":"invalid_request"}'


def test_row_34_bad_code_as_json_is_invalid_request(nc, client):
    answer = nc.request("POST", TOKEN, {"grant_type": "authorization_code", "code": "badcode",
                                        "client_id": client[0], "client_secret": client[1]})
    assert answer.json() == {"error": "invalid_request"}


def test_row_35_bad_code_with_basic_client_is_invalid_request(nc, client):
    answer = token(nc, {"grant_type": "authorization_code", "code": "badcode"},
                   headers={"Authorization": basic(client[0], client[1])})
    assert answer.json() == {"error": "invalid_request"}


def test_unknown_code_with_a_wrong_client_is_still_invalid_request(nc, client):
    answer = token(nc, {"grant_type": "authorization_code", "code": "badcode", "client_id": "x",
                        "client_secret": "y"})
    assert answer.json() == {"error": "invalid_request"}


def test_row_32_bad_refresh_token_is_invalid_request(nc, client):
    answer = token(nc, {"grant_type": "refresh_token", "refresh_token": "badtoken", "client_id": client[0],
                        "client_secret": client[1]})
    assert answer.status == 400
    assert answer.json() == {"error": "invalid_request"}


def test_valid_code_with_a_wrong_secret_is_invalid_client_and_keeps_the_code(nc, client):
    code = grant(nc, client[0])
    wrong = token(nc, {"grant_type": "authorization_code", "code": code, "client_id": client[0],
                       "client_secret": "wrong"})
    assert wrong.status == 400
    assert wrong.json() == {"error": "invalid_client"}
    assert exchange(nc, client, code).status == 200


def test_valid_code_with_a_wrong_client_id_is_invalid_client(nc, client):
    code = grant(nc, client[0])
    answer = token(nc, {"grant_type": "authorization_code", "code": code, "client_id": "other",
                        "client_secret": client[1]})
    assert answer.json() == {"error": "invalid_client"}


def test_a_code_used_twice_is_invalid_request(nc, client):
    code = grant(nc, client[0])
    assert exchange(nc, client, code).status == 200
    again = exchange(nc, client, code)
    assert again.status == 400
    assert again.json() == {"error": "invalid_request"}


def test_a_code_expires_after_600_seconds(nc, client):
    fresh = grant(nc, client[0])
    old = grant(nc, client[0])
    nc.control("/clock", {"advance_s": 599})
    assert exchange(nc, client, fresh).status == 200
    nc.control("/clock", {"advance_s": 2})
    expired = exchange(nc, client, old)
    assert expired.status == 400
    assert expired.json() == {"error": "invalid_request"}


def test_access_token_expires_after_3600_seconds_but_refresh_still_works(nc, client):
    tokens = exchange(nc, client, grant(nc, client[0])).json()
    nc.control("/clock", {"advance_s": 3601})
    assert nc.request("GET", "/ocs/v2.php/cloud/user", bearer=tokens["access_token"], ocs=True).status == 401
    refreshed = token(nc, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                           "client_id": client[0], "client_secret": client[1]})
    assert refreshed.status == 200


def test_row_33_no_parameters_is_an_empty_html_400(nc, client):
    answer = nc.request("POST", TOKEN, "", headers=FORM)
    assert answer.status == 400
    assert answer.raw == b""
    assert answer.content_type == "text/html; charset=UTF-8"


def test_authorization_code_without_code_is_a_500_page(nc, client):
    answer = token(nc, {"grant_type": "authorization_code", "client_id": client[0], "client_secret": client[1]})
    assert answer.status == 500
    assert answer.content_type == "text/html; charset=UTF-8"


def test_refresh_grant_without_refresh_token_is_a_500_page(nc, client):
    answer = token(nc, {"grant_type": "refresh_token", "client_id": client[0], "client_secret": client[1]})
    assert answer.status == 500


def test_row_36_get_is_405(nc, client):
    answer = nc.request("GET", TOKEN)
    assert answer.status == 405
    assert answer.raw == b""


# --- deleting or recreating the client (§11.5) ---------------------------------------------------

def test_recreating_the_client_kills_every_token_of_the_old_one(nc, client):
    tokens = exchange(nc, client, grant(nc, client[0])).json()
    nc.setup("POST", BASE_VALUES)
    refresh = token(nc, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                         "client_id": client[0], "client_secret": client[1]})
    assert refresh.status == 400
    assert refresh.json() == {"error": "invalid_request"}
    assert nc.request("GET", "/ocs/v2.php/cloud/user", bearer=tokens["access_token"], ocs=True).status == 401
    assert nc.state()["app_passwords"] == []


def test_reset_deletes_the_client_and_its_tokens(nc, client):
    tokens = exchange(nc, client, grant(nc, client[0])).json()
    nc.setup("DELETE")
    assert nc.state()["oauth_grants"] == []
    assert nc.request("GET", "/ocs/v2.php/cloud/user", bearer=tokens["access_token"], ocs=True).status == 401


def test_a_url_change_keeps_the_client_and_its_tokens(nc, client):
    tokens = exchange(nc, client, grant(nc, client[0])).json()
    nc.setup("PATCH", {"openproject_instance_url": "https://op.example.com"})
    refresh = token(nc, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                         "client_id": client[0], "client_secret": client[1]})
    assert refresh.status == 200


def test_issued_secrets_cover_everything_handed_out(nc, client):
    code = grant(nc, client[0])
    tokens = exchange(nc, client, code).json()
    issued = set(nc.app.issued_secrets())
    assert {nc.admin[1], client[1], code, tokens["access_token"], tokens["refresh_token"],
            BASE_VALUES["openproject_client_secret"]} <= issued
    assert OP_URL not in issued
