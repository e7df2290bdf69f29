"""OpenProject emulator: storages create/list/show/update/delete, the live Nextcloud checks,
oauth_client_credentials and the read-only OAuth and project-storage resources
(contract/openproject.md §3 to §10, §16.4-9 and §16.11)."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

import pytest

from test_openproject_support import (  # noqa: F401 - fixtures
    APP_PASSWORD, ERR, NEXTCLOUD_TYPE, REDIRECT_SUFFIX, TWO_WAY, USER_TOKEN, call, error_list, nextcloud,
    openproject, openproject_with, single_error)

CAPABILITIES = "/ocs/v2.php/cloud/capabilities"
CHECK_CONFIG = "/index.php/apps/integration_openproject/check-config"


def probes(nc_server) -> list[tuple[str, str, str | None]]:
    return [(e["method"], e["path"], e["auth_scheme"]) for e in nc_server.requests()]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- create (§4) ---

def test_create_answers_201_with_the_one_time_client_secret(openproject, nextcloud):
    reply = openproject.create_storage(nextcloud.url, name="Team cloud")
    assert reply.status == 201
    data = reply.json()
    assert data["_type"] == "Storage"
    assert (data["id"], data["name"]) == (1, "Team cloud")
    assert (data["configured"], data["hasApplicationPassword"]) == (False, False)
    assert data["_links"]["origin"] == {"href": nextcloud.url}
    assert data["_links"]["type"] == {"href": NEXTCLOUD_TYPE, "title": "Nextcloud"}
    assert data["_links"]["authenticationMethod"] == {"href": TWO_WAY}
    assert data["_links"]["oauthClientCredentials"] == {"href": None}
    application = data["_embedded"]["oauthApplication"]
    assert application["_type"] == "OAuthApplication"
    assert application["name"] == "Team cloud (Nextcloud)"
    assert application["confidential"] is True
    assert application["scopes"] == ["api_v3"]
    assert len(application["clientId"]) == 43 and len(application["clientSecret"]) == 43
    assert application["_links"]["redirectUri"] == [{"href": nextcloud.url + REDIRECT_SUFFIX}]
    assert application["_links"]["integration"] == {"href": "/api/v3/storages/1", "title": "Team cloud"}
    assert application["_links"]["owner"] == {"href": "/api/v3/users/1", "title": "OpenProject Admin"}
    assert data["_links"]["oauthApplication"] == {"href": f"/api/v3/oauth_applications/{application['id']}",
                                                  "title": "Team cloud (Nextcloud)"}


def test_client_secret_never_appears_again(openproject, nextcloud):
    created = openproject.create_storage(nextcloud.url).json()
    application_id = created["_embedded"]["oauthApplication"]["id"]
    secret = created["_embedded"]["oauthApplication"]["clientSecret"]
    shown = openproject.get("/api/v3/storages/1")
    listed = openproject.get("/api/v3/storages")
    application = openproject.get(f"/api/v3/oauth_applications/{application_id}")
    assert application.status == 200
    assert "clientSecret" not in shown.json()["_embedded"]["oauthApplication"]
    assert "clientSecret" not in application.json()
    for reply in (shown, listed, application):
        assert secret.encode() not in reply.body
    assert secret not in json.dumps(openproject.server.state())


def test_create_probes_capabilities_then_check_config_with_the_test_bearer(openproject, nextcloud):
    assert openproject.create_storage(nextcloud.url).status == 201
    assert probes(nextcloud) == [("GET", CAPABILITIES, None), ("GET", CHECK_CONFIG, "Bearer")]


def test_trailing_slashes_of_the_host_are_stripped(openproject, nextcloud):
    data = openproject.create_storage(nextcloud.url + "///").json()
    assert data["_links"]["origin"] == {"href": nextcloud.url}
    assert data["_embedded"]["oauthApplication"]["_links"]["redirectUri"] == [{"href": nextcloud.url + REDIRECT_SUFFIX}]


def test_state_lists_the_storage_without_secrets(openproject, nextcloud):
    created = openproject.create_storage(nextcloud.url).json()
    storage = openproject.server.state()["storages"][0]
    assert storage["id"] == 1 and storage["name"] == "Nextcloud" and storage["host"] == nextcloud.url
    assert storage["oauth_application_client_id"] == created["_embedded"]["oauthApplication"]["clientId"]
    assert storage["oauth_client_client_id"] is None
    assert storage["has_application_password"] is False
    assert created["_embedded"]["oauthApplication"]["clientSecret"] in openproject.app.issued_secrets()


@pytest.mark.parametrize("name, message", [("", "Name can't be blank."),
                                           ("n" * 256, "Name is too long (maximum is 255 characters).")])
def test_name_validation(openproject, nextcloud, name, message):
    reply = openproject.create_storage(nextcloud.url, name=name)
    assert error_list(reply) == [("name", message)]


def test_invalid_host_url_is_refused_without_probing(openproject, nextcloud):
    reply = openproject.create_storage("not a url")
    assert error_list(reply) == [("host", "Host is not a valid URL.")]
    assert nextcloud.requests() == []


def test_plain_http_to_a_non_loopback_host_is_not_a_secure_context(openproject):
    reply = openproject.create_storage("http://nextcloud")
    assert error_list(reply) == [(
        "host", 'Host is not providing a "Secure Context". Either use HTTPS or a loopback address, such as localhost.')]


def test_https_passes_the_secure_context_check_and_is_probed(openproject):
    unreachable = closed_port_url().replace("http://", "https://")
    assert error_list(openproject.create_storage(unreachable)) == [("host", "Host can not be connected to.")]


def test_localhost_name_is_a_secure_context(openproject, nextcloud):
    host = nextcloud.url.replace("127.0.0.1", "localhost")
    reply = openproject.create_storage(host)
    assert reply.status == 201, reply.body
    assert reply.json()["_links"]["origin"]["href"] == host


def test_unreachable_host_cannot_be_connected_to(openproject):
    assert error_list(openproject.create_storage(closed_port_url())) == [("host", "Host can not be connected to.")]


def test_capabilities_not_found_cannot_be_connected_to_and_skips_check_config(openproject, nextcloud):
    nextcloud.app.script.capabilities_status = 404
    assert error_list(openproject.create_storage(nextcloud.url)) == [("host", "Host can not be connected to.")]
    assert probes(nextcloud) == [("GET", CAPABILITIES, None)]


def test_capabilities_without_version_is_not_a_nextcloud_server(openproject, nextcloud):
    nextcloud.app.script.capabilities_body = b"<html>hello</html>"
    assert error_list(openproject.create_storage(nextcloud.url)) == [("host", "Host is not a Nextcloud server")]


def test_old_nextcloud_does_not_meet_the_minimal_version(openproject, nextcloud):
    nextcloud.app.script.capabilities_body = json.dumps({"ocs": {"data": {"version": {"major": 21}}}}).encode()
    assert error_list(openproject.create_storage(nextcloud.url)) == [
        ("host", "Host does not meet minimal version requirements (must be Nextcloud 23 or higher)")]


def test_check_config_redirect_means_the_app_is_not_installed(openproject, nextcloud):
    nextcloud.app.script.check_config = "redirect"
    [(attribute, message)] = error_list(openproject.create_storage(nextcloud.url))
    assert attribute == "host"
    assert message.startswith('Host appears to not have the app "OpenProject integration" installed.')


def test_stripped_authorization_header_is_reported(openproject, nextcloud):
    nextcloud.app.script.check_config = "stripped"
    [(attribute, message)] = error_list(openproject.create_storage(nextcloud.url))
    assert attribute == "host"
    assert message.startswith('Host is not fully set up. The Nextcloud instance does not receive the '
                              '"Authorization" header')


def test_check_config_server_error_cannot_be_connected_to(openproject, nextcloud):
    nextcloud.app.script.check_config = "error"
    assert error_list(openproject.create_storage(nextcloud.url)) == [("host", "Host can not be connected to.")]


def test_check_config_is_skipped_once_any_error_exists(openproject, nextcloud):
    assert error_list(openproject.create_storage(nextcloud.url, name="")) == [("name", "Name can't be blank.")]
    assert probes(nextcloud) == [("GET", CAPABILITIES, None)]


def test_several_errors_come_as_multiple_errors(openproject):
    reply = openproject.create_storage(closed_port_url(), name="")
    assert reply.json()["errorIdentifier"] == ERR + "MultipleErrors"
    assert error_list(reply) == [("name", "Name can't be blank."), ("host", "Host can not be connected to.")]


def test_unknown_authentication_method_href_is_ignored(openproject, nextcloud):
    reply = openproject.create_storage(nextcloud.url,
                                       method="urn:openproject-org:api:v3:storages:authenticationMethod:Nope")
    assert reply.status == 201
    assert reply.json()["_links"]["authenticationMethod"] == {"href": TWO_WAY}


def test_unknown_provider_type_is_refused(openproject, nextcloud):
    body = {"name": "x", "applicationPassword": "",
            "_links": {"origin": {"href": nextcloud.url},
                       "type": {"href": "urn:openproject-org:api:v3:storages:Dropbox"}}}
    assert error_list(openproject.post("/api/v3/storages", body)) == [
        ("providerType", "Provider type is not set to one of the allowed values.")]


def test_name_taken(openproject, nextcloud):
    assert openproject.create_storage(nextcloud.url, name="Cloud").status == 201
    other_host = nextcloud.url.replace("127.0.0.1", "localhost")
    assert error_list(openproject.create_storage(other_host, name="Cloud")) == [
        ("name", "Name has already been taken.")]


def test_name_uniqueness_is_case_sensitive(openproject, nextcloud):
    assert openproject.create_storage(nextcloud.url, name="Cloud").status == 201
    assert openproject.create_storage(nextcloud.url.replace("127.0.0.1", "localhost"), name="cloud").status == 201


def test_same_host_and_name_give_both_taken_errors(openproject, nextcloud):
    assert openproject.create_storage(nextcloud.url, name="Cloud").status == 201
    reply = openproject.create_storage(nextcloud.url + "/", name="Cloud")
    assert error_list(reply) == [("host", "Host has already been taken."), ("name", "Name has already been taken.")]
    assert len(openproject.server.state()["storages"]) == 1


def test_application_password_is_checked_live_on_create(openproject, nextcloud):
    reply = openproject.create_storage(nextcloud.url, password=APP_PASSWORD)
    assert reply.status == 201
    assert reply.json()["hasApplicationPassword"] is True
    dav = nextcloud.requests(method="HEAD", path="/remote.php/dav")
    assert [(e["auth_scheme"], e["auth_user"], e["status"]) for e in dav] == [("Basic", "OpenProject", 200)]
    assert "applicationPassword" not in reply.json()
    assert APP_PASSWORD not in reply.body.decode()


def test_wrong_application_password_is_invalid(openproject, nextcloud):
    assert error_list(openproject.create_storage(nextcloud.url, password="wrong")) == [
        ("password", "Password is not valid.")]
    assert openproject.server.state()["storages"] == []


def test_application_password_check_failing_otherwise_is_unknown_error(openproject, nextcloud):
    nextcloud.app.script.dav_status = 503
    assert error_list(openproject.create_storage(nextcloud.url, password=APP_PASSWORD)) == [
        ("password", "Password could not be validated. Please check your storage connection and try again.")]


def test_null_application_password_disables_automatic_management(openproject, nextcloud):
    reply = openproject.create_storage(nextcloud.url, password=None, applicationPassword=None)
    assert reply.json()["hasApplicationPassword"] is False
    assert nextcloud.requests(method="HEAD") == []


# --- list and show (§5) ---

def test_list_is_a_collection(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    data = openproject.get("/api/v3/storages").json()
    assert (data["_type"], data["total"], data["count"]) == ("Collection", 1, 1)
    assert data["_links"]["self"] == {"href": "/api/v3/storages"}
    assert [e["id"] for e in data["_embedded"]["elements"]] == [1]


def test_list_with_malformed_filters_is_invalid_query(openproject):
    reply = openproject.get("/api/v3/storages?filters=" + quote("{oops"))
    assert reply.status == 400
    assert single_error(reply)[0] == "InvalidQuery"


def test_show_unknown_storage_is_404(openproject):
    reply = openproject.get("/api/v3/storages/42")
    assert reply.status == 404
    assert single_error(reply)[0] == "NotFound"


def test_non_admin_sees_only_storages_enabled_in_a_project(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    assert openproject.get("/api/v3/storages", token=USER_TOKEN).json()["total"] == 0
    assert openproject.get("/api/v3/storages/1", token=USER_TOKEN).status == 404
    openproject.app.enable_in_project(1)
    shown = openproject.get("/api/v3/storages/1", token=USER_TOKEN).json()
    assert shown["id"] == 1
    assert "oauthApplication" not in shown["_links"] and "oauthClientCredentials" not in shown["_links"]
    assert "_embedded" not in shown


def test_project_storages_link_carries_the_storage_filter(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    href = openproject.get("/api/v3/storages/1").json()["_links"]["projectStorages"]["href"]
    filters = '[{"storageId":{"operator":"=","values":["1"]}}]'
    assert href == "/api/v3/project_storages?filters=" + quote(filters, safe="")


def test_authorization_state_is_error_before_and_failed_after_client_credentials(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    before = openproject.get("/api/v3/storages/1").json()["_links"]
    assert before["authorizationState"]["href"] == "urn:openproject-org:api:v3:storages:authorization:Error"
    assert "authorize" not in before
    openproject.store_client(1, client_id="ncid")
    after = openproject.get("/api/v3/storages/1").json()["_links"]
    assert after["authorizationState"] == {
        "href": "urn:openproject-org:api:v3:storages:authorization:FailedAuthorization",
        "title": "Authorization failed"}
    assert after["authorize"]["href"].startswith(nextcloud.url + "/index.php/apps/oauth2/authorize?client_id=ncid&")
    assert after["authorize"]["title"] == "Authorize"


# --- update (§6) ---

def test_patch_application_password_enables_and_null_or_empty_disables(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    enabled = openproject.patch("/api/v3/storages/1", {"applicationPassword": APP_PASSWORD})
    assert enabled.status == 200
    assert enabled.json()["hasApplicationPassword"] is True
    assert openproject.server.state()["storages"][0]["has_application_password"] is True
    for disabling in (None, ""):
        openproject.patch("/api/v3/storages/1", {"applicationPassword": APP_PASSWORD})
        reply = openproject.patch("/api/v3/storages/1", {"applicationPassword": disabling})
        assert reply.json()["hasApplicationPassword"] is False


def test_patch_with_wrong_application_password_is_422_and_keeps_the_old_state(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    reply = openproject.patch("/api/v3/storages/1", {"applicationPassword": "wrong"})
    assert error_list(reply) == [("password", "Password is not valid.")]
    assert openproject.get("/api/v3/storages/1").json()["hasApplicationPassword"] is False


def test_patch_without_host_change_does_not_probe(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    nextcloud.clear_requests()
    same_host = {"origin": {"href": nextcloud.url + "/"}}
    reply = openproject.patch("/api/v3/storages/1", {"name": "Renamed", "_links": same_host})
    assert reply.status == 200
    assert reply.json()["name"] == "Renamed"
    assert nextcloud.requests() == []


def test_patch_host_change_probes_and_rewrites_the_redirect_uri(openproject, nextcloud):
    created = openproject.create_storage(nextcloud.url).json()
    application_id = created["_embedded"]["oauthApplication"]["id"]
    nextcloud.clear_requests()
    new_host = nextcloud.url.replace("127.0.0.1", "localhost")
    reply = openproject.patch("/api/v3/storages/1", {"_links": {"origin": {"href": new_host}}})
    assert reply.status == 200
    assert "clientSecret" not in reply.json()["_embedded"]["oauthApplication"]
    assert probes(nextcloud) == [("GET", CAPABILITIES, None), ("GET", CHECK_CONFIG, "Bearer")]
    application = openproject.get(f"/api/v3/oauth_applications/{application_id}").json()
    assert application["_links"]["redirectUri"] == [{"href": new_host + REDIRECT_SUFFIX}]


def test_patch_host_to_an_insecure_host_is_refused(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    reply = openproject.patch("/api/v3/storages/1", {"_links": {"origin": {"href": "http://example.org"}}})
    assert [attribute for attribute, _ in error_list(reply)] == ["host"]
    assert openproject.get("/api/v3/storages/1").json()["_links"]["origin"] == {"href": nextcloud.url}


def test_patch_unknown_storage_is_404(openproject):
    assert openproject.patch("/api/v3/storages/9", {"name": "x"}).status == 404


def test_patch_by_non_admin_is_404_when_invisible_and_403_when_visible(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    assert openproject.patch("/api/v3/storages/1", {"name": "x"}, token=USER_TOKEN).status == 404
    openproject.app.enable_in_project(1)
    reply = openproject.patch("/api/v3/storages/1", {"name": "x"}, token=USER_TOKEN)
    assert reply.status == 403
    assert single_error(reply)[0] == "MissingPermission"


# --- delete (§7) ---

def test_delete_cascades_to_application_client_and_project_storages(openproject, nextcloud):
    created = openproject.create_storage(nextcloud.url).json()
    application_id = created["_embedded"]["oauthApplication"]["id"]
    client = openproject.store_client(1).json()
    openproject.app.enable_in_project(1)
    nextcloud.clear_requests()
    reply = openproject.delete("/api/v3/storages/1")
    assert (reply.status, reply.body) == (204, b"")
    assert openproject.get("/api/v3/storages/1").status == 404
    assert openproject.get(f"/api/v3/oauth_applications/{application_id}").status == 404
    assert openproject.get(f"/api/v3/oauth_client_credentials/{client['id']}").status == 404
    assert openproject.get("/api/v3/project_storages").json()["total"] == 0
    state = openproject.server.state()
    assert (state["storages"], state["oauth_applications"], state["project_storages"]) == ([], [], [])
    assert nextcloud.requests() == []  # OP does not tell Nextcloud


def test_delete_unknown_storage_is_404(openproject):
    assert openproject.delete("/api/v3/storages/3").status == 404


def test_delete_by_non_admin(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    assert openproject.delete("/api/v3/storages/1", token=USER_TOKEN).status == 404
    openproject.app.enable_in_project(1)
    assert openproject.delete("/api/v3/storages/1", token=USER_TOKEN).status == 403
    assert openproject.get("/api/v3/storages/1").status == 200


def test_host_and_name_are_free_again_after_delete(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    openproject.delete("/api/v3/storages/1")
    reply = openproject.create_storage(nextcloud.url)
    assert reply.status == 201
    assert reply.json()["id"] == 2


# --- oauth_client_credentials (§8) and configured (§16.11) ---

def test_store_client_answers_credentials_without_secret_and_configures(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    reply = openproject.store_client(1, client_id="nc-id", client_secret="nc-secret-value")
    assert reply.status == 201
    data = reply.json()
    assert data["_type"] == "OAuthClientCredentials"
    assert (data["clientId"], data["confidential"]) == ("nc-id", True)
    assert "clientSecret" not in data and b"nc-secret-value" not in reply.body
    assert data["_links"]["self"] == {"href": f"/api/v3/oauth_client_credentials/{data['id']}"}
    assert data["_links"]["integration"] == {"href": "/api/v3/storages/1", "title": "Nextcloud"}
    storage = openproject.get("/api/v3/storages/1").json()
    assert storage["configured"] is True
    assert storage["_links"]["oauthClientCredentials"] == {"href": f"/api/v3/oauth_client_credentials/{data['id']}"}
    assert storage["_embedded"]["oauthClientCredentials"]["clientId"] == "nc-id"
    assert openproject.server.state()["storages"][0]["oauth_client_client_id"] == "nc-id"
    assert "nc-secret-value" in openproject.app.issued_secrets()


def test_store_client_replaces_the_previous_credentials(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    first = openproject.store_client(1, client_id="first").json()
    second = openproject.store_client(1, client_id="second").json()
    assert second["id"] != first["id"]
    assert openproject.get(f"/api/v3/oauth_client_credentials/{first['id']}").status == 404
    assert openproject.get(f"/api/v3/oauth_client_credentials/{second['id']}").json()["clientId"] == "second"
    assert openproject.server.state()["storages"][0]["oauth_client_client_id"] == "second"


@pytest.mark.parametrize("body, expected", [
    ({"clientId": "id"}, [("clientSecret", "Client secret can't be blank.")]),
    ({"clientId": "", "clientSecret": ""}, [("clientId", "Client ID can't be blank."),
                                            ("clientSecret", "Client secret can't be blank.")]),
    ({"clientId": "i" * 256, "clientSecret": "s"},
     [("clientId", "Client ID is too long (maximum is 255 characters).")]),
    ({"clientId": "i", "clientSecret": "s" * 256},
     [("clientSecret", "Client secret is too long (maximum is 255 characters).")]),
])
def test_store_client_validation(openproject, nextcloud, body, expected):
    openproject.create_storage(nextcloud.url)
    assert error_list(openproject.post("/api/v3/storages/1/oauth_client_credentials", body)) == expected
    assert openproject.get("/api/v3/storages/1").json()["configured"] is False


def test_store_client_accepts_the_255_character_limit(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    assert openproject.store_client(1, client_id="i" * 255, client_secret="s" * 255).status == 201


def test_store_client_for_unknown_storage_or_non_admin(openproject, nextcloud):
    assert openproject.store_client(5).status == 404
    openproject.create_storage(nextcloud.url)
    openproject.app.enable_in_project(1)
    reply = openproject.post("/api/v3/storages/1/oauth_client_credentials",
                             {"clientId": "a", "clientSecret": "b"}, token=USER_TOKEN)
    assert reply.status == 403


# --- read-only resources (§9, §10) ---

def test_oauth_resources_are_admin_only(openproject, nextcloud):
    created = openproject.create_storage(nextcloud.url).json()
    client = openproject.store_client(1).json()
    application_id = created["_embedded"]["oauthApplication"]["id"]
    for path in (f"/api/v3/oauth_applications/{application_id}", f"/api/v3/oauth_client_credentials/{client['id']}"):
        reply = openproject.get(path, token=USER_TOKEN)
        assert reply.status == 403
        assert single_error(reply)[0] == "MissingPermission"


def test_project_storages_filtered_by_storage(openproject, nextcloud):
    openproject.create_storage(nextcloud.url)
    openproject.create_storage(nextcloud.url.replace("127.0.0.1", "localhost"), name="Second")
    openproject.app.enable_in_project(1, "Apollo", mode="automatic")
    openproject.app.enable_in_project(2, "Gemini")
    filters = quote('[{"storageId":{"operator":"=","values":["1"]}}]')
    data = openproject.get(f"/api/v3/project_storages?filters={filters}").json()
    assert (data["_type"], data["total"]) == ("Collection", 1)
    element = data["_embedded"]["elements"][0]
    assert element["_type"] == "ProjectStorage"
    assert element["projectFolderMode"] == "automatic"
    assert element["_links"]["storage"] == {"href": "/api/v3/storages/1", "title": "Nextcloud"}
    assert element["_links"]["project"]["title"] == "Apollo"
    assert openproject.get("/api/v3/project_storages").json()["total"] == 2


def test_project_storages_malformed_filter_is_invalid_query(openproject):
    reply = openproject.get("/api/v3/project_storages?filters=" + quote('[{"storageId":"1"}]'))
    assert reply.status == 400
    assert single_error(reply) == ("InvalidQuery", "The query parameter 'filters' is missing or malformed.", None)


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/v3/project_storages"),
    ("PATCH", "/api/v3/oauth_applications/1"),
    ("DELETE", "/api/v3/oauth_client_credentials/1"),
    ("POST", "/api/v3/oauth_applications"),
])
def test_what_the_api_cannot_do_is_not_routed(openproject, nextcloud, method, path):
    openproject.create_storage(nextcloud.url)
    openproject.store_client(1)
    reply = openproject.request(method, path, {} if method != "DELETE" else None)
    assert reply.status == 404
    assert single_error(reply)[0] == "NotFound"


def test_concurrent_creates_of_one_name_store_exactly_one(openproject, nextcloud):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: openproject.create_storage(nextcloud.url, name="Race"), range(8)))
    assert sorted(r.status for r in replies) == [201] + [422] * 7
    for reply in replies:
        if reply.status == 422:
            assert error_list(reply) == [("host", "Host has already been taken."),
                                         ("name", "Name has already been taken.")]
    assert len(openproject.server.state()["storages"]) == 1
    assert len(openproject.server.state()["oauth_applications"]) == 1


def test_reset_empties_the_state_and_keeps_the_credentials(openproject, nextcloud):
    secret = openproject.create_storage(nextcloud.url).json()["_embedded"]["oauthApplication"]["clientSecret"]
    openproject.store_client(1)
    openproject.app.enable_in_project(1)
    reply = call("POST", openproject.url + "/_sandbox/reset")
    assert reply.status == 200
    state = openproject.server.state()
    assert (state["storages"], state["oauth_applications"], state["oauth_tokens"], state["project_storages"]) == \
        ([], [], [], [])
    assert openproject.get("/api/v3/users/me").status == 200  # the API token still works
    assert openproject.create_storage(nextcloud.url).json()["id"] == 1  # ids start over
    assert secret in openproject.app.issued_secrets()  # still known to leak scans
