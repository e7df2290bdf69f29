"""HTTP server that hosts one emulator app on a loopback port (port 0: the OS picks one)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opnc.sandbox.app import App, Headers, Request, Response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=Headers(list(self.headers.items())),
            body=body,
            client_host=self.client_address[0],
            raw_target=self.path,
        )
        response = self.server.emulator.dispatch(request)
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_PROPFIND = do_OPTIONS = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: "EmulatorServer"


class EmulatorServer:
    """Serves `app` on 127.0.0.1. Use as a context manager or call start() and stop()."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.emulator = self
        self._thread: threading.Thread | None = None
        host_name, real_port = self._httpd.server_address[:2]
        self.url = f"http://{host_name}:{real_port}"
        app.base_url = self.url
        if not hasattr(app, "ca_bundle"):
            app.ca_bundle = None

    def dispatch(self, request: Request) -> Response:
        if request.path == "/_sandbox/state" and request.method == "GET":
            return Response.json(200, self.app.state())
        if request.path == "/_sandbox/reset" and request.method == "POST":
            self.app.reset()
            return Response.json(200, {"reset": True})
        return self.app.handle(request)

    def start(self) -> "EmulatorServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"sandbox {self.url}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join()

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
