"""Nextcloud emulator: what it sends to OpenProject. The revocation loop of /setup (§5.3, §7) and the
/is-valid-op-instance probe (§10.7), against a scripted OpenProject that records every request."""

from __future__ import annotations

import base64
import hashlib

from opnc.sandbox.app import Response
from test_nextcloud_support import (  # noqa: F401 - fixtures
    APP,
    BASE_VALUES,
    closed_port_url,
    fake_op,
    nc,
    nc_factory,
)


def seed(nc, user, access_token, refresh_token="refresh-xyz"):
    answer = nc.control("/openproject-tokens", {"user": user, "access_token": access_token,
                                                "refresh_token": refresh_token})
    assert answer.status == 200


def configured(nc, op_url, client_id="op-id-1", secret="op-secret-1"):
    answer = nc.setup("POST", {**BASE_VALUES, "openproject_instance_url": op_url,
                               "openproject_client_id": client_id, "openproject_client_secret": secret})
    assert answer.status == 200
    return answer.json()


def probe(nc, url):
    return nc.request("POST", f"{APP}/is-valid-op-instance", {"url": url}, auth=nc.admin, ocs=True)


# --- revocation loop (§5.3) ----------------------------------------------------------------------

def test_changed_client_secret_revokes_each_users_token_with_the_old_credentials(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url + "/")
    seed(nc, "admin", "tok/en+1")
    answer = nc.setup("PATCH", {"openproject_client_id": "op-id-1", "openproject_client_secret": "op-secret-2"})
    assert answer.status == 200
    assert answer.json()["openproject_revocation_status"] == "success"
    assert len(op.seen) == 1
    call = op.seen[0]
    assert call.method == "POST"
    assert call.path == "/oauth/revoke"  # the stored trailing slash is trimmed
    assert call.query == {"token": ["tok/en+1"]}
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"op-id-1:op-secret-1").decode()
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.headers["user-agent"] == "Nextcloud OpenProject integration"
    assert call.body == b""


def test_revocation_clears_the_users_tokens_and_is_recorded(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    nc.setup("POST", {**BASE_VALUES, "openproject_instance_url": op_url, "openproject_client_id": "op-id-2",
                      "openproject_client_secret": "op-secret-2"})
    state = nc.state()
    assert state["openproject_tokens"] == {}
    assert state["revocations"] == [{
        "user": "admin", "method": "POST", "url": op_url + "/oauth/revoke", "client_id": "op-id-1",
        "token_sha256": hashlib.sha256(b"token-a").hexdigest(), "status": 200, "outcome": "success",
        "duration_ms": state["revocations"][0]["duration_ms"]}]


def test_every_connected_user_gets_a_revocation(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    nc.control("/users", {"user": "alice"})
    nc.control("/users", {"user": "bob"})
    seed(nc, "alice", "token-alice")
    seed(nc, "bob", "token-bob")
    nc.setup("PATCH", {"openproject_client_id": "new", "openproject_client_secret": "new-secret"})
    assert sorted(call.query["token"][0] for call in op.seen) == ["token-alice", "token-bob"]


def test_no_connected_user_means_no_revocation_key(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    body = nc.setup("PATCH", {"openproject_client_id": "x", "openproject_client_secret": "y"}).json()
    assert "openproject_revocation_status" not in body
    assert op.seen == []


def test_unchanged_credentials_revoke_nothing(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    body = nc.setup("POST", {**BASE_VALUES, "openproject_instance_url": op_url, "openproject_client_id": "op-id-1",
                             "openproject_client_secret": "op-secret-1"}).json()
    assert "openproject_revocation_status" not in body
    assert op.seen == []
    assert nc.state()["openproject_tokens"] == {"admin": ["refresh_token", "token"]}


def test_a_refusing_openproject_gives_other_error(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: Response.json(401, {"error": "invalid_client"})
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    body = nc.setup("PATCH", {"openproject_client_id": "x", "openproject_client_secret": "y"}).json()
    assert body["openproject_revocation_status"] == "other_error"
    assert nc.state()["openproject_tokens"] == {}


def test_an_unreachable_openproject_gives_connection_error(nc):
    configured(nc, closed_port_url())
    seed(nc, "admin", "token-a")
    body = nc.setup("PATCH", {"openproject_client_id": "x", "openproject_client_secret": "y"}).json()
    assert body["openproject_revocation_status"] == "connection_error"
    assert nc.state()["revocations"][0]["status"] is None


def test_the_last_failure_wins_over_success(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: (Response.json(200, {}) if request.query_one("token") == "token-admin"
                                 else Response.json(500, {}))
    configured(nc, op_url)
    nc.control("/users", {"user": "zed"})
    seed(nc, "admin", "token-admin")
    seed(nc, "zed", "token-zed")
    body = nc.setup("PATCH", {"openproject_client_id": "x", "openproject_client_secret": "y"}).json()
    assert body["openproject_revocation_status"] == "other_error"


def test_delete_revokes_and_reports_the_status(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    answer = nc.setup("DELETE")
    assert answer.json() == {"status": True, "openproject_revocation_status": "success"}
    assert [call.path for call in op.seen] == ["/oauth/revoke"]


def test_patch_with_only_a_client_id_clears_tokens_without_revoking(nc, fake_op):
    # Upstream reads the old credentials only when both keys are sent; without them it cannot revoke.
    op, op_url = fake_op
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    body = nc.setup("PATCH", {"openproject_client_id": "other"}).json()
    assert "openproject_revocation_status" not in body
    assert op.seen == []
    assert nc.state()["openproject_tokens"] == {}


# --- /is-valid-op-instance (§10.7) ---------------------------------------------------------------

def test_probe_of_an_openproject_root_is_true(nc, fake_op):
    op, op_url = fake_op
    answer = probe(nc, op_url + "/")
    assert answer.status == 200
    assert answer.json() == {"result": True}
    call = op.seen[0]
    assert (call.method, call.path) == ("GET", "/api/v3/")
    assert call.headers["authorization"] == "Bearer "  # an empty credential
    assert call.headers["user-agent"] == "Nextcloud OpenProject integration"


def test_probe_of_an_openproject_api_error_is_true(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: Response.json(401, {"_type": "Error", "errorIdentifier":
                                                    "urn:openproject-org:api:v3:errors:Unauthenticated"})
    assert probe(nc, op_url).json() == {"result": True}


def test_probe_reports_a_redirect_without_following_it(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: Response(302, b"", [("Location", "https://op.example/api/v3/")])
    answer = probe(nc, op_url)
    assert answer.json() == {"result": "redirected", "details": "https://op.example/"}
    assert b'"details":"https:\\/\\/op.example\\/"' in answer.raw
    assert len(op.seen) == 1


def test_probe_of_a_non_root_body_is_not_valid_body(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: Response.text(200, "<html>hello</html>")
    assert probe(nc, op_url).json() == {"result": "not_valid_body", "details": "<html>hello</html>"}


def test_probe_of_another_4xx_is_client_exception(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: Response.text(404, "nothing")
    assert probe(nc, op_url).json() == {"result": "client_exception", "details": "404 Not Found"}


def test_probe_of_a_5xx_is_server_exception(nc, fake_op):
    op, op_url = fake_op
    op.answer = lambda request: Response.text(503, "busy")
    assert probe(nc, op_url).json() == {"result": "server_exception", "details": "503 Service Unavailable"}


def test_probe_of_a_closed_port_is_network_error(nc):
    url = closed_port_url()
    body = probe(nc, url).json()
    assert body["result"] == "network_error"
    assert body["details"].startswith("cURL error 7: Failed to connect to 127.0.0.1 port ")


def test_probe_of_an_invalid_url_is_invalid_without_a_request(nc):
    assert probe(nc, "ftp://x").json() == {"result": "invalid"}
    assert nc.state()["probes"] == []


def test_probe_of_a_local_address_when_not_allowed(nc_factory, fake_op):
    op, op_url = fake_op
    nc = nc_factory(allow_local_remote_servers=False)
    assert probe(nc, op_url).json() == {"result": "local_remote_servers_not_allowed"}
    assert op.seen == []


def test_probes_are_recorded_in_state(nc, fake_op):
    op, op_url = fake_op
    probe(nc, op_url)
    probes = nc.state()["probes"]
    assert [(p["method"], p["url"], p["status"], p["result"]) for p in probes] == [
        ("GET", op_url + "/api/v3/", 200, True)]


def test_a_non_admin_user_may_probe(nc, fake_op):
    op, op_url = fake_op
    user = nc.control("/users", {"user": "carol"}).json()
    answer = nc.request("POST", f"{APP}/is-valid-op-instance", {"url": op_url}, auth=("carol", user["password"]),
                        ocs=True)
    assert answer.json() == {"result": True}


def test_openproject_may_call_back_into_nextcloud_while_being_revoked(nc, fake_op):
    # A real Nextcloud keeps serving other requests during /setup; the emulator sends the
    # revocations after releasing its lock, so a callback is answered at once.
    op, op_url = fake_op
    callbacks = []

    def answer(request):
        if request.path == "/oauth/revoke":
            callbacks.append(nc.request("GET", f"{APP}/check-admin-config", auth=nc.admin).status)
        return Response.json(200, {})

    op.answer = answer
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    body = nc.setup("PATCH", {"openproject_client_id": "x", "openproject_client_secret": "y"}).json()
    assert body["openproject_revocation_status"] == "success"
    assert callbacks == [200]


def test_oidc_patch_revokes_but_does_not_report(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    body = nc.setup("PATCH", {"authorization_method": "oidc", "sso_provider_type": "nextcloud_hub",
                              "targeted_audience_client_id": "openproject", "openproject_client_id": "x",
                              "openproject_client_secret": "y"}).json()
    assert body == {"status": True}
    assert [call.path for call in op.seen] == ["/oauth/revoke"]
    assert nc.state()["revocations"][0]["outcome"] == "success"


def test_revocation_status_comes_before_the_app_password(nc, fake_op):
    op, op_url = fake_op
    configured(nc, op_url)
    seed(nc, "admin", "token-a")
    body = nc.setup("POST", {**BASE_VALUES, "openproject_instance_url": op_url, "openproject_client_id": "n",
                             "openproject_client_secret": "m", "setup_project_folder": True,
                             "setup_app_password": True}).json()
    assert list(body)[-2:] == ["openproject_revocation_status", "openproject_user_app_password"]


def test_outbound_timeout_is_configurable_at_runtime(nc, fake_op):
    import time as _time
    op, op_url = fake_op

    def slow(request):
        _time.sleep(1.0)
        return Response.json(200, {"_type": "Root", "instanceName": "OpenProject"})

    op.answer = slow
    nc.app.configure(outbound_timeout_s=0.3)
    body = probe(nc, op_url).json()
    assert body["result"] == "network_error"
    assert body["details"].startswith("cURL error 28: Operation timed out after ")
