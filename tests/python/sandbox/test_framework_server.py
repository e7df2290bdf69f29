"""The sandbox HTTP server: HTTP/1.1 framing and keep-alive, the control API, the request log,
latency and concurrency. Uses the TinyApp of conftest.py, not the emulators."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import socket
import time
import urllib.request
from typing import Any

import pytest

from opnc.sandbox.app import Headers, Request
from opnc.sandbox.server import EmulatorServer, is_loopback


def connect(server: EmulatorServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def call(server: EmulatorServer, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any, http.client.HTTPResponse]:
    connection = connect(server)
    try:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=data, headers=all_headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None), response
    finally:
        connection.close()


def raw_exchange(server: EmulatorServer, payload: bytes, expected_answers: int) -> list[bytes]:
    """Sends raw bytes on one connection and reads `expected_answers` complete responses."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        reader = sock.makefile("rb")
        answers = []
        for _ in range(expected_answers):
            status_line = reader.readline()
            length = 0
            while True:
                line = reader.readline()
                if line == b"\r\n":
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answers.append(status_line + reader.read(length))
        return answers


# -- HTTP framing ------------------------------------------------------------------------------------


def test_get_answers_json_with_content_length(tiny_server: EmulatorServer) -> None:
    status, body, response = call(tiny_server, "GET", "/hello")
    assert status == 200
    assert body == {"greeting": "hello"}
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("Content-Length") == str(len(b'{"greeting":"hello"}'))
    assert response.getheader("Server") == "opnc-sandbox"


def test_server_url_and_app_base_url(tiny_apps: Any) -> None:
    app = tiny_apps.TinyApp()
    with EmulatorServer(app) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert app.base_url == server.url
        assert app.ca_bundle is None
        assert server.port > 0


def test_keep_alive_connection_is_reused_across_requests(tiny_server: EmulatorServer) -> None:
    connection = connect(tiny_server)
    try:
        connection.request("GET", "/hello")
        first = connection.getresponse()
        assert first.status == 200 and json.loads(first.read()) == {"greeting": "hello"}
        sock = connection.sock
        for number in range(1, 6):
            connection.request("POST", "/items", body=json.dumps({"n": number}),
                               headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            assert answer.status == 201
            assert json.loads(answer.read()) == {"id": number}
        connection.request("HEAD", "/hello")
        head = connection.getresponse()
        assert head.status == 200
        assert head.getheader("Content-Length") == str(len(b'{"greeting":"hello"}'))
        assert head.read() == b""
        connection.request("GET", "/items/3")
        last = connection.getresponse()
        assert json.loads(last.read()) == {"n": 3}
        assert connection.sock is sock  # never reconnected
    finally:
        connection.close()


def test_chunked_request_body_is_read_and_the_connection_stays_usable(tiny_server: EmulatorServer) -> None:
    chunked = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    plain = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    first, second = raw_exchange(tiny_server, chunked + plain, 2)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert json.loads(first.split(b"\r\n", 1)[1]) == {"length": 12, "body": "hello, world", "method": "POST"}
    assert second.startswith(b"HTTP/1.1 200 ")
    assert json.loads(second.split(b"\r\n", 1)[1]) == {"length": 3, "body": "abc", "method": "POST"}


def test_pipelined_requests_with_bodies_stay_in_step(tiny_server: EmulatorServer) -> None:
    payload = b"".join(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)
        for text in (b"one", b"", b"three33")
    )
    answers = raw_exchange(tiny_server, payload, 3)
    assert [json.loads(answer.split(b"\r\n", 1)[1])["body"] for answer in answers] == ["one", "", "three33"]


def test_any_method_reaches_the_app(tiny_server: EmulatorServer) -> None:
    status, body, _ = call(tiny_server, "PROPFIND", "/echo")
    assert status == 200
    assert body == {"length": 0, "body": "", "method": "PROPFIND"}


def test_invalid_content_length_answers_400_and_closes(tiny_server: EmulatorServer) -> None:
    (answer,) = raw_exchange(tiny_server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", 1)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.split(b"\r\n", 1)[1]) == {"status": 400, "message": "invalid Content-Length"}


def test_app_exception_answers_500_and_server_keeps_serving(tiny_server: EmulatorServer) -> None:
    status, body, _ = call(tiny_server, "GET", "/boom")
    assert status == 500
    assert body == {"status": 500, "message": "sandbox emulator error (RuntimeError)"}
    assert call(tiny_server, "GET", "/hello")[0] == 200


def test_204_has_no_body_and_no_content_length(tiny_apps: Any) -> None:
    from opnc.sandbox.app import Response

    class NoContentApp(tiny_apps.TinyApp):
        def handle(self, request: Request) -> Response:
            return Response.empty(204)

    with EmulatorServer(NoContentApp()) as server:
        connection = connect(server)
        connection.request("DELETE", "/x")
        answer = connection.getresponse()
        assert answer.status == 204
        assert answer.getheader("Content-Length") is None
        assert answer.read() == b""
        connection.request("DELETE", "/x")  # the connection is still in step
        assert connection.getresponse().status == 204
        connection.close()


# -- control API ---------------------------------------------------------------------------------------


def test_state_and_reset(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "POST", "/items", {"a": 1})
    assert call(tiny_server, "GET", "/_sandbox/state")[:2] == (200, {"items": [{"a": 1}]})
    assert call(tiny_server, "POST", "/_sandbox/reset")[:2] == (200, {"reset": True})
    assert call(tiny_server, "GET", "/_sandbox/state")[:2] == (200, {"items": []})


def test_reset_also_clears_log_faults_and_latency(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "GET", "/hello")
    call(tiny_server, "POST", "/_sandbox/faults", [{"path": "/hello", "action": "status", "status": 500}])
    call(tiny_server, "POST", "/_sandbox/latency", {"ms": 50})
    call(tiny_server, "POST", "/_sandbox/reset")
    assert call(tiny_server, "GET", "/_sandbox/requests")[1] == {"requests": [], "dropped": 0}
    assert call(tiny_server, "GET", "/_sandbox/faults")[1] == {"faults": []}
    assert call(tiny_server, "GET", "/_sandbox/latency")[1] == {"ms": 0}


def test_wrong_method_on_a_control_route_answers_405(tiny_server: EmulatorServer) -> None:
    status, body, response = call(tiny_server, "GET", "/_sandbox/reset")
    assert status == 405
    assert body == {"message": "use POST"}
    assert response.getheader("Allow") == "POST"


def test_other_control_paths_go_to_the_app(tiny_server: EmulatorServer) -> None:
    assert call(tiny_server, "POST", "/_sandbox/tiny-secret")[:2] == (200, {"minted": True})
    assert tiny_server.requests() == []  # control requests are never logged


def test_config_changes_the_app_at_runtime(tiny_server: EmulatorServer) -> None:
    assert call(tiny_server, "POST", "/_sandbox/config", {"greeting": "hi"})[:2] == (200, {"configured": ["greeting"]})
    assert call(tiny_server, "GET", "/hello")[1] == {"greeting": "hi"}


def test_config_with_unknown_field_answers_400(tiny_server: EmulatorServer) -> None:
    status, body, _ = call(tiny_server, "POST", "/_sandbox/config", {"no_such_field": 1})
    assert status == 400
    assert "no_such_field" in body["message"]


def test_config_requires_a_json_object(tiny_server: EmulatorServer) -> None:
    assert call(tiny_server, "POST", "/_sandbox/config", [1, 2])[:2] == (
        400, {"message": "expected a JSON object of configuration fields"})
    status, body, _ = call(tiny_server, "POST", "/_sandbox/config", headers={"Content-Length": "0"})
    assert (status, body) == (400, {"message": "expected a JSON body"})


@pytest.mark.parametrize("path,method", [
    ("/_sandbox/state", "GET"), ("/_sandbox/requests", "GET"), ("/_sandbox/faults", "POST"),
    ("/_sandbox/latency", "POST"), ("/_sandbox/reset", "POST"), ("/_sandbox/config", "POST"),
    ("/_sandbox/tiny-secret", "POST"),
])
def test_control_api_refuses_non_loopback_clients(tiny_server: EmulatorServer, path: str, method: str) -> None:
    call(tiny_server, "POST", "/items", {"kept": True})
    request = Request(method=method, path=path, headers=Headers([("Content-Type", "application/json")]),
                      body=b'{"ms": 5}', client_host="192.0.2.7")
    response = tiny_server.dispatch(request)
    assert response is not None
    assert response.status == 403
    assert json.loads(response.body) == {"message": "the sandbox control API answers loopback clients only"}
    assert tiny_server.state() == {"items": [{"kept": True}]}  # reset was not applied
    assert tiny_server.latency_ms == 0


def test_control_api_answers_loopback_clients_of_both_families(tiny_server: EmulatorServer) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
        response = tiny_server.dispatch(Request(method="GET", path="/_sandbox/state", client_host=host))
        assert response is not None and response.status == 200, host
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback("not-an-address")


def test_application_routes_answer_any_client(tiny_server: EmulatorServer) -> None:
    response = tiny_server.dispatch(Request(method="GET", path="/hello", client_host="192.0.2.7"))
    assert response is not None and response.status == 200


# -- request log ---------------------------------------------------------------------------------------


def test_request_log_records_method_path_status_and_times(tiny_server: EmulatorServer) -> None:
    before = time.time() * 1000
    basic = base64.b64encode(b"apikey:s3cr3t-token").decode()
    call(tiny_server, "GET", "/hello?token=s3cr3t-query&b=2", headers={"Authorization": f"Basic {basic}"})
    call(tiny_server, "POST", "/items", {"x": 1}, headers={"Authorization": "Bearer s3cr3t-bearer"})
    call(tiny_server, "GET", "/items/9")
    call(tiny_server, "GET", "/_sandbox/state")
    after = time.time() * 1000
    entries = tiny_server.requests()
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/hello", 200), ("POST", "/items", 201), ("GET", "/items/9", 404)]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    first = entries[0]
    assert first["query_keys"] == ["b", "token"]
    assert (first["auth_scheme"], first["auth_user"]) == ("Basic", "apikey")
    assert (entries[1]["auth_scheme"], entries[1]["auth_user"]) == ("Bearer", None)
    assert entries[2]["auth_scheme"] is None
    for entry in entries:
        assert before <= entry["start_ms"] <= entry["end_ms"] <= after
        assert entry["duration_ms"] == pytest.approx(entry["end_ms"] - entry["start_ms"], abs=0.01)
        assert entry["applied"] is True and entry["fault"] is None and entry["outcome"] == "answered"
    assert "s3cr3t" not in json.dumps(entries)  # no secret from headers or query values


def test_request_log_over_http_with_filters_and_clear(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "POST", "/items", {"x": 1})
    call(tiny_server, "GET", "/items/1")
    call(tiny_server, "GET", "/hello")
    status, body, _ = call(tiny_server, "GET", "/_sandbox/requests?path=/items/*")
    assert status == 200
    assert [(e["method"], e["path"]) for e in body["requests"]] == [("GET", "/items/1")]
    body = call(tiny_server, "GET", "/_sandbox/requests?method=post")[1]
    assert [(e["method"], e["path"]) for e in body["requests"]] == [("POST", "/items")]
    assert len(call(tiny_server, "GET", "/_sandbox/requests")[1]["requests"]) == 3
    assert call(tiny_server, "DELETE", "/_sandbox/requests")[:2] == (200, {"requests": []})
    assert call(tiny_server, "GET", "/_sandbox/requests")[1] == {"requests": [], "dropped": 0}


def test_request_log_is_bounded_and_counts_dropped_entries(tiny_apps: Any) -> None:
    with EmulatorServer(tiny_apps.TinyApp(), log_capacity=3) as server:
        for _ in range(5):
            call(server, "GET", "/hello")
        body = call(server, "GET", "/_sandbox/requests")[1]
        assert [e["seq"] for e in body["requests"]] == [3, 4, 5]
        assert body["dropped"] == 2


# -- latency and concurrency ---------------------------------------------------------------------------


def test_latency_overlaps_across_parallel_requests(tiny_server: EmulatorServer) -> None:
    assert call(tiny_server, "POST", "/_sandbox/latency", {"ms": 200})[:2] == (200, {"ms": 200})

    def timed_get(_: int) -> tuple[int, float]:
        started = time.monotonic()
        status = call(tiny_server, "GET", "/hello")[0]
        return status, time.monotonic() - started

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(timed_get, range(10)))
    elapsed = time.monotonic() - started
    assert [status for status, _ in results] == [200] * 10
    assert all(duration >= 0.2 for _, duration in results)
    assert elapsed < 1.0
    entries = tiny_server.requests()
    assert len(entries) == 10
    assert all(entry["duration_ms"] >= 200 for entry in entries)
    # every request was in flight at the same moment
    assert max(e["start_ms"] for e in entries) < min(e["end_ms"] for e in entries)


def test_latency_does_not_slow_the_control_api(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "POST", "/_sandbox/latency", {"ms": 1500})
    started = time.monotonic()
    assert call(tiny_server, "GET", "/_sandbox/state")[0] == 200
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("payload", [{"ms": -1}, {"ms": "100"}, {"ms": True}, {"milliseconds": 5}, [100]])
def test_invalid_latency_answers_400(tiny_server: EmulatorServer, payload: Any) -> None:
    status, body, _ = call(tiny_server, "POST", "/_sandbox/latency", payload)
    assert status == 400
    assert body["message"] in ('expected {"ms": <milliseconds>}',
                               "latency must be an integer number of milliseconds >= 0")
    assert tiny_server.latency_ms == 0


def test_two_hundred_concurrent_requests_are_all_served(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "POST", "/_sandbox/latency", {"ms": 100})  # keep them all in flight together

    def post(number: int) -> int:
        return call(tiny_server, "POST", "/items", {"n": number})[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(post, range(200)))
    assert statuses == [201] * 200
    items = tiny_server.state()["items"]
    assert sorted(item["n"] for item in items) == list(range(200))
    assert len(tiny_server.requests(method="POST", path="/items")) == 200


def test_stop_closes_idle_keep_alive_connections(tiny_apps: Any) -> None:
    server = EmulatorServer(tiny_apps.TinyApp()).start()
    connection = connect(server)
    connection.request("GET", "/hello")
    assert connection.getresponse().read()
    server.stop()
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        connection.request("GET", "/hello")
        connection.getresponse()
    connection.close()


def test_stop_ends_pending_latency_waits(tiny_apps: Any) -> None:
    server = EmulatorServer(tiny_apps.TinyApp(), latency_ms=30_000).start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(call, server, "GET", "/hello")
        time.sleep(0.2)
        started = time.monotonic()
        server.stop()
        try:
            pending.result(timeout=5)
        except Exception:
            pass  # the answer may or may not get out; the point is that nothing hangs
    assert time.monotonic() - started < 5


def test_urllib_client_works(tiny_server: EmulatorServer) -> None:
    with urllib.request.urlopen(f"{tiny_server.url}/hello", timeout=5) as answer:
        assert answer.status == 200
        assert json.load(answer) == {"greeting": "hello"}


def test_expect_100_continue_is_answered(tiny_server: EmulatorServer) -> None:
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 100 ")
        assert reader.readline() == b"\r\n"
        sock.sendall(b"body")
        assert reader.readline().startswith(b"HTTP/1.1 200 ")


def test_request_log_since_returns_only_newer_entries(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "GET", "/hello")
    last_seq = tiny_server.requests()[-1]["seq"]
    call(tiny_server, "GET", "/items/1")
    body = call(tiny_server, "GET", f"/_sandbox/requests?since={last_seq}")[1]
    assert [e["path"] for e in body["requests"]] == ["/items/1"]
    assert call(tiny_server, "GET", "/_sandbox/requests?since=x")[:2] == (
        400, {"message": "since must be a request seq number"})


def test_libcurl_reuses_one_connection_for_several_requests_with_bodies(tiny_server: EmulatorServer) -> None:
    import subprocess

    big = "x" * 5000  # above 1 KiB curl sends "Expect: 100-continue" first
    result = subprocess.run(
        ["curl", "-sS", "-v", "--noproxy", "*", "-H", "Content-Type: application/json",
         "--data-binary", json.dumps({"big": big}), f"{tiny_server.url}/items",
         "--next", "-sS", "--noproxy", "*", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunked!",
         f"{tiny_server.url}/echo",
         "--next", "-sS", "--noproxy", "*", f"{tiny_server.url}/items/1"],
        capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Connected to 127.0.0.1") == 1
    assert result.stderr.count("Re-using existing connection") == 2
    decoder = json.JSONDecoder()
    outputs, position = [], 0
    while position < len(result.stdout):
        value, position = decoder.raw_decode(result.stdout, position)
        outputs.append(value)
    assert outputs == [{"id": 1}, {"length": 8, "body": "chunked!", "method": "POST"}, {"big": big}]


def test_connection_stays_usable_after_a_status_fault(tiny_server: EmulatorServer) -> None:
    tiny_server.add_faults([{"method": "POST", "path": "/items", "action": "status", "status": 503, "times": 1}])
    connection = connect(tiny_server)
    try:
        connection.request("POST", "/items", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
        first = connection.getresponse()
        assert (first.status, json.loads(first.read())) == (503, {"status": 503, "message": "Service Unavailable"})
        sock = connection.sock
        connection.request("POST", "/items", body=b'{"a": 2}', headers={"Content-Type": "application/json"})
        second = connection.getresponse()
        assert (second.status, json.loads(second.read())) == (201, {"id": 1})
        assert connection.sock is sock
    finally:
        connection.close()


def test_ipv6_loopback_host(tiny_apps: Any) -> None:
    try:
        server = EmulatorServer(tiny_apps.TinyApp(), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback in this environment")
    with server:
        assert server.url == f"http://[::1]:{server.port}"
        with urllib.request.urlopen(f"{server.url}/hello", timeout=5) as answer:
            assert json.load(answer) == {"greeting": "hello"}
        with urllib.request.urlopen(f"{server.url}/_sandbox/state", timeout=5) as answer:
            assert answer.status == 200  # ::1 counts as loopback for the control API


@pytest.mark.parametrize("chunk_line", [b"zz", b"-5"])
def test_malformed_chunk_size_answers_400(tiny_server: EmulatorServer, chunk_line: bytes) -> None:
    payload = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk_line + b"\r\nabc\r\n0\r\n\r\n"
    (answer,) = raw_exchange(tiny_server, payload, 1)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.split(b"\r\n", 1)[1]) == {"status": 400, "message": "malformed chunk size"}
    assert tiny_server.requests() == []  # never reached the app or the log
