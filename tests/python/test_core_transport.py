"""opnc._core.CurlTransport through the bindings: answers, translated failures, GIL release, Ctrl-C."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

import opnc
from opnc import _core


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed

    def setup(self) -> None:
        super().setup()
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.connections += 1  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/json":
            self._answer(200, b'{"ok": true}')
        elif self.path == "/sleep":
            time.sleep(1.0)
            self._answer(200, b'{"slept": 1}')
        elif self.path == "/hang":
            self.server.release.wait(30)  # type: ignore[attr-defined]
        elif self.path == "/auth":
            self._answer(200, (self.headers.get("Authorization") or "").encode())
        elif self.path == "/redirect":
            self._answer(302, b"", {"Location": "/json"})
        elif self.path == "/big":
            self._answer(200, b"x" * 100_000)
        else:
            self._answer(404, b'{"message": "not found"}')

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(200, self.command.encode() + b" " + self.headers.get("Content-Type", "").encode() + b" " + body)

    do_PATCH = do_POST  # noqa: N815


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.release = threading.Event()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as s:
        yield s


@pytest.fixture
def transport() -> _core.CurlTransport:
    return _core.CurlTransport(connect_timeout=5.0, timeout=10.0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_get_returns_status_headers_body(server: _Server, transport: _core.CurlTransport) -> None:
    response = transport.request("GET", server.url + "/json", {"Accept": "application/json"})
    assert response.status == 200
    assert response.body == b'{"ok": true}'
    assert isinstance(response.body, bytes)
    assert response.header("content-type") == "application/json"
    assert ("Content-Length", "12") in response.headers
    assert response.elapsed_ms > 0
    assert repr(response) == "HttpResponse(status=200, 12 bytes)"


def test_post_sends_body_and_headers_as_given(server: _Server, transport: _core.CurlTransport) -> None:
    response = transport.request("POST", server.url + "/echo", [("Content-Type", "application/json")], b'{"a":1}')
    assert response.body == b'POST application/json {"a":1}'
    response = transport.request("PATCH", server.url + "/echo", {"Content-Type": "text/plain"}, "text body")
    assert response.body == b"PATCH text/plain text body"


def test_redirect_is_returned_not_followed(server: _Server, transport: _core.CurlTransport) -> None:
    response = transport.request("GET", server.url + "/redirect")
    assert response.status == 302
    assert response.header("Location") == "/json"


def test_connections_are_reused(server: _Server, transport: _core.CurlTransport) -> None:
    for _ in range(10):
        assert transport.request("GET", server.url + "/json").status == 200
    assert transport.connections_opened == 1
    assert server.connections == 1


def test_basic_and_bearer_reach_the_server_exactly(server: _Server, transport: _core.CurlTransport) -> None:
    response = transport.request("GET", server.url + "/auth", basic=("apikey", opnc.Secret("abc:def")))
    assert response.body == b"Basic " + base64.b64encode(b"apikey:abc:def")
    response = transport.request("GET", server.url + "/auth", bearer=opnc.Secret("tok-1"))
    assert response.body == b"Bearer tok-1"
    assert transport.request("GET", server.url + "/auth").body == b""


def test_closed_port_raises_connection_failed(transport: _core.CurlTransport) -> None:
    port = _closed_port()
    with pytest.raises(opnc.ConnectionFailed) as caught:
        transport.request("GET", f"http://127.0.0.1:{port}/")
    error = caught.value
    assert isinstance(error, ConnectionError)
    assert type(error) is opnc.ConnectionFailed
    assert error.kind == "connection_failed"
    assert f"127.0.0.1:{port}" in error.message
    assert error.hint != ""


def test_silent_server_raises_timeout(server: _Server) -> None:
    transport = _core.CurlTransport(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(opnc.Timeout) as caught:
        transport.request("GET", server.url + "/hang")
    assert 0.25 <= time.monotonic() - started < 2.0
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.kind == "timeout"
    assert "127.0.0.1" in caught.value.message


def test_per_request_timeout_overrides_the_default(server: _Server, transport: _core.CurlTransport) -> None:
    with pytest.raises(opnc.Timeout):
        transport.request("GET", server.url + "/hang", timeout=0.2)


def test_oversized_answer_raises_response_too_large(server: _Server) -> None:
    transport = _core.CurlTransport(max_response_bytes=1000)
    with pytest.raises(opnc.ResponseTooLarge) as caught:
        transport.request("GET", server.url + "/big")
    assert caught.value.kind == "too_large"
    assert "1000 bytes" in caught.value.message


def test_invalid_options_raise_invalid_input() -> None:
    with pytest.raises(opnc.InvalidInput, match="timeout"):
        _core.CurlTransport(timeout=0)
    with pytest.raises(opnc.InvalidInput, match="connect_timeout"):
        _core.CurlTransport(connect_timeout=-1)
    with pytest.raises(opnc.InvalidInput, match="at most 86400"):
        _core.CurlTransport(timeout=1e300)
    with pytest.raises(opnc.InvalidInput, match="timeout"):
        _core.CurlTransport(timeout=float("nan"))
    with pytest.raises(opnc.InvalidInput, match="max_response_bytes"):
        _core.CurlTransport(max_response_bytes=0)


def test_wrong_argument_types_never_echo_values(transport: _core.CurlTransport) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(TypeError, match=r"basic must be a \(user: str, password: opnc.Secret\) pair") as caught:
        transport.request("GET", url, basic=("apikey", "hunter2"))
    assert "hunter2" not in str(caught.value)
    with pytest.raises(TypeError, match="bearer must be an opnc.Secret") as caught:
        transport.request("GET", url, bearer="hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(TypeError, match="body must be bytes or str") as caught:
        transport.request("POST", url, body={"client_secret": "hunter2"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(TypeError, match="headers must be") as caught:
        transport.request("GET", url, headers=[("X-Token", 12345)], body="hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(TypeError, match="timeout must be a number of seconds") as caught:
        transport.request("GET", url, body="hunter2", timeout="soon")
    assert "hunter2" not in str(caught.value)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 and its key (test material, not a credential)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_is_verified_and_a_ca_bundle_is_honoured(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    with _Server(tls=context) as tls_server:
        with pytest.raises(opnc.TlsError) as caught:
            _core.CurlTransport().request("GET", tls_server.url + "/json")
        assert isinstance(caught.value, ConnectionError)
        assert caught.value.kind == "tls"
        assert f"127.0.0.1:{tls_server.server_address[1]}" in caught.value.message
        trusted = _core.CurlTransport(ca_bundle=str(cert_path))
        assert trusted.request("GET", tls_server.url + "/json").body == b'{"ok": true}'


def test_requests_from_two_threads_run_in_parallel(server: _Server, transport: _core.CurlTransport) -> None:
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(transport.request("GET", server.url + "/sleep").status)

    started = time.monotonic()
    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    assert statuses == [200, 200]
    # Each request takes 1 s on the server; with the GIL held they would take 2 s together.
    assert took < 1.6


_SIGINT_CHILD = """
import sys, time
from opnc import _core
transport = _core.CurlTransport(timeout=30)
print("ready", flush=True)
try:
    transport.request("GET", sys.argv[1])
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(42)
print("no interrupt", flush=True)
sys.exit(1)
"""


def test_sigint_interrupts_a_request_to_a_silent_server() -> None:
    # A listening socket that never accepts: the TCP handshake completes, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/never"
        child = subprocess.Popen([sys.executable, "-c", _SIGINT_CHILD, url], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.5)
            interrupted = time.monotonic()
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=5)
            took = time.monotonic() - interrupted
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 42, err
    assert out.strip() == "KeyboardInterrupt"
    assert took < 1.0
