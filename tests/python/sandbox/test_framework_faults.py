"""Fault injection: each action (status, reset, delay) in each mode (before, after), `times`, `*`
matching, plausible bodies, rule validation. Uses the TinyApp of conftest.py."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest

from opnc.sandbox.faults import FaultRule, FaultRuleError, FaultSet, parse_rules, path_matches
from opnc.sandbox.server import EmulatorServer


def call(server: EmulatorServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data,
                           headers={"Content-Type": "application/json"} if data is not None else {})
        response = connection.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)
    finally:
        connection.close()


def add_faults(server: EmulatorServer, rules: Any) -> tuple[int, Any]:
    return call(server, "POST", "/_sandbox/faults", rules)


def connection_is_reset(server: EmulatorServer, method: str, path: str, body: Any = None) -> bool:
    try:
        call(server, method, path, body)
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return True
    return False


# -- actions and modes ---------------------------------------------------------------------------------


def test_status_before_answers_without_applying(tiny_server: EmulatorServer) -> None:
    assert add_faults(tiny_server, [{"method": "POST", "path": "/items", "when": "before",
                                     "action": "status", "status": 503}])[0] == 200
    assert call(tiny_server, "POST", "/items", {"a": 1}) == (503, {"status": 503, "message": "Service Unavailable"})
    assert tiny_server.state() == {"items": []}
    (entry,) = tiny_server.requests()
    assert (entry["status"], entry["applied"], entry["outcome"]) == (503, False, "answered")
    assert entry["fault"] == {"method": "POST", "path": "/items", "when": "before", "action": "status",
                              "status": 503, "delay_ms": 0, "times": None}


def test_status_after_applies_then_replaces_the_answer(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"method": "POST", "path": "/items", "when": "after", "action": "status", "status": 502}])
    assert call(tiny_server, "POST", "/items", {"a": 1}) == (502, {"status": 502, "message": "Bad Gateway"})
    assert tiny_server.state() == {"items": [{"a": 1}]}
    (entry,) = tiny_server.requests()
    assert (entry["status"], entry["app_status"], entry["applied"]) == (502, 201, True)


def test_reset_before_closes_without_answer_and_without_applying(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"method": "POST", "path": "/items", "when": "before", "action": "reset"}])
    assert connection_is_reset(tiny_server, "POST", "/items", {"a": 1})
    assert tiny_server.state() == {"items": []}
    (entry,) = tiny_server.requests()
    assert (entry["status"], entry["outcome"], entry["applied"]) == (None, "reset", False)


def test_reset_after_applies_then_closes_without_answer(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"method": "POST", "path": "/items", "when": "after", "action": "reset"}])
    assert connection_is_reset(tiny_server, "POST", "/items", {"a": 1})
    assert tiny_server.state() == {"items": [{"a": 1}]}  # the lost-response case
    (entry,) = tiny_server.requests()
    assert (entry["status"], entry["outcome"], entry["applied"], entry["app_status"]) == (None, "reset", True, 201)


def test_reset_sends_no_bytes_at_all(tiny_server: EmulatorServer) -> None:
    import socket

    add_faults(tiny_server, [{"path": "/hello", "action": "reset"}])
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            received = sock.recv(1024)
        except ConnectionResetError:
            received = b""
        assert received == b""


def test_delay_before_then_normal_answer(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"method": "GET", "path": "/hello", "when": "before", "action": "delay", "delay_ms": 300}])
    started = time.monotonic()
    assert call(tiny_server, "GET", "/hello") == (200, {"greeting": "hello"})
    assert time.monotonic() - started >= 0.3
    (entry,) = tiny_server.requests()
    assert entry["duration_ms"] >= 300 and entry["applied"] is True


def test_delay_after_applies_first_then_waits(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"method": "POST", "path": "/items", "when": "after", "action": "delay", "delay_ms": 600}])
    import threading

    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(answer=call(tiny_server, "POST", "/items", {"a": 1})))
    worker.start()
    time.sleep(0.3)
    assert tiny_server.state() == {"items": [{"a": 1}]}  # applied while the answer is still held back
    assert "answer" not in result
    worker.join(5)
    assert result["answer"] == (201, {"id": 1})


def test_status_with_delay_waits_then_fails(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"path": "/hello", "action": "status", "status": 504, "delay_ms": 250}])
    started = time.monotonic()
    assert call(tiny_server, "GET", "/hello") == (504, {"status": 504, "message": "Gateway Timeout"})
    assert time.monotonic() - started >= 0.25


def test_delay_before_combined_with_status_after(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [
        {"path": "/items", "when": "before", "action": "delay", "delay_ms": 100},
        {"path": "/items", "when": "after", "action": "status", "status": 500},
    ])
    assert call(tiny_server, "POST", "/items", {"a": 1})[0] == 500
    assert tiny_server.state() == {"items": [{"a": 1}]}


# -- times, matching, order ----------------------------------------------------------------------------


def test_times_counts_down_and_the_rule_disappears(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"path": "/hello", "action": "status", "status": 429, "times": 2}])
    assert call(tiny_server, "GET", "/hello")[0] == 429
    assert call(tiny_server, "GET", "/_sandbox/faults")[1]["faults"][0]["times"] == 1
    assert call(tiny_server, "GET", "/hello")[0] == 429
    assert call(tiny_server, "GET", "/_sandbox/faults")[1] == {"faults": []}
    assert call(tiny_server, "GET", "/hello")[0] == 200


def test_rule_without_times_stays_until_cleared(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, {"path": "/hello", "action": "status", "status": 500})  # a single object works too
    assert [call(tiny_server, "GET", "/hello")[0] for _ in range(3)] == [500, 500, 500]
    assert call(tiny_server, "DELETE", "/_sandbox/faults") == (200, {"faults": []})
    assert call(tiny_server, "GET", "/hello")[0] == 200


def test_star_matches_exactly_one_segment(tiny_server: EmulatorServer) -> None:
    call(tiny_server, "POST", "/items", {"a": 1})
    add_faults(tiny_server, [{"method": "GET", "path": "/items/*", "action": "status", "status": 418}])
    assert call(tiny_server, "GET", "/items/1")[0] == 418
    assert call(tiny_server, "GET", "/items/1/extra")[0] == 404  # two segments: not matched
    assert call(tiny_server, "GET", "/items")[0] == 404  # no segment: not matched
    assert call(tiny_server, "POST", "/items", {"b": 2})[0] == 201  # other path


def test_method_must_match(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"method": "post", "path": "/echo", "action": "status", "status": 500}])
    assert call(tiny_server, "GET", "/echo")[0] == 200
    assert call(tiny_server, "POST", "/echo", {"x": 1})[0] == 500


def test_first_matching_rule_wins(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [
        {"path": "/hello", "action": "status", "status": 500, "times": 1},
        {"path": "*", "action": "status", "status": 503, "times": 1},
    ])
    assert call(tiny_server, "GET", "/hello")[0] == 500
    assert call(tiny_server, "GET", "/hello")[0] == 503
    assert call(tiny_server, "GET", "/hello")[0] == 200


def test_faults_never_touch_the_control_api(tiny_server: EmulatorServer) -> None:
    add_faults(tiny_server, [{"path": "*", "action": "reset"}, {"method": "*", "path": "/_sandbox/state",
                                                                "action": "status", "status": 500}])
    assert call(tiny_server, "GET", "/_sandbox/state") == (200, {"items": []})
    assert len(call(tiny_server, "GET", "/_sandbox/faults")[1]["faults"]) == 2


def test_app_supplies_the_plausible_body(tiny_apps: Any) -> None:
    with EmulatorServer(tiny_apps.TinyAppWithFaultBody()) as server:
        add_faults(server, [{"path": "/items/*", "action": "status", "status": 503}])
        assert call(server, "GET", "/items/4") == (503, {"tiny_error": 503, "path": "/items/4"})


def test_times_one_affects_exactly_one_of_many_parallel_requests(tiny_server: EmulatorServer) -> None:
    import concurrent.futures

    add_faults(tiny_server, [{"path": "/hello", "action": "status", "status": 500, "times": 1}])
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: call(tiny_server, "GET", "/hello")[0], range(40)))
    assert sorted(statuses) == [200] * 39 + [500]


# -- rule validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule,message", [
    ({"path": "/x", "when": "during", "action": "reset"}, "rule 0: when must be one of before, after"),
    ({"path": "/x", "action": "explode"}, "rule 0: action must be one of status, reset, delay"),
    ({"path": "/x", "action": "status"}, "rule 0: status must be an HTTP status code (100-599) for action 'status'"),
    ({"path": "/x", "action": "status", "status": 99}, "rule 0: status must be an HTTP status code (100-599) for action 'status'"),
    ({"path": "/x", "action": "delay"}, "rule 0: delay_ms must be > 0 for action 'delay'"),
    ({"path": "/x", "action": "reset", "status": 500}, "rule 0: status is only used with action 'status', not 'reset'"),
    ({"path": "/x", "action": "reset", "times": 0}, "rule 0: times must be an integer >= 1 (or absent: until cleared)"),
    ({"path": "/x", "action": "reset", "delay_ms": -5}, "rule 0: delay_ms must be an integer >= 0"),
    ({"path": "x", "action": "reset"}, "rule 0: path must start with '/' (or be '*' for every path)"),
    ({"path": "/x", "action": "reset", "colour": "red"}, "rule 0: unknown fault rule field(s): colour"),
    ("reset", "rule 0: a fault rule must be a JSON object"),
])
def test_invalid_rules_answer_400_and_add_nothing(tiny_server: EmulatorServer, rule: Any, message: str) -> None:
    assert add_faults(tiny_server, [{"path": "/ok", "action": "reset"}, rule]) == (400, {"message": message.replace("rule 0", "rule 1")})
    assert call(tiny_server, "GET", "/_sandbox/faults")[1] == {"faults": []}


def test_faults_endpoint_needs_json(tiny_server: EmulatorServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", tiny_server.port, timeout=5)
    connection.request("POST", "/_sandbox/faults", body=b"{not json", headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 400
    assert json.loads(answer.read())["message"].startswith("the body is not valid JSON")
    connection.close()


def test_path_matching_rules() -> None:
    assert path_matches("*", "/anything/at/all")
    assert path_matches("/a/*/c", "/a/b/c")
    assert not path_matches("/a/*/c", "/a//c")
    assert not path_matches("/a/*", "/a/")
    assert not path_matches("/a/b", "/a/b/")
    assert path_matches("/a/b", "/a/b")


def test_fault_set_take_is_ordered_and_counts_down() -> None:
    faults = FaultSet()
    faults.add(parse_rules([{"path": "/a", "when": "after", "action": "reset", "times": 1},
                            {"path": "/a", "action": "delay", "delay_ms": 5}]))
    assert faults.take("GET", "/a", "before").action == "delay"
    assert faults.take("GET", "/a", "after").action == "reset"
    assert faults.take("GET", "/a", "after") is None
    assert [rule.action for rule in faults.rules()] == ["delay"]


def test_fault_rule_defaults() -> None:
    rule = FaultRule(status=500)
    assert (rule.method, rule.path, rule.when, rule.action, rule.delay_ms, rule.times) == ("*", "*", "before", "status", 0, None)
    with pytest.raises(FaultRuleError):
        FaultRule()  # action status needs a status
