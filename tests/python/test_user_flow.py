"""The OAuth user flow through the sandbox in both directions (issue 6, item 7), driven by
opnc.user_flow after a real `apply` of the exchange's Python API; and the failures a wrong or
rotated client causes, the refusal of real servers and the absence of secrets in what it reports."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.parse
from typing import Any

import pytest

import opnc
from opnc import oauth, user_flow

CHECK_NAMES = ["user_flow_login", "openproject_user_connects_to_nextcloud", "openproject_lists_nextcloud_files",
               "nextcloud_user_connects_to_openproject"]
NC_SETUP = "/index.php/apps/integration_openproject/setup"


def call(base_url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         ca_bundle: str | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=10, context=ssl.create_default_context(cafile=ca_bundle))
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        payload = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        connection.request(method, path, body=payload, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def apply(sandbox: Any, tmp_path: Any) -> opnc.ApplyResult:
    integration = opnc.Integration(
        opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token, ca_bundle=sandbox.ca_bundle),
        opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user, sandbox.nextcloud.password,
                       ca_bundle=sandbox.ca_bundle),
        state_dir=str(tmp_path / "state"))
    result = integration.apply()
    assert result.verify is not None and result.verify.ok, result.verify
    return result


def run(sandbox: Any, **options: Any) -> opnc.VerifyResult:
    return user_flow.run(sandbox.openproject.url, sandbox.nextcloud.url, ca_bundle=sandbox.ca_bundle, **options)


def checks(result: Any) -> dict[str, Any]:
    assert [c.name for c in result.checks] == CHECK_NAMES
    return {c.name: c for c in result.checks}


def assert_no_secret(sandbox: Any, *texts: str) -> None:
    secrets = sandbox.secrets()
    assert len(secrets) > 5
    for text in texts:
        for secret in secrets:
            assert secret not in text


# --- both directions after apply ------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True])
def test_both_directions_succeed_after_apply(tmp_path, tls):
    from opnc.sandbox import Sandbox

    with Sandbox(tls=tls) as sandbox:
        applied = apply(sandbox, tmp_path)
        result = run(sandbox)
        by_name = checks(result)
        assert result.ok is True, str(result)
        assert by_name["openproject_user_connects_to_nextcloud"].detail == (
            f"OpenProject exchanged the code and holds the user's Nextcloud token for storage {applied.storage_id}")
        assert by_name["openproject_lists_nextcloud_files"].detail == \
            "the user's file listing has 2 entries: Documents, Readme.md"
        assert by_name["nextcloud_user_connects_to_openproject"].detail == \
            "Nextcloud exchanged the code, holds the user's OpenProject token and read the user with it"

        op_state, nc_state = sandbox.openproject.state(), sandbox.nextcloud.state()
        assert op_state["nextcloud_user_tokens"] == [{"storage_id": applied.storage_id, "user_id": 1}]
        assert op_state["last_oauth_client_flash"] is None
        assert sorted(nc_state["openproject_tokens"]["admin"]) == [
            "refresh_token", "token", "token_expires_at", "user_id", "user_name"]
        # Nextcloud's grant went through its oauth2 app: one token row for the admin, delivered once.
        assert [(g["user"], g["token_count"]) for g in nc_state["oauth_grants"]] == [("admin", 1)]
        # OpenProject's Doorkeeper issued one PKCE grant to its own application, and a token for user 1.
        assert [(g["user_id"], g["used"], g["pkce"]) for g in op_state["oauth_grants"]] == [(1, True, True)]
        assert [t["user_id"] for t in op_state["oauth_tokens"] if not t["revoked"]] == [1]


def test_the_emulators_exchange_the_codes_with_opnc_oauth(sandbox, tmp_path, monkeypatch):
    apply(sandbox, tmp_path)
    seen: list[tuple[str, str]] = []
    real = oauth.exchange_code

    def spy(config, code, code_verifier=None, **kwargs):
        seen.append((config.token_endpoint, config.auth_method))
        return real(config, code, code_verifier, **kwargs)

    monkeypatch.setattr(oauth, "exchange_code", spy)
    assert run(sandbox).ok
    assert seen == [
        (f"{sandbox.nextcloud.url}/index.php/apps/oauth2/api/v1/token", "basic"),  # OP as client (Rack::OAuth2)
        (f"{sandbox.openproject.url}/oauth/token", "request_body"),                # NC as client (client_secret_post)
    ]


def test_without_the_engine_a_plain_form_post_does_the_exchange(sandbox, tmp_path, monkeypatch):
    from opnc.sandbox import oauth_exchange

    apply(sandbox, tmp_path)
    monkeypatch.setattr(oauth_exchange, "_engine", lambda: None)
    monkeypatch.setattr(oauth, "exchange_code", lambda *a, **k: pytest.fail("the engine must not be used"))
    assert run(sandbox).ok


def test_a_second_run_reuses_the_connection_and_connects_nextcloud_again(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    assert run(sandbox).ok
    again = checks(run(sandbox))
    assert all(c.ok for c in again.values())
    storage_id = sandbox.openproject.state()["storages"][0]["id"]
    assert again["openproject_user_connects_to_nextcloud"].detail == (
        f"the user was already connected to storage {storage_id}; the file listing shows whether the token still works")
    assert len(sandbox.openproject.state()["nextcloud_user_tokens"]) == 1


def test_a_non_admin_user_pair_connects_too(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    storage_id = sandbox.openproject.state()["storages"][0]["id"]
    sandbox.openproject.app.enable_in_project(storage_id)  # alice sees storages of her projects only
    sandbox.nextcloud.control("/_sandbox/nextcloud/users", {"user": "alice"})
    result = run(sandbox, openproject_user="alice", nextcloud_user="alice")
    assert result.ok, str(result)
    assert sandbox.openproject.state()["nextcloud_user_tokens"] == [{"storage_id": storage_id, "user_id": 2}]
    assert "user_id" in sandbox.nextcloud.state()["openproject_tokens"]["alice"]


# --- failures ---------------------------------------------------------------------------------


def test_before_apply_the_flows_fail_with_clear_checks(sandbox):
    by_name = checks(run(sandbox))
    assert by_name["user_flow_login"].ok is True
    assert (by_name["openproject_user_connects_to_nextcloud"].ok,
            by_name["openproject_user_connects_to_nextcloud"].detail,
            by_name["openproject_user_connects_to_nextcloud"].hint) == (
        False, f"OpenProject has no storage for {sandbox.nextcloud.url}", "run opnc apply first")
    assert (by_name["openproject_lists_nextcloud_files"].ok, by_name["openproject_lists_nextcloud_files"].detail) == (
        False, "not tried: the user could not connect OpenProject to Nextcloud")
    nc_check = by_name["nextcloud_user_connects_to_openproject"]
    assert nc_check.ok is False
    assert nc_check.detail.startswith("Nextcloud's op-oauth-url answered 400")


def test_an_unknown_login_fails_the_login_check(sandbox):
    result = run(sandbox, nextcloud_user="nobody")
    assert [c.name for c in result.checks] == ["user_flow_login"]
    assert (result.ok, result.checks[0].detail) == (
        False, f"the test login of 'nobody' at {sandbox.nextcloud.url} answered 404")


def test_a_wrong_nextcloud_secret_in_openproject_fails_the_code_exchange(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    op, storage = sandbox.openproject, sandbox.openproject.state()["storages"][0]
    status, _, raw = call(op.url, "POST", f"/api/v3/storages/{storage['id']}/oauth_client_credentials",
                          {"clientId": storage["oauth_client_client_id"], "clientSecret": "w" * 64},
                          {"Authorization": basic("apikey", op.token), "Content-Type": "application/json"})
    assert status == 201, raw
    by_name = checks(run(sandbox))
    connect = by_name["openproject_user_connects_to_nextcloud"]
    assert (connect.ok, connect.detail) == (
        False, "OpenProject's callback failed: oauth_authorization_code_grant_had_errors "
               "(Nextcloud answered invalid_client)")
    assert connect.hint.endswith("run opnc apply")
    assert by_name["openproject_lists_nextcloud_files"].ok is False
    assert by_name["nextcloud_user_connects_to_openproject"].ok is True  # the other direction is intact
    assert sandbox.openproject.state()["nextcloud_user_tokens"] == []


def test_a_rotated_nextcloud_client_breaks_the_connection_until_apply(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    assert run(sandbox).ok
    nc = sandbox.nextcloud
    # Nextcloud's admin runs a full setup again behind opnc's back, with a wrong OpenProject secret:
    # the Nextcloud client is recreated, and every token OpenProject holds dies with the old one.
    op_client = sandbox.openproject.state()["storages"][0]["oauth_client_client_id"]
    status, _, raw = call(nc.url, "POST", NC_SETUP, {"values": {
        "openproject_instance_url": sandbox.openproject.url,
        "openproject_client_id": sandbox.openproject.state()["oauth_applications"][0]["client_id"],
        "openproject_client_secret": "s" * 43, "default_enable_navigation": False,
        "default_enable_unified_search": False, "setup_project_folder": False, "setup_app_password": False}},
        {"Authorization": basic(nc.user, nc.password), "Content-Type": "application/json"})
    assert status == 200, raw
    assert nc.state()["oauth_clients"][0]["client_id"] != op_client
    by_name = checks(run(sandbox))
    # OpenProject still holds the old user token: the listing shows it is dead.
    assert by_name["openproject_user_connects_to_nextcloud"].ok is True
    files = by_name["openproject_lists_nextcloud_files"]
    assert (files.ok, files.detail) == (
        False, f"GET /api/v3/storages/{sandbox.openproject.state()['storages'][0]['id']}/files answered 403: "
               "Nextcloud rejected the user's token.")
    # Nextcloud now holds a wrong OpenProject secret: its exchange is refused.
    nc_check = by_name["nextcloud_user_connects_to_openproject"]
    assert (nc_check.ok, nc_check.detail) == (
        False, "Nextcloud's code exchange failed: Error getting OAuth access token. invalid_client")


def test_openproject_refuses_an_authorization_for_a_client_id_it_does_not_know(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    nc = sandbox.nextcloud
    status, _, raw = call(nc.url, "PATCH", NC_SETUP, {"values": {"openproject_client_id": "u" * 43,
                                                                 "openproject_client_secret": "s" * 43}},
                          {"Authorization": basic(nc.user, nc.password), "Content-Type": "application/json"})
    assert status == 200, raw
    nc_check = checks(run(sandbox))["nextcloud_user_connects_to_openproject"]
    assert (nc_check.ok, nc_check.detail) == (
        False, "OpenProject refused the authorization request (401): it does not know the client id or the "
               "redirect URI Nextcloud uses")
    assert nc_check.hint == "run opnc apply to give Nextcloud OpenProject's current OAuth application"


def test_a_nextcloud_client_unknown_to_nextcloud_fails_at_authorize(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    op, storage = sandbox.openproject, sandbox.openproject.state()["storages"][0]
    status, _, raw = call(op.url, "POST", f"/api/v3/storages/{storage['id']}/oauth_client_credentials",
                          {"clientId": "x" * 64, "clientSecret": "y" * 64},
                          {"Authorization": basic("apikey", op.token), "Content-Type": "application/json"})
    assert status == 201, raw
    connect = checks(run(sandbox))["openproject_user_connects_to_nextcloud"]
    assert (connect.ok, connect.detail) == (False, "Nextcloud does not know the OAuth client id that OpenProject holds")


# --- OpenProject refreshes the user's Nextcloud token -----------------------------------------


def test_the_listing_refreshes_an_expired_token_and_the_old_refresh_token_dies(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    assert run(sandbox).ok
    op_app = sandbox.openproject.app
    client = next(iter(op_app.storages.clients.values()))
    old = client.user_tokens[1]
    sandbox.nextcloud.control("/_sandbox/nextcloud/clock", {"advance_s": 3601})
    wall_clock = op_app.clock
    op_app.clock = lambda: wall_clock() + 3601  # both servers see the access token expired

    again = checks(run(sandbox))["openproject_lists_nextcloud_files"]
    assert again.ok, again.detail
    new = client.user_tokens[1]
    assert new.refresh_token != old.refresh_token and new.access_token != old.access_token
    # Nextcloud's refresh tokens are single use: the one OpenProject replaced is refused now.
    status, _, raw = call(sandbox.nextcloud.url, "POST", "/index.php/apps/oauth2/api/v1/token",
                          urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": old.refresh_token,
                                                  "client_id": client.client_id,
                                                  "client_secret": client.client_secret}).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, json.loads(raw)) == (400, {"error": "invalid_request"})


# --- sandbox only, and no secret anywhere -------------------------------------------------------


@pytest.mark.parametrize("op_url, nc_url, what", [
    ("https://openproject.example.com", "http://127.0.0.1:8080", "OpenProject"),
    ("http://127.0.0.1:8080", "https://cloud.example.com/", "Nextcloud"),
    ("http://10.1.2.3", "http://127.0.0.1:8081", "OpenProject"),
])
def test_real_servers_are_refused(op_url, nc_url, what):
    with pytest.raises(opnc.InvalidInput) as caught:
        user_flow.run(op_url, nc_url)
    assert caught.value.kind == "invalid_input"
    assert f"the {what} URL" in caught.value.message
    assert "not a loopback address" in caught.value.message
    assert caught.value.hint.startswith("real servers need a browser")


def test_no_secret_in_results_reprs_errors_or_state(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    flow = user_flow.UserFlow(sandbox.openproject.url, sandbox.nextcloud.url)
    good = flow.run()
    nc = sandbox.nextcloud
    call(nc.url, "PATCH", NC_SETUP, {"values": {"openproject_client_secret": "z" * 43}},
         {"Authorization": basic(nc.user, nc.password), "Content-Type": "application/json"})
    bad = run(sandbox)
    assert not bad.ok
    with pytest.raises(opnc.InvalidInput) as refused:
        user_flow.run("https://op.example.com/?token=" + sandbox.openproject.token, sandbox.nextcloud.url)
    texts = [repr(flow), str(good), json.dumps(good.to_dict()), str(bad), json.dumps(bad.to_dict()), repr(bad),
             str(refused.value), repr(refused.value), json.dumps(refused.value.to_dict()),
             json.dumps(sandbox.openproject.state()), json.dumps(nc.state()),
             json.dumps(sandbox.openproject.requests()), json.dumps(nc.requests())]
    # The sessions, codes, verifiers and tokens of the flows are among the secrets scanned for.
    issued = set(sandbox.secrets())
    assert any(v for v in issued if v in flow.browser.cookies.values())
    assert_no_secret(sandbox, *texts)


def test_run_for_cli_takes_the_verify_commands_options(sandbox, tmp_path):
    from opnc import cli

    apply(sandbox, tmp_path)
    args = cli.build_parser().parse_args(["verify", "--openproject-url", sandbox.openproject.url,
                                          "--nextcloud-url", sandbox.nextcloud.url, "--timeout", "10"])
    result = user_flow.run_for_cli(args)
    assert [c.name for c in result.checks] == CHECK_NAMES
    assert result.ok, str(result)


def test_run_for_takes_the_urls_of_an_integration(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    integration = opnc.Integration(opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token),
                                   opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user,
                                                  sandbox.nextcloud.password), state_dir=str(tmp_path / "state"))
    result = user_flow.run_for(integration)
    assert [c.name for c in result.checks] == CHECK_NAMES
    assert result.ok, str(result)


def test_a_stored_openproject_url_with_a_trailing_slash_still_connects(sandbox, tmp_path):
    apply(sandbox, tmp_path)
    nc = sandbox.nextcloud
    status, _, raw = call(nc.url, "PATCH", NC_SETUP,
                          {"values": {"openproject_instance_url": sandbox.openproject.url + "/"}},
                          {"Authorization": basic(nc.user, nc.password), "Content-Type": "application/json"})
    assert status == 200, raw
    result = run(sandbox)
    assert result.ok, str(result)


# --- opnc verify --user-flow ------------------------------------------------------------------------



def _cli(sandbox: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    import contextlib
    import io
    import os

    from opnc import cli

    env = {**sandbox.env(), "OPNC_STATE_DIR": str(tmp_path / "state")}
    for key in [k for k in os.environ if k.startswith("OPNC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(list(argv))
    return code, out.getvalue()


def test_cli_verify_user_flow_adds_the_flow_checks_and_fails_with_exit_5(sandbox, tmp_path, monkeypatch):
    apply(sandbox, tmp_path)
    code, out = _cli(sandbox, tmp_path, monkeypatch, "verify", "--user-flow", "--json")
    names = [c["name"] for c in json.loads(out)["checks"]]
    assert code == 0, out
    assert names[-4:] == CHECK_NAMES
    nc = sandbox.nextcloud
    call(nc.url, "PATCH", NC_SETUP, {"values": {"openproject_client_secret": "z" * 43}},
         {"Authorization": basic(nc.user, nc.password), "Content-Type": "application/json"})
    code, out = _cli(sandbox, tmp_path, monkeypatch, "verify", "--user-flow", "--json")
    failed = [c["name"] for c in json.loads(out)["checks"] if not c["ok"]]
    assert code == 5
    assert "nextcloud_user_connects_to_openproject" in failed
    assert_no_secret(sandbox, out)
