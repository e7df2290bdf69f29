"""Nextcloud emulator: /setup POST, PATCH and DELETE, validation per app version, project folders,
the app password and the status routes (contract/nextcloud.md §3 to §10.5, §14 items 3 to 8)."""

from __future__ import annotations

import hashlib
import re

import pytest

from test_nextcloud_support import APP, BASE_VALUES, OP_URL, nc, nc_factory  # noqa: F401 - fixtures

ALNUM64 = re.compile(r"^[A-Za-z0-9]{64}$")
BOTH_FLAGS = {**BASE_VALUES, "setup_project_folder": True, "setup_app_password": True}


def admin_config(nc):
    return nc.request("GET", f"{APP}/check-admin-config", auth=nc.admin).json()


def folder_status(nc):
    return nc.request("GET", f"{APP}/project-folder-status", auth=nc.admin).json()


def dav_head(nc, password):
    return nc.request("HEAD", "/remote.php/dav", auth=("OpenProject", password))


# --- POST (§5) -----------------------------------------------------------------------------------

def test_post_answers_the_client_in_the_observed_key_order(nc):
    answer = nc.setup("POST", BASE_VALUES)
    assert answer.status == 200
    body = answer.json()
    assert list(body) == ["status", "nextcloud_oauth_client_name", "openproject_redirect_uri",
                          "nextcloud_client_id", "nextcloud_client_secret"]
    assert body["status"] is True
    assert body["nextcloud_oauth_client_name"] == "OpenProject client"
    assert ALNUM64.match(body["nextcloud_client_id"])
    assert ALNUM64.match(body["nextcloud_client_secret"])
    assert body["openproject_redirect_uri"] == f"{OP_URL}/oauth_clients/{body['nextcloud_client_id']}/callback"


def test_post_stores_the_settings_and_the_client(nc):
    body = nc.setup("POST", BASE_VALUES).json()
    state = nc.state()
    assert state["integration"]["openproject_instance_url"] == OP_URL
    assert state["integration"]["openproject_client_id"] == "op-client-id-0001"
    assert state["integration"]["openproject_client_secret_set"] is True
    assert state["integration"]["authorization_method"] == "oauth2"
    assert state["integration"]["default_enable_navigation"] == ""
    assert state["integration"]["fresh_project_folder_setup"] == "0"
    assert "openproject_client_secret" not in state["integration"]
    assert state["oauth_clients"] == [{"id": 1, "client_id": body["nextcloud_client_id"], "name": "OpenProject client",
                                       "redirect_uri": body["openproject_redirect_uri"]}]
    assert state["integration"]["nc_oauth_client_id"] == "1"


def test_post_always_rotates_the_nextcloud_client(nc):
    first = nc.setup("POST", BASE_VALUES).json()
    second = nc.setup("POST", BASE_VALUES).json()
    assert second["nextcloud_client_id"] != first["nextcloud_client_id"]
    assert second["nextcloud_client_secret"] != first["nextcloud_client_secret"]
    clients = nc.state()["oauth_clients"]
    assert [c["id"] for c in clients] == [2]
    assert clients[0]["client_id"] == second["nextcloud_client_id"]


def test_post_keeps_a_trailing_slash_but_trims_it_in_the_redirect_uri(nc):
    body = nc.setup("POST", {**BASE_VALUES, "openproject_instance_url": "http://127.0.0.1:9999/"}).json()
    assert body["openproject_redirect_uri"] == f"http://127.0.0.1:9999/oauth_clients/{body['nextcloud_client_id']}/callback"
    assert nc.state()["integration"]["openproject_instance_url"] == "http://127.0.0.1:9999/"


def test_post_trims_values(nc):
    nc.setup("POST", {**BASE_VALUES, "openproject_client_id": "  spaced-id \n"})
    assert nc.state()["integration"]["openproject_client_id"] == "spaced-id"


def test_post_accepts_a_short_client_secret(nc):
    assert nc.setup("POST", {**BASE_VALUES, "openproject_client_secret": "def"}).status == 200


def test_check_admin_config_after_post_without_project_folders(nc):
    nc.setup("POST", BASE_VALUES)
    assert admin_config(nc) == {"config_status_without_project_folder": True, "project_folder_setup_status": False}


def test_check_admin_config_on_a_fresh_server(nc):
    assert admin_config(nc) == {"config_status_without_project_folder": False, "project_folder_setup_status": False}


# --- validation, 3.1.1 (§4.1) --------------------------------------------------------------------

def _without(key):
    return {k: v for k, v in BASE_VALUES.items() if k != key}


@pytest.mark.parametrize("case,values,message", [
    ("01", _without("setup_app_password"), "invalid key"),
    ("05", {**BASE_VALUES, "openproject_instance_url": "not-a-url"}, "invalid data"),
    ("06", {**BASE_VALUES, "openproject_instance_url": "ftp://127.0.0.1:9999"}, "invalid data"),
    ("07", {**BASE_VALUES, "default_enable_navigation": "false"}, "invalid data"),
    ("08", {**BASE_VALUES, "openproject_client_secret": ""}, "invalid data"),
    ("09", {**BASE_VALUES, "foo": 1}, "invalid key"),
    ("10", {**BASE_VALUES, "setup_project_folder": True, "setup_app_password": False}, "invalid data"),
    ("12", {}, "invalid key"),
    ("15", {"authorization_method": "foo", "openproject_instance_url": "http://127.0.0.1:9999"},
     "Invalid authorization method"),
    ("oidc-key", {**BASE_VALUES, "sso_provider_type": "external"}, "invalid key"),
    ("null", {**BASE_VALUES, "openproject_client_id": None}, "invalid data"),
    ("oidc-no-type", {"authorization_method": "oidc", "openproject_instance_url": OP_URL},
     "Incomplete settings: 'sso_provider_type' is required with 'oidc' method"),
])
def test_post_validation_3_1_1(nc, case, values, message):
    answer = nc.setup("POST", values)
    assert answer.status == 400, case
    assert answer.json() == {"error": message}
    assert nc.state()["oauth_clients"] == []


def test_post_without_values_wrapper_is_not_valid_json(nc):  # case 13
    answer = nc.request("POST", f"{APP}/setup", {}, auth=nc.admin)
    assert answer.status == 400
    assert answer.json() == {"error": "The data is not a valid JSON."}


def test_post_with_flat_keys_is_not_valid_json(nc):
    answer = nc.request("POST", f"{APP}/setup", BASE_VALUES, auth=nc.admin)
    assert answer.json() == {"error": "The data is not a valid JSON."}


def test_post_with_malformed_json_is_not_valid_json(nc):  # case 14
    answer = nc.request("POST", f"{APP}/setup", '{"values":', auth=nc.admin,
                        headers={"Content-Type": "application/json"})
    assert answer.status == 400
    assert answer.json() == {"error": "The data is not a valid JSON."}


def test_post_with_loose_enum_is_refused_strictly_in_3_1_1(nc):
    answer = nc.setup("POST", {**BASE_VALUES, "authorization_method": True})
    assert answer.json() == {"error": "Invalid authorization method"}


def test_patch_with_unknown_key_is_invalid_key(nc):  # case 19
    answer = nc.setup("PATCH", {"nope": "x"})
    assert answer.status == 400
    assert answer.json() == {"error": "invalid key"}


def test_patch_type_check_is_strict(nc):
    answer = nc.setup("PATCH", {"default_enable_navigation": "false"})
    assert answer.json() == {"error": "invalid data"}


# --- validation of other releases (§4.2, §4.3) ---------------------------------------------------

@pytest.mark.parametrize("values,message", [
    ({}, "Missing required field: openproject_instance_url"),  # POST injects authorization_method first
    ({**BASE_VALUES, "foo": 1}, "Unknown setting: foo"),
    (_without("openproject_instance_url"), "Missing required field: openproject_instance_url"),
    (_without("openproject_client_secret"), "Missing required field: openproject_client_secret"),
    ({**BASE_VALUES, "authorization_method": "foo"}, "Invalid authorization method."),
    ({**BASE_VALUES, "setup_project_folder": True},
     'Invalid team folder setup configuration: Both "setup_project_folder" and "setup_app_password" must be '
     'either true or false.'),
    ({**BASE_VALUES, "default_enable_navigation": "false"}, "Invalid value for setting: default_enable_navigation"),
    ({**BASE_VALUES, "openproject_instance_url": "ftp://x"}, "Invalid OpenProject URL."),
    ({"authorization_method": "oidc", "openproject_instance_url": OP_URL, "default_enable_navigation": False,
      "default_enable_unified_search": False, "setup_project_folder": False, "setup_app_password": False},
     "Missing required field: sso_provider_type"),
])
def test_post_validation_3_2_0_dev_messages(nc_factory, values, message):
    nc = nc_factory(app_version="3.2.0-dev")
    answer = nc.setup("POST", values)
    assert answer.status == 400
    assert answer.json() == {"error": message}


def test_3_2_0_dev_empty_body_message(nc_factory):
    nc = nc_factory(app_version="3.2.0-dev")
    answer = nc.request("POST", f"{APP}/setup", {}, auth=nc.admin)
    assert answer.json() == {"error": "Invalid settings."}


def test_2_8_post_accepts_an_unknown_string_key_and_has_no_status(nc_factory):
    nc = nc_factory(app_version="2.8.1")
    answer = nc.setup("POST", {**BASE_VALUES, "extra": "ignored"})
    assert answer.status == 200
    assert list(answer.json()) == ["nextcloud_oauth_client_name", "openproject_redirect_uri",
                                   "nextcloud_client_id", "nextcloud_client_secret"]


def test_2_8_post_refuses_an_unknown_non_string_key(nc_factory):
    nc = nc_factory(app_version="2.8.1")
    assert nc.setup("POST", {**BASE_VALUES, "extra": 1}).json() == {"error": "invalid data"}


def test_2_8_post_refuses_a_missing_key(nc_factory):
    nc = nc_factory(app_version="2.8.1")
    assert nc.setup("POST", _without("openproject_client_id")).json() == {"error": "invalid key"}


def test_2_8_patch_does_not_know_authorization_method(nc_factory):
    nc = nc_factory(app_version="2.8.1")
    answer = nc.setup("PATCH", {"authorization_method": "oauth2"})
    assert answer.status == 400
    assert answer.json() == {"error": "invalid key"}


@pytest.mark.parametrize("version,has_status", [("3.1.1", True), ("3.1.0", False), ("3.0.0", False),
                                                ("2.11.4", True), ("2.11.3", False), ("2.9.2", False)])
def test_status_key_only_in_versions_that_have_it(nc_factory, version, has_status):
    nc = nc_factory(app_version=version)
    body = nc.setup("POST", BASE_VALUES).json()
    assert ("status" in body) is has_status
    assert "nextcloud_client_secret" in body


def test_loose_enum_in_3_1_0_accepts_true(nc_factory):
    nc = nc_factory(app_version="3.1.0")
    assert nc.setup("POST", {**BASE_VALUES, "authorization_method": True}).status == 200


# --- PATCH (§6) ----------------------------------------------------------------------------------

def test_patch_answers_client_info_with_id_and_without_secret(nc):
    post = nc.setup("POST", BASE_VALUES).json()
    answer = nc.setup("PATCH", {"openproject_client_id": "new-id", "openproject_client_secret": "new-secret"})
    assert answer.status == 200
    assert answer.json() == {"status": True, "id": 1, "nextcloud_oauth_client_name": "OpenProject client",
                             "openproject_redirect_uri": post["openproject_redirect_uri"],
                             "nextcloud_client_id": post["nextcloud_client_id"]}
    assert nc.state()["integration"]["openproject_client_id"] == "new-id"


def test_patch_new_url_rewrites_the_redirect_uri_in_place(nc):
    post = nc.setup("POST", BASE_VALUES).json()
    body = nc.setup("PATCH", {"openproject_instance_url": "https://op.example.com/"}).json()
    assert body["nextcloud_client_id"] == post["nextcloud_client_id"]
    assert body["openproject_redirect_uri"] == (
        f"https://op.example.com/oauth_clients/{post['nextcloud_client_id']}/callback")
    assert nc.state()["oauth_clients"][0]["redirect_uri"] == body["openproject_redirect_uri"]


def test_patch_without_a_client_creates_one_and_shows_its_secret(nc):
    nc.setup("POST", BASE_VALUES)
    nc.setup("DELETE")
    answer = nc.setup("PATCH", {"openproject_instance_url": OP_URL, "openproject_client_id": "id2",
                                "openproject_client_secret": "secret2"})
    body = answer.json()
    assert list(body) == ["status", "nextcloud_oauth_client_name", "openproject_redirect_uri",
                          "nextcloud_client_id", "nextcloud_client_secret"]
    # after a reset authorization_method is '' and fresh_project_folder_setup is '1' (3.1.1)
    assert body["status"] is False
    assert ALNUM64.match(body["nextcloud_client_secret"])


@pytest.mark.parametrize("version,status", [("3.1.1", False), ("3.2.0-dev", True)])
def test_patch_after_reset_falls_back_to_oauth2_only_in_3_2_0_dev(nc_factory, version, status):
    # After DELETE authorization_method is ''; the PATCH below sends both flags but not the method.
    nc = nc_factory(app_version=version)
    nc.setup("POST", BASE_VALUES)
    nc.setup("DELETE")
    body = nc.setup("PATCH", {**BASE_VALUES}).json()
    assert body["status"] is status


def test_patch_has_no_pair_rule(nc):
    nc.setup("POST", BOTH_FLAGS)
    answer = nc.setup("PATCH", {"setup_project_folder": False, "setup_app_password": True})
    assert answer.status == 200
    assert len(answer.json()["openproject_user_app_password"]) == 72


def test_patch_empty_values_is_not_valid_json(nc):
    answer = nc.setup("PATCH", {})
    assert answer.status == 400
    assert answer.json() == {"error": "The data is not a valid JSON."}


# --- DELETE (§7) ---------------------------------------------------------------------------------

def test_delete_resets_and_keeps_the_project_folder_entities(nc):
    post = nc.setup("POST", BOTH_FLAGS).json()
    answer = nc.setup("DELETE")
    assert answer.status == 200
    assert answer.json() == {"status": True}
    state = nc.state()
    assert state["oauth_clients"] == []
    assert state["integration"]["openproject_instance_url"] == ""
    assert state["integration"]["authorization_method"] == ""
    assert state["integration"]["openproject_client_secret_set"] is False
    assert state["integration"]["fresh_project_folder_setup"] == "1"
    assert "nc_oauth_client_id" not in state["integration"]
    assert {u["id"] for u in state["users"]} == {"admin", "OpenProject"}
    assert "OpenProject" in {g["name"] for g in state["groups"]}
    assert [f["mount_point"] for f in state["team_folders"]] == ["OpenProject"]
    assert dav_head(nc, post["openproject_user_app_password"]).status == 200
    assert admin_config(nc) == {"config_status_without_project_folder": False, "project_folder_setup_status": True}
    assert folder_status(nc) == {"result": True}


def test_check_admin_config_after_delete_is_false(nc):  # case 21
    nc.setup("POST", BASE_VALUES)
    nc.setup("DELETE")
    assert admin_config(nc) == {"config_status_without_project_folder": False, "project_folder_setup_status": False}


def test_a_setup_with_both_flags_ends_the_fresh_state(nc):
    nc.setup("POST", BASE_VALUES)
    nc.setup("DELETE")
    nc.setup("POST", BASE_VALUES)
    assert nc.state()["integration"]["fresh_project_folder_setup"] == "0"
    assert admin_config(nc)["config_status_without_project_folder"] is True


def test_2_8_delete_removes_the_app_password(nc_factory):
    nc = nc_factory(app_version="2.8.1")
    post = nc.setup("POST", BOTH_FLAGS).json()
    assert nc.setup("DELETE").json() == {"status": True}
    assert dav_head(nc, post["openproject_user_app_password"]).status == 401
    assert admin_config(nc)["project_folder_setup_status"] is False


# --- project folders and the app password (§8, §9) -----------------------------------------------

def test_post_with_project_folders_creates_the_entities_and_an_app_password(nc):
    answer = nc.setup("POST", BOTH_FLAGS)
    assert answer.status == 200
    body = answer.json()
    assert list(body)[-1] == "openproject_user_app_password"
    assert len(body["openproject_user_app_password"]) == 72
    state = nc.state()
    groups = {g["name"]: g for g in state["groups"]}
    assert groups["OpenProject"]["members"] == ["OpenProject"]
    assert groups["OpenProject"]["subadmins"] == ["OpenProject"]
    assert groups["OpenProjectNoAutomaticProjectFolders"]["subadmins"] == ["OpenProject"]
    assert state["team_folders"] == [{"id": 1, "mount_point": "OpenProject", "groups": {"OpenProject": 31},
                                      "acl": True, "acl_managers": ["OpenProject"]}]
    assert state["app_password_sha256"] == [
        hashlib.sha256(body["openproject_user_app_password"].encode()).hexdigest()]
    assert state["project_folder_setup"] is True


def test_project_folder_status_and_admin_config_after_full_setup(nc):  # cases 51, 52
    nc.setup("POST", BOTH_FLAGS)
    assert folder_status(nc) == {"result": True}
    assert admin_config(nc) == {"config_status_without_project_folder": True, "project_folder_setup_status": True}


def test_project_folder_status_is_false_without_entities(nc):
    assert folder_status(nc) == {"result": False}


def test_app_password_is_escaped_on_the_wire(nc):
    raw = nc.setup("POST", BOTH_FLAGS).raw
    value = re.search(rb'"openproject_user_app_password":"(.*)"}$', raw).group(1)
    assert b"<" not in value and b">" not in value
    assert re.search(rb"(?<!\\)/", value.replace(b"\\\\", b"")) is None


def test_app_password_length_follows_the_password_policy(nc_factory):
    nc = nc_factory(password_min_length=100)
    assert len(nc.setup("POST", BOTH_FLAGS).json()["openproject_user_app_password"]) == 100


def test_app_password_works_for_webdav_and_ocs_at_once(nc):
    password = nc.setup("POST", BOTH_FLAGS).json()["openproject_user_app_password"]
    head = dav_head(nc, password)
    assert head.status == 200
    assert head.content_type == "text/html; charset=UTF-8"
    assert head.raw == b""
    user = nc.request("GET", "/ocs/v2.php/cloud/user?format=json", auth=("OpenProject", password), ocs=True)
    assert user.json()["ocs"]["data"]["id"] == "OpenProject"


def test_webdav_with_a_wrong_password_is_401_with_the_realm(nc):
    nc.setup("POST", BOTH_FLAGS)
    answer = dav_head(nc, "wrong")
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="Nextcloud", charset="UTF-8"'


def test_webdav_without_credentials_is_401(nc):
    answer = nc.request("HEAD", "/remote.php/dav")
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="Nextcloud", charset="UTF-8"'


def test_propfind_lists_the_team_folder(nc):
    password = nc.setup("POST", BOTH_FLAGS).json()["openproject_user_app_password"]
    answer = nc.request("PROPFIND", "/remote.php/dav/files/OpenProject/", auth=("OpenProject", password),
                        headers={"Depth": "1"})
    assert answer.status == 207
    assert b"<d:href>/remote.php/dav/files/OpenProject/OpenProject/</d:href>" in answer.raw


def test_patch_rotates_the_app_password_and_the_old_one_dies(nc):  # case 54
    old = nc.setup("POST", BOTH_FLAGS).json()["openproject_user_app_password"]
    answer = nc.setup("PATCH", {"setup_app_password": True})
    body = answer.json()
    assert list(body) == ["status", "id", "nextcloud_oauth_client_name", "openproject_redirect_uri",
                          "nextcloud_client_id", "openproject_user_app_password"]
    assert body["openproject_user_app_password"] != old
    assert dav_head(nc, old).status == 401
    assert dav_head(nc, body["openproject_user_app_password"]).status == 200


def test_post_with_flags_false_deletes_the_app_password(nc):
    password = nc.setup("POST", BOTH_FLAGS).json()["openproject_user_app_password"]
    nc.setup("POST", BASE_VALUES)
    assert dav_head(nc, password).status == 401
    assert admin_config(nc)["project_folder_setup_status"] is False


def test_second_project_folder_setup_conflicts_on_the_user_before_any_write(nc):  # case 53
    first = nc.setup("POST", BOTH_FLAGS).json()
    answer = nc.setup("POST", {**BOTH_FLAGS, "openproject_client_id": "other"})
    assert answer.status == 409
    assert answer.json() == {"error": 'The user "OpenProject" already exists'}
    state = nc.state()
    assert state["integration"]["openproject_client_id"] == BASE_VALUES["openproject_client_id"]
    assert state["oauth_clients"][0]["client_id"] == first["nextcloud_client_id"]


def test_existing_group_conflicts(nc):
    nc.control("/project-folder-entities", {"group": True})
    answer = nc.setup("POST", BOTH_FLAGS)
    assert answer.status == 409
    assert answer.json() == {"error": 'The group "OpenProject" already exists'}


def test_existing_team_folder_conflicts(nc):
    nc.control("/project-folder-entities", {"team_folder": True})
    answer = nc.setup("POST", BOTH_FLAGS)
    assert answer.status == 409
    assert answer.json() == {"error": 'The team folder name "OpenProject" already exists'}


def test_existing_group_folder_conflict_uses_the_old_wording_before_2_10(nc_factory):
    nc = nc_factory(app_version="2.9.2")
    nc.control("/project-folder-entities", {"team_folder": True})
    assert nc.setup("POST", BOTH_FLAGS).json() == {"error": 'The group folder name "OpenProject" already exists'}


def test_missing_groupfolders_is_500(nc_factory):
    nc = nc_factory(groupfolders=False)
    answer = nc.setup("POST", BOTH_FLAGS)
    assert answer.status == 500
    assert answer.json() == {"error": 'The "groupfolders" app is not installed'}
    assert nc.state()["oauth_clients"] == []


def test_missing_groupfolders_with_user_and_group_is_500_before_409(nc_factory):
    nc = nc_factory(groupfolders=False)
    nc.control("/project-folder-entities", {"user": True, "group": True})
    answer = nc.setup("POST", BOTH_FLAGS)
    assert answer.status == 500
    assert answer.json() == {"error": 'The "groupfolders" app is not installed'}


def test_missing_groupfolders_message_before_2_10(nc_factory):
    nc = nc_factory(groupfolders=False, app_version="2.9.2")
    assert nc.setup("POST", BOTH_FLAGS).json() == {"error": 'The "Group folders" app is not installed'}


def test_app_password_without_the_user_is_404(nc):
    nc.setup("POST", BASE_VALUES)
    answer = nc.setup("PATCH", {"setup_app_password": True})
    assert answer.status == 404
    assert answer.json() == {"error": 'User "OpenProject" does not exists to create application password'}


def test_project_folder_status_is_false_when_groupfolders_is_disabled_later(nc):
    nc.setup("POST", BOTH_FLAGS)
    nc.app.configure(groupfolders=False)
    assert folder_status(nc) == {"result": False}
    assert admin_config(nc)["project_folder_setup_status"] is True


def test_sign_terms_of_service(nc_factory):
    nc = nc_factory(terms_of_service=True)
    answer = nc.request("POST", f"{APP}/sign-term-of-service", auth=nc.admin)
    assert answer.json() == {"result": False}
    nc.setup("POST", BOTH_FLAGS)
    assert nc.request("POST", f"{APP}/sign-term-of-service", auth=nc.admin).json() == {"result": True}


# --- OIDC ----------------------------------------------------------------------------------------

OIDC_VALUES = {"authorization_method": "oidc", "openproject_instance_url": OP_URL,
               "default_enable_navigation": False, "default_enable_unified_search": False,
               "setup_project_folder": False, "setup_app_password": False,
               "sso_provider_type": "nextcloud_hub", "targeted_audience_client_id": "openproject"}


def test_oidc_post_creates_no_client_in_3_1_1(nc):
    answer = nc.setup("POST", OIDC_VALUES)
    assert answer.status == 200
    assert answer.json() == {"status": True}
    assert nc.state()["oauth_clients"] == []
    assert nc.state()["integration"]["oidc_provider"] == "Nextcloud Hub"


def test_oidc_post_still_creates_a_client_in_3_1_0(nc_factory):
    nc = nc_factory(app_version="3.1.0")
    body = nc.setup("POST", OIDC_VALUES).json()
    assert "status" not in body
    assert ALNUM64.match(body["nextcloud_client_secret"])


# --- request decoding, reset, secrets ------------------------------------------------------------

def test_json_body_without_content_type_is_not_decoded(nc):
    answer = nc.request("POST", f"{APP}/setup", b'{"values":{}}', auth=nc.admin)
    assert answer.status == 400
    assert answer.json() == {"error": "The data is not a valid JSON."}


def test_reset_returns_to_a_fresh_server_and_keeps_the_admin(nc):
    nc.setup("POST", BOTH_FLAGS)
    nc.app.reset()
    state = nc.state()
    assert state["oauth_clients"] == []
    assert [u["id"] for u in state["users"]] == ["admin"]
    assert state["team_folders"] == []
    assert admin_config(nc) == {"config_status_without_project_folder": False, "project_folder_setup_status": False}
    assert nc.setup("POST", BOTH_FLAGS).status == 200  # no 409: the entities are gone


def test_issued_secrets_include_the_app_password_and_never_appear_in_state(nc):
    body = nc.setup("POST", BOTH_FLAGS).json()
    secrets = nc.app.issued_secrets()
    assert body["openproject_user_app_password"] in secrets
    assert body["nextcloud_client_secret"] in secrets
    state_text = str(nc.state())
    for secret in secrets:
        assert secret not in state_text
