"""The Sandbox class with the real emulators: endpoints, credentials, pairs, TLS between the
emulators, the Python control helpers, secrets(), and the pytest plugin as users enable it."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from opnc.sandbox import NextcloudConfig, Sandbox, SandboxControlError

REPO = Path(__file__).resolve().parents[3]
STORAGE_TYPE = "urn:openproject-org:api:v3:storages:Nextcloud"
TWO_WAY = "urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2"


def op_call(endpoint: Any, method: str, path: str, body: Any = None, token: str | None = None,
            context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    credentials = base64.b64encode(f"apikey:{token or endpoint.token}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}", "Accept": "application/hal+json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{endpoint.url}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            raw = answer.read()
            return answer.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, (json.loads(raw) if raw else None)


def nc_basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def storage_body(host: str, name: str = "Nextcloud") -> dict[str, Any]:
    return {"name": name, "applicationPassword": "",
            "_links": {"origin": {"href": host}, "type": {"href": STORAGE_TYPE},
                       "authenticationMethod": {"href": TWO_WAY}}}


def test_endpoints_credentials_and_env(sandbox: Sandbox) -> None:
    op, nc = sandbox.openproject, sandbox.nextcloud
    assert op.url.startswith("http://127.0.0.1:") and nc.url.startswith("http://127.0.0.1:")
    assert op.app.base_url == op.url and nc.app.base_url == nc.url
    assert op.token == op.config.admin_token and op.user_token == op.config.user_token
    assert op.token != op.user_token
    assert (nc.user, nc.password) == ("admin", nc.config.admin_password)
    assert sandbox.ca_bundle is None
    assert sandbox.env() == {
        "OPNC_OPENPROJECT_URL": op.url, "OPNC_OPENPROJECT_TOKEN": op.token,
        "OPNC_NEXTCLOUD_URL": nc.url, "OPNC_NEXTCLOUD_USER": "admin", "OPNC_NEXTCLOUD_PASSWORD": nc.password,
    }
    assert sandbox.pairs[0].openproject is op


def test_reprs_hold_no_secret(sandbox: Sandbox) -> None:
    text = repr(sandbox) + repr(sandbox.pairs[0]) + repr(sandbox.openproject) + repr(sandbox.nextcloud)
    assert sandbox.openproject.url in text
    for secret in sandbox.secrets():
        assert secret not in text


def test_admin_and_user_tokens_work(sandbox: Sandbox) -> None:
    status, me = op_call(sandbox.openproject, "GET", "/api/v3/users/me")
    assert (status, me["admin"]) == (200, True)
    status, me = op_call(sandbox.openproject, "GET", "/api/v3/users/me", token=sandbox.openproject.user_token)
    assert status == 200 and "admin" not in me


def test_storage_create_probes_nextcloud_and_the_probe_is_logged(sandbox: Sandbox) -> None:
    op, nc = sandbox.openproject, sandbox.nextcloud
    status, storage = op_call(op, "POST", "/api/v3/storages", storage_body(nc.url + "/"))
    assert status == 201, storage
    assert storage["_links"]["origin"]["href"] == nc.url  # trailing slash stripped
    probes = [(e["method"], e["path"], e["auth_scheme"]) for e in nc.requests()]
    assert probes == [("GET", "/ocs/v2.php/cloud/capabilities", None),
                      ("GET", "/index.php/apps/integration_openproject/check-config", "Bearer")]
    (entry,) = op.requests(method="POST", path="/api/v3/storages")
    assert (entry["status"], entry["auth_user"]) == (201, "apikey")
    (stored,) = op.state()["storages"]
    assert stored["host"] == nc.url and stored["oauth_client_client_id"] is None


def test_tls_sandbox_emulators_trust_each_other() -> None:
    with Sandbox(tls=True) as sandbox:
        op, nc = sandbox.openproject, sandbox.nextcloud
        assert sandbox.ca_bundle is not None and os.path.isfile(sandbox.ca_bundle)
        assert op.url.startswith("https://127.0.0.1:") and nc.url.startswith("https://127.0.0.1:")
        assert op.app.ca_bundle == nc.app.ca_bundle == sandbox.ca_bundle
        assert sandbox.env()["OPNC_CA_BUNDLE"] == sandbox.ca_bundle
        context = sandbox.ssl_context()
        status, storage = op_call(op, "POST", "/api/v3/storages", storage_body(nc.url), context=context)
        assert status == 201, storage  # OpenProject's live probe of Nextcloud went over TLS
        assert [e["status"] for e in nc.requests()] == [200, 200]
        # and Nextcloud reaches OpenProject over TLS too
        request = urllib.request.Request(
            f"{nc.url}/index.php/apps/integration_openproject/is-valid-op-instance",
            data=json.dumps({"url": op.url}).encode(), method="POST",
            headers={"Authorization": nc_basic(nc.user, nc.password), "OCS-APIRequest": "true",
                     "Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            assert json.load(answer) == {"result": True}
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{op.url}/api/v3", context=ssl.create_default_context(), timeout=5)
        bundle = sandbox.ca_bundle
    assert not os.path.exists(bundle)


def test_two_pairs_are_independent() -> None:
    with Sandbox(pairs=2) as sandbox:
        first, second = sandbox.pairs
        assert (first.index, second.index) == (0, 1)
        assert first.openproject.token != second.openproject.token
        assert first.nextcloud.password != second.nextcloud.password
        assert op_call(first.openproject, "POST", "/api/v3/storages", storage_body(first.nextcloud.url))[0] == 201
        assert len(first.openproject.state()["storages"]) == 1
        assert second.openproject.state()["storages"] == []
        assert second.nextcloud.requests() == []
        assert op_call(second.openproject, "GET", "/api/v3/users/me", token=first.openproject.token)[0] == 401
        assert sandbox.env(1)["OPNC_OPENPROJECT_URL"] == second.openproject.url


def test_config_overrides_as_dict_and_as_object() -> None:
    shared = NextcloudConfig(app_version="2.8.1")
    with Sandbox(pairs=2, openproject={"version": "15.0.0", "instance_name": "Mine"}, nextcloud=shared) as sandbox:
        first, second = sandbox.pairs
        for pair in (first, second):
            status, root = op_call(pair.openproject, "GET", "/api/v3")
            assert (status, root["coreVersion"], root["instanceName"]) == (200, "15.0.0", "Mine")
            assert pair.nextcloud.config.app_version == "2.8.1"
        # dict overrides: each pair its own random token; an object: copied per pair
        assert first.openproject.token != second.openproject.token
        assert first.nextcloud.config is not second.nextcloud.config
        assert first.nextcloud.password == second.nextcloud.password == shared.admin_password


def test_invalid_config_fails_at_start_and_leaves_nothing_running() -> None:
    sandbox = Sandbox(openproject={"no_such_field": True})
    with pytest.raises(TypeError):
        sandbox.start()
    assert sandbox.pairs == []
    with pytest.raises(TypeError):
        Sandbox(openproject=NextcloudConfig()).start()
    with pytest.raises(ValueError):
        Sandbox(pairs=0)


def test_python_helpers_over_the_control_api(sandbox: Sandbox) -> None:
    op = sandbox.openproject
    active = op.faults([{"method": "GET", "path": "/api/v3", "action": "status", "status": 503, "times": 1}])
    assert active == [{"method": "GET", "path": "/api/v3", "when": "before", "action": "status",
                       "status": 503, "delay_ms": 0, "times": 1}]
    status, body = op_call(op, "GET", "/api/v3")
    assert status == 503
    assert body["_type"] == "Error"  # the OpenProject app supplies a HAL error body
    assert op.active_faults() == []
    assert op_call(op, "GET", "/api/v3")[0] == 200
    assert [e["status"] for e in op.requests(path="/api/v3")] == [503, 200]
    op.clear_requests()
    assert op.requests() == []
    op.faults({"path": "*", "action": "status", "status": 500})
    op.clear_faults()
    assert op_call(op, "GET", "/api/v3")[0] == 200
    op.latency(150)
    started = time.monotonic()
    op_call(op, "GET", "/api/v3")
    assert time.monotonic() - started >= 0.15
    op.latency(0)
    op.configure(instance_name="Changed")
    assert op_call(op, "GET", "/api/v3")[1]["instanceName"] == "Changed"
    op_call(op, "POST", "/api/v3/storages", storage_body(sandbox.nextcloud.url))
    op.reset()
    assert op.state()["storages"] == [] and op.requests() == []


def test_app_password_helper_mints_a_working_password(sandbox: Sandbox) -> None:
    nc = sandbox.nextcloud
    app_password = nc.app_password()
    assert app_password in sandbox.secrets()
    request = urllib.request.Request(f"{nc.url}/remote.php/dav", method="HEAD",
                                     headers={"Authorization": nc_basic(nc.user, app_password)})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    with pytest.raises(SandboxControlError):
        nc.app_password(user="nobody")


def test_secrets_lists_credentials_and_issued_secrets(sandbox: Sandbox) -> None:
    op, nc = sandbox.openproject, sandbox.nextcloud
    before = sandbox.secrets()
    assert {op.token, op.user_token, nc.password} <= set(before)
    status, storage = op_call(op, "POST", "/api/v3/storages", storage_body(nc.url))
    assert status == 201
    client_secret = storage["_embedded"]["oauthApplication"]["clientSecret"]
    after = sandbox.secrets()
    assert client_secret in after and client_secret not in before
    assert len(after) == len(set(after))


def test_stop_closes_the_ports_and_access_fails_clearly() -> None:
    sandbox = Sandbox().start()
    port = int(sandbox.openproject.url.rsplit(":", 1)[1])
    sandbox.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError, match="not running"):
        sandbox.openproject
    assert repr(sandbox) == "Sandbox(stopped)"


@pytest.mark.opnc_sandbox(openproject={"version": "14.6.0"}, latency_ms=0)
def test_marker_configures_the_fixture(sandbox: Sandbox, op: Any, nc: Any) -> None:
    assert op is sandbox.openproject and nc is sandbox.nextcloud
    assert op_call(op, "GET", "/api/v3")[1]["coreVersion"] == "14.6.0"


USER_TEST = textwrap.dedent('''
    import json, urllib.request, base64
    import pytest

    def test_user_can_reach_openproject(opnc_sandbox):
        env = opnc_sandbox.env()
        auth = base64.b64encode(("apikey:" + env["OPNC_OPENPROJECT_TOKEN"]).encode()).decode()
        request = urllib.request.Request(env["OPNC_OPENPROJECT_URL"] + "/api/v3", headers={"Authorization": "Basic " + auth})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["_type"] == "Root"

    @pytest.mark.opnc_sandbox(pairs=2, tls=True)
    def test_marker(opnc_sandbox):
        assert len(opnc_sandbox.pairs) == 2
        assert opnc_sandbox.ca_bundle is not None

    def test_fresh_per_test(opnc_sandbox):
        assert opnc_sandbox.openproject.state()["storages"] == []

    def test_env_fixture(opnc_sandbox_env, opnc_sandbox):
        import os
        assert os.environ["OPNC_OPENPROJECT_URL"] == opnc_sandbox.openproject.url
        assert opnc_sandbox_env["OPNC_NEXTCLOUD_USER"] == "admin"

    def test_env_is_restored():
        import os
        assert "OPNC_OPENPROJECT_URL" not in os.environ
''')


def run_user_suite(tmp_path: Path, extra: list[str], conftest: str | None = None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    if conftest is not None:
        (tmp_path / "conftest.py").write_text(conftest)
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPNC_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_plugin_enabled_with_dash_p(tmp_path: Path) -> None:
    result = run_user_suite(tmp_path, ["-p", "opnc.sandbox.pytest_plugin"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_plugin_enabled_with_pytest_plugins_in_conftest(tmp_path: Path) -> None:
    result = run_user_suite(tmp_path, [], conftest='pytest_plugins = ["opnc.sandbox.pytest_plugin"]\n')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_without_the_plugin_the_fixture_is_missing(tmp_path: Path) -> None:
    result = run_user_suite(tmp_path, ["-p", "no:opnc.sandbox.pytest_plugin"])  # also when opnc is installed
    assert result.returncode == 1
    assert "fixture 'opnc_sandbox' not found" in result.stdout


def test_sandbox_latency_overlaps_on_the_real_emulators() -> None:
    import concurrent.futures

    with Sandbox(latency_ms=200) as sandbox:
        op = sandbox.openproject
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(lambda _: op_call(op, "GET", "/api/v3")[0], range(10)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * 10
        assert 0.2 <= elapsed < 1.0
        sandbox.latency(0)
        started = time.monotonic()
        with urllib.request.urlopen(f"{sandbox.nextcloud.url}/status.php", timeout=5) as answer:
            assert answer.status == 200
        assert time.monotonic() - started < 0.2


def test_two_hundred_concurrent_requests_across_both_emulators(sandbox: Sandbox) -> None:
    import concurrent.futures

    op, nc = sandbox.openproject, sandbox.nextcloud

    def one(number: int) -> int:
        if number % 2:
            return op_call(op, "GET", "/api/v3/users/me")[0]
        request = urllib.request.Request(f"{nc.url}/status.php")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(one, range(200)))
    assert statuses == [200] * 200
    assert len(op.requests()) == 100 and len(nc.requests()) == 100
