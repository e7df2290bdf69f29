"""Core errors arrive as the opnc.errors class of their kind, with every attribute; Url through the bindings."""

from __future__ import annotations

import pickle

import pytest

import opnc
from opnc import _core
from opnc.errors import KIND_TO_CLASS


def test_bad_url_raises_invalid_input_which_is_a_value_error() -> None:
    with pytest.raises(opnc.InvalidInput) as caught:
        opnc.Url("ftp://x")
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, opnc.Error)
    assert type(error) is opnc.InvalidInput
    assert error.kind == "invalid_input"
    assert error.message == ("Invalid server URL 'ftp://x': the scheme 'ftp' is not supported "
                             "(use https:// or http://).")
    assert error.hint.startswith("Give the server's base URL")
    assert error.step == ""
    assert error.http_status == 0
    assert error.server_id == ""
    assert str(error) == f"{error.message} Hint: {error.hint}"


def test_url_error_never_echoes_a_password() -> None:
    with pytest.raises(opnc.InvalidInput) as caught:
        opnc.Url.parse("https://admin:hunter2@example.org/")
    assert "user names and passwords do not belong in the URL" in caught.value.message
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("example.org", "the scheme is missing"),
        ("https://", "the host is empty"),
        ("https://example.org:99999", "the port is not a number between 1 and 65535"),
        ("https://example.org/a b", "contains a space"),
        ("https://example.org/?x=1", "a query string"),
        ("https://example.org/#f", "a fragment"),
    ],
)
def test_each_bad_url_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(opnc.InvalidInput, match=problem):
        opnc.Url(text)


@pytest.mark.parametrize("kind", sorted(KIND_TO_CLASS))
def test_every_kind_becomes_its_class_with_all_attributes(kind: str) -> None:
    with pytest.raises(opnc.Error) as caught:
        _core._raise_core_error(kind, "what happened", hint="what to do", step="create_storage",
                                http_status=422, server_id="urn:openproject-org:api:v3:errors:PropertyConstraintViolation",
                                server_message="Name has already been taken.")
    error = caught.value
    assert type(error) is KIND_TO_CLASS[kind]
    assert error.kind == kind
    assert error.message == "what happened"
    assert error.hint == "what to do"
    assert error.step == "create_storage"
    assert error.http_status == 422
    assert error.server_id == "urn:openproject-org:api:v3:errors:PropertyConstraintViolation"
    assert error.server_message == "Name has already been taken."


def test_builtin_bases_of_translated_errors() -> None:
    with pytest.raises(ConnectionError):
        _core._raise_core_error("connection_failed", "down")
    with pytest.raises(TimeoutError):
        _core._raise_core_error("timeout", "slow")
    with pytest.raises(ConnectionError):  # TlsError is a ConnectionFailed
        _core._raise_core_error("tls", "bad certificate")
    with pytest.raises(PermissionError):
        _core._raise_core_error("unauthenticated", "who are you")
    with pytest.raises(LookupError):
        _core._raise_core_error("not_found", "gone")


def test_unknown_kind_becomes_internal_error() -> None:
    with pytest.raises(opnc.InternalError) as caught:
        _core._raise_core_error("no_such_kind", "bug")
    assert caught.value.kind == "internal"


def test_url_properties_join_and_equality() -> None:
    url = opnc.Url("HTTPS://Cloud.Example.org:443/nextcloud/")
    assert str(url) == "https://cloud.example.org/nextcloud"
    assert repr(url) == "Url('https://cloud.example.org/nextcloud')"
    assert (url.scheme, url.host, url.port, url.path) == ("https", "cloud.example.org", 0, "/nextcloud")
    assert url.authority == "cloud.example.org"
    assert url.is_https is True
    assert url.is_loopback is False
    assert url.join("/index.php/apps/integration_openproject/setup") == \
        "https://cloud.example.org/nextcloud/index.php/apps/integration_openproject/setup"
    assert url.join("//status.php") == "https://cloud.example.org/nextcloud/status.php"
    assert url == opnc.Url.parse("https://cloud.example.org/nextcloud")
    assert url != opnc.Url("https://cloud.example.org/")
    assert url != "https://cloud.example.org/nextcloud"  # a Url is not its text
    assert len({url, opnc.Url("https://cloud.example.org/nextcloud/")}) == 1
    assert pickle.loads(pickle.dumps(url)) == url
    local = opnc.Url("http://127.0.0.1:8080")
    assert (local.port, local.authority, local.is_loopback) == (8080, "127.0.0.1:8080", True)
