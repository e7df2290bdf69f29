"""The two-way exchange end to end against the sandbox (issue: plan, apply, verify; CLI and API)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from .conftest import MUTATING, mutating_requests

NC_SETUP = "/index.php/apps/integration_openproject/setup"


def assert_consistent(sb, project_folders: bool) -> dict:
    """The end state of a good setup: one storage, one Nextcloud client, and both sides agree."""
    op_state = sb.openproject.state()
    nc_state = sb.nextcloud.state()
    storages = op_state["storages"]
    assert len(storages) == 1, storages
    storage = storages[0]
    assert storage["host"].rstrip("/") == sb.nextcloud.url
    clients = nc_state["oauth_clients"]
    assert len(clients) == 1, clients
    assert storage["oauth_client_client_id"] == clients[0]["client_id"]
    assert storage["oauth_application_client_id"]
    assert nc_state["integration"]["openproject_client_id"] == storage["oauth_application_client_id"]
    assert nc_state["integration"]["openproject_instance_url"].rstrip("/") == sb.openproject.url
    assert storage["has_application_password"] is project_folders
    return storage


@pytest.mark.parametrize("project_folders", [False, True])
def test_fresh_setup_converges_and_verifies(sandbox, opnc_cli, project_folders):
    args = ["apply"] + (["--project-folders"] if project_folders else [])
    run = opnc_cli(*args)
    assert run.code == 0, run.out + run.err
    result = run.json
    assert result["changed"] is True
    statuses = {s["name"]: s["status"] for s in result["steps"]}
    assert [s["name"] for s in result["steps"]] == [
        "preflight", "create_storage", "configure_nextcloud", "store_nextcloud_client", "set_app_password", "verify"]
    assert statuses == {"preflight": "done", "create_storage": "done", "configure_nextcloud": "done",
                        "store_nextcloud_client": "done", "set_app_password": "done" if project_folders else "skipped",
                        "verify": "done"}
    assert all(c["ok"] for c in result["checks"]), result["checks"]
    storage = assert_consistent(sandbox, project_folders)
    assert result["storage_id"] == storage["id"]
    assert result["openproject_client_id"] == storage["oauth_application_client_id"]
    assert result["nextcloud_client_id"] == storage["oauth_client_client_id"]

    verify = opnc_cli("verify")
    assert verify.code == 0, verify.out
    assert verify.json["ok"] is True


@pytest.mark.parametrize("project_folders", [False, True])
def test_rerun_changes_nothing_and_sends_no_write(sandbox, opnc_cli, project_folders):
    args = ["apply"] + (["--project-folders"] if project_folders else [])
    assert opnc_cli(*args).code == 0
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    run = opnc_cli(*args)
    assert run.code == 0, run.out + run.err
    assert run.json["changed"] is False
    assert mutating_requests(sandbox.openproject) == []
    assert mutating_requests(sandbox.nextcloud) == []
    assert_consistent(sandbox, project_folders)


def test_plan_is_read_only_and_lists_the_steps(sandbox, opnc_cli):
    run = opnc_cli("plan", "--project-folders")
    assert run.code == 0, run.err
    plan = run.json
    assert [s["name"] for s in plan["steps"]] == [
        "create_storage", "configure_nextcloud", "store_nextcloud_client", "set_app_password"]
    assert all(s["reason"] for s in plan["steps"])
    assert mutating_requests(sandbox.openproject) == []
    assert [r for r in mutating_requests(sandbox.nextcloud) if r["path"] != "/index.php/apps/integration_openproject/is-valid-op-instance"] == []
    assert sandbox.openproject.state()["storages"] == []


FAULT_STEPS = [
    ("create_storage", "openproject", "POST", "/api/v3/storages"),
    ("configure_nextcloud", "nextcloud", "POST", NC_SETUP),
    ("store_nextcloud_client", "openproject", "POST", "/api/v3/storages/*/oauth_client_credentials"),
    ("set_app_password", "openproject", "PATCH", "/api/v3/storages/*"),
]


@pytest.mark.parametrize("step,side,method,path", FAULT_STEPS, ids=[s[0] for s in FAULT_STEPS])
@pytest.mark.parametrize("fault", ["before-500", "after-reset"])
def test_a_failed_step_is_resumed_by_the_next_run(sandbox, opnc_cli, step, side, method, path, fault):
    when, action = fault.split("-")
    rule = {"method": method, "path": path, "when": when, "times": 1}
    rule.update({"action": "status", "status": 500} if action == "500" else {"action": "reset"})
    getattr(sandbox, side).faults([rule])

    first = opnc_cli("apply", "--project-folders")
    assert first.code == 4, first.out + first.err
    assert first.json["error"]["step"] == step
    failed = [s for s in first.json["steps"] if s["status"] == "failed"]
    assert [s["name"] for s in failed] == [step]

    second = opnc_cli("apply", "--project-folders")
    assert second.code == 0, second.out + second.err
    assert all(c["ok"] for c in second.json["checks"]), second.json["checks"]
    assert_consistent(sandbox, project_folders=True)


def _create_storage_outside_opnc(sb, name="Nextcloud", complete=False):
    """Creates a storage for the sandbox's Nextcloud directly through OpenProject's API, as an
    admin clicking through the UI would; optionally completes the exchange by hand."""
    import urllib.request
    import base64

    def op(method, path, body):
        req = urllib.request.Request(sb.openproject.url + path, method=method, data=json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"apikey:{sb.openproject.token}".encode()).decode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    created = op("POST", "/api/v3/storages", {
        "name": name, "applicationPassword": "",
        "_links": {"origin": {"href": sb.nextcloud.url},
                   "type": {"href": "urn:openproject-org:api:v3:storages:Nextcloud"}}})
    if not complete:
        return created
    app = created["_embedded"]["oauthApplication"]
    req = urllib.request.Request(sb.nextcloud.url + NC_SETUP, method="POST", data=json.dumps({"values": {
        "openproject_instance_url": sb.openproject.url, "openproject_client_id": app["clientId"],
        "openproject_client_secret": app["clientSecret"], "default_enable_navigation": False,
        "default_enable_unified_search": False, "setup_project_folder": False, "setup_app_password": False}}).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    req.add_header("OCS-APIRequest", "true")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{sb.nextcloud.user}:{sb.nextcloud.password}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        nc = json.loads(r.read())
    op("POST", f"/api/v3/storages/{created['id']}/oauth_client_credentials",
       {"clientId": nc["nextcloud_client_id"], "clientSecret": nc["nextcloud_client_secret"]})
    return created


def test_incomplete_storage_made_outside_opnc_needs_replace_storage(sandbox, opnc_cli):
    created = _create_storage_outside_opnc(sandbox)
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    run = opnc_cli("apply")
    assert run.code == 3, run.out + run.err
    assert run.json["error"]["kind"] == "confirmation_required"
    assert "--replace-storage" in run.json["error"]["hint"]
    assert mutating_requests(sandbox.openproject) == []
    assert [r for r in mutating_requests(sandbox.nextcloud) if not r["path"].endswith("/is-valid-op-instance")] == []

    run = opnc_cli("apply", "--replace-storage")
    assert run.code == 0, run.out + run.err
    storage = assert_consistent(sandbox, project_folders=False)
    assert storage["id"] != created["id"]


def test_complete_storage_made_outside_opnc_is_left_alone(sandbox, opnc_cli):
    _create_storage_outside_opnc(sandbox, complete=True)
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    run = opnc_cli("apply")
    assert run.code == 0, run.out + run.err
    assert run.json["changed"] is False
    assert any("does not hold its secrets" in n for n in run.json["notes"])
    assert mutating_requests(sandbox.openproject) == []


def test_existing_project_folder_entities_do_not_surface_as_409(sandbox, opnc_cli):
    # A first integration with project folders, then a reset of Nextcloud's integration: the user,
    # group and team folder stay (contract nextcloud.md §7), and a new setup must not trip over them.
    assert opnc_cli("apply", "--project-folders").code == 0
    old_password_storage = sandbox.openproject.state()["storages"][0]
    import base64
    import urllib.request
    req = urllib.request.Request(sandbox.nextcloud.url + NC_SETUP, method="DELETE")
    req.add_header("Accept", "application/json")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{sandbox.nextcloud.user}:{sandbox.nextcloud.password}".encode()).decode())
    urllib.request.urlopen(req, timeout=10).read()
    sandbox.nextcloud.clear_requests()

    run = opnc_cli("apply", "--project-folders")
    assert run.code == 0, run.out + run.err
    statuses = [r["status"] for r in sandbox.nextcloud.requests()]
    assert 409 not in statuses
    setup_calls = [r for r in sandbox.nextcloud.requests() if r["path"] == NC_SETUP]
    assert setup_calls and all(r["status"] == 200 for r in setup_calls)
    storage = assert_consistent(sandbox, project_folders=True)
    assert storage["id"] == old_password_storage["id"]
    assert all(c["ok"] for c in run.json["checks"]), run.json["checks"]


PREFLIGHT_FAILURES = [
    # (id, how to break it, expected error kind, a word the hint must contain)
    ("openproject-token-wrong", {"env": {"OPNC_OPENPROJECT_TOKEN": "not-a-valid-token"}}, "unauthenticated", "token"),
    ("openproject-not-admin", {"op_user_token": True}, "forbidden", "admin"),
    ("nextcloud-password-wrong", {"env": {"OPNC_NEXTCLOUD_PASSWORD": "wrong-password"}}, "unauthenticated", "password"),
    ("nextcloud-maintenance", {"nc": {"maintenance": True}}, "preflight_failed", "maintenance"),
    ("nextcloud-app-missing", {"nc": {"app_installed": False}}, "preflight_failed", "integration_openproject"),
    ("authorization-header-stripped", {"nc": {"strip_authorization": True}}, "preflight_failed", "Authorization"),
    ("groupfolders-missing", {"nc": {"groupfolders": False}, "args": ["--project-folders"]}, "preflight_failed", "groupfolders"),
    ("nextcloud-url-not-https", {"env": {"OPNC_NEXTCLOUD_URL": "http://nextcloud.example.org"}}, "preflight_failed", "https"),
    ("openproject-unreachable", {"env": {"OPNC_OPENPROJECT_URL": "http://127.0.0.1:9"}}, "connection_failed", "OpenProject"),
    ("nextcloud-unreachable", {"env": {"OPNC_NEXTCLOUD_URL": "http://127.0.0.1:9"}}, "connection_failed", "Nextcloud"),
    ("openproject-too-old", {"op": {"version": "12.4.0"}}, "unsupported_version", "upgrade"),
    ("openproject-admin-locked", {"op": {"admin_active": False}}, "forbidden", "active"),
    ("integration-app-too-old", {"nc": {"app_version": "2.6.3"}}, "unsupported_version", "update"),
    ("nextcloud-needs-an-app-password", {"nc": {"allow_password_login": False}}, "unauthenticated", "app password"),
]


@pytest.mark.parametrize("case,breakage,kind,hint_word", PREFLIGHT_FAILURES, ids=[c[0] for c in PREFLIGHT_FAILURES])
def test_preflight_failures_exit_3_with_a_hint_and_change_nothing(sandbox, opnc_cli, case, breakage, kind, hint_word):
    env = dict(breakage.get("env", {}))
    if breakage.get("op_user_token"):
        env["OPNC_OPENPROJECT_TOKEN"] = sandbox.openproject.user_token
    if "nc" in breakage:
        sandbox.nextcloud.configure(**breakage["nc"])
    if "op" in breakage:
        sandbox.openproject.configure(**breakage["op"])
    run = opnc_cli("apply", *breakage.get("args", []), env=env)
    assert run.code == 3, run.out + run.err
    error = run.json["error"]
    assert error["kind"] == kind, error
    assert error["step"] == "preflight"
    assert hint_word.lower() in (error["hint"] + " " + error["message"]).lower(), error
    assert error["hint"]
    assert mutating_requests(sandbox.openproject) == []
    assert [r for r in mutating_requests(sandbox.nextcloud) if not r["path"].endswith("/is-valid-op-instance")] == []
    assert sandbox.openproject.state()["storages"] == []


def test_enterprise_required_exits_3_and_leaves_nothing(sandbox, opnc_cli):
    sandbox.openproject.configure(two_way_requires_enterprise=True, enterprise=False)
    run = opnc_cli("apply", "--project-folders")
    assert run.code == 3, run.out + run.err
    assert run.json["error"]["kind"] == "enterprise_required"
    assert "enterprise" in run.json["error"]["hint"].lower()
    assert sandbox.openproject.state()["storages"] == []
    nc = sandbox.nextcloud.state()
    assert nc["oauth_clients"] == []
    assert not nc["integration"].get("openproject_client_id")


@pytest.mark.parametrize("args,env", [
    (["apply"], {"OPNC_OPENPROJECT_URL": "ftp://openproject.example"}),
    (["apply"], {"OPNC_NEXTCLOUD_URL": "not a url"}),
    (["apply"], {"OPNC_NEXTCLOUD_URL": "https://user:pw@cloud.example"}),
    (["apply", "--storage-name", ""], {}),
    (["apply", "--storage-name", "x" * 256], {}),
    (["apply", "--openproject-token", "s3cr3t-token-value"], {}),
    (["apply", "--nextcloud-password=s3cr3t-password"], {}),
], ids=["ftp-url", "not-a-url", "user-info", "empty-name", "name-256", "token-argument", "password-argument"])
def test_invalid_input_exits_2_before_any_request(sandbox, opnc_cli, args, env):
    run = opnc_cli(*args, env=env)
    assert run.code == 2, run.out + run.err
    assert sandbox.openproject.requests() == []
    assert sandbox.nextcloud.requests() == []
    assert "s3cr3t" not in run.out + run.err
    assert "pw@" not in run.out + run.err


def test_journal_holds_the_secrets_with_mode_0600(sandbox, opnc_cli):
    assert opnc_cli("apply", "--project-folders").code == 0
    files = [f for f in os.listdir(opnc_cli.state_dir) if f.endswith(".json")]
    assert len(files) == 1
    path = os.path.join(opnc_cli.state_dir, files[0])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(opnc_cli.state_dir).st_mode) == 0o700
    data = json.load(open(path))
    storage = sandbox.openproject.state()["storages"][0]
    assert data["storage_id"] == storage["id"]
    assert data["openproject_client_id"] == storage["oauth_application_client_id"]
    assert data["nextcloud_client_id"] == storage["oauth_client_client_id"]
    for key in ("openproject_client_secret", "nextcloud_client_secret", "app_password"):
        assert data[key] in sandbox.secrets(), key


def test_python_api_plan_apply_verify(sandbox, tmp_path):
    import opnc

    op = opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token)
    nc = opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user, sandbox.nextcloud.password)
    integration = opnc.Integration(op, nc, storage_name="Files", project_folders=True, state_dir=tmp_path)
    plan = integration.plan()
    assert plan.changes and "create_storage" in str(plan)
    events = []
    result = integration.apply(on_event=events.append)
    assert result.changed and result.verify is not None and result.verify.ok
    started = [e["step"] for e in events if e["type"] == "step_started"]
    assert started[:2] == ["preflight", "create_storage"] and "verify" in started
    assert integration.verify().ok
    again = integration.apply()
    assert again.changed is False
    text = repr(op) + repr(nc) + repr(integration) + str(result) + json.dumps(result.to_dict())
    for secret in sandbox.secrets():
        assert secret not in text


def test_demo_exits_0():
    proc = subprocess.run([sys.executable, "-m", "opnc", "demo"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Done" in proc.stdout
