"""A reverse proxy in front of one sandbox emulator that answers chosen requests the way a broken
server, a captive portal or a misconfigured proxy would: HTML instead of JSON, truncated or
mistyped JSON, a huge body, a body that never ends, a redirect to elsewhere.

Written on raw sockets (not the sandbox's server framework) because several of those answers break
HTTP framing on purpose, which a well-behaved server cannot do. Every other request is passed to
the emulator unchanged, so the rest of the exchange behaves as usual and the emulator's request log
still shows what reached the server. Each connection serves one request (``Connection: close``).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opnc.sandbox.faults import method_matches, path_matches

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te"}


@dataclass
class HostileAnswer:
    """What the proxy sends instead of the emulator's answer.

    ``kind``: ``"raw"`` (``status``, ``headers``, ``body`` as given, with a correct Content-Length),
    ``"truncated"`` (announces ``len(body) + 100`` bytes, sends ``body``, closes), ``"endless"``
    (a chunked body that never ends, until the client goes away). With ``after=True`` the request is
    first passed to the emulator (it is applied), and only the answer is replaced.
    """

    kind: str = "raw"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    body: bytes = b""
    after: bool = False


def json_answer(payload: Any, status: int = 200, after: bool = False) -> HostileAnswer:
    return HostileAnswer(status=status, body=json.dumps(payload).encode(), after=after)


def html_answer(status: int = 200, after: bool = False) -> HostileAnswer:
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>Login</form></body></html>"
    return HostileAnswer(status=status, headers=(("Content-Type", "text/html; charset=utf-8"),), body=page, after=after)


class HostileProxy:
    """Listens on 127.0.0.1 (port chosen by the OS) and forwards to `upstream_url` (http only).

    ``rules``: list of (method, path pattern with ``*`` for one segment, HostileAnswer); the first
    match answers, once per rule unless ``times`` says otherwise (``None``: every time).
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the accept loop notices a stop request at once
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._rules: list[list[Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.answered: list[tuple[str, str]] = []  # the requests that got a hostile answer
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def rule(self, method: str, path: str, answer: HostileAnswer, times: int | None = None) -> None:
        with self._lock:
            self._rules.append([method, path, answer, times])

    def _take(self, method: str, path: str) -> HostileAnswer | None:
        with self._lock:
            for rule in self._rules:
                m, p, answer, times = rule
                if method_matches(m, method) and path_matches(p, path):
                    if times is not None:
                        rule[3] = times - 1
                        if rule[3] == 0:
                            self._rules.remove(rule)
                    self.answered.append((method, path))
                    return answer
        return None

    def __enter__(self) -> "HostileProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(30)
                request = _read_request(conn)
                if request is None:
                    return
                method, target, headers, body = request
                path = target.split("?", 1)[0]
                answer = self._take(method, path)
                if answer is None or answer.after:
                    upstream = self._forward(method, target, headers, body)
                    if answer is None:
                        conn.sendall(upstream)
                        return
                self._send_hostile(conn, answer)
        except OSError:
            pass  # the client went away (as it should, from an endless body)

    def _forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            upstream.request(method, target, body=body or None,
                             headers={k: v for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "host"})
            response = upstream.getresponse()
            data = response.read()
            lines = [f"HTTP/1.1 {response.status} {response.reason}"]
            lines += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            lines += [f"Content-Length: {len(data)}", "Connection: close", "", ""]
            return "\r\n".join(lines).encode("latin-1") + data
        finally:
            upstream.close()

    def _send_hostile(self, conn: socket.socket, answer: HostileAnswer) -> None:
        head = [f"HTTP/1.1 {answer.status} Hostile"] + [f"{k}: {v}" for k, v in answer.headers]
        if answer.kind == "raw":
            head += [f"Content-Length: {len(answer.body)}", "Connection: close", "", ""]
            conn.sendall("\r\n".join(head).encode("latin-1") + answer.body)
        elif answer.kind == "truncated":
            head += [f"Content-Length: {len(answer.body) + 100}", "Connection: close", "", ""]
            conn.sendall("\r\n".join(head).encode("latin-1") + answer.body)
            conn.shutdown(socket.SHUT_RDWR)
        elif answer.kind == "endless":
            head += ["Transfer-Encoding: chunked", "Connection: close", "", ""]
            conn.sendall("\r\n".join(head).encode("latin-1") + b"1\r\n{\r\n")
            chunk = b'"a": "' + b"x" * 1000 + b'", '
            framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            while not self._stop.is_set():
                conn.sendall(framed)
                self._stop.wait(0.01)
        else:
            raise ValueError(f"unknown hostile answer kind {answer.kind!r}")


def _read_request(conn: socket.socket) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return method, target, headers, rest[:length]  # type: ignore[return-value]
