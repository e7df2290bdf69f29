"""Issue 10 item 3: the bad-input corpus, one table row per case.

URLs (schemes, spaces, user-info, IDN, ports, sub-paths, trailing slashes), names (empty, 256
characters, quotes, control characters, non-ASCII), credentials (empty, wrong, non-admin) and
server answers (HTML instead of JSON, truncated JSON, wrong types, missing fields, a 10 MB body, a
body that never ends, a 3xx to elsewhere, a TLS certificate for another host).

Every case runs `opnc apply --json --timeout 1` against a fresh sandbox and checks: the exit code
and error kind; a message and a hint a person can act on (the words the row names); no crash (no
exit 1, no kind internal, no traceback); and no mutating request after the point of failure (only
the writes the row allows reached the servers; invalid input sends no request at all).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from .conftest import NC_SETUP, find_leaks, mutating_requests
from .hostile_proxy import HostileAnswer, HostileProxy, html_answer, json_answer

STORAGES = "/api/v3/storages"
MB10 = 10 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    id: str
    code: int
    kind: str | None  # the error kind; None for a run that must succeed
    words: tuple[str, ...] = ()  # each must appear (any case) in the message or hint
    env: dict[str, str | None] = field(default_factory=dict)  # OPNC_* overrides; {op} {nc} {op_port} {nc_port}
    args: tuple[str, ...] = ()
    # A hostile answer: (side, method, path pattern, answer) given by a proxy in front of that side.
    hostile: tuple[str, str, str, HostileAnswer] | None = None
    writes: tuple[tuple[str, str, str], ...] = ()  # (side, method, path pattern) that may reach a server
    step: str = "preflight"
    setup: Callable[[Any, contextlib.ExitStack], dict[str, str]] | None = None
    marks: tuple[Any, ...] = ()


def op(url: str, **kw: Any) -> dict[str, str | None]:
    return {"OPNC_OPENPROJECT_URL": url, **kw}


def nc(url: str, **kw: Any) -> dict[str, str | None]:
    return {"OPNC_NEXTCLOUD_URL": url, **kw}


def _nextcloud_non_admin(sb: Any, stack: contextlib.ExitStack) -> dict[str, str]:
    password = "bob-password-" + "p" * 16
    sb.nextcloud.control("/_sandbox/nextcloud/users", {"user": "bob", "password": password, "admin": False})
    return {"OPNC_NEXTCLOUD_USER": "bob", "OPNC_NEXTCLOUD_PASSWORD": password}


def _tls_certificate_for_another_host(sb: Any, stack: contextlib.ExitStack) -> dict[str, str]:
    # The sandbox's certificate names 127.0.0.1, ::1 and localhost; served from 127.0.0.2 (also
    # loopback) it is a valid certificate, from a trusted CA, for another host.
    from opnc.sandbox import Sandbox

    other = stack.enter_context(Sandbox(tls=True, host="127.0.0.2"))
    return {"OPNC_OPENPROJECT_URL": other.openproject.url, "OPNC_OPENPROJECT_TOKEN": other.openproject.token,
            "OPNC_CA_BUNDLE": other.ca_bundle}


W_CREATE = ("openproject", "POST", STORAGES)
W_SETUP = ("nextcloud", "POST", NC_SETUP)
STORE = "/api/v3/storages/*/oauth_client_credentials"
W_STORE = ("openproject", "POST", STORE)
AFTER = True

URL_CASES = [
    Case("url-op-ftp-scheme", 2, "invalid_input", ("http",), op("ftp://127.0.0.1:{op_port}")),
    Case("url-op-file-scheme", 2, "invalid_input", ("http",), op("file:///etc/passwd")),
    Case("url-op-no-scheme", 2, "invalid_input", ("http",), op("127.0.0.1:{op_port}")),
    Case("url-op-space-in-host", 2, "invalid_input", ("url",), op("http://open project.example")),
    Case("url-op-space-in-path", 2, "invalid_input", ("url",), op("{op}/open project")),
    Case("url-op-user-info", 2, "invalid_input", ("user",), op("http://admin:pw-in-url-123456@127.0.0.1:{op_port}")),
    Case("url-op-user-only", 2, "invalid_input", ("user",), op("http://admin@127.0.0.1:{op_port}")),
    Case("url-op-port-too-big", 2, "invalid_input", ("port",), op("http://127.0.0.1:99999")),
    Case("url-op-port-not-a-number", 2, "invalid_input", ("port",), op("http://127.0.0.1:http")),
    Case("url-op-query", 2, "invalid_input", ("query",), op("{op}/?next=/admin")),
    Case("url-op-fragment", 2, "invalid_input", ("fragment",), op("{op}/#top")),
    Case("url-op-empty", 2, "invalid_input", ("--openproject-url",), op("")),
    Case("url-op-scheme-only", 2, "invalid_input", ("url",), op("http://")),
    Case("url-op-trailing-slash", 0, None, (), op("{op}/"), writes=(("*", "*", "*"),)),
    Case("url-op-trailing-slashes", 0, None, (), op("{op}///"), writes=(("*", "*", "*"),)),
    Case("url-op-uppercase-scheme-and-host", 0, None, (), op("HTTP://LOCALHOST:{op_port}"), writes=(("*", "*", "*"),)),
    Case("url-op-sub-path-not-served", 3, "not_found", ("OpenProject", "URL"), op("{op}/openproject")),
    Case("url-op-idn-host-unresolvable", 3, "connection_failed", ("bücher.invalid", "host name"),
         op("http://bücher.invalid:{op_port}")),
    Case("url-op-ipv6-nothing-listening", 3, "connection_failed", ("OpenProject",), op("http://[::1]:{op_port}")),
    Case("url-op-port-nothing-listening", 3, "connection_failed", ("OpenProject",), op("http://127.0.0.1:1")),
    Case("url-nc-ftp-scheme", 2, "invalid_input", ("http",), nc("ftp://127.0.0.1:{nc_port}")),
    Case("url-nc-user-info", 2, "invalid_input", ("user",), nc("http://admin:pw-in-url-654321@127.0.0.1:{nc_port}")),
    Case("url-nc-space", 2, "invalid_input", ("url",), nc("http://next cloud.example")),
    Case("url-nc-query", 2, "invalid_input", ("query",), nc("{nc}/index.php?x=1")),
    Case("url-nc-trailing-slash", 0, None, (), nc("{nc}/"), writes=(("*", "*", "*"),)),
    Case("url-nc-sub-path-not-served", 3, "not_found", ("Nextcloud", "base URL"), nc("{nc}/nextcloud")),
    Case("url-nc-port-nothing-listening", 3, "connection_failed", ("Nextcloud",), nc("http://127.0.0.1:1")),
    Case("url-both-the-same-server", 2, "invalid_input", ("same",), nc("{op}")),
]

NAME_CASES = [
    Case("name-empty", 2, "invalid_input", ("name",), {"OPNC_STORAGE_NAME": ""}, ("--storage-name", "")),
    Case("name-only-spaces", 2, "invalid_input", ("name",), args=("--storage-name", "   ")),
    Case("name-256-characters", 2, "invalid_input", ("255",), args=("--storage-name", "n" * 256)),
    Case("name-255-characters", 0, None, (), args=("--storage-name", "n" * 255), writes=(("*", "*", "*"),)),
    Case("name-quotes", 0, None, (), args=("--storage-name", "Team \"Files\" 'Cloud'"), writes=(("*", "*", "*"),)),
    Case("name-non-ascii", 0, None, (), args=("--storage-name", "Dateiablage – Ümlaut 云盘"), writes=(("*", "*", "*"),)),
    Case("name-newline", 2, "invalid_input", ("name",), args=("--storage-name", "Next\ncloud")),
    Case("name-bell-control", 2, "invalid_input", ("name",), args=("--storage-name", "Next\x07cloud")),
    Case("name-tab", 2, "invalid_input", ("name",), args=("--storage-name", "Next\tcloud")),
    Case("name-escape-sequence", 2, "invalid_input", ("name",), args=("--storage-name", "\x1b[31mred\x1b[0m")),
    Case("user-empty", 2, "invalid_input", ("--nextcloud-user",), {"OPNC_NEXTCLOUD_USER": ""}),
    # RFC 7617: a Basic-auth user-id cannot contain a colon; the server would see user "ad".
    Case("user-with-colon", 2, "invalid_input", ("user",), {"OPNC_NEXTCLOUD_USER": "ad:min"}),
    Case("user-with-newline", 2, "invalid_input", ("user",), {"OPNC_NEXTCLOUD_USER": "admin\nX-Evil: 1"}),
    Case("user-non-ascii-unknown", 3, "unauthenticated", ("password",), {"OPNC_NEXTCLOUD_USER": "ädmin"}),
]

CREDENTIAL_CASES = [
    Case("token-empty", 2, "invalid_input", ("OPNC_OPENPROJECT_TOKEN",), {"OPNC_OPENPROJECT_TOKEN": ""}),
    Case("token-only-spaces", 2, "invalid_input", ("token",), {"OPNC_OPENPROJECT_TOKEN": "    "}),
    Case("token-wrong", 3, "unauthenticated", ("token",), {"OPNC_OPENPROJECT_TOKEN": "0" * 64}),
    Case("token-very-long", 3, "unauthenticated", ("token",), {"OPNC_OPENPROJECT_TOKEN": "a" * 10000}),
    # Sent inside Basic auth (base64), so it cannot inject a header; OpenProject refuses it.
    Case("token-header-injection", 3, "unauthenticated", ("token",), {"OPNC_OPENPROJECT_TOKEN": "abc\r\nX-Evil: 1"}),
    Case("token-non-admin", 3, "forbidden", ("admin",), {"OPNC_OPENPROJECT_TOKEN": "{op_user_token}"}),
    Case("password-empty", 2, "invalid_input", ("OPNC_NEXTCLOUD_PASSWORD",), {"OPNC_NEXTCLOUD_PASSWORD": ""}),
    Case("password-wrong", 3, "unauthenticated", ("password",), {"OPNC_NEXTCLOUD_PASSWORD": "wrong-" + "w" * 20}),
    Case("password-with-newline", 3, "unauthenticated", ("password",), {"OPNC_NEXTCLOUD_PASSWORD": "pw\r\nX: 1-xxxxxxx"}),
    Case("nextcloud-non-admin", 3, "forbidden", ("admin",), setup=_nextcloud_non_admin),
    Case("token-is-nextcloud-password", 3, "unauthenticated", ("token",), {"OPNC_OPENPROJECT_TOKEN": "{nc_password}"}),
]

TRUNCATED_ROOT = b'{"_type": "Root", "instanceName": "OpenProject", "coreVers'
SERVER_CASES = [
    # OpenProject's API root, the first thing preflight reads.
    Case("op-root-html-login-page", 3, "protocol", ("OpenProject", "JSON"),
         hostile=("openproject", "GET", "/api/v3", html_answer())),
    Case("op-root-truncated-json", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", HostileAnswer(body=TRUNCATED_ROOT))),
    Case("op-root-wrong-types", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", json_answer({"_type": "Root", "instanceName": 7, "coreVersion": 16}))),
    Case("op-root-missing-fields", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", json_answer({}))),
    Case("op-root-not-an-object", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", json_answer(["Root"]))),
    Case("op-root-10-mb-body", 3, "too_large", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", HostileAnswer(body=b" " * MB10 + b"{}"))),
    Case("op-root-body-never-ends", 3, None, ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", HostileAnswer(kind="endless"))),
    Case("op-root-body-cut-short", 3, "connection_failed", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3", HostileAnswer(kind="truncated", body=b'{"_type": "Root"'))),
    Case("op-root-redirect-elsewhere", 3, "protocol", ("OpenProject", "redirect"),
         hostile=("openproject", "GET", "/api/v3", HostileAnswer(
             status=302, headers=(("Location", "https://login.elsewhere.example/sso"),), body=b""))),
    Case("op-me-wrong-types", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", "/api/v3/users/me", json_answer({"_type": "User", "id": "one", "admin": "yes"}))),
    Case("op-storages-html", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", STORAGES, html_answer())),
    Case("op-storages-missing-elements", 3, "protocol", ("OpenProject",),
         hostile=("openproject", "GET", STORAGES, json_answer({"_type": "Collection", "total": 1}))),
    # Nextcloud's status.php, the first thing preflight reads there.
    Case("nc-status-html", 3, "protocol", ("Nextcloud",), hostile=("nextcloud", "GET", "/status.php", html_answer())),
    Case("nc-status-truncated-json", 3, "protocol", ("Nextcloud",),
         hostile=("nextcloud", "GET", "/status.php", HostileAnswer(body=b'{"installed":true,"maintenance":fa'))),
    Case("nc-status-wrong-types", 3, "protocol", ("Nextcloud",),
         hostile=("nextcloud", "GET", "/status.php", json_answer({"installed": "yes", "maintenance": 0, "version": 34}))),
    Case("nc-status-missing-fields", 3, "protocol", ("Nextcloud",),
         hostile=("nextcloud", "GET", "/status.php", json_answer({"productname": "Nextcloud"}))),
    Case("nc-status-10-mb-body", 3, "too_large", ("Nextcloud",),
         hostile=("nextcloud", "GET", "/status.php", HostileAnswer(body=b" " * MB10 + b"{}"))),
    Case("nc-status-body-never-ends", 3, None, ("Nextcloud",),
         hostile=("nextcloud", "GET", "/status.php", HostileAnswer(kind="endless"))),
    Case("nc-status-redirect-elsewhere", 3, "protocol", ("Nextcloud", "redirect"),
         hostile=("nextcloud", "GET", "/status.php", HostileAnswer(
             status=301, headers=(("Location", "https://cloud.elsewhere.example/status.php"),), body=b""))),
    Case("nc-capabilities-html", 3, "protocol", ("Nextcloud",),
         hostile=("nextcloud", "GET", "/ocs/v2.php/cloud/capabilities", html_answer())),
    # create_storage: OpenProject applied the POST; its answer is broken.
    Case("create-storage-html", 4, "protocol", ("OpenProject",), step="create_storage", writes=(W_CREATE,),
         hostile=("openproject", "POST", STORAGES, html_answer(201, AFTER))),
    Case("create-storage-truncated-json", 4, "protocol", ("OpenProject",), step="create_storage", writes=(W_CREATE,),
         hostile=("openproject", "POST", STORAGES, HostileAnswer(status=201, body=b'{"_type":"Storage","id":', after=AFTER))),
    Case("create-storage-missing-client-secret", 4, "protocol", ("OpenProject",), step="create_storage",
         writes=(W_CREATE,), hostile=("openproject", "POST", STORAGES, json_answer(
             {"_type": "Storage", "id": 1, "name": "Nextcloud", "_embedded": {"oauthApplication": {"clientId": "x"}}},
             201, AFTER))),
    Case("create-storage-wrong-types", 4, "protocol", ("OpenProject",), step="create_storage", writes=(W_CREATE,),
         hostile=("openproject", "POST", STORAGES, json_answer(
             {"_type": "Storage", "id": "seven", "_embedded": {"oauthApplication": {"clientId": 5, "clientSecret": 6}}},
             201, AFTER))),
    Case("create-storage-10-mb-body", 4, "too_large", ("OpenProject",), step="create_storage", writes=(W_CREATE,),
         hostile=("openproject", "POST", STORAGES, HostileAnswer(status=201, body=b" " * MB10 + b"{}", after=AFTER))),
    Case("create-storage-body-never-ends", 4, None, ("OpenProject",), step="create_storage", writes=(W_CREATE,),
         hostile=("openproject", "POST", STORAGES, HostileAnswer(kind="endless", status=201, after=AFTER))),
    Case("create-storage-redirect-elsewhere", 4, "protocol", ("OpenProject", "redirect"), step="create_storage",
         writes=(W_CREATE,), hostile=("openproject", "POST", STORAGES, HostileAnswer(
             status=307, headers=(("Location", "https://elsewhere.example/api/v3/storages"),), after=AFTER))),
    # configure_nextcloud: Nextcloud applied /setup; its answer is broken.
    Case("setup-html", 4, "protocol", ("Nextcloud",), step="configure_nextcloud", writes=(W_CREATE, W_SETUP),
         hostile=("nextcloud", "POST", NC_SETUP, html_answer(200, AFTER))),
    Case("setup-missing-client-secret", 4, "protocol", ("Nextcloud",), step="configure_nextcloud",
         writes=(W_CREATE, W_SETUP), hostile=("nextcloud", "POST", NC_SETUP, json_answer(
             {"status": True, "nextcloud_oauth_client_name": "OpenProject client", "nextcloud_client_id": "abc"},
             200, AFTER))),
    Case("setup-wrong-types", 4, "protocol", ("Nextcloud",), step="configure_nextcloud", writes=(W_CREATE, W_SETUP),
         hostile=("nextcloud", "POST", NC_SETUP, json_answer(
             {"status": "ok", "nextcloud_client_id": 12, "nextcloud_client_secret": ["x"]}, 200, AFTER))),
    Case("setup-truncated-json", 4, "protocol", ("Nextcloud",), step="configure_nextcloud", writes=(W_CREATE, W_SETUP),
         hostile=("nextcloud", "POST", NC_SETUP, HostileAnswer(body=b'{"status":true,"nextcloud_cl', after=AFTER))),
    Case("setup-redirect-to-login", 4, "protocol", ("Nextcloud",), step="configure_nextcloud",
         writes=(W_CREATE, W_SETUP), hostile=("nextcloud", "POST", NC_SETUP, HostileAnswer(
             status=303, headers=(("Location", "https://sso.elsewhere.example/login"),), after=AFTER))),
    # store_nextcloud_client: OpenProject applied the credentials; its answer is broken.
    Case("store-client-html", 4, "protocol", ("OpenProject",), step="store_nextcloud_client",
         writes=(W_CREATE, W_SETUP, W_STORE), hostile=("openproject", "POST", STORE, html_answer(200, AFTER))),
    Case("store-client-truncated-json", 4, "protocol", ("OpenProject",), step="store_nextcloud_client",
         writes=(W_CREATE, W_SETUP, W_STORE),
         hostile=("openproject", "POST", STORE, HostileAnswer(status=201, body=b'{"_type":"OAuthClient', after=AFTER))),
    # A server that turns against the run half way: refused credentials, a maintenance page.
    Case("create-storage-401-token-revoked", 4, "unauthenticated", ("token",), step="create_storage",
         hostile=("openproject", "POST", STORAGES, json_answer(
             {"_type": "Error", "errorIdentifier": "urn:openproject-org:api:v3:errors:Unauthenticated",
              "message": "You did not provide the correct credentials."}, 401))),
    Case("setup-503-maintenance-page", 4, "server_error", ("Nextcloud",), step="configure_nextcloud",
         writes=(W_CREATE,), hostile=("nextcloud", "POST", NC_SETUP, HostileAnswer(
             status=503, headers=(("Content-Type", "text/html"),), body=b"<html>Maintenance mode</html>"))),
    Case("nc-status-503-maintenance-html", 3, "server_error", ("Nextcloud", "maintenance"), hostile=("nextcloud", "GET", "/status.php",
         HostileAnswer(status=503, headers=(("Content-Type", "text/html"),), body=b"<html>Maintenance</html>"))),
    # TLS: a certificate from a trusted CA, but for another host.
    Case("tls-certificate-for-another-host", 3, "tls", ("127.0.0.2",), setup=_tls_certificate_for_another_host),
]

CORPUS = URL_CASES + NAME_CASES + CREDENTIAL_CASES + SERVER_CASES


def test_the_corpus_has_at_least_60_distinct_cases():
    assert len(CORPUS) >= 60
    assert len({c.id for c in CORPUS}) == len(CORPUS)


def _fill(value: str | None, sb: Any) -> str | None:
    if value is None:
        return None
    return value.format(op=sb.openproject.url, nc=sb.nextcloud.url, op_port=sb.openproject.url.rsplit(":", 1)[1],
                        nc_port=sb.nextcloud.url.rsplit(":", 1)[1], op_user_token=sb.openproject.user_token,
                        nc_password=sb.nextcloud.password)


def _allowed(writes: tuple[tuple[str, str, str], ...], side: str, request: dict[str, Any]) -> bool:
    from opnc.sandbox.faults import method_matches, path_matches

    return any((s == "*" or s == side) and method_matches(m, request["method"]) and path_matches(p, request["path"])
               for s, m, p in writes)


@pytest.mark.parametrize("case", [pytest.param(c, marks=c.marks, id=c.id) for c in CORPUS])
def test_bad_input(sandbox, opnc_run, case: Case):
    with contextlib.ExitStack() as stack:
        env = {k: _fill(v, sandbox) for k, v in case.env.items()}
        if case.setup is not None:
            env.update(case.setup(sandbox, stack))
        if case.hostile is not None:
            side, method, path, answer = case.hostile
            proxy = stack.enter_context(HostileProxy(getattr(sandbox, side).url))
            proxy.rule(method, path, answer)
            env["OPNC_OPENPROJECT_URL" if side == "openproject" else "OPNC_NEXTCLOUD_URL"] = proxy.url
        run = opnc_run("apply", "--timeout", "1", *case.args, env=env)
        if case.hostile is not None:
            assert proxy.answered, "the hostile answer was never asked for"

    # No crash, whatever happened.
    assert run.code != 1 and "Traceback" not in run.err, run.text
    assert run.code == case.code, run.text
    cli_refusal = case.code == 2 and not run.out.strip().startswith("{")
    if cli_refusal:
        # Refused by the command line itself (a missing or empty value) before the core ran: its one
        # line is message and hint at once ("use --openproject-token-file FILE or set ...").
        error = {"kind": "invalid_input", "step": "", "message": run.err, "hint": run.err}
    else:
        result = run.json
        error = result.get("error")
    if case.kind is None and case.code == 0:
        assert error is None, error
        return
    assert error is not None, run.text
    if case.kind is not None:
        assert error["kind"] == case.kind, error
    else:  # a body that never ends: either limit may stop it first, both are right
        assert error["kind"] in ("timeout", "too_large"), error
    assert error["kind"] != "internal"
    if case.code != 2:
        assert error["step"] == case.step, error
    assert error["message"].strip() and error["hint"].strip(), error
    assert cli_refusal or error["hint"] != error["message"]
    text = (error["message"] + " " + error["hint"]).lower()
    for word in case.words:
        assert word.lower() in text, (word, error)
    # Nothing written after the point of failure; invalid input sends nothing at all.
    writes = [("openproject", r) for r in mutating_requests(sandbox.openproject)] + \
             [("nextcloud", r) for r in mutating_requests(sandbox.nextcloud)]
    unexpected = [(side, r["method"], r["path"]) for side, r in writes if not _allowed(case.writes, side, r)]
    assert unexpected == [], unexpected
    if case.code == 2:
        assert sandbox.openproject.requests() == [] and sandbox.nextcloud.requests() == []
    assert find_leaks({"output": run.text}, [s for s in ("pw-in-url-123456", "pw-in-url-654321") if s]) == []
