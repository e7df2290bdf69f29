"""OpenProject emulator: authentication, the request pipeline and the discovery endpoints
(contract/openproject.md §1, §2, §11, §16.1-3)."""

from __future__ import annotations

import json

import pytest

from test_openproject_support import (  # noqa: F401 - fixtures
    ADMIN_TOKEN, USER_TOKEN, apikey, basic, call, nextcloud, openproject, openproject_with, single_error)


# --- authentication (§1) ---

def test_root_for_admin_has_core_version_and_links(openproject):
    reply = openproject.get("/api/v3")
    assert reply.status == 200
    assert reply.header("Content-Type").startswith("application/hal+json")
    data = reply.json()
    assert data["_type"] == "Root"
    assert data["instanceName"] == "OpenProject sandbox"
    assert data["coreVersion"] == "16.0.0"
    assert set(data["_links"]) == {"self", "configuration", "memberships", "priorities", "relations", "statuses",
                                   "time_entries", "types", "user", "userPreferences", "workPackages"}
    assert data["_links"]["user"] == {"href": "/api/v3/users/1", "title": "OpenProject Admin"}


def test_root_hides_core_version_from_non_admins(openproject):
    data = openproject.get("/api/v3", token=USER_TOKEN).json()
    assert data["_type"] == "Root"
    assert "coreVersion" not in data
    assert data["_links"]["user"]["href"] == "/api/v3/users/2"


def test_root_with_trailing_slash_answers_alike(openproject):
    # Nextcloud's is-valid-op-instance probe requests /api/v3/ (nextcloud.md §10.7)
    assert openproject.get("/api/v3/").json() == openproject.get("/api/v3").json()


def test_bearer_api_token_authenticates(openproject):
    reply = call("GET", openproject.url + "/api/v3/users/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert reply.status == 200
    assert reply.json()["login"] == "admin"


def test_bearer_api_token_refused_when_the_release_only_knows_basic(openproject_with):
    op = openproject_with(bearer_api_tokens=False)
    reply = call("GET", op.url + "/api/v3", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == 'Bearer realm="OpenProject API", error="invalid_token"'
    assert op.get("/api/v3").status == 200  # Basic apikey still works


def test_wrong_api_token_is_unauthenticated_with_challenge(openproject):
    reply = openproject.get("/api/v3", token="not-the-token")
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == 'Basic realm="OpenProject API"'
    assert single_error(reply) == ("Unauthenticated", "You did not provide the correct credentials.", None)


def test_basic_user_name_must_be_apikey(openproject):
    reply = call("GET", openproject.url + "/api/v3", headers={"Authorization": basic("admin", ADMIN_TOKEN)})
    assert reply.status == 401
    assert single_error(reply)[0] == "Unauthenticated"


def test_unknown_bearer_token_gets_invalid_token_challenge(openproject):
    reply = call("GET", openproject.url + "/api/v3/users/me", headers={"Authorization": "Bearer 1337"})
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == 'Bearer realm="OpenProject API", error="invalid_token"'
    assert single_error(reply)[0] == "Unauthenticated"


def test_missing_credentials_are_refused_when_login_is_required(openproject):
    reply = openproject.get("/api/v3", token=None)
    assert reply.status == 401
    assert single_error(reply)[0] == "Unauthenticated"


def test_anonymous_access_when_login_is_not_required(openproject_with):
    op = openproject_with(login_required=False)
    root = op.get("/api/v3", token=None)
    assert root.status == 200
    assert "coreVersion" not in root.json()
    me = op.get("/api/v3/users/me", token=None).json()
    assert (me["_type"], me["name"]) == ("User", "Anonymous")
    listing = op.get("/api/v3/storages", token=None).json()
    assert (listing["total"], listing["_embedded"]["elements"]) == (0, [])
    assert op.post("/api/v3/storages", {"name": "x"}, token=None).status == 403


# --- discovery (§2) ---

def test_configuration(openproject):
    reply = openproject.get("/api/v3/configuration")
    assert reply.status == 200
    data = reply.json()
    assert data["_type"] == "Configuration"
    assert data["_links"]["self"] == {"href": "/api/v3/configuration"}
    assert isinstance(data["maximumAttachmentFileSize"], int)
    assert data["perPageOptions"] == [20, 100]
    assert data["hostName"] == openproject.url.removeprefix("http://")


def test_users_me_for_admin_renders_admin_flag(openproject):
    data = openproject.get("/api/v3/users/me").json()
    assert data["_type"] == "User"
    assert (data["id"], data["login"], data["firstName"], data["lastName"]) == (1, "admin", "OpenProject", "Admin")
    assert data["admin"] is True
    assert data["status"] == "active"
    assert data["_links"]["self"] == {"href": "/api/v3/users/1", "title": "OpenProject Admin"}


def test_users_me_for_non_admin_omits_admin_flag(openproject):
    data = openproject.get("/api/v3/users/me", token=USER_TOKEN).json()
    assert (data["id"], data["firstName"], data["lastName"], data["status"]) == (2, "Alice", "Hansen", "active")
    assert "admin" not in data


def test_locked_admin_is_rendered_locked_and_may_not_write(openproject_with, nextcloud):
    op = openproject_with(admin_active=False)
    assert op.get("/api/v3/users/me").json()["status"] == "locked"
    reply = op.create_storage(nextcloud.url)
    assert reply.status == 403
    assert single_error(reply)[0] == "MissingPermission"


def test_other_users_are_hidden_from_non_admins(openproject):
    assert openproject.get("/api/v3/users/1", token=USER_TOKEN).status == 404
    assert openproject.get("/api/v3/users/2").json()["login"] == "alice"


# --- the pipeline: 401, then 406/415 on every non-GET, then 403, then 422 (§1, §16.2) ---

def test_unauthenticated_comes_before_content_type(openproject):
    reply = call("POST", openproject.url + "/api/v3/storages", body=b"{}")
    assert reply.status == 401


def test_missing_content_type_is_406(openproject):
    reply = call("POST", openproject.url + "/api/v3/storages", headers=apikey(ADMIN_TOKEN), body=b"{}")
    assert reply.status == 406
    assert reply.json() == {"error": "Missing content-type header"}


def test_delete_without_content_type_is_406_too(openproject):
    reply = call("DELETE", openproject.url + "/api/v3/storages/1", headers=apikey(ADMIN_TOKEN))
    assert reply.status == 406


def test_unsupported_content_type_is_415(openproject):
    reply = call("POST", openproject.url + "/api/v3/storages", headers=apikey(ADMIN_TOKEN), body=b"name=x",
                 content_type="text/plain")
    assert reply.status == 415
    identifier, message, _ = single_error(reply)
    assert identifier == "TypeNotSupported"
    assert "text/plain" in message and "application/json" in message


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/hal+json"])
def test_json_content_types_with_parameters_pass(openproject, content_type):
    reply = call("POST", openproject.url + "/api/v3/storages", headers=apikey(ADMIN_TOKEN),
                 body=json.dumps({"name": ""}).encode(), content_type=content_type)
    assert reply.status == 422  # reached validation


def test_content_type_comes_before_permission(openproject):
    reply = call("POST", openproject.url + "/api/v3/storages", headers=apikey(USER_TOKEN), body=b"{}")
    assert reply.status == 406


def test_permission_comes_before_validation(openproject):
    reply = openproject.post("/api/v3/storages", {"name": ""}, token=USER_TOKEN)
    assert reply.status == 403
    assert single_error(reply) == ("MissingPermission", "You are not authorized to access this resource.", None)


@pytest.mark.parametrize("body", [b"[1, 2]", b"{not json", b""])
def test_body_that_is_not_one_json_object_is_400(openproject, body):
    reply = call("POST", openproject.url + "/api/v3/storages", headers=apikey(ADMIN_TOKEN), body=body,
                 content_type="application/json")
    assert reply.status == 400
    assert single_error(reply) == ("InvalidRequestBody", "The request body was not a single JSON object.", None)


def test_unknown_api_route_is_hal_404(openproject):
    reply = openproject.get("/api/v3/no_such_thing")
    assert reply.status == 404
    assert single_error(reply) == ("NotFound", "The requested resource could not be found.", None)


def test_injected_fault_status_gets_a_hal_body(openproject):
    openproject.server.add_faults([{"method": "GET", "path": "/api/v3/storages", "when": "before",
                                    "action": "status", "status": 503, "times": 1}])
    reply = openproject.get("/api/v3/storages")
    assert reply.status == 503
    assert single_error(reply)[0] == "InternalServerError"
    assert openproject.get("/api/v3/storages").status == 200  # the rule was used up


def test_configure_rejects_unknown_settings(openproject):
    with pytest.raises(ValueError, match="no_such_setting"):
        openproject.app.configure(no_such_setting=True)
    openproject.app.configure(instance_name="Renamed")
    assert openproject.get("/api/v3").json()["instanceName"] == "Renamed"


def test_reprs_hold_no_secrets(openproject, nextcloud):
    created = openproject.create_storage(nextcloud.url, password=None).json()
    openproject.store_client(1, client_secret="nc-secret-in-repr-test")
    app = openproject.app
    rendered = " ".join([repr(app.config), repr(list(app.oauth.applications.values())),
                         repr(list(app.storages.storages.values())), repr(list(app.storages.clients.values()))])
    for secret in (ADMIN_TOKEN, USER_TOKEN, created["_embedded"]["oauthApplication"]["clientSecret"],
                   "nc-secret-in-repr-test"):
        assert secret not in rendered
    assert "admin_login='admin'" in rendered  # the reprs themselves are there


def test_control_api_config_rejects_wrong_types_and_keeps_serving(openproject):
    reply = call("POST", openproject.url + "/_sandbox/config", json_body={"version": 16})
    assert reply.status == 400
    assert reply.json() == {"message": "OpenProject setting version must be a str"}
    assert call("POST", openproject.url + "/_sandbox/config", json_body={"enterprise": "yes"}).status == 400
    assert openproject.get("/api/v3").json()["coreVersion"] == "16.0.0"
