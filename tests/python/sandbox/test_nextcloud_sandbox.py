"""Nextcloud emulator inside the shared Sandbox (conftest's ``sandbox`` fixture): its control-API
extras through the Sandbox helpers, runtime configuration, faults on /setup, TLS, and concurrent
use of one emulator."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from test_nextcloud_support import APP, BASE_VALUES, basic


def call(url: str, method: str = "GET", auth: tuple[str, str] | None = None, body: Any = None,
         context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/json", "OCS-APIRequest": "true", **(headers or {})})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", basic(*auth))
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def admin(sandbox) -> tuple[str, str]:
    return sandbox.nextcloud.user, sandbox.nextcloud.password


def test_minted_app_password_logs_the_admin_in(sandbox):
    app_password = sandbox.nextcloud.app_password()
    status, body = call(sandbox.nextcloud.url + f"{APP}/check-admin-config", auth=(sandbox.nextcloud.user, app_password))
    assert status == 200
    assert body == {"config_status_without_project_folder": False, "project_folder_setup_status": False}
    assert app_password in sandbox.secrets()


def test_config_route_switches_the_app_version(sandbox):
    status, _ = call(sandbox.nextcloud.url + "/_sandbox/config", "POST", body={"app_version": "3.2.0-dev"})
    assert status == 200
    status, body = call(sandbox.nextcloud.url + f"{APP}/setup", "POST", auth=admin(sandbox),
                        body={"values": {**BASE_VALUES, "foo": 1}})
    assert (status, body) == (400, {"error": "Unknown setting: foo"})


def test_config_route_refuses_an_unknown_field(sandbox):
    with pytest.raises(ValueError):
        sandbox.nextcloud.configure(no_such_field=True)


def test_state_route_shows_the_integration(sandbox):
    call(sandbox.nextcloud.url + f"{APP}/setup", "POST", auth=admin(sandbox), body={"values": BASE_VALUES})
    status, state = call(sandbox.nextcloud.url + "/_sandbox/state")
    assert status == 200
    assert state["integration"]["openproject_instance_url"] == BASE_VALUES["openproject_instance_url"]
    assert state["integration"]["openproject_client_id"] == BASE_VALUES["openproject_client_id"]
    assert [sorted(c) for c in state["oauth_clients"]] == [["client_id", "id", "name", "redirect_uri"]]
    assert state["project_folder_setup"] is False
    assert BASE_VALUES["openproject_client_secret"] not in json.dumps(state)


def test_a_setup_whose_answer_is_lost_is_still_applied(sandbox):
    nc = sandbox.nextcloud
    nc.faults([{"method": "POST", "path": f"{APP}/setup", "when": "after", "action": "status", "status": 502,
                "times": 1}])
    status, _ = call(nc.url + f"{APP}/setup", "POST", auth=admin(sandbox), body={"values": BASE_VALUES})
    assert status == 502
    assert len(nc.state()["oauth_clients"]) == 1  # the client exists; its secret is lost
    status, body = call(nc.url + f"{APP}/check-admin-config", auth=admin(sandbox))
    assert body["config_status_without_project_folder"] is True


def test_a_setup_refused_before_it_runs_changes_nothing(sandbox):
    nc = sandbox.nextcloud
    nc.faults([{"method": "POST", "path": f"{APP}/setup", "when": "before", "action": "status", "status": 503,
                "times": 1}])
    status, _ = call(nc.url + f"{APP}/setup", "POST", auth=admin(sandbox), body={"values": BASE_VALUES})
    assert status == 503
    assert nc.state()["oauth_clients"] == []


@pytest.mark.opnc_sandbox(tls=True)
def test_nextcloud_over_tls_probes_openproject_with_the_sandbox_ca(sandbox):
    context = ssl.create_default_context(cafile=sandbox.ca_bundle)
    status, body = call(sandbox.nextcloud.url + f"{APP}/is-valid-op-instance", "POST", auth=admin(sandbox),
                        body={"url": sandbox.openproject.url}, context=context)
    assert sandbox.nextcloud.url.startswith("https://")
    assert (status, body) == (200, {"result": True})


def test_concurrent_setups_leave_exactly_one_client(sandbox):
    results: list[int] = []
    lock = threading.Lock()

    def post() -> None:
        status, _ = call(sandbox.nextcloud.url + f"{APP}/setup", "POST", auth=admin(sandbox),
                         body={"values": BASE_VALUES})
        with lock:
            results.append(status)

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 20
    state = sandbox.nextcloud.state()
    assert [c["id"] for c in state["oauth_clients"]] == [20]
    assert state["integration"]["nc_oauth_client_id"] == "20"
