"""Issue 8, logging: the core's diagnostics reach Python's logging under "opnc" (INFO: steps;
DEBUG: every HTTP request with its status and time), and no secret ever appears in them."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections import Counter
from typing import Any

import pytest

import opnc
from opnc import _core
from opnc.logging_bridge import enable_debug, log_event, logged_events, set_core_level

# "GET http://127.0.0.1:1234/api/v3/storages -> 200 (3.1 ms)", with ", new connection" after the
# time when the request opened one (see cpp/src/curl_transport.cpp)
HTTP_LINE = re.compile(r"^(?P<method>[A-Z]+) (?P<base>https?://[^/ ]+)(?P<path>/[^ ?#]*) -> "
                       r"(?P<outcome>\d{3}|failed: .+) \((?P<ms>\d+\.\d) ms(?P<new>, new connection)?\)$")
EXCHANGE_STEPS = ["preflight", "create_storage", "configure_nextcloud", "store_nextcloud_client",
                  "set_app_password", "verify"]


def integration_of(sandbox: Any, state_dir: Any, pair: int = 0, **options: Any) -> opnc.Integration:
    p = sandbox.pairs[pair]
    return opnc.Integration(opnc.OpenProject(p.openproject.url, p.openproject.token),
                            opnc.Nextcloud(p.nextcloud.url, p.nextcloud.user, p.nextcloud.password),
                            state_dir=state_dir, **options)


def http_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "opnc.http"]


def parsed(record: logging.LogRecord) -> re.Match[str]:
    match = HTTP_LINE.match(record.getMessage())
    assert match, record.getMessage()
    return match


def served_by(endpoint: Any) -> Counter[tuple[str, str, str]]:
    return Counter((e["method"], e["path"], str(e["status"])) for e in endpoint.requests())


@pytest.fixture
def core_level_restored():
    yield
    set_core_level(logging.DEBUG)


def test_debug_log_of_a_full_apply_has_every_step_and_request_and_no_secret(sandbox, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="opnc")
    integration = integration_of(sandbox, tmp_path / "state", project_folders=True)
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()

    result = integration.apply()

    assert [s.name for s in result.steps] == EXCHANGE_STEPS
    step_lines = [r.getMessage() for r in caplog.records if r.name == "opnc"]
    for name in EXCHANGE_STEPS:
        assert any(re.fullmatch(rf"step {name} started \(at \d+ ms\)", line) for line in step_lines), (name, step_lines)
        assert any(re.match(rf"step {name} done \(at \d+ ms\)", line) for line in step_lines), (name, step_lines)
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "opnc")

    # Every request the servers saw is in the log, with the status they answered, and nothing more.
    records = http_records(caplog)
    assert all(r.levelno == logging.DEBUG for r in records)
    logged = Counter()
    for record in records:
        m = parsed(record)
        assert m["base"] in (sandbox.openproject.url, sandbox.nextcloud.url), m["base"]
        endpoint = "op" if m["base"] == sandbox.openproject.url else "nc"
        logged[(endpoint, m["method"], m["path"], m["outcome"])] += 1
    served = Counter({("op", *k): n for k, n in served_by(sandbox.openproject).items()})
    served.update({("nc", *k): n for k, n in served_by(sandbox.nextcloud).items()})
    # The emulators also call each other (OpenProject checks the Nextcloud it is given, as the real
    # one does), so a server may have seen a request more often than opnc sent it; every request
    # opnc sent was served with the logged status, and every kind of request served was logged.
    assert logged - served == Counter()
    assert set(logged) == set(served)
    assert ("op", "POST", "/api/v3/storages", "201") in logged
    assert ("nc", "POST", "/index.php/apps/integration_openproject/setup", "200") in logged

    # A write always goes on a new connection (libcurl must never resend it on a dead kept-alive
    # one); verify's reads find the connections that preflight's reads left open.
    lines = [parsed(record) for record in records]
    assert all(m["new"] for m in lines if m["method"] in ("POST", "PATCH", "PUT"))
    reused = [(m["method"], m["path"]) for m in lines if not m["new"]]
    assert len(reused) >= 5, reused

    text = "\n".join(r.getMessage() for r in caplog.records)
    secrets = sandbox.secrets()
    assert len(secrets) >= 6  # tokens, password, both client secrets, the app password
    for secret in secrets:
        assert secret not in text


def test_a_query_string_never_reaches_the_log(sandbox, caplog):
    caplog.set_level(logging.DEBUG, logger="opnc")
    transport = _core.CurlTransport()
    response = transport.request("GET", sandbox.openproject.url + "/api/v3?code=not-for-logs&state=xyz",
                                 bearer=_core.Secret(sandbox.openproject.token))
    assert response.status == 200
    [record] = http_records(caplog)
    m = parsed(record)
    assert (m["method"], m["base"], m["path"], m["outcome"]) == ("GET", sandbox.openproject.url, "/api/v3", "200")
    assert "not-for-logs" not in record.getMessage() and "xyz" not in record.getMessage()
    assert sandbox.openproject.token not in record.getMessage()


def test_a_failed_request_is_logged_with_its_reason(caplog):
    caplog.set_level(logging.DEBUG, logger="opnc")
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(opnc.ConnectionFailed):
        _core.CurlTransport(connect_timeout=2.0).request("POST", f"http://127.0.0.1:{port}/x?y=1", body=b"{}")
    [record] = http_records(caplog)
    m = parsed(record)
    assert (m["method"], m["path"]) == ("POST", "/x")
    assert m["outcome"].startswith(f"failed: Cannot connect to 127.0.0.1:{port}")


def test_nothing_is_logged_below_the_loggers_level(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="opnc")
    _core.CurlTransport().request("GET", sandbox.openproject.url + "/api/v3")
    assert http_records(caplog) == []


def test_the_core_floor_stops_records_before_they_reach_python(sandbox, caplog, core_level_restored):
    caplog.set_level(logging.DEBUG, logger="opnc")
    assert _core.log_enabled(logging.DEBUG) is True
    set_core_level(logging.INFO)
    assert _core.log_enabled(logging.DEBUG) is False
    assert _core.log_enabled(logging.INFO) is True
    _core.CurlTransport().request("GET", sandbox.openproject.url + "/api/v3")
    assert http_records(caplog) == []
    set_core_level(logging.DEBUG)
    _core.CurlTransport().request("GET", sandbox.openproject.url + "/api/v3")
    assert len(http_records(caplog)) == 1


@pytest.mark.opnc_sandbox(pairs=2)
def test_parallel_runs_log_from_core_threads_without_deadlock(sandbox, tmp_path, caplog):
    # Two applies in two Python threads: core worker threads log (GIL per record) while each run's
    # event sink takes the GIL too, and a Python thread keeps the GIL busy meanwhile.
    caplog.set_level(logging.DEBUG, logger="opnc")
    events: list[list[str]] = [[], []]
    results: list[Any] = [None, None]
    errors: list[BaseException] = []
    stop = threading.Event()

    def run(index: int) -> None:
        try:
            integration = integration_of(sandbox, tmp_path / f"state{index}", pair=index, project_folders=True)
            results[index] = integration.apply(on_event=lambda e: events[index].append(e["type"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def busy() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=busy)
    spinner.start()
    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    spinner.join()
    assert not any(t.is_alive() for t in threads), "a run hung (deadlock between logging and events?)"
    assert errors == []
    assert all(r is not None and r.changed for r in results)
    assert all(e.count("step_finished") == 6 for e in events), events
    logged = Counter((parsed(r)["base"], parsed(r)["method"], parsed(r)["path"], parsed(r)["outcome"])
                     for r in http_records(caplog))
    for pair in sandbox.pairs:
        for endpoint in (pair.openproject, pair.nextcloud):
            served = Counter((endpoint.url, e["method"], e["path"], str(e["status"])) for e in endpoint.requests())
            mine = Counter({k: n for k, n in logged.items() if k[0] == endpoint.url})
            assert mine - served == Counter()
            assert set(mine) == set(served)


def test_events_become_info_and_error_records(caplog):
    caplog.set_level(logging.DEBUG, logger="opnc")
    seen: list[dict[str, Any]] = []
    callback = logged_events(seen.append)
    events = [
        {"type": "step_started", "step": "create_storage", "detail": "", "elapsed_ms": 12.4},
        {"type": "step_finished", "step": "create_storage", "detail": "storage 7", "elapsed_ms": 40.6},
        {"type": "step_skipped", "step": "set_app_password", "detail": "", "elapsed_ms": 41.0},
        {"type": "step_failed", "step": "verify", "detail": "1 check failed", "elapsed_ms": 90.0},
        {"type": "note", "step": "", "detail": "the journal was kept", "elapsed_ms": 91.0},
    ]
    for event in events:
        callback(event)
    assert seen == events
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("opnc", "INFO", "step create_storage started (at 12 ms)"),
        ("opnc", "INFO", "step create_storage done (at 41 ms): storage 7"),
        ("opnc", "INFO", "step set_app_password skipped"),
        ("opnc", "ERROR", "step verify failed (at 90 ms): 1 check failed"),
        ("opnc", "INFO", "note: the journal was kept"),
    ]
    log_event({"type": "step_finished", "step": "verify", "detail": "", "elapsed_ms": 1})
    assert caplog.records[-1].getMessage() == "step verify done (at 1 ms)"


def test_enable_debug_adds_one_handler_and_shows_requests(sandbox):
    logger = logging.getLogger("opnc")
    level, handlers = logger.level, list(logger.handlers)
    first, second = io.StringIO(), io.StringIO()
    try:
        handler = enable_debug(first)
        assert enable_debug(second) is handler
        assert logger.level == logging.DEBUG
        assert len(logger.handlers) == len(handlers) + 1
        _core.CurlTransport().request("GET", sandbox.nextcloud.url + "/status.php")
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert re.search(rf" DEBUG   opnc\.http: GET {re.escape(sandbox.nextcloud.url)}/status\.php -> 200 \(\d+\.\d ms, new connection\)$",
                     line), line


# A token endpoint that answers after a second, in its own process (a server thread in the test's
# process would need the GIL that the main thread holds on purpose below).
SLOW_TOKEN_ENDPOINT = """
import http.server, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(1.0)
        body = b'{"error": "invalid_grant"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

# A refresh runs (GIL released) under the token source's mutex and logs its request while the main
# thread holds the GIL and waits for that mutex (the `current` property). If the log record took
# the GIL on the refreshing thread, neither could go on.
GIL_HOLDER_SCRIPT = r"""
import logging, subprocess, sys, threading, time
from opnc import oauth
server = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
try:
    port = int(server.stdout.readline())
    logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")
    config = oauth.ClientConfig(f"http://127.0.0.1:{port}/token", "client", "secret")
    source = oauth.CachingTokenSource(config, oauth.Token("access", "refresh", expires_at=time.time() + 3600))
    def refresh():
        try:
            source.force_refresh()
        except Exception as error:
            sys.stdout.write(f"refresh raised {type(error).__name__}\n")  # one write: the threads race
    thread = threading.Thread(target=refresh)
    thread.start()
    time.sleep(0.3)
    sys.stdout.write(f"current {source.current.token_type}\n")
    thread.join()
    sys.stdout.flush()
finally:
    server.kill()
"""


def test_a_record_logged_under_a_lock_that_a_gil_holder_waits_for_does_not_deadlock(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import opnc as package

    paths = [str(Path(p).parent) for p in package.__path__] + [str(Path(_core.__file__).parent.parent)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    run = subprocess.run([sys.executable, "-c", GIL_HOLDER_SCRIPT, SLOW_TOKEN_ENDPOINT], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    # Both threads finish; which prints first is up to the scheduler.
    assert sorted(run.stdout.splitlines()) == ["current Bearer", "refresh raised OAuthError"]
    assert re.search(r"^opnc\.http POST http://127\.0\.0\.1:\d+/token -> 400 \(\d+\.\d ms, new connection\)$", run.stderr, re.M), run.stderr


# The parent logs from a thread without the GIL (which starts the forwarder thread), then forks; the
# child, which has no forwarder thread, logs the same way and exits through atexit.
FORK_SCRIPT = """
import logging, os, sys
from opnc import _core
logging.basicConfig(level=logging.DEBUG, format="%(process)d %(name)s %(message)s", stream=sys.stdout)
url = sys.argv[1]
_core.CurlTransport().request("GET", url + "/status.php")
pid = os.fork()
if pid == 0:
    _core.CurlTransport().request("GET", url + "/status.php?child=1")
    sys.stdout.flush()
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_logging_works_in_a_forked_child(sandbox, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import opnc as package

    paths = [str(Path(p).parent) for p in package.__path__] + [str(Path(_core.__file__).parent.parent)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    run = subprocess.run([sys.executable, "-c", FORK_SCRIPT, sandbox.nextcloud.url], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "child exit 0"
    pids = [line.split()[0] for line in lines if " opnc.http GET " in line]
    assert len(pids) == 2 and pids[0] != pids[1], lines
