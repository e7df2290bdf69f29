"""TLS: the throwaway CA and server certificate, HTTPS with and without the CA bundle."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import stat
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest

from opnc.sandbox import tls
from opnc.sandbox.server import EmulatorServer


@pytest.fixture(scope="module")
def materials() -> Iterator[tls.TlsMaterials]:
    generated = tls.generate()
    yield generated
    generated.cleanup()


@pytest.fixture
def https_server(materials: tls.TlsMaterials, tiny_apps: Any) -> Iterator[EmulatorServer]:
    with EmulatorServer(tiny_apps.TinyApp(), tls=materials) as server:
        yield server


def get_json(url: str, context: ssl.SSLContext) -> tuple[int, object]:
    with urllib.request.urlopen(url, context=context, timeout=5) as answer:
        return answer.status, json.load(answer)


def test_files_are_private_and_the_ca_key_is_not_kept(materials: tls.TlsMaterials) -> None:
    assert stat.S_IMODE(os.stat(materials.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(materials.key_file).st_mode) == 0o600
    assert sorted(os.listdir(materials.directory)) == ["ca.pem", "server.key", "server.pem"]
    with open(materials.ca_bundle) as handle:
        assert handle.read().startswith("-----BEGIN CERTIFICATE-----")


def test_https_url_and_app_ca_bundle(https_server: EmulatorServer, materials: tls.TlsMaterials) -> None:
    assert https_server.url == f"https://127.0.0.1:{https_server.port}"
    assert https_server.ca_bundle == materials.ca_bundle
    assert https_server.app.ca_bundle == materials.ca_bundle


def test_request_with_the_ca_bundle_succeeds(https_server: EmulatorServer, materials: tls.TlsMaterials) -> None:
    context = ssl.create_default_context(cafile=materials.ca_bundle)
    assert get_json(f"{https_server.url}/hello", context) == (200, {"greeting": "hello"})


def test_localhost_name_is_in_the_certificate(https_server: EmulatorServer, materials: tls.TlsMaterials) -> None:
    context = ssl.create_default_context(cafile=materials.ca_bundle)
    assert get_json(f"https://localhost:{https_server.port}/hello", context)[0] == 200


def test_request_without_the_ca_bundle_fails_verification(https_server: EmulatorServer) -> None:
    context = ssl.create_default_context()  # system CAs only
    with pytest.raises(urllib.error.URLError) as failure:
        get_json(f"{https_server.url}/hello", context)
    assert isinstance(failure.value.reason, ssl.SSLCertVerificationError)
    # the refused handshake did not hurt the server
    trusting = ssl.create_default_context(cafile=https_server.ca_bundle)
    assert get_json(f"{https_server.url}/hello", trusting)[0] == 200


def test_keep_alive_and_reset_fault_over_tls(https_server: EmulatorServer, materials: tls.TlsMaterials) -> None:
    context = ssl.create_default_context(cafile=materials.ca_bundle)
    connection = http.client.HTTPSConnection("127.0.0.1", https_server.port, context=context, timeout=5)
    for _ in range(3):
        connection.request("GET", "/hello")
        assert connection.getresponse().read() == b'{"greeting":"hello"}'
    connection.close()
    https_server.add_faults([{"path": "/hello", "action": "reset", "times": 1}])
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, ssl.SSLError)):
        get_json(f"{https_server.url}/hello", context)
    assert get_json(f"{https_server.url}/hello", context)[0] == 200


def test_plain_http_to_a_tls_port_does_not_break_it(https_server: EmulatorServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", https_server.port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/hello")
        connection.getresponse().read()
    connection.close()
    context = ssl.create_default_context(cafile=https_server.ca_bundle)
    assert get_json(f"{https_server.url}/hello", context)[0] == 200


def test_openssl_command_line_generation_works_too(tmp_path: object, tiny_apps: Any) -> None:
    directory = os.path.join(str(tmp_path), "tls")
    os.mkdir(directory, 0o700)
    generated = tls.TlsMaterials(directory=directory, ca_bundle=os.path.join(directory, "ca.pem"),
                                 cert_file=os.path.join(directory, "server.pem"),
                                 key_file=os.path.join(directory, "server.key"))
    tls._generate_with_openssl(generated, "opnc test")
    assert sorted(os.listdir(directory)) == ["ca.pem", "server.key", "server.pem"]  # no CA key left
    assert stat.S_IMODE(os.stat(generated.key_file).st_mode) == 0o600
    with EmulatorServer(tiny_apps.TinyApp(), tls=generated) as server:
        context = ssl.create_default_context(cafile=generated.ca_bundle)
        assert get_json(f"{server.url}/hello", context) == (200, {"greeting": "hello"})
        assert get_json(f"https://localhost:{server.port}/hello", context)[0] == 200


def test_cleanup_removes_everything() -> None:
    generated = tls.generate()
    generated.cleanup()
    assert not os.path.exists(generated.directory)
