"""OpenProject emulator against the real Nextcloud emulator (the shared ``sandbox`` fixture): the
live host probes and application-password check as Nextcloud sees them, the whole two-way exchange,
Nextcloud's token revocation at /oauth/revoke and its reachability probe of OpenProject."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from test_openproject_support import (
    NEXTCLOUD_TYPE, REDIRECT_SUFFIX, TWO_WAY, apikey, basic, call, error_list)

CAPABILITIES = "/ocs/v2.php/cloud/capabilities"
CHECK_CONFIG = "/index.php/apps/integration_openproject/check-config"
SETUP = "/index.php/apps/integration_openproject/setup"


def create_storage(sandbox, name: str = "Nextcloud", password: str = ""):
    op, nc = sandbox.openproject, sandbox.nextcloud
    body = {"name": name, "applicationPassword": password,
            "_links": {"origin": {"href": nc.url}, "type": {"href": NEXTCLOUD_TYPE},
                       "authenticationMethod": {"href": TWO_WAY}}}
    return call("POST", op.url + "/api/v3/storages", headers=apikey(op.token), json_body=body,
                context=sandbox.ssl_context())


def nextcloud_admin(sandbox) -> dict[str, str]:
    nc = sandbox.nextcloud
    return {"Authorization": basic(nc.user, nc.password), "OCS-APIRequest": "true", "Accept": "application/json"}


def setup_nextcloud(sandbox, method: str, values: dict):
    return call(method, sandbox.nextcloud.url + SETUP, headers=nextcloud_admin(sandbox), json_body={"values": values},
                context=sandbox.ssl_context())


def full_setup_values(sandbox, client_id: str, client_secret: str, project_folder: bool) -> dict:
    return {"openproject_instance_url": sandbox.openproject.url, "openproject_client_id": client_id,
            "openproject_client_secret": client_secret, "default_enable_navigation": False,
            "default_enable_unified_search": False, "setup_project_folder": project_folder,
            "setup_app_password": project_folder}


def test_host_probes_are_seen_by_nextcloud_in_order(sandbox):
    assert create_storage(sandbox).status == 201
    seen = [(e["method"], e["path"], e["status"], e["auth_scheme"]) for e in sandbox.nextcloud.requests()]
    assert seen == [("GET", CAPABILITIES, 200, None), ("GET", CHECK_CONFIG, 200, "Bearer")]


@pytest.mark.opnc_sandbox(nextcloud={"strip_authorization": True})
def test_stripped_authorization_on_nextcloud_is_authorization_header_missing(sandbox):
    [(attribute, message)] = error_list(create_storage(sandbox))
    assert attribute == "host"
    assert message.startswith('Host is not fully set up. The Nextcloud instance does not receive the "Authorization"')


@pytest.mark.opnc_sandbox(nextcloud={"app_installed": False})
def test_missing_integration_app_fails_the_config_check(sandbox):
    assert error_list(create_storage(sandbox)) == [("host", "Host can not be connected to.")]
    assert [e["path"] for e in sandbox.nextcloud.requests()] == [CAPABILITIES, CHECK_CONFIG]


@pytest.mark.opnc_sandbox(nextcloud={"maintenance": True})
def test_nextcloud_in_maintenance_cannot_be_connected_to(sandbox):
    assert error_list(create_storage(sandbox)) == [("host", "Host can not be connected to.")]
    assert [e["path"] for e in sandbox.nextcloud.requests()] == [CAPABILITIES]


def test_connection_reset_during_the_probe_cannot_be_connected_to(sandbox):
    sandbox.nextcloud.faults([{"method": "GET", "path": CAPABILITIES, "when": "before", "action": "reset", "times": 1}])
    assert error_list(create_storage(sandbox)) == [("host", "Host can not be connected to.")]
    assert create_storage(sandbox).status == 201  # the fault was used up


def test_a_probe_slower_than_the_read_timeout_fails(sandbox):
    sandbox.nextcloud.faults([{"method": "GET", "path": CHECK_CONFIG, "when": "before", "action": "delay",
                               "delay_ms": 3500, "times": 1}])
    assert error_list(create_storage(sandbox)) == [("host", "Host can not be connected to.")]


@pytest.mark.opnc_sandbox(tls=True)
def test_probes_over_tls_trust_the_sandbox_ca(sandbox):
    assert sandbox.nextcloud.url.startswith("https://")
    reply = create_storage(sandbox)
    assert reply.status == 201
    assert reply.json()["_links"]["origin"]["href"] == sandbox.nextcloud.url


def test_the_whole_two_way_exchange_with_project_folders(sandbox):
    op, nc = sandbox.openproject, sandbox.nextcloud
    created = create_storage(sandbox).json()
    application = created["_embedded"]["oauthApplication"]
    nc_answer = setup_nextcloud(sandbox, "POST", full_setup_values(sandbox, application["clientId"],
                                                                   application["clientSecret"], True))
    assert nc_answer.status == 200, nc_answer.body
    nc_client = nc_answer.json()
    callback = f"{op.url}/oauth_clients/{nc_client['nextcloud_client_id']}/callback"
    assert nc_client["openproject_redirect_uri"] == callback
    stored = call("POST", f"{op.url}/api/v3/storages/{created['id']}/oauth_client_credentials",
                  headers=apikey(op.token),
                  json_body={"clientId": nc_client["nextcloud_client_id"],
                             "clientSecret": nc_client["nextcloud_client_secret"]})
    assert stored.status == 201
    nc.clear_requests()
    patched = call("PATCH", f"{op.url}/api/v3/storages/{created['id']}", headers=apikey(op.token),
                   json_body={"applicationPassword": nc_client["openproject_user_app_password"]})
    assert patched.status == 200
    assert (patched.json()["configured"], patched.json()["hasApplicationPassword"]) == (True, True)
    dav = [(e["method"], e["path"], e["auth_user"], e["status"]) for e in nc.requests()]
    assert dav == [("HEAD", "/remote.php/dav", "OpenProject", 200)]
    storage = op.state()["storages"][0]
    assert storage["oauth_client_client_id"] == nc_client["nextcloud_client_id"]
    assert nc.state()["integration"]["openproject_client_id"] == application["clientId"]
    assert application["clientSecret"] in sandbox.secrets()


def test_nextcloud_revokes_user_tokens_at_openproject_when_the_client_changes(sandbox):
    op, nc = sandbox.openproject, sandbox.nextcloud
    application = create_storage(sandbox).json()["_embedded"]["oauthApplication"]
    assert setup_nextcloud(sandbox, "POST", full_setup_values(sandbox, application["clientId"],
                                                              application["clientSecret"], False)).status == 200
    # A user connects Nextcloud to OpenProject: code flow at OP, token stored at NC.
    authorize = call("GET", f"{op.url}/oauth/authorize?client_id={application['clientId']}"
                            f"&redirect_uri={nc.url}{REDIRECT_SUFFIX}&response_type=code&state=abc",
                     headers=apikey(op.user_token))
    code = parse_qs(urlsplit(authorize.header("Location")).query)["code"][0]
    tokens = call("POST", op.url + "/oauth/token", form={
        "grant_type": "authorization_code", "code": code, "redirect_uri": nc.url + REDIRECT_SUFFIX,
        "client_id": application["clientId"], "client_secret": application["clientSecret"]}).json()
    stored = call("POST", nc.url + "/_sandbox/nextcloud/openproject-tokens",
                  json_body={"user": nc.user, "access_token": tokens["access_token"],
                             "refresh_token": tokens["refresh_token"]})
    assert stored.status == 200
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert call("GET", op.url + "/api/v3/users/me", headers=bearer).status == 200
    op.clear_requests()
    changed = setup_nextcloud(sandbox, "PATCH", {"openproject_client_id": "another-client",
                                                 "openproject_client_secret": "another-secret-value"})
    assert changed.status == 200
    assert changed.json()["openproject_revocation_status"] == "success"
    revocations = [(e["method"], e["path"], e["auth_user"], e["status"], e["query_keys"]) for e in op.requests()]
    assert revocations == [("POST", "/oauth/revoke", application["clientId"], 200, ["token"])]
    assert call("GET", op.url + "/api/v3/users/me", headers=bearer).status == 401


def test_nextcloud_sees_openproject_as_a_valid_instance(sandbox):
    reply = call("POST", sandbox.nextcloud.url + "/index.php/apps/integration_openproject/is-valid-op-instance",
                 headers=nextcloud_admin(sandbox), json_body={"url": sandbox.openproject.url + "/"})
    assert reply.status == 200
    assert reply.json()["result"] is True
    probe = sandbox.openproject.requests()
    assert [(e["method"], e["path"], e["status"]) for e in probe] == [("GET", "/api/v3/", 401)]


# --- OP as OAuth client of Nextcloud: a user connects (§13) ---

def configured_storage(sandbox) -> tuple[dict, dict]:
    """A storage with both OAuth sides set up: (OP's OAuth application from the 201, the Nextcloud
    client as /setup answered it)."""
    op = sandbox.openproject
    application = create_storage(sandbox).json()["_embedded"]["oauthApplication"]
    nc_client = setup_nextcloud(sandbox, "POST", full_setup_values(sandbox, application["clientId"],
                                                                   application["clientSecret"], False)).json()
    assert call("POST", op.url + "/api/v3/storages/1/oauth_client_credentials", headers=apikey(op.token),
                json_body={"clientId": nc_client["nextcloud_client_id"],
                           "clientSecret": nc_client["nextcloud_client_secret"]}).status == 201
    return application, nc_client


def ensure_connection(sandbox, client_id: str, destination: str):
    op = sandbox.openproject
    return call("GET", f"{op.url}/oauth_clients/{client_id}/ensure_connection?storage_id=1"
                       f"&destination_url={destination}", headers=apikey(op.token))


def test_user_connects_and_new_client_credentials_drop_the_token(sandbox):
    op, nc = sandbox.openproject, sandbox.nextcloud
    client_id = configured_storage(sandbox)[1]["nextcloud_client_id"]
    destination = op.url + "/projects/demo"
    start = ensure_connection(sandbox, client_id, destination)
    assert start.status == 302
    authorize = urlsplit(start.header("Location"))
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == nc.url + "/index.php/apps/oauth2/authorize"
    query = parse_qs(authorize.query)
    assert query["client_id"] == [client_id]
    assert query["redirect_uri"] == [f"{op.url}/oauth_clients/{client_id}/callback"]
    nonce = query["state"][0]
    cookie = start.header("Set-Cookie").split(";", 1)[0]
    assert cookie.startswith(f"oauth_state_{nonce}=")

    granted = call("POST", nc.url + "/_sandbox/nextcloud/oauth2/grant",
                   json_body={"client_id": client_id, "user": nc.user, "state": nonce}).json()
    nc.clear_requests()
    back = call("GET", granted["location"], headers={**apikey(op.token), "Cookie": cookie})
    assert (back.status, back.header("Location")) == (302, destination)
    exchange = [(e["method"], e["path"], e["auth_user"], e["status"]) for e in nc.requests()]
    assert exchange == [("POST", "/index.php/apps/oauth2/api/v1/token", client_id, 200)]
    assert op.state()["storages"][0]["oauth_client_user_tokens"] == 1
    shown = call("GET", op.url + "/api/v3/storages/1", headers=apikey(op.token)).json()
    assert shown["_links"]["authorizationState"]["href"].endswith(":Connected")
    again = ensure_connection(sandbox, client_id, destination)
    assert (again.status, again.header("Location")) == (302, destination)  # already connected

    replaced = call("POST", op.url + "/api/v3/storages/1/oauth_client_credentials", headers=apikey(op.token),
                    json_body={"clientId": client_id, "clientSecret": "a-new-secret-from-nextcloud"})
    assert replaced.status == 201
    assert op.state()["storages"][0]["oauth_client_user_tokens"] == 0
    shown = call("GET", op.url + "/api/v3/storages/1", headers=apikey(op.token)).json()
    assert shown["_links"]["authorizationState"]["href"].endswith(":FailedAuthorization")


def test_callback_without_the_state_cookie_is_refused(sandbox):
    op = sandbox.openproject
    client_id = configured_storage(sandbox)[1]["nextcloud_client_id"]
    reply = call("GET", f"{op.url}/oauth_clients/{client_id}/callback?code=abc&state=nope", headers=apikey(op.token))
    assert (reply.status, reply.header("Location")) == (302, op.url + "/")
    assert op.state()["last_oauth_client_flash"] == "oauth_client_not_found"
    assert sandbox.nextcloud.requests(path="/index.php/apps/oauth2/api/v1/token") == []


def test_callback_with_a_bad_code_reports_the_grant_errors(sandbox):
    op = sandbox.openproject
    client_id = configured_storage(sandbox)[1]["nextcloud_client_id"]
    start = ensure_connection(sandbox, client_id, op.url + "/")
    nonce = parse_qs(urlsplit(start.header("Location")).query)["state"][0]
    cookie = start.header("Set-Cookie").split(";", 1)[0]
    reply = call("GET", f"{op.url}/oauth_clients/{client_id}/callback?code=forged&state={nonce}",
                 headers={**apikey(op.token), "Cookie": cookie})
    assert (reply.status, reply.header("Location")) == (302, op.url + "/admin/settings/storages/1/edit")
    assert op.state()["last_oauth_client_flash"] == "oauth_authorization_code_grant_had_errors"
    assert op.state()["storages"][0]["oauth_client_user_tokens"] == 0


def test_connection_routes_need_a_login(sandbox):
    op = sandbox.openproject
    reply = call("GET", f"{op.url}/oauth_clients/some-client/ensure_connection?storage_id=1")
    assert reply.status == 302
    assert reply.header("Location").startswith(op.url + "/login?back_url=%2Foauth_clients%2Fsome-client")


@pytest.mark.opnc_sandbox(openproject={"two_way_requires_enterprise": True, "version": "17.0.0"})
def test_sandbox_marker_configures_the_enterprise_gate(sandbox):
    op = sandbox.openproject
    assert call("GET", op.url + "/api/v3", headers=apikey(op.token)).json()["coreVersion"] == "17.0.0"
    assert error_list(create_storage(sandbox)) == [
        ("authenticationMethod", "Authentication method is only available in the Enterprise Corporate plan.")]
    op.configure(enterprise=True)
    assert create_storage(sandbox).status == 201


# --- the live authorization state of a connected user (§3.2, §5, §13) ---

def connect_admin(sandbox) -> str:
    """Runs the connect flow for OP's admin; returns OP's OAuth application (from the 201)."""
    op, nc = sandbox.openproject, sandbox.nextcloud
    application, nc_client = configured_storage(sandbox)
    client_id = nc_client["nextcloud_client_id"]
    start = ensure_connection(sandbox, client_id, op.url + "/")
    nonce = parse_qs(urlsplit(start.header("Location")).query)["state"][0]
    granted = call("POST", nc.url + "/_sandbox/nextcloud/oauth2/grant",
                   json_body={"client_id": client_id, "user": nc.user, "state": nonce}).json()
    cookie = start.header("Set-Cookie").split(";")[0]
    back = call("GET", granted["location"], headers={**apikey(op.token), "Cookie": cookie})
    assert back.status == 302 and op.state()["last_oauth_client_flash"] is None
    return application


def authorization_state(sandbox) -> str:
    op = sandbox.openproject
    shown = call("GET", op.url + "/api/v3/storages/1", headers=apikey(op.token)).json()
    return shown["_links"]["authorizationState"]["href"].rsplit(":", 1)[1]


def test_connected_state_is_checked_live_at_nextcloud(sandbox):
    connect_admin(sandbox)
    sandbox.nextcloud.clear_requests()
    assert authorization_state(sandbox) == "Connected"
    seen = [(e["method"], e["path"], e["auth_scheme"], e["status"]) for e in sandbox.nextcloud.requests()]
    assert seen == [("GET", "/ocs/v1.php/cloud/user", "Bearer", 200)]


def test_an_expiring_token_is_refreshed_first_and_the_new_pair_kept(sandbox):
    op, nc = sandbox.openproject, sandbox.nextcloud
    connect_admin(sandbox)
    issued_before = len(op.app.issued_secrets())
    base = op.app.clock()
    op.app.clock = lambda: base + 3595  # Nextcloud's tokens live 3600 s; OP refreshes 10 s early
    nc.clear_requests()
    assert authorization_state(sandbox) == "Connected"
    seen = [(e["method"], e["path"], e["status"]) for e in nc.requests()]
    assert seen == [("POST", "/index.php/apps/oauth2/api/v1/token", 200), ("GET", "/ocs/v1.php/cloud/user", 200)]
    assert len(op.app.issued_secrets()) == issued_before + 2  # the new access and refresh token
    nc.clear_requests()
    assert authorization_state(sandbox) == "Connected"  # the fresh token is not refreshed again
    assert [e["path"] for e in nc.requests()] == ["/ocs/v1.php/cloud/user"]


def test_a_token_nextcloud_no_longer_accepts_is_failed_authorization(sandbox):
    op = sandbox.openproject
    application = connect_admin(sandbox)
    # Another POST /setup recreates the Nextcloud client; the users' tokens die with the old one.
    again = setup_nextcloud(sandbox, "POST", full_setup_values(sandbox, application["clientId"],
                                                               application["clientSecret"], False))
    assert again.status == 200
    assert authorization_state(sandbox) == "FailedAuthorization"
    shown = call("GET", op.url + "/api/v3/storages/1", headers=apikey(op.token)).json()
    assert shown["_links"]["authorize"]["title"] == "Authorize"
    assert shown["_links"]["authorizationState"]["title"] == "Authorization failed"


def test_an_unreachable_nextcloud_is_error_state(sandbox):
    connect_admin(sandbox)
    sandbox.nextcloud.faults([{"method": "GET", "path": "/ocs/v1.php/cloud/user", "when": "before",
                               "action": "reset", "times": 1}])
    assert authorization_state(sandbox) == "Error"
