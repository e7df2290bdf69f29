"""Shared helpers of the Nextcloud emulator's contract tests: a raw HTTP client (no redirects, any
method, exact bytes), the ``nc`` fixture that serves a fresh NextcloudApp on a loopback port, and a
scripted stand-in for OpenProject that records what Nextcloud sends to it.

The other test_nextcloud_*.py modules import from here; this module holds no tests itself.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import pytest

from opnc.sandbox.app import Request, Response
from opnc.sandbox.nextcloud import NextcloudApp, NextcloudConfig
from opnc.sandbox.server import EmulatorServer

APP = "/index.php/apps/integration_openproject"
OP_URL = "http://127.0.0.1:9999"
BASE_VALUES: dict[str, Any] = {
    "openproject_instance_url": OP_URL,
    "openproject_client_id": "op-client-id-0001",
    "openproject_client_secret": "op-client-secret-0001",
    "default_enable_navigation": False,
    "default_enable_unified_search": False,
    "setup_project_folder": False,
    "setup_app_password": False,
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")


class Client:
    """Raw HTTP against one emulator; remembers the admin credentials for convenience."""

    def __init__(self, url: str, app: NextcloudApp) -> None:
        self.url = url
        self.app = app
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    @property
    def admin(self) -> tuple[str, str]:
        return self.app.config.admin_user, self.app.config.admin_password

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, bearer: str | None = None, ocs: bool = False) -> Answer:
        sent: dict[str, str] = {"Accept": "application/json"}
        if ocs:
            sent["OCS-APIRequest"] = "true"
        raw: bytes | None = None
        if isinstance(body, (dict, list)):
            raw = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        elif isinstance(body, bytes):
            raw = body
        if auth is not None:
            sent["Authorization"] = basic(*auth)
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        sent.update(headers or {})
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            connection.request(method, path, body=raw, headers=sent)
            answer = connection.getresponse()
            data = answer.read()
            return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
        finally:
            connection.close()

    def setup(self, method: str, values: Any = None, auth: tuple[str, str] | None = None) -> Answer:
        body = None if method == "DELETE" else {"values": values}
        return self.request(method, f"{APP}/setup", body, auth=auth or self.admin)

    def control(self, path: str, body: dict[str, Any]) -> Answer:
        return self.request("POST", f"/_sandbox/nextcloud{path}", body)

    def state(self) -> dict[str, Any]:
        return self.app.state()


@pytest.fixture
def nc_factory() -> Iterator[Callable[..., Client]]:
    servers: list[EmulatorServer] = []

    def start(**config: Any) -> Client:
        app = NextcloudApp(NextcloudConfig(**config))
        server = EmulatorServer(app).start()
        servers.append(server)
        return Client(server.url, app)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def nc(nc_factory: Callable[..., Client]) -> Client:
    return nc_factory()


# --- a scripted OpenProject that records what Nextcloud sends ----------------------------------

@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedOpenProject:
    """Answers every request with `answer(request)` and records it."""
    answer: Callable[[Request], Response] = field(
        default=lambda request: Response.json(200, {"_type": "Root", "instanceName": "OpenProject"}))
    seen: list[Recorded] = field(default_factory=list)
    base_url: str = ""
    ca_bundle: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.seen.append(Recorded(request.method, request.path, request.query,
                                      {k.lower(): v for k, v in request.headers.items()}, request.body))
        return self.answer(request)

    def state(self) -> dict[str, Any]:
        return {"seen": len(self.seen)}

    def reset(self) -> None:
        self.seen.clear()


@pytest.fixture
def fake_op() -> Iterator[tuple[ScriptedOpenProject, str]]:
    app = ScriptedOpenProject()
    server = EmulatorServer(app).start()
    yield app, server.url
    server.stop()


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (bound, then released)."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
