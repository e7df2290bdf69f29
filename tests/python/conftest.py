"""Shared fixtures of the Python tests.

- ``sandbox``: a fresh, running :class:`opnc.sandbox.Sandbox` per test; ``op`` and ``nc`` are its
  OpenProject and Nextcloud endpoints (pair 0). The ``opnc_sandbox`` marker configures it, e.g.
  ``@pytest.mark.opnc_sandbox(tls=True, openproject={"enterprise": True})``.
- ``opnc_sandbox``: the same fixture as users get from the pytest plugin.
- ``tiny_server``: an :class:`EmulatorServer` hosting :class:`TinyApp`, a minimal app for testing the
  server framework (keep-alive, faults, latency, the control API) without either emulator;
  ``tiny_apps`` gives the app classes themselves.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import types
from typing import Any, Iterator

import pytest

from opnc.sandbox.app import Request, Response
from opnc.sandbox.server import EmulatorServer


def pytest_configure(config: pytest.Config) -> None:
    # An installed opnc registers the plugin through its pytest11 entry point (named after the module);
    # a source checkout on PYTHONPATH does not, so register it here exactly once.
    if not config.pluginmanager.has_plugin("opnc.sandbox.pytest_plugin"):
        config.pluginmanager.import_plugin("opnc.sandbox.pytest_plugin")


@pytest.fixture
def sandbox(opnc_sandbox: Any) -> Any:
    return opnc_sandbox


@pytest.fixture
def op(sandbox: Any) -> Any:
    return sandbox.openproject


@pytest.fixture
def nc(sandbox: Any) -> Any:
    return sandbox.nextcloud


@dataclasses.dataclass
class TinyConfig:
    greeting: str = "hello"


class TinyApp:
    """A minimal emulator: a counter, a list of items, an echo. Enough to exercise the server.

    - ``GET /hello`` -> 200 ``{"greeting": <config.greeting>}``
    - ``POST /items`` (JSON body) -> 201 ``{"id": n}``; ``GET /items/<n>`` -> 200 the item, or 404
    - ``POST /echo`` -> 200 ``{"length": len(body), "body": body as text, "method": ...}``
    - ``GET /boom`` -> raises (an emulator bug)
    - ``POST /_sandbox/tiny-secret`` -> an app-defined control route
    """

    def __init__(self, config: TinyConfig | None = None) -> None:
        self.config = config or TinyConfig()
        self.base_url = ""
        self.ca_bundle: str | None = None
        self._lock = threading.Lock()
        self._items: list[Any] = []

    def handle(self, request: Request) -> Response:
        if request.path == "/hello" and request.method in ("GET", "HEAD"):
            return Response.json(200, {"greeting": self.config.greeting})
        if request.path == "/items" and request.method == "POST":
            with self._lock:
                self._items.append(request.json())
                return Response.json(201, {"id": len(self._items)})
        if request.path.startswith("/items/") and request.method == "GET":
            with self._lock:
                index = request.path.rsplit("/", 1)[1]
                if index.isdigit() and 1 <= int(index) <= len(self._items):
                    return Response.json(200, self._items[int(index) - 1])
            return Response.json(404, {"message": "no such item"})
        if request.path == "/echo":
            return Response.json(200, {"length": len(request.body), "body": request.body.decode("utf-8"),
                                       "method": request.method})
        if request.path == "/boom":
            raise RuntimeError("emulator bug")
        if request.path == "/_sandbox/tiny-secret" and request.method == "POST":
            return Response.json(200, {"minted": True})
        return Response.json(404, {"message": "not found"})

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"items": list(self._items)}

    def reset(self) -> None:
        with self._lock:
            self._items.clear()

    def configure(self, **changes: Any) -> None:
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)


class TinyAppWithFaultBody(TinyApp):
    """A TinyApp that supplies its own plausible error bodies, as the emulators do."""

    def fault_body(self, status: int, request: Request) -> Response:
        return Response.json(status, {"tiny_error": status, "path": request.path})


@pytest.fixture
def tiny_apps() -> types.SimpleNamespace:
    """The test app classes (test modules cannot import this conftest by name: there are several)."""
    return types.SimpleNamespace(TinyApp=TinyApp, TinyAppWithFaultBody=TinyAppWithFaultBody, TinyConfig=TinyConfig)


@pytest.fixture
def tiny_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(TinyApp()) as server:
        yield server
