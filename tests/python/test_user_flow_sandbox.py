"""The emulators' pieces of the user flow, one at a time: the test-only login (loopback only), the
session at the authorize endpoints, Nextcloud's grant page, OpenProject's file listing and
Nextcloud's OpenProject connection (op-oauth-url, oauth-redirect).

Runs without the compiled extension (the emulators then exchange codes with a plain form POST), so
it belongs to the sandbox's own checks; the storage and both clients are set up through the HTTP
APIs the way the exchange does it."""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.parse
from typing import Any

import pytest

from opnc.sandbox.app import Headers, Request

NC_APP = "/index.php/apps/integration_openproject"


class Browser:
    """Requests with one cookie jar, no redirects followed."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def __call__(self, url: str, method: str = "GET", body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                               headers=sent)
            answer = connection.getresponse()
            for name, value in answer.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    item = rest.split(";", 1)[0]
                    if item and "max-age=0" not in value:
                        self.cookies[key] = item
                    else:
                        self.cookies.pop(key, None)
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def login(self, endpoint: Any, user: str) -> dict[str, Any]:
        status, headers, raw = self(endpoint.url + "/_sandbox/login", "POST", {"user": user})
        assert status == 200, raw
        return json.loads(raw)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def connected(sandbox) -> dict[str, Any]:
    """A storage with both clients stored on both sides, as `opnc apply` leaves it."""
    op, nc = sandbox.openproject, sandbox.nextcloud
    browser = Browser()
    admin_op = {"Authorization": basic("apikey", op.token), "Content-Type": "application/json"}
    status, _, raw = browser(op.url + "/api/v3/storages", "POST", json.dumps({
        "name": "Nextcloud", "_links": {"origin": {"href": nc.url},
                                        "type": {"href": "urn:openproject-org:api:v3:storages:Nextcloud"}}}).encode(),
        admin_op)
    assert status == 201, raw
    storage = json.loads(raw)
    application = storage["_embedded"]["oauthApplication"]
    status, _, raw = browser(nc.url + NC_APP + "/setup", "POST", json.dumps({"values": {
        "openproject_instance_url": op.url, "openproject_client_id": application["clientId"],
        "openproject_client_secret": application["clientSecret"], "default_enable_navigation": False,
        "default_enable_unified_search": False, "setup_project_folder": False,
        "setup_app_password": False}}).encode(),
        {"Authorization": basic(nc.user, nc.password), "Content-Type": "application/json"})
    assert status == 200, raw
    nc_client = json.loads(raw)
    status, _, raw = browser(op.url + f"/api/v3/storages/{storage['id']}/oauth_client_credentials", "POST",
                             json.dumps({"clientId": nc_client["nextcloud_client_id"],
                                         "clientSecret": nc_client["nextcloud_client_secret"]}).encode(), admin_op)
    assert status == 201, raw
    return {"storage_id": storage["id"], "nc_client_id": nc_client["nextcloud_client_id"]}


# --- the test login -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["openproject", "nextcloud"])
def test_login_answers_loopback_clients_only(sandbox, which):
    endpoint = getattr(sandbox, which)
    request = Request(method="POST", path="/_sandbox/login", headers=Headers([("Content-Type", "application/json")]),
                      body=b'{"user": "admin"}', client_host="192.0.2.7", raw_target="/_sandbox/login")
    response = endpoint.server.dispatch(request)
    assert response.status == 403
    assert json.loads(response.body) == {"message": "the sandbox control API answers loopback clients only"}
    assert endpoint.state()["sessions"] == 0


@pytest.mark.parametrize("which, cookie", [("openproject", "_open_project_session"), ("nextcloud", "nc_session_id")])
def test_login_sets_a_session_cookie(sandbox, which, cookie):
    browser = Browser()
    answer = browser.login(getattr(sandbox, which), "admin")
    assert list(answer) == ["user", "cookie"]
    assert answer["user"] == "admin"
    name, _, value = answer["cookie"].partition("=")
    assert name == cookie and len(value) >= 40
    assert browser.cookies == {cookie: value}
    assert value in sandbox.secrets()  # leak scans know the session


@pytest.mark.parametrize("which", ["openproject", "nextcloud"])
@pytest.mark.parametrize("body, status", [({"user": "nobody"}, 404), ({}, 400), ({"user": ""}, 400)])
def test_login_refuses_unknown_or_missing_users(sandbox, which, body, status):
    answer = Browser()(getattr(sandbox, which).url + "/_sandbox/login", "POST", body)
    assert answer[0] == status


def test_openproject_session_logs_in_at_authorize_and_api_v3(sandbox, connected):
    op = sandbox.openproject
    application = op.state()["oauth_applications"][0]
    query = urllib.parse.urlencode({"client_id": application["client_id"], "redirect_uri": application["redirect_uri"],
                                    "response_type": "code", "state": "abc"})
    browser = Browser()
    status, headers, _ = browser(f"{op.url}/oauth/authorize?{query}")
    assert status == 302 and headers["location"].startswith(f"{op.url}/login?back_url=")
    browser.login(op, "alice")
    status, headers, _ = browser(f"{op.url}/oauth/authorize?{query}")
    assert status == 302
    assert headers["location"].startswith(application["redirect_uri"] + "?code=")
    assert op.state()["oauth_grants"][0]["user_id"] == 2  # alice
    # API v3 takes the session only with the frontend's X-Requested-With header.
    assert browser(op.url + "/api/v3/users/me")[0] == 401
    status, _, raw = browser(op.url + "/api/v3/users/me", headers={"X-Requested-With": "XMLHttpRequest"})
    assert (status, json.loads(raw)["login"]) == (200, "alice")


def test_a_forged_session_cookie_is_no_login(sandbox):
    browser = Browser()
    browser.cookies["_open_project_session"] = "forged"
    status, _, _ = browser(sandbox.openproject.url + "/api/v3/users/me", headers={"X-Requested-With": "XMLHttpRequest"})
    assert status == 401


# --- OpenProject as client of Nextcloud -----------------------------------------------------------


def start_connection(sandbox, connected, browser: Browser) -> str:
    """ensure_connection, then Nextcloud's authorize: returns the grant page's URL."""
    op, nc = sandbox.openproject, sandbox.nextcloud
    status, headers, _ = browser(f"{op.url}/oauth_clients/{connected['nc_client_id']}/ensure_connection?"
                                 + urllib.parse.urlencode({"storage_id": connected["storage_id"],
                                                           "destination_url": op.url + "/"}))
    assert status == 302
    status, headers, _ = browser(headers["location"])
    assert status == 303
    assert headers["location"] == (f"{nc.url}/index.php/login/flow?clientIdentifier={connected['nc_client_id']}"
                                   "&providedRedirectUri=")
    return headers["location"]


def grant_form(page: bytes) -> dict[str, str]:
    """The hidden fields of the grant page's form."""
    return {k.decode(): v.decode() for k, v in re.findall(rb'type="hidden" name="(\w+)" value="([^"]*)"', page)}


def test_the_grant_page_and_the_grant_lead_back_to_openprojects_callback(sandbox, connected):
    op, nc = sandbox.openproject, sandbox.nextcloud
    browser = Browser()
    browser.login(op, "admin")
    browser.login(nc, "admin")
    flow = start_connection(sandbox, connected, browser)
    status, _, page = browser(flow)
    assert status == 200
    form = grant_form(page)
    assert sorted(form) == ["clientIdentifier", "stateToken"]
    assert form["clientIdentifier"] == connected["nc_client_id"]
    status, headers, _ = browser(nc.url + "/index.php/login/flow", "POST", urllib.parse.urlencode(form).encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303
    callback = urllib.parse.urlsplit(headers["location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == \
        f"{op.url}/oauth_clients/{connected['nc_client_id']}/callback"
    query = urllib.parse.parse_qs(callback.query)
    assert sorted(query) == ["code", "state"] and len(query["code"][0]) == 128
    status, headers, _ = browser(headers["location"])
    assert (status, headers["location"]) == (302, op.url + "/")
    assert op.state()["nextcloud_user_tokens"] == [{"storage_id": connected["storage_id"], "user_id": 1}]
    # The state token is single use: the same form again is refused.
    status, _, page = browser(nc.url + "/index.php/login/flow", "POST", urllib.parse.urlencode(form).encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"State token does not match" in page

    # The user's files, read with the user's token.
    status, _, raw = browser(f"{op.url}/api/v3/storages/{connected['storage_id']}/files",
                             headers={"X-Requested-With": "XMLHttpRequest"})
    assert status == 200
    listing = json.loads(raw)
    assert listing["_type"] == "StorageFiles"
    assert [(f["name"], f["location"], f["mimeType"]) for f in listing["files"]] == [
        ("Documents", "/Documents", "application/x-op-directory"), ("Readme.md", "/Readme.md", "text/markdown")]
    assert listing["parent"]["location"] == "/"
    bearer = [r for r in nc.requests(path="/remote.php/dav/files/admin/") if r["method"] == "PROPFIND"]
    assert [(r["auth_scheme"], r["status"]) for r in bearer] == [("Bearer", 207)]


def test_the_grant_page_needs_the_authorize_step_first(sandbox, connected):
    browser = Browser()
    browser.login(sandbox.nextcloud, "admin")
    flow = f"{sandbox.nextcloud.url}/index.php/login/flow?clientIdentifier={connected['nc_client_id']}"
    status, _, page = browser(flow)
    assert status == 403 and b"State token does not match" in page


def test_the_grant_page_sends_anonymous_browsers_to_the_login(sandbox, connected):
    status, headers, _ = Browser()(f"{sandbox.nextcloud.url}/index.php/login/flow?clientIdentifier=x")
    assert status == 303 and headers["location"].startswith(f"{sandbox.nextcloud.url}/index.php/login?redirect_url=")


def test_files_of_a_user_who_never_connected_are_refused(sandbox, connected):
    browser = Browser()
    browser.login(sandbox.openproject, "admin")
    status, _, raw = browser(f"{sandbox.openproject.url}/api/v3/storages/{connected['storage_id']}/files",
                             headers={"X-Requested-With": "XMLHttpRequest"})
    assert status == 403
    assert json.loads(raw) == {"_type": "Error",
                               "errorIdentifier": "urn:openproject-org:api:v3:errors:MissingPermission",
                               "message": "The user has not connected the storage (no Nextcloud token)."}
    status, _, _ = browser(f"{sandbox.openproject.url}/api/v3/storages/99/files",
                           headers={"X-Requested-With": "XMLHttpRequest"})
    assert status == 404


# --- Nextcloud as client of OpenProject -----------------------------------------------------------


def test_nextcloud_builds_the_authorize_url_with_state_and_pkce(sandbox, connected):
    op, nc = sandbox.openproject, sandbox.nextcloud
    browser = Browser()
    browser.login(nc, "admin")
    status, _, raw = browser(nc.url + NC_APP + "/op-oauth-url")
    assert status == 200
    url = urllib.parse.urlsplit(json.loads(raw))
    assert f"{url.scheme}://{url.netloc}{url.path}" == op.url + "/oauth/authorize"
    query = urllib.parse.parse_qs(url.query)
    assert sorted(query) == ["client_id", "code_challenge", "code_challenge_method", "redirect_uri", "response_type",
                             "state"]
    assert query["client_id"] == [op.state()["oauth_applications"][0]["client_id"]]
    assert query["redirect_uri"] == [nc.url + NC_APP + "/oauth-redirect"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert re.fullmatch(r"[0-9a-f]{10}", query["state"][0])


def test_nextcloud_exchanges_the_code_and_reads_the_user(sandbox, connected):
    op, nc = sandbox.openproject, sandbox.nextcloud
    browser = Browser()
    browser.login(nc, "admin")
    browser.login(op, "alice")
    authorize = json.loads(browser(nc.url + NC_APP + "/op-oauth-url")[2])
    status, headers, _ = browser(authorize)
    assert status == 302
    status, headers, _ = browser(headers["location"])
    assert (status, headers["location"]) == (
        303, nc.url + "/index.php/settings/user/connected-accounts?openprojectToken=success")
    assert sorted(nc.state()["openproject_tokens"]["admin"]) == [
        "refresh_token", "token", "token_expires_at", "user_id", "user_name"]
    values = nc.app.integration.user_values["admin"]
    assert (values["user_id"], values["user_name"]) == ("2", "Alice Hansen")
    me = [r for r in op.requests(path="/api/v3/users/me")]
    assert [(r["auth_scheme"], r["status"]) for r in me] == [("Bearer", 200)]


def test_a_replayed_or_forged_redirect_is_refused(sandbox, connected):
    op, nc = sandbox.openproject, sandbox.nextcloud
    browser = Browser()
    browser.login(nc, "admin")
    browser.login(op, "admin")
    authorize = json.loads(browser(nc.url + NC_APP + "/op-oauth-url")[2])
    redirect = browser(authorize)[1]["location"]
    assert browser(redirect)[1]["location"].endswith("openprojectToken=success")
    error = (nc.url + "/index.php/settings/user/connected-accounts"
             "?openprojectToken=error&message=Error+during+OAuth+exchanges")
    assert browser(redirect)[1]["location"] == error  # the state was used up
    assert browser(nc.url + NC_APP + "/oauth-redirect?code=abc&state=0123456789")[1]["location"] == error


def test_oauth_redirect_needs_a_logged_in_user(sandbox, connected):
    status, _, _ = Browser()(sandbox.nextcloud.url + NC_APP + "/oauth-redirect?code=abc&state=def",
                             headers={"Accept": "application/json"})
    assert status == 401


# --- no secret in the reprs of the flow's objects ---------------------------------------------------


def test_reprs_of_tokens_exchanges_and_sessions_hide_the_secrets(sandbox, connected):
    from opnc.sandbox.login import Session
    from opnc.sandbox.nextcloud_openproject_oauth import PreparedExchange
    from opnc.sandbox import oauth_exchange
    from opnc.sandbox.oauth_exchange import exchange_code

    nc = sandbox.nextcloud
    client = nc.state()["oauth_clients"][0]
    secret = next(c for c in sandbox.openproject.app.storages.clients.values()).client_secret
    grant = nc.control("/_sandbox/nextcloud/oauth2/grant", {"client_id": client["client_id"]})
    granted = exchange_code(nc.url + "/index.php/apps/oauth2/api/v1/token", client["client_id"], secret,
                            grant["code"], redirect_uri=client["redirect_uri"], auth_method="basic")
    assert len(granted.access_token) == 72 and len(granted.refresh_token) == 128
    refused = exchange_code(nc.url + "/index.php/apps/oauth2/api/v1/token", client["client_id"], secret,
                            grant["code"], redirect_uri=client["redirect_uri"], auth_method="basic")
    # The code was used up: Nextcloud says invalid_request, which opnc.oauth maps to RFC 6749's invalid_grant.
    expected = "invalid_request" if oauth_exchange._engine() is None else "invalid_grant"
    assert repr(refused) == f"Refusal(reason='{expected}')"
    prepared = PreparedExchange("admin", sandbox.openproject.url, "id", "client-secret-value", "code-value",
                                "verifier-value", "https://nc/redirect")
    session = Session("admin", {"oauth.state": "state-value"})
    texts = [repr(granted), repr(prepared), repr(session)]
    for value in (granted.access_token, granted.refresh_token, secret, "client-secret-value", "code-value",
                  "verifier-value", "state-value"):
        assert all(value not in text for text in texts)
    assert granted.access_token in sandbox.secrets()
