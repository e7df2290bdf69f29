"""Nextcloud emulator: framework answers, authentication, status, capabilities, check-config, OCS and
JSON escaping (contract/nextcloud.md §1, §9, §10.1 to §10.3, §10.6, §14 items 1, 2, 8 to 10, 16)."""

from __future__ import annotations

import json
import re

from opnc.sandbox.nextcloud_http import php_json
from test_nextcloud_support import APP, BASE_VALUES, OP_URL, basic, nc, nc_factory  # noqa: F401 - fixtures

JSON_UTF8 = "application/json; charset=utf-8"


# --- status.php ----------------------------------------------------------------------------------

def test_status_php_is_exactly_the_observed_document(nc):
    answer = nc.request("GET", "/status.php")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.json() == {"installed": True, "maintenance": False, "needsDbUpgrade": False,
                             "version": "34.0.1.2", "versionstring": "34.0.1", "edition": "",
                             "productname": "Nextcloud", "extendedSupport": False}


def test_maintenance_mode_shows_in_status_and_blocks_other_routes(nc_factory):
    nc = nc_factory(maintenance=True)
    assert nc.request("GET", "/status.php").json()["maintenance"] is True
    answer = nc.request("GET", "/ocs/v2.php/cloud/capabilities", ocs=True)
    assert answer.status == 503
    assert nc.setup("POST", BASE_VALUES).status == 503


def test_configure_switches_maintenance_at_runtime(nc):
    nc.app.configure(maintenance=True)
    assert nc.request("GET", f"{APP}/check-config").status == 503
    nc.app.configure(maintenance=False)
    assert nc.request("GET", f"{APP}/check-config").status == 200


# --- capabilities --------------------------------------------------------------------------------

def test_capabilities_without_ocs_header_is_a_csrf_failure(nc):
    answer = nc.request("GET", "/ocs/v2.php/cloud/capabilities")
    assert answer.status == 412
    assert answer.json() == {"message": "CSRF check failed"}


def test_capabilities_are_public_and_carry_the_integration_block(nc):
    answer = nc.request("GET", "/ocs/v2.php/cloud/capabilities", ocs=True)
    assert answer.status == 200
    assert answer.content_type == JSON_UTF8
    body = answer.json()["ocs"]
    assert body["meta"] == {"status": "ok", "statuscode": 200, "message": "OK"}
    assert body["data"]["version"] == {"major": 34, "minor": 0, "micro": 1, "string": "34.0.1", "edition": "",
                                       "extendedSupport": False}
    assert body["data"]["capabilities"]["integration_openproject"] == {
        "app_version": "3.1.1", "groupfolder_version": "22.0.6", "groupfolders_enabled": True}


def test_capabilities_without_groupfolders(nc_factory):
    nc = nc_factory(groupfolders=False)
    block = nc.request("GET", "/ocs/v2.php/cloud/capabilities", ocs=True).json()["ocs"]["data"]["capabilities"]
    assert block["integration_openproject"]["groupfolders_enabled"] is False
    assert block["integration_openproject"]["groupfolder_version"] == ""


def test_capabilities_without_the_app_have_no_block(nc_factory):
    nc = nc_factory(app_installed=False)
    data = nc.request("GET", "/ocs/v2.php/cloud/capabilities", ocs=True).json()["ocs"]["data"]
    assert "integration_openproject" not in data["capabilities"]
    assert data["version"]["major"] == 34


def test_capabilities_follow_the_configured_versions(nc_factory):
    nc = nc_factory(version="33.0.2", app_version="2.8.1")
    data = nc.request("GET", "/ocs/v2.php/cloud/capabilities", ocs=True).json()["ocs"]["data"]
    assert data["version"]["major"] == 33
    assert data["version"]["string"] == "33.0.2"
    assert data["capabilities"]["integration_openproject"]["app_version"] == "2.8.1"


def test_capabilities_v1_report_statuscode_100(nc):
    answer = nc.request("GET", "/ocs/v1.php/cloud/capabilities?format=json", ocs=True)
    assert answer.status == 200
    assert answer.json()["ocs"]["meta"] == {"status": "ok", "statuscode": 100, "message": "OK",
                                            "totalitems": "", "itemsperpage": ""}


def test_capabilities_default_to_xml_without_json_accept(nc):
    answer = nc.request("GET", "/ocs/v2.php/cloud/capabilities", ocs=True, headers={"Accept": "*/*"})
    assert answer.status == 200
    assert answer.content_type.startswith("application/xml")
    assert b"<major>34</major>" in answer.raw


# --- framework errors (§1.3) ---------------------------------------------------------------------

def test_setup_without_credentials_is_not_logged_in(nc):
    answer = nc.request("POST", f"{APP}/setup", {"values": BASE_VALUES})
    assert answer.status == 401
    assert answer.content_type == JSON_UTF8
    assert answer.json() == {"message": "Current user is not logged in"}


def test_project_folder_status_without_credentials_is_not_logged_in(nc):
    answer = nc.request("GET", f"{APP}/project-folder-status")
    assert answer.status == 401
    assert answer.json() == {"message": "Current user is not logged in"}


def test_wrong_password_answers_401_with_an_empty_message(nc):
    answer = nc.setup("POST", BASE_VALUES, auth=("admin", "wrong-password"))
    assert answer.status == 401
    assert answer.json() == {"message": ""}


def test_non_admin_is_refused_with_403(nc):
    user = nc.control("/users", {"user": "alice"}).json()
    answer = nc.setup("POST", BASE_VALUES, auth=("alice", user["password"]))
    assert answer.status == 403
    assert answer.json() == {"message": "Logged in account must be an admin"}


def test_html_clients_are_redirected_to_the_login_page(nc):
    answer = nc.request("POST", f"{APP}/setup", {"values": BASE_VALUES}, headers={"Accept": "text/html"})
    assert answer.status == 303
    assert answer.headers["location"] == f"{nc.url}/index.php/login?redirect_url={APP}/setup"


def test_wrong_method_on_an_app_route_is_405_html(nc):
    answer = nc.request("GET", f"{APP}/setup", auth=nc.admin)
    assert answer.status == 405
    assert answer.content_type == "text/html; charset=UTF-8"


def test_unknown_app_route_is_404_html(nc):
    answer = nc.request("GET", f"{APP}/no-such-route", auth=nc.admin)
    assert answer.status == 404
    assert answer.content_type == "text/html; charset=UTF-8"


def test_routes_of_a_missing_app_are_404(nc_factory):
    nc = nc_factory(app_installed=False)
    assert nc.setup("POST", BASE_VALUES).status == 404
    assert nc.request("GET", f"{APP}/check-config").status == 404


def test_without_pretty_urls_only_the_index_php_form_works(nc_factory):
    plain = nc_factory()
    assert plain.request("GET", "/apps/integration_openproject/check-config").status == 404
    pretty = nc_factory(pretty_urls=True)
    assert pretty.request("GET", "/apps/integration_openproject/check-config").status == 200


def test_routes_newer_than_the_app_version_do_not_exist(nc_factory):
    nc = nc_factory(app_version="2.6.3")
    assert nc.request("GET", f"{APP}/check-admin-config", auth=nc.admin).status == 404
    assert nc.request("GET", f"{APP}/project-folder-status", auth=nc.admin).status == 200


# --- admin authentication ------------------------------------------------------------------------

def test_admin_app_password_authenticates(nc):
    minted = nc.control("/app-password", {})
    assert minted.status == 201
    body = minted.json()
    assert body["user"] == "admin"
    assert len(body["app_password"]) == 72
    answer = nc.request("GET", f"{APP}/check-admin-config", auth=("admin", body["app_password"]))
    assert answer.status == 200


def test_token_only_login_refuses_the_real_password(nc_factory):
    nc = nc_factory(allow_password_login=False)
    assert nc.request("GET", f"{APP}/check-admin-config", auth=nc.admin).status == 401
    app_password = nc.control("/app-password", {}).json()["app_password"]
    assert nc.request("GET", f"{APP}/check-admin-config", auth=("admin", app_password)).status == 200


def test_app_password_of_another_user_does_not_log_in_as_admin(nc):
    nc.control("/users", {"user": "bob", "password": "bob-password-1"})
    bobs = nc.control("/app-password", {"user": "bob"}).json()["app_password"]
    answer = nc.request("GET", f"{APP}/check-admin-config", auth=("admin", bobs))
    assert answer.status == 401
    assert answer.json() == {"message": ""}


# --- check-config (§10.3) ------------------------------------------------------------------------

def test_check_config_echoes_a_bearer_header(nc):
    answer = nc.request("GET", f"{APP}/check-config", bearer="TESTBEARERTOKEN")
    assert answer.status == 200
    assert answer.json() == {"user_id": "", "authorization_header": "Bearer TESTBEARERTOKEN"}


def test_check_config_echoes_any_header_value(nc):
    answer = nc.request("GET", f"{APP}/check-config", headers={"Authorization": "foo"})
    assert answer.json() == {"user_id": "", "authorization_header": "foo"}


def test_check_config_without_header_gives_null(nc):
    answer = nc.request("GET", f"{APP}/check-config")
    assert answer.raw == b'{"user_id":"","authorization_header":null}'


def test_check_config_with_admin_basic_names_the_user(nc):
    answer = nc.request("GET", f"{APP}/check-config", auth=nc.admin)
    assert answer.json() == {"user_id": "admin", "authorization_header": basic(*nc.admin)}


def test_check_config_with_wrong_basic_is_401(nc):
    answer = nc.request("GET", f"{APP}/check-config", auth=("admin", "nope"))
    assert answer.status == 401
    assert answer.json() == {"message": ""}


def test_stripped_authorization_header_is_invisible_everywhere(nc_factory):
    nc = nc_factory(strip_authorization=True)
    echo = nc.request("GET", f"{APP}/check-config", bearer="TESTBEARERTOKEN")
    assert echo.json() == {"user_id": "", "authorization_header": None}
    answer = nc.setup("POST", BASE_VALUES)
    assert answer.status == 401
    assert answer.json() == {"message": "Current user is not logged in"}


def test_is_valid_op_instance_needs_the_ocs_header(nc):
    answer = nc.request("POST", f"{APP}/is-valid-op-instance", {"url": "http://127.0.0.1:1"}, auth=nc.admin)
    assert answer.status == 412
    assert answer.json() == {"message": "CSRF check failed"}


def test_is_valid_op_instance_needs_a_login(nc):
    answer = nc.request("POST", f"{APP}/is-valid-op-instance", {"url": "http://127.0.0.1:1"}, ocs=True)
    assert answer.status == 401
    assert answer.json() == {"message": "Current user is not logged in"}


# --- OCS routes ----------------------------------------------------------------------------------

def test_ocs_url_returns_the_stored_url_with_its_trailing_slash(nc):
    nc.setup("POST", {**BASE_VALUES, "openproject_instance_url": "http://127.0.0.1:9999/"})
    answer = nc.request("GET", "/ocs/v2.php/apps/integration_openproject/api/v1/url", auth=nc.admin, ocs=True)
    assert answer.status == 200
    assert answer.raw == (b'{"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},'
                          b'"data":"http:\\/\\/127.0.0.1:9999\\/"}}')


def test_ocs_url_v1_shape(nc):
    nc.setup("POST", BASE_VALUES)
    answer = nc.request("GET", "/ocs/v1.php/apps/integration_openproject/api/v1/url?format=json",
                        auth=nc.admin, ocs=True)
    assert answer.json() == {"ocs": {"meta": {"status": "ok", "statuscode": 100, "message": "OK",
                                              "totalitems": "", "itemsperpage": ""}, "data": OP_URL}}


def test_ocs_url_after_reset_is_empty(nc):
    nc.setup("POST", BASE_VALUES)
    nc.setup("DELETE")
    answer = nc.request("GET", "/ocs/v2.php/apps/integration_openproject/api/v1/url", auth=nc.admin, ocs=True)
    assert answer.json()["ocs"]["data"] == ""


def test_ocs_url_needs_a_login(nc):
    answer = nc.request("GET", "/ocs/v2.php/apps/integration_openproject/api/v1/url", ocs=True)
    assert answer.status == 401
    assert answer.json()["ocs"]["meta"]["statuscode"] == 997


def test_ocs_cloud_user_names_the_logged_in_user(nc):
    answer = nc.request("GET", "/ocs/v2.php/cloud/user?format=json", auth=nc.admin, ocs=True)
    assert answer.status == 200
    assert answer.json()["ocs"]["data"]["id"] == "admin"


# --- JSON escaping (§1.4) ------------------------------------------------------------------------

def test_php_json_escapes_slashes_tags_and_non_ascii():
    assert php_json({"u": "http://x/<a>é"}) == b'{"u":"http:\\/\\/x\\/\\u003Ca\\u003E\\u00e9"}'
    assert json.loads(php_json({"u": "http://x/<a>é\"\\"})) == {"u": "http://x/<a>é\"\\"}


def test_setup_answer_escapes_the_redirect_uri_on_the_wire(nc):
    answer = nc.setup("POST", BASE_VALUES)
    assert answer.content_type == JSON_UTF8
    assert re.search(rb'"openproject_redirect_uri":"http:\\/\\/127\.0\.0\.1:9999\\/oauth_clients\\/'
                     rb'[A-Za-z0-9]{64}\\/callback"', answer.raw)
    assert b"/" not in answer.raw.replace(b"\\/", b"")
