"""Operating an integration: status and drift, rotate, teardown, the integration_setup.sh drop-in,
and the exchange against several server versions."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import mutating_requests
from .nextcloud_admin import nextcloud_setup, openproject
from .test_exchange import assert_consistent


def _journal(state_dir: str) -> dict:
    files = [f for f in os.listdir(state_dir) if f.endswith(".json") and ".archived-" not in f]
    assert len(files) == 1, files
    with open(os.path.join(state_dir, files[0])) as f:
        return json.load(f)


def _problems(run) -> set[str]:
    return {line["name"] for line in run.json["lines"] if line["level"] == "problem"}


def test_status_of_a_healthy_integration_is_all_ok(sandbox, opnc_cli):
    assert opnc_cli("apply", "--project-folders").code == 0
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    run = opnc_cli("status")
    assert run.code == 0, run.out + run.err
    assert run.json["healthy"] is True
    assert all(line["level"] == "ok" for line in run.json["lines"]), run.json["lines"]
    names = {line["name"] for line in run.json["lines"]}
    assert {"storage", "configured", "application_password", "authentication_method", "nextcloud_openproject_url",
            "nextcloud_admin_config", "nextcloud_project_folder", "app_password_accepted",
            "nextcloud_client_registered", "openproject_client_matches_journal", "journal"} <= names
    # Read only: the token-endpoint probes are POSTs that change nothing; no write reaches the APIs.
    assert [r for r in mutating_requests(sandbox.openproject) if r["path"] != "/oauth/token"] == []
    assert [r for r in mutating_requests(sandbox.nextcloud) if "/oauth2/" not in r["path"]] == []


def _drift_nextcloud_points_elsewhere(sb):
    nextcloud_setup(sb, "PATCH", {"openproject_instance_url": "https://openproject.elsewhere.example"})


def _drift_openproject_holds_another_nextcloud_client(sb):
    storage = sb.openproject.state()["storages"][0]
    openproject(sb, "POST", f"/api/v3/storages/{storage['id']}/oauth_client_credentials",
                {"clientId": "someone-elses-client", "clientSecret": "someone-elses-secret-1234"})


def _drift_nextcloud_reset(sb):
    nextcloud_setup(sb, "DELETE")


def _drift_app_password_rotated_outside(sb):
    nextcloud_setup(sb, "PATCH", {"setup_app_password": True})


DRIFTS = [
    ("nextcloud-points-elsewhere", _drift_nextcloud_points_elsewhere, {"nextcloud_openproject_url"}),
    ("openproject-holds-another-client", _drift_openproject_holds_another_nextcloud_client,
     {"nextcloud_client_in_openproject"}),
    ("nextcloud-client-deleted", _drift_nextcloud_reset, {"nextcloud_admin_config", "nextcloud_client_registered"}),
    ("app-password-rejected", _drift_app_password_rotated_outside, {"app_password_accepted"}),
]


@pytest.mark.parametrize("case,make_drift,expected", DRIFTS, ids=[d[0] for d in DRIFTS])
def test_status_names_each_drift_and_apply_repairs_it(sandbox, opnc_cli, case, make_drift, expected):
    assert opnc_cli("apply", "--project-folders").code == 0
    make_drift(sandbox)
    run = opnc_cli("status")
    assert run.code == 5, run.out + run.err
    assert expected <= _problems(run), run.json["lines"]
    assert all(line["hint"] for line in run.json["lines"] if line["level"] == "problem")

    repaired = opnc_cli("apply", "--project-folders")
    assert repaired.code == 0, repaired.out + repaired.err
    assert repaired.json["changed"] is True
    after = opnc_cli("status")
    assert after.code == 0, after.json["lines"]
    assert_consistent(sandbox, project_folders=True)


def test_status_names_a_storage_moved_to_another_host_and_apply_says_why_it_cannot_repair_it(opnc_sandbox_pairs, opnc_cli_for):
    sb = opnc_sandbox_pairs
    cli = opnc_cli_for(sb)
    assert cli("apply").code == 0
    storage = sb.openproject.state()["storages"][0]
    openproject(sb, "PATCH", f"/api/v3/storages/{storage['id']}",
                {"_links": {"origin": {"href": sb.pairs[1].nextcloud.url}}})
    run = cli("status")
    assert run.code == 5
    storage_line = next(line for line in run.json["lines"] if line["name"] == "storage")
    assert storage_line["level"] == "problem" and sb.pairs[1].nextcloud.url in storage_line["detail"]
    assert storage_line["hint"]
    again = cli("apply")
    assert again.code == 3, again.out
    assert again.json["error"]["hint"]
    assert sb.openproject.state()["storages"][0]["host"].rstrip("/") == sb.pairs[1].nextcloud.url


@pytest.fixture
def opnc_sandbox_pairs():
    from opnc.sandbox import Sandbox

    with Sandbox(pairs=2) as sb:
        yield sb


@pytest.fixture
def opnc_cli_for(tmp_path, monkeypatch):
    from .conftest import OpncRunner

    return lambda sb: OpncRunner(sb, str(tmp_path / "state"), monkeypatch)


def _probe_openproject(sb, client_id, client_secret) -> str:
    from opnc import oauth

    return oauth.probe_client(oauth.openproject_client(sb.openproject.url, client_id, client_secret)).outcome


def _probe_nextcloud(sb, client_id) -> str:
    from opnc import oauth

    return oauth.probe_client(oauth.nextcloud_client(sb.nextcloud.url, client_id, "unused-secret-xyz")).outcome


def test_rotate_nextcloud_client(sandbox, opnc_cli):
    assert opnc_cli("apply", "--project-folders").code == 0
    before = _journal(opnc_cli.state_dir)
    run = opnc_cli("rotate", "--nextcloud-client", "--project-folders")
    assert run.code == 0, run.out + run.err
    after = _journal(opnc_cli.state_dir)
    assert after["nextcloud_client_id"] != before["nextcloud_client_id"]
    clients = [c["client_id"] for c in sandbox.nextcloud.state()["oauth_clients"]]
    assert clients == [after["nextcloud_client_id"]]  # the old client is gone from Nextcloud
    assert _probe_nextcloud(sandbox, before["nextcloud_client_id"]) == "not_registered"
    assert _probe_nextcloud(sandbox, after["nextcloud_client_id"]) == "registered"
    assert all(c["ok"] for c in run.json["checks"])
    assert_consistent(sandbox, project_folders=True)
    assert opnc_cli("verify").code == 0


def test_rotate_app_password(sandbox, opnc_cli):
    import base64
    import urllib.error
    import urllib.request

    assert opnc_cli("apply", "--project-folders").code == 0
    old = _journal(opnc_cli.state_dir)["app_password"]
    run = opnc_cli("rotate", "--app-password", "--project-folders")
    assert run.code == 0, run.out + run.err
    new = _journal(opnc_cli.state_dir)["app_password"]
    assert new != old

    def dav(password):
        req = urllib.request.Request(sandbox.nextcloud.url + "/remote.php/dav", method="HEAD")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"OpenProject:{password}".encode()).decode())
        try:
            return urllib.request.urlopen(req, timeout=10).status
        except urllib.error.HTTPError as e:
            return e.code

    assert dav(old) == 401
    assert dav(new) == 200
    assert opnc_cli("verify").code == 0


def test_rotate_replace_storage_needs_yes_and_then_replaces_it(sandbox, opnc_cli):
    assert opnc_cli("apply").code == 0
    old = sandbox.openproject.state()["storages"][0]
    refused = opnc_cli("rotate", "--replace-storage")
    assert refused.code == 3
    assert "--yes" in refused.json["error"]["hint"]
    assert sandbox.openproject.state()["storages"][0]["id"] == old["id"]

    old_journal = _journal(opnc_cli.state_dir)
    run = opnc_cli("rotate", "--replace-storage", "--yes")
    assert run.code == 0, run.out + run.err
    new_journal = _journal(opnc_cli.state_dir)
    assert _probe_openproject(sandbox, old_journal["openproject_client_id"], old_journal["openproject_client_secret"]) == "rejected"
    assert _probe_openproject(sandbox, new_journal["openproject_client_id"], new_journal["openproject_client_secret"]) == "accepted"
    new = assert_consistent(sandbox, project_folders=False)
    assert new["id"] != old["id"]
    assert new["oauth_application_client_id"] != old["oauth_application_client_id"]
    assert opnc_cli("verify").code == 0


def test_rotate_without_a_choice_explains_the_openproject_side(sandbox, opnc_cli):
    run = opnc_cli("rotate")
    assert run.code == 2
    assert "Replace OAuth values" in run.err and "--replace-storage" in run.err
    assert sandbox.openproject.requests() == []


def test_teardown_removes_both_sides_and_a_second_run_changes_nothing(sandbox, opnc_cli):
    assert opnc_cli("apply", "--project-folders").code == 0
    refused = opnc_cli("teardown")
    assert refused.code == 3
    assert refused.json["error"]["kind"] == "confirmation_required"
    assert len(sandbox.openproject.state()["storages"]) == 1

    run = opnc_cli("teardown", "--yes")
    assert run.code == 0, run.out + run.err
    result = run.json
    assert result["changed"] is True
    assert sandbox.openproject.state()["storages"] == []
    nc = sandbox.nextcloud.state()
    assert nc["oauth_clients"] == []
    assert not nc["integration"].get("openproject_client_id")
    remaining = " ".join(result["remaining"])
    assert "team folder" in remaining and "app password" in remaining
    assert result["archived_journal"] and os.path.exists(result["archived_journal"])
    assert [f for f in os.listdir(opnc_cli.state_dir) if f.endswith(".json") and ".archived-" not in f] == []

    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    again = opnc_cli("teardown", "--yes")
    assert again.code == 0
    assert again.json["changed"] is False
    assert mutating_requests(sandbox.openproject) == [] and mutating_requests(sandbox.nextcloud) == []


def test_apply_from_integration_setup_env(sandbox, opnc_cli):
    env = {
        "NEXTCLOUD_HOST": sandbox.nextcloud.url, "OPENPROJECT_HOST": sandbox.openproject.url,
        "OP_ADMIN_USERNAME": "apikey", "OP_ADMIN_PASSWORD": sandbox.openproject.token,
        "NC_ADMIN_USERNAME": sandbox.nextcloud.user, "NC_ADMIN_PASSWORD": sandbox.nextcloud.password,
        "OPENPROJECT_STORAGE_NAME": "Nextcloud (script)", "SETUP_PROJECT_FOLDER": "true",
        # The script's variables replace opnc's own:
        "OPNC_OPENPROJECT_URL": None, "OPNC_OPENPROJECT_TOKEN": None, "OPNC_NEXTCLOUD_URL": None,
        "OPNC_NEXTCLOUD_USER": None, "OPNC_NEXTCLOUD_PASSWORD": None,
    }
    run = opnc_cli("apply", "--from-integration-setup-env", env=env)
    assert run.code == 0, run.out + run.err
    storage = assert_consistent(sandbox, project_folders=True)
    assert storage["name"] == "Nextcloud (script)"
    again = opnc_cli("apply", "--from-integration-setup-env", env=env)
    assert again.code == 0 and again.json["changed"] is False


VERSIONS = [
    ("nc-2.8.1", {}, {"app_version": "2.8.1", "version": "31.0.9"}),
    ("nc-3.1.1", {}, {"app_version": "3.1.1"}),
    ("nc-3.2.0", {}, {"app_version": "3.2.0"}),
    ("op-14.6", {"version": "14.6.3"}, {}),
    ("op-16.0", {"version": "16.0.0"}, {}),
]


@pytest.mark.parametrize("case,op_config,nc_config", VERSIONS, ids=[v[0] for v in VERSIONS])
@pytest.mark.parametrize("project_folders", [False, True], ids=["plain", "project-folders"])
def test_exchange_status_and_teardown_across_versions(tmp_path, monkeypatch, case, op_config, nc_config, project_folders):
    from opnc.sandbox import Sandbox

    from .conftest import OpncRunner

    with Sandbox(openproject=op_config or None, nextcloud=nc_config or None) as sb:
        cli = OpncRunner(sb, str(tmp_path / "state"), monkeypatch)
        flags = ["--project-folders"] if project_folders else []
        run = cli("apply", *flags)
        assert run.code == 0, run.out + run.err
        assert all(c["ok"] for c in run.json["checks"])
        assert_consistent(sb, project_folders)
        again = cli("apply", *flags)
        assert again.code == 0 and again.json["changed"] is False
        status = cli("status")
        assert status.code == 0, status.json["lines"]
        down = cli("teardown", "--yes")
        assert down.code == 0, down.out + down.err
        assert sb.openproject.state()["storages"] == []
        assert sb.nextcloud.state()["oauth_clients"] == []
        assert cli("teardown", "--yes").json["changed"] is False


def test_rotate_takes_in_openproject_values_replaced_in_its_ui(sandbox, opnc_cli, tmp_path):
    import urllib.request

    assert opnc_cli("apply").code == 0
    storage = sandbox.openproject.state()["storages"][0]
    # An admin clicks "Replace OAuth values" in OpenProject's storage settings (the sandbox's stand-in).
    req = urllib.request.Request(
        f"{sandbox.openproject.url}/_sandbox/openproject/storages/{storage['id']}/replace-oauth-application",
        method="POST", data=b"{}")
    with urllib.request.urlopen(req, timeout=10) as r:
        new = json.loads(r.read())
    drift = opnc_cli("status")
    assert drift.code == 5
    assert "openproject_client_matches_journal" in _problems(drift)

    secret_file = tmp_path / "op-client-secret"
    secret_file.write_text(new["clientSecret"] + "\n")
    secret_file.chmod(0o600)
    old_journal = _journal(opnc_cli.state_dir)
    nc_client_before = old_journal["nextcloud_client_id"]
    # Client ids are URL-safe base64 and may start with "-": the = form keeps argparse from taking
    # such an id for an option.
    run = opnc_cli("rotate", f"--openproject-client-id={new['clientId']}",
                   "--openproject-client-secret-file", str(secret_file))
    assert run.code == 0, run.out + run.err
    assert new["clientSecret"] not in run.out + run.err
    journal = _journal(opnc_cli.state_dir)
    assert journal["openproject_client_id"] == new["clientId"]
    assert journal["nextcloud_client_id"] == nc_client_before  # Nextcloud's client was kept (PATCH)
    assert sandbox.nextcloud.state()["integration"]["openproject_client_id"] == new["clientId"]
    assert opnc_cli("status").code == 0
    assert_consistent(sandbox, project_folders=False)
    assert _probe_openproject(sandbox, old_journal["openproject_client_id"], old_journal["openproject_client_secret"]) == "rejected"
