"""HTTP server that hosts one emulator app on a loopback port (port 0: the OS picks one).

The server owns everything that is not the emulated server's behaviour:

- HTTP/1.1 with keep-alive: request bodies are read exactly (``Content-Length`` or chunked), every
  answer carries ``Content-Length``, so clients that reuse connections (libcurl, urllib3) stay in
  step; one thread per connection, so slow answers overlap;
- optional TLS (``tls.TlsMaterials``), with the handshake done in the connection's thread;
- the request log (:class:`RequestLog`), fault rules (``faults.py``) and added latency;
- the control API under ``/_sandbox/`` (loopback clients only; never logged, faulted or delayed).

Control API (JSON in and out):

===========================  ===================================================================
``GET /_sandbox/state``      the app's whole state
``GET /_sandbox/requests``   ``{"requests": [...], "dropped": n}``; filters ``?method=``, ``?path=``
                             (``*`` for one segment) and ``?since=<seq>``; ``DELETE`` empties the log
``GET /_sandbox/faults``     ``{"faults": [...]}`` the active rules with their remaining ``times``;
                             ``POST`` adds a rule or a list of rules; ``DELETE`` removes all
``GET /_sandbox/latency``    ``{"ms": n}``; ``POST {"ms": n}`` delays every answer by n ms
``POST /_sandbox/reset``     the app's state, the log, the faults and the latency as at start
``POST /_sandbox/config``    ``{"field": value, ...}`` passed to the app's ``configure(**changes)``
===========================  ===================================================================

Any other path under ``/_sandbox/`` goes to the app (e.g. minting an app password), still loopback
only and outside the log, faults and latency.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import queue
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from opnc.sandbox.app import App, Headers, Request, Response
from opnc.sandbox.faults import FaultRule, FaultRuleError, FaultSet, method_matches, parse_rules, path_matches

logger = logging.getLogger("opnc.sandbox")

CONTROL_PREFIX = "/_sandbox/"
MAX_BODY_BYTES = 32 * 1024 * 1024
IDLE_TIMEOUT_S = 120  # a keep-alive connection with no request for this long is closed
HANDSHAKE_TIMEOUT_S = 10


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _now_ms() -> float:
    return round(time.time() * 1000, 3)


class RequestLog:
    """What the emulator was asked and what it answered. Thread-safe; keeps the newest `capacity`.

    Entries hold no secrets: no header values, no bodies, only the names of query parameters (an
    OAuth revocation carries its token in the query string) and, for Basic auth, the user name.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._next_seq = 1
        self._dropped = 0

    def next_seq(self) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                self._dropped += 1
            self._entries.append(entry)

    def entries(self, method: str | None = None, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Entries in the order the requests arrived, optionally filtered: `path` may use `*`;
        `since` keeps the entries whose ``seq`` is greater (for polling the log incrementally)."""
        with self._lock:
            items = [dict(entry) for entry in self._entries if entry["seq"] > since]
        items.sort(key=lambda entry: entry["seq"])
        return [entry for entry in items
                if method_matches(method or "*", entry["method"]) and path_matches(path or "*", entry["path"])]

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._dropped = 0


def _auth_summary(headers: Headers) -> tuple[str | None, str | None]:
    """The Authorization scheme and, for Basic, the user name (never the password or token)."""
    value = headers.get("Authorization")
    if not value:
        return None, None
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return scheme, None
    try:
        user = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return scheme, None
    return scheme, user


def default_fault_body(status: int) -> Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response.json(status, {"status": status, "message": phrase})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "opnc-sandbox"
    timeout = IDLE_TIMEOUT_S
    # An answer leaves in one write: status line, headers and body are buffered and sent when
    # handle_one_request flushes. Written in two (the default: unbuffered headers, then the body),
    # the body of a kept-alive connection could wait for the client's delayed ACK of the headers
    # (Nagle), tens of milliseconds that no real server adds. TCP_NODELAY as in nginx and Apache.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the request log replaces it
        pass

    def version_string(self) -> str:
        return self.server_version

    def handle_expect_100(self) -> bool:
        answered = super().handle_expect_100()
        self.wfile.flush()  # the client sends the body only after this interim answer (wbufsize above)
        return answered

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler looks up do_<METHOD>; every method (PROPFIND, MKCOL, ...) goes to
        # the app, which answers 405 itself where the real server would.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._send(Response.json(exc.status, {"status": exc.status, "message": str(exc)}))
            return
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
        if response is None:
            self._abort_connection()
        else:
            self._send(response)

    def _read_body(self) -> bytes:
        transfer_encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if transfer_encoding:
            if transfer_encoding != "chunked":
                raise _BadRequest(501, f"unsupported Transfer-Encoding {transfer_encoding!r}")
            if self.headers.get("Content-Length") is not None:
                self.close_connection = True  # RFC 9112 6.1: ambiguous framing, do not reuse
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text.strip())
        except ValueError:
            raise _BadRequest(400, "invalid Content-Length") from None
        if length < 0:
            raise _BadRequest(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise _BadRequest(400, "request body shorter than Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise _BadRequest(400, "malformed chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size") from None
            if size < 0:
                raise _BadRequest(400, "malformed chunk size")
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest(413, "request body too large")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.read(2) != b"\r\n":
                raise _BadRequest(400, "malformed chunk")
            chunks.append(chunk)
        while True:  # trailer fields, up to the empty line
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                break
        return b"".join(chunks)

    def _send(self, response: Response) -> None:
        status = response.status
        self.send_response(status)
        for name, value in response.headers:
            # Framing headers are the server's job: a wrong one would desynchronise keep-alive.
            if name.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            self.send_header(name, value)
        bodiless = status < 200 or status in (204, 304)
        if not bodiless:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and not bodiless and response.body:
            self.wfile.write(response.body)

    def _abort_connection(self) -> None:
        """Close the connection with no answer at all: a TCP reset (SO_LINGER 0), not even a FIN."""
        self.close_connection = True
        connection = self.connection
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The file object made for reading holds a reference that would delay the real close.
        self.rfile.close()
        connection.close()


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _ConnectionThreads:
    """The threads that serve connections, for every emulator of the process; idle ones are reused.

    Why not a new thread per connection (``ThreadingMixIn``): ``Thread.start()`` waits until the new
    thread runs, and the accept loop accepts nothing meanwhile. A client that opens its parallel
    reads at once (opnc's preflight opens six connections to Nextcloud) found the later ones
    waiting in the listen queue, under load tens of milliseconds that no real server adds. Here a
    connection goes to an idle thread when there is one, without waiting for it; a thread is
    started only when none is idle.
    """

    MAX_IDLE = 256  # more idle threads than this end instead of waiting for work

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = 0
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread will take this job from the queue
                self._work.put(job)
                return
        threading.Thread(target=self._serve, args=(job,), name="sandbox connection", daemon=True).start()

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            job()
            del job  # the finished connection's objects go now, not when the next one comes
            with self._lock:
                if self._idle >= self.MAX_IDLE:
                    return
                self._idle += 1
            job = self._work.get()


_connection_threads = _ConnectionThreads()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # 200 clients connecting at once must not overflow the accept queue
    emulator: "EmulatorServer"
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        _connection_threads.run(lambda: self.process_request_thread(request, client_address))

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the connection's own thread, so a slow TLS handshake blocks nobody else.
        connection = request
        try:
            if self.ssl_context is not None:
                request.settimeout(HANDSHAKE_TIMEOUT_S)
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            with self._connections_lock:
                self._connections.add(connection)
            try:
                self.RequestHandlerClass(connection, client_address, self)
            finally:
                with self._connections_lock:
                    self._connections.discard(connection)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            pass  # the client went away or refused our certificate: nothing to answer
        finally:
            if connection is not request:  # the TLS socket took over the descriptor
                try:
                    connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                connection.close()

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HTTPServerV6(_HTTPServer):
    address_family = socket.AF_INET6


class EmulatorServer:
    """Serves `app` on a loopback address. Use as a context manager or call start() and stop().

    `tls` is a ``tls.TlsMaterials`` (or anything with ``server_context()`` and ``ca_bundle``);
    with it the URL is ``https://`` and the app's ``ca_bundle`` is set for its outbound calls.
    """

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0, tls: Any = None,
                 latency_ms: int = 0, log_capacity: int = 10_000) -> None:
        self.app = app
        self.log = RequestLog(log_capacity)
        self.faults = FaultSet()
        self._initial_latency_ms = self._check_latency(latency_ms)
        self._latency_ms = self._initial_latency_ms
        self._stopping = threading.Event()
        server_class = _HTTPServerV6 if ":" in host else _HTTPServer
        self._httpd = server_class((host, port), _Handler)
        self._httpd.emulator = self
        self._thread: threading.Thread | None = None
        real_port = self._httpd.server_address[1]
        scheme = "https" if tls is not None else "http"
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{url_host}:{real_port}"
        self.port = real_port
        self.ca_bundle: str | None = getattr(tls, "ca_bundle", None)
        if tls is not None:
            self._httpd.ssl_context = tls.server_context()
        app.base_url = self.url
        if tls is not None or not hasattr(app, "ca_bundle"):
            # With TLS every emulator of a sandbox shares one CA, so this bundle is also what the
            # app must trust for its calls to the other emulator.
            app.ca_bundle = self.ca_bundle

    # -- the control operations (also used directly by the Sandbox helpers) ------------------

    def state(self) -> dict[str, Any]:
        return self.app.state()

    def requests(self, method: str | None = None, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return self.log.entries(method, path, since)

    def clear_requests(self) -> None:
        self.log.clear()

    def add_faults(self, rules: list[FaultRule] | list[dict[str, Any]] | dict[str, Any]) -> list[FaultRule]:
        if isinstance(rules, FaultRule):
            parsed = [rules]
        elif isinstance(rules, list) and all(isinstance(rule, FaultRule) for rule in rules):
            parsed = list(rules)
        else:
            parsed = parse_rules(rules)
        self.faults.add(parsed)
        return parsed

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def latency_ms(self) -> int:
        return self._latency_ms

    def set_latency(self, ms: int) -> None:
        self._latency_ms = self._check_latency(ms)

    def reset(self) -> None:
        """The app's state, the request log, the faults and the latency, as at start."""
        self.app.reset()
        self.log.clear()
        self.faults.clear()
        self._latency_ms = self._initial_latency_ms

    def configure(self, **changes: Any) -> None:
        configure = getattr(self.app, "configure", None)
        if configure is None:
            raise TypeError(f"{type(self.app).__name__} has no configuration to change")
        configure(**changes)

    @staticmethod
    def _check_latency(ms: Any) -> int:
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            raise ValueError("latency must be an integer number of milliseconds >= 0")
        return ms

    # -- request handling ----------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response | None:
        """The answer to `request`, or None when the connection must be closed without one."""
        if request.path.startswith(CONTROL_PREFIX):
            if not is_loopback(request.client_host):
                return Response.json(403, {"message": "the sandbox control API answers loopback clients only"})
            return self._control(request)
        return self._serve(request)

    def _serve(self, request: Request) -> Response | None:
        seq = self.log.next_seq()
        start_ms = _now_ms()
        scheme, user = _auth_summary(request.headers)
        entry: dict[str, Any] = {
            "seq": seq,
            "method": request.method,
            "path": request.path,
            "query_keys": sorted(request.query),
            "auth_scheme": scheme,
            "auth_user": user,
            "status": None,  # None when the connection was reset instead of answered
            "outcome": "answered",
            "applied": False,  # whether the app handled the request (its state may have changed)
            "fault": None,
            "start_ms": start_ms,
        }
        try:
            response = self._answer(request, entry)
        finally:
            end_ms = _now_ms()
            entry["end_ms"] = end_ms
            entry["duration_ms"] = round(end_ms - start_ms, 3)
            self.log.record(entry)
        return response

    def _answer(self, request: Request, entry: dict[str, Any]) -> Response | None:
        before = self.faults.take(request.method, request.path, "before")
        response: Response | None = None
        if before is not None:
            entry["fault"] = before.to_json()
            self._wait_ms(before.delay_ms)
            if before.action == "reset":
                entry["outcome"] = "reset"
                return None
            if before.action == "status":
                response = self._fault_response(before, request)
        if response is None:
            response = self._call_app(request)
            entry["applied"] = True
            after = self.faults.take(request.method, request.path, "after")
            if after is not None:
                entry["app_status"] = response.status
                entry["fault"] = after.to_json()
                self._wait_ms(after.delay_ms)
                if after.action == "reset":
                    entry["outcome"] = "reset"
                    return None
                if after.action == "status":
                    response = self._fault_response(after, request)
        self._wait_ms(self._latency_ms)
        entry["status"] = response.status
        return response

    def _call_app(self, request: Request) -> Response:
        try:
            return self.app.handle(request)
        except Exception as exc:  # an emulator bug: answer 500 and show the traceback in the logs
            logger.exception("sandbox app %s failed on %s %s", type(self.app).__name__, request.method, request.path)
            return Response.json(500, {"status": 500, "message": f"sandbox emulator error ({type(exc).__name__})"})

    def _fault_response(self, rule: FaultRule, request: Request) -> Response:
        assert rule.status is not None
        fault_body = getattr(self.app, "fault_body", None)
        response = fault_body(rule.status, request) if fault_body is not None else None
        return response if response is not None else default_fault_body(rule.status)

    def _wait_ms(self, ms: int) -> None:
        if ms > 0:
            self._stopping.wait(ms / 1000)  # returns early when the server stops

    def _control(self, request: Request) -> Response:
        route = request.path[len(CONTROL_PREFIX):]
        handlers: dict[str, dict[str, Callable[[Request], Response]]] = {
            "state": {"GET": lambda r: Response.json(200, self.state())},
            "requests": {"GET": self._control_requests, "DELETE": self._control_clear_requests},
            "faults": {"GET": self._control_faults, "POST": self._control_add_faults,
                       "DELETE": self._control_clear_faults},
            "latency": {"GET": self._control_latency, "POST": self._control_set_latency},
            "reset": {"POST": self._control_reset},
            "config": {"POST": self._control_configure},
        }
        methods = handlers.get(route)
        if methods is None:
            return self._call_app(request)  # the app's own control routes
        handler = methods.get(request.method)
        if handler is None:
            return Response.json(405, {"message": f"use {', '.join(methods)}"},
                                 headers=[("Allow", ", ".join(methods))])
        try:
            return handler(request)
        except (ValueError, TypeError) as exc:  # ValueError covers JSON and fault rule errors
            return Response.json(400, {"message": str(exc)})

    def _control_requests(self, request: Request) -> Response:
        since_text = request.query_one("since", "0") or "0"
        if not since_text.isdigit():
            raise ValueError("since must be a request seq number")
        entries = self.requests(request.query_one("method"), request.query_one("path"), int(since_text))
        return Response.json(200, {"requests": entries, "dropped": self.log.dropped})

    def _control_clear_requests(self, request: Request) -> Response:
        self.clear_requests()
        return Response.json(200, {"requests": []})

    def _control_faults(self, request: Request) -> Response:
        return Response.json(200, {"faults": [rule.to_json() for rule in self.faults.rules()]})

    def _control_add_faults(self, request: Request) -> Response:
        try:
            self.add_faults(_json_body(request))
        except FaultRuleError as exc:
            return Response.json(400, {"message": str(exc)})
        return self._control_faults(request)

    def _control_clear_faults(self, request: Request) -> Response:
        self.clear_faults()
        return Response.json(200, {"faults": []})

    def _control_latency(self, request: Request) -> Response:
        return Response.json(200, {"ms": self.latency_ms})

    def _control_set_latency(self, request: Request) -> Response:
        data = _json_body(request)
        if not isinstance(data, dict) or set(data) != {"ms"}:
            raise ValueError('expected {"ms": <milliseconds>}')
        self.set_latency(data["ms"])
        return self._control_latency(request)

    def _control_reset(self, request: Request) -> Response:
        self.reset()
        return Response.json(200, {"reset": True})

    def _control_configure(self, request: Request) -> Response:
        data = _json_body(request)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object of configuration fields")
        self.configure(**data)
        return Response.json(200, {"configured": sorted(data)})

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "EmulatorServer":
        if self._thread is not None:
            return self
        self._wake_reader, self._wake_writer = socket.socketpair()
        # Non-blocking, so a connection that vanishes between select() and accept() cannot block the
        # loop; accepted sockets get their own timeouts (handshake, idle).
        self._httpd.socket.setblocking(False)
        self._thread = threading.Thread(target=self._accept_loop, name=f"sandbox {self.url}", daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        # Instead of serve_forever, which notices shutdown only at its next poll (a tenth of a second
        # per server, per test), wait on the listening socket and a wake-up socket that stop() writes to.
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._httpd:
                        self._accept_pending()

    def _accept_pending(self) -> None:
        """Accepts every connection waiting in the listen queue; each is served by a thread of its own."""
        while not self._stopping.is_set():
            try:
                connection, address = self._httpd.socket.accept()
            except OSError:  # BlockingIOError: none left; others: the client left before accept
                return
            try:
                self._httpd.process_request(connection, address)
            except Exception:  # no thread could be started for it: refuse this one, keep accepting
                self._httpd.shutdown_request(connection)

    def stop(self) -> None:
        """Stop accepting, end waits for latency or delays, and close every open connection."""
        self._stopping.set()
        if self._thread is not None:
            self._wake_writer.send(b"\0")
            self._thread.join()
            self._thread = None
            self._wake_reader.close()
            self._wake_writer.close()
        self._httpd.server_close()
        self._httpd.close_connections()

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer({type(self.app).__name__}, {self.url})"


def _json_body(request: Request) -> Any:
    if not request.body:
        raise ValueError("expected a JSON body")
    try:
        return request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not valid JSON: {exc}") from None
