"""Shared helpers of the OpenProject emulator tests (no tests of its own).

- ``call``: one HTTP request with http.client (redirects are never followed, every status is
  returned), giving a :class:`Reply`;
- :class:`ScriptedNextcloud`: a small Nextcloud stand-in whose answers to OpenProject's live checks
  (capabilities, check-config, ``HEAD /remote.php/dav``) are set per test, so each failure mode
  of contract §4.2 / §4.3 can be produced on purpose. It is served by the sandbox's
  EmulatorServer, so its request log shows the probes;
- fixtures ``nextcloud`` (the stand-in) and ``openproject`` (an OpenProjectApp with known tokens),
  and :class:`OpenProjectClient` for admin and user calls.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import ssl
import threading
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

import pytest

from opnc.sandbox.app import Request, Response
from opnc.sandbox.openproject import OpenProjectApp, OpenProjectConfig
from opnc.sandbox.server import EmulatorServer

NEXTCLOUD_TYPE = "urn:openproject-org:api:v3:storages:Nextcloud"
TWO_WAY = "urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2"
SSO = "urn:openproject-org:api:v3:storages:authenticationMethod:OAuth2SSO"
ERR = "urn:openproject-org:api:v3:errors:"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
USER_TOKEN = "user-token-0123456789abcdef"
APP_PASSWORD = "nextcloud-app-password-for-OpenProject"
REDIRECT_SUFFIX = "/index.php/apps/integration_openproject/oauth-redirect"


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def call(method: str, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None,
         form: dict[str, str] | None = None, body: bytes | None = None, content_type: str | None = None,
         context: ssl.SSLContext | None = None) -> Reply:
    parts = urlsplit(url)
    all_headers = dict(headers or {})
    payload = body
    if json_body is not None:
        payload = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", content_type or "application/json")
    elif form is not None:
        payload = urlencode(form).encode()
        all_headers.setdefault("Content-Type", content_type or "application/x-www-form-urlencoded")
    elif content_type is not None:
        all_headers["Content-Type"] = content_type
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=20,
                                                                      context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request(method, target, body=payload, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def apikey(token: str) -> dict[str, str]:
    return {"Authorization": basic("apikey", token)}


@dataclasses.dataclass
class NextcloudScript:
    """How the stand-in answers. The defaults are a healthy Nextcloud 34 with the app installed."""

    capabilities_status: int = 200
    capabilities_body: bytes = json.dumps({"ocs": {"meta": {"status": "ok", "statuscode": 200, "message": "OK"},
                                                   "data": {"version": {"major": 34, "minor": 0, "micro": 1,
                                                                        "string": "34.0.1"},
                                                            "capabilities": {}}}}).encode()
    check_config: str = "echo"  # echo | stripped | redirect | error
    dav_password: str = APP_PASSWORD
    dav_status: int | None = None  # forces the HEAD /remote.php/dav status when set


class ScriptedNextcloud:
    def __init__(self) -> None:
        self.script = NextcloudScript()
        self.base_url = ""
        self.ca_bundle: str | None = None
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        script = self.script
        if request.path == "/ocs/v2.php/cloud/capabilities" and request.method == "GET":
            return Response(script.capabilities_status, script.capabilities_body,
                            [("Content-Type", "application/json; charset=utf-8")])
        if request.path == "/index.php/apps/integration_openproject/check-config" and request.method == "GET":
            if script.check_config == "redirect":
                return Response.empty(302, [("Location", f"{self.base_url}/index.php/login")])
            if script.check_config == "error":
                return Response.json(500, {"message": "Internal Server Error"})
            echoed = request.headers.get("Authorization") if script.check_config == "echo" else None
            return Response.json(200, {"user_id": "", "authorization_header": echoed})
        if request.path == "/remote.php/dav" and request.method == "HEAD":
            if script.dav_status is not None:
                return Response.empty(script.dav_status)
            if request.headers.get("Authorization") == basic("OpenProject", script.dav_password):
                return Response.empty(200, [("Content-Type", "text/html; charset=UTF-8")])
            return Response.empty(401, [("WWW-Authenticate", 'Basic realm="Nextcloud", charset="UTF-8"')])
        return Response.text(404, "<html>not found</html>")

    def state(self) -> dict[str, Any]:
        return {}

    def reset(self) -> None:
        self.script = NextcloudScript()


class OpenProjectClient:
    """Calls the emulated OpenProject as the admin (default) or the non-admin user."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.app: OpenProjectApp = server.app  # type: ignore[assignment]
        self.url = server.url

    def request(self, method: str, path: str, json_body: Any = None, token: str | None = ADMIN_TOKEN,
                headers: dict[str, str] | None = None, content_type: str | None = None) -> Reply:
        all_headers = {"Accept": "application/hal+json", **(apikey(token) if token else {}), **(headers or {})}
        if method not in ("GET", "HEAD") and json_body is None and content_type is None:
            content_type = "application/json"
        return call(method, self.url + path, headers=all_headers, json_body=json_body, content_type=content_type)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, json_body if json_body is not None else {}, **kw)

    def patch(self, path: str, json_body: Any = None, **kw: Any) -> Reply:
        return self.request("PATCH", path, json_body if json_body is not None else {}, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.request("DELETE", path, **kw)

    def create_storage(self, host: str, name: str = "Nextcloud", password: str | None = "",
                       method: str | None = TWO_WAY, **extra: Any) -> Reply:
        body: dict[str, Any] = {"name": name, "_links": {"origin": {"href": host},
                                                           "type": {"href": NEXTCLOUD_TYPE}}}
        if method is not None:
            body["_links"]["authenticationMethod"] = {"href": method}
        if password is not None:
            body["applicationPassword"] = password
        body.update(extra)
        return self.post("/api/v3/storages", body)

    def store_client(self, storage_id: int, client_id: str = "nc-client-id",
                     client_secret: str = "nc-client-secret") -> Reply:
        return self.post(f"/api/v3/storages/{storage_id}/oauth_client_credentials",
                         {"clientId": client_id, "clientSecret": client_secret})


def single_error(reply: Reply) -> tuple[str, str, str | None]:
    """(errorIdentifier suffix, message, attribute) of a single HAL error."""
    data = reply.json()
    assert data["_type"] == "Error"
    attribute = data.get("_embedded", {}).get("details", {}).get("attribute")
    return data["errorIdentifier"].removeprefix(ERR), data["message"], attribute


def error_list(reply: Reply) -> list[tuple[str, str]]:
    """[(attribute, message)] of a 422, wrapped in MultipleErrors or not."""
    data = reply.json()
    assert reply.status == 422, (reply.status, data)
    if data["errorIdentifier"] == ERR + "MultipleErrors":
        assert data["message"] == "Multiple field constraints have been violated."
        errors = data["_embedded"]["errors"]
        assert len(errors) >= 2
    else:
        errors = [data]
    for error in errors:
        assert error["errorIdentifier"] == ERR + "PropertyConstraintViolation"
    return [(e["_embedded"]["details"]["attribute"], e["message"]) for e in errors]


@pytest.fixture
def nextcloud() -> Iterator[EmulatorServer]:
    with EmulatorServer(ScriptedNextcloud()) as server:
        yield server


def openproject_server(**overrides: Any) -> EmulatorServer:
    config = OpenProjectConfig(admin_token=ADMIN_TOKEN, user_token=USER_TOKEN, **overrides)
    return EmulatorServer(OpenProjectApp(config))


@pytest.fixture
def openproject_with() -> Iterator[Any]:
    """A factory: ``openproject_with(version="15.4.0")`` starts an emulator with those settings."""
    servers: list[EmulatorServer] = []

    def start(**overrides: Any) -> OpenProjectClient:
        server = openproject_server(**overrides).start()
        servers.append(server)
        return OpenProjectClient(server)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def openproject(openproject_with: Any) -> OpenProjectClient:
    """The emulated OpenProject with the default settings and known tokens."""
    return openproject_with()


class FakeClock:
    """A settable clock for the token and code lifetimes."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
