"""The interface between the sandbox's HTTP server and the emulated servers.

An emulator is an *app*: a plain object that turns a :class:`Request` into a :class:`Response`.
The server (``server.py``) owns sockets, threads, TLS, the request log, fault and latency
injection and the ``/_sandbox/`` control API; apps own the emulated server's behaviour and state.

An app provides:

- ``handle(request) -> Response``: called concurrently from several threads; apps lock their state.
- ``state() -> dict``: the whole state as JSON-ready data (``GET /_sandbox/state``).
- ``reset() -> None``: back to the initial state, credentials kept (``POST /_sandbox/reset``).
- ``base_url``: set by the server before it serves the first request (e.g. ``http://127.0.0.1:41234``).
- ``ca_bundle``: set by the server: path of the CA bundle to trust for outbound calls to other
  emulators (``None`` without TLS).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs


class Headers:
    """Case-insensitive, multi-valued request headers."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = list(items or [])

    def get(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@dataclass
class Request:
    method: str
    path: str  # without the query string, percent-decoding NOT applied
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    client_host: str = "127.0.0.1"
    raw_target: str = ""  # the request target as received (path and query)

    def query_one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body decoded as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, list[str]]:
        """The body decoded as application/x-www-form-urlencoded."""
        return parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @staticmethod
    def json(status: int, payload: Any, content_type: str = "application/json",
             headers: list[tuple[str, str]] | None = None) -> "Response":
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return Response(status, body, [("Content-Type", content_type), *(headers or [])])

    @staticmethod
    def text(status: int, text: str, content_type: str = "text/html; charset=UTF-8",
             headers: list[tuple[str, str]] | None = None) -> "Response":
        return Response(status, text.encode("utf-8"), [("Content-Type", content_type), *(headers or [])])

    @staticmethod
    def empty(status: int, headers: list[tuple[str, str]] | None = None) -> "Response":
        return Response(status, b"", list(headers or []))


class App(Protocol):
    base_url: str
    ca_bundle: str | None

    def handle(self, request: Request) -> Response: ...

    def state(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...
