"""OpenProject emulator: the version switch (contract §14) and the Enterprise switch (§17)."""

from __future__ import annotations

import pytest

from test_openproject_support import (  # noqa: F401 - fixtures
    SSO, TWO_WAY, call, error_list, nextcloud, openproject, openproject_with)

ENTERPRISE_ERROR = ("authenticationMethod", "Authentication method is only available in the Enterprise Corporate plan.")


def test_core_version_follows_the_configuration(openproject_with):
    assert openproject_with(version="14.2.0").get("/api/v3").json()["coreVersion"] == "14.2.0"


def test_version_can_change_at_runtime_through_the_control_api(openproject):
    reply = call("POST", openproject.url + "/_sandbox/config", json_body={"version": "15.5.0"})
    assert reply.status == 200
    assert openproject.get("/api/v3").json()["coreVersion"] == "15.5.0"


def test_before_16_there_is_no_authentication_method_or_audience(openproject_with, nextcloud):
    op = openproject_with(version="15.4.0")
    reply = op.create_storage(nextcloud.url, method=SSO)  # the href is not known yet: ignored
    assert reply.status == 201
    data = reply.json()
    assert "authenticationMethod" not in data["_links"]
    assert "storageAudience" not in data
    assert "oauthApplication" in data["_embedded"]  # two-way, as before 16.0


def test_from_16_the_method_link_and_audience_are_rendered(openproject, nextcloud):
    data = openproject.create_storage(nextcloud.url).json()
    assert data["_links"]["authenticationMethod"] == {"href": TWO_WAY}
    assert data["storageAudience"] is None
    assert "tokenExchangeScope" not in data and "forbiddenFileNameCharacters" not in data
    assert data["_links"]["authorizationState"]["href"].endswith(":Error")


def test_later_releases_render_token_exchange_scope_and_forbidden_characters(openproject_with, nextcloud):
    op = openproject_with(version="16.2.0")
    op.create_storage(nextcloud.url)
    op.store_client(1)
    data = op.get("/api/v3/storages/1").json()
    assert data["tokenExchangeScope"] is None
    assert data["forbiddenFileNameCharacters"] == '<>:"/\\|?*'
    assert data["_links"]["authorizationState"]["href"].endswith(":NotConnected")
    assert "authorize" not in data["_links"]


def test_two_way_as_enterprise_add_on_is_refused_without_enterprise(openproject_with, nextcloud):
    op = openproject_with(two_way_requires_enterprise=True)
    reply = op.create_storage(nextcloud.url)
    assert error_list(reply) == [ENTERPRISE_ERROR]
    state = op.server.state()
    assert (state["storages"], state["oauth_applications"]) == ([], [])  # nothing left behind


def test_two_way_as_enterprise_add_on_is_created_with_enterprise(openproject_with, nextcloud):
    op = openproject_with(two_way_requires_enterprise=True, enterprise=True)
    assert op.create_storage(nextcloud.url).status == 201


def test_enterprise_switch_is_applied_at_runtime(openproject_with, nextcloud):
    op = openproject_with(two_way_requires_enterprise=True)
    assert op.create_storage(nextcloud.url).status == 422
    op.app.configure(enterprise=True)
    assert op.create_storage(nextcloud.url).status == 201


def test_sso_always_needs_enterprise_and_an_audience(openproject, nextcloud):
    reply = openproject.create_storage(nextcloud.url, method=SSO)
    assert error_list(reply) == [ENTERPRISE_ERROR, ("storageAudience", "Storage audience can't be blank.")]


def test_sso_storage_with_enterprise_has_no_oauth_application(openproject_with, nextcloud):
    op = openproject_with(enterprise=True)
    reply = op.create_storage(nextcloud.url, method=SSO, storageAudience="nextcloud")
    assert reply.status == 201
    data = reply.json()
    assert data["_links"]["authenticationMethod"] == {"href": SSO}
    assert data["storageAudience"] == "nextcloud"
    assert data["_links"]["oauthApplication"] == {"href": None}
    assert "oauthApplication" not in data.get("_embedded", {})
    assert data["configured"] is True
    assert op.server.state()["oauth_applications"] == []


@pytest.mark.parametrize("version", ["9.0.0", "16.0", "16.0.0-rc1"])
def test_version_strings_compare_numerically(openproject_with, nextcloud, version):
    op = openproject_with(version=version)
    data = op.create_storage(nextcloud.url).json()
    assert ("authenticationMethod" in data["_links"]) is (version != "9.0.0")


def test_before_13_application_passwords_are_not_part_of_the_api(openproject_with, nextcloud):
    op = openproject_with(version="12.5.0")
    reply = op.create_storage(nextcloud.url, password="ignored-by-this-release")
    assert reply.status == 201
    assert "hasApplicationPassword" not in reply.json()
    assert nextcloud.requests(method="HEAD") == []  # nothing to check live
