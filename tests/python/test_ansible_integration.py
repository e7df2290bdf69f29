"""The Ansible collection opnc.integration end to end: real `ansible-playbook` (Debian's ansible-core)
runs the modules on the controller against the in-process sandbox.

Each playbook run costs a few seconds, so a test runs several tasks in one playbook where the
request log between them does not matter. Secrets reach ansible-playbook only through an extra-vars
file (mode 0600), an Ansible Vault file or the environment, never through its argv.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import opnc
import opnc.api  # noqa: F401 - the compiled core must be importable here, as for the modules

REPO = Path(__file__).resolve().parents[2]
# ansible-core ships no JSON stdout callback (ansible.posix has one): the tests bring their own.
CALLBACKS = Path(__file__).resolve().parent / "ansible_callbacks"
MUTATING = ("POST", "PATCH", "PUT", "DELETE")
KNOWN_AFTER_APPLY = "(known after apply)"

# ansible-core is a test dependency (tools/bootstrap installs it): its absence is a failure, not a skip.
assert shutil.which("ansible-playbook"), "ansible-core is not installed (bash tools/bootstrap installs it)"


def _opnc_pythonpath() -> str:
    """The folders from which this interpreter imports opnc and its compiled core (a source tree
    plus a build folder, or one installed package), for the interpreter that runs the modules."""
    import opnc._core as core

    folders = [str(Path(p).parent) for p in opnc.__path__] + [str(Path(core.__file__).parent.parent)]
    return os.pathsep.join(dict.fromkeys(folders))


def mutating_requests(endpoint: Any, since: int = 0) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in endpoint.requests(since=since) if r["method"] in MUTATING]


# The credential probes of verify and status: a POST to each token endpoint with a made-up code,
# which the server refuses; they change nothing.
CREDENTIAL_PROBES = {("POST", "/oauth/token"), ("POST", "/index.php/apps/oauth2/api/v1/token")}


def last_seq(endpoint: Any) -> int:
    log = endpoint.requests()
    return log[-1]["seq"] if log else 0


@dataclass
class PlaybookRun:
    code: int
    out: str
    err: str
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # host -> task results in order

    @property
    def output(self) -> str:
        return self.out + self.err

    def task(self, index: int, host: str = "localhost") -> dict[str, Any]:
        return self.results[host][index]


class Ansible:
    """Writes playbooks and vars into a test's tmp_path and runs ansible-playbook on them."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.state_dir = tmp_path / "state"
        self.home = tmp_path / "ansible-home"
        self.home.mkdir()
        self.runs = 0
        self.python = sys.executable
        self.pythonpath = _opnc_pythonpath()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPNC_", "ANSIBLE_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(REPO),
            "ANSIBLE_PYTHON_INTERPRETER": self.python,
            "PYTHONPATH": self.pythonpath,
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_HOME": str(self.home),
            "ANSIBLE_LOCAL_TEMP": str(self.home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(self.home / "remote-tmp"),
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "true",
            "ANSIBLE_CONFIG": str(self.root / "no-ansible.cfg"),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        })
        env.update(extra or {})
        return env

    def secret_vars(self, values: dict[str, Any]) -> Path:
        """An extra-vars file readable only by its owner, as a vault-decrypted file would be."""
        self.runs += 1
        path = self.root / f"vars-{self.runs}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(values, f)
        return path

    def run(self, playbook: Any, *options: str, extra_vars: dict[str, Any] | None = None,
            inventory: str | Path | None = None, env: dict[str, str] | None = None,
            json_callback: bool = True) -> PlaybookRun:
        self.runs += 1
        if isinstance(playbook, Path):
            playbook_path = playbook
        else:
            playbook_path = self.root / f"playbook-{self.runs}.yml"
            playbook_path.write_text(json.dumps(playbook, indent=2))  # JSON is YAML
        if inventory is None:
            inventory = self.root / "localhost.ini"
            inventory.write_text("localhost ansible_connection=local\n")
        argv = ["ansible-playbook", "-i", str(inventory), str(playbook_path), *options]
        if extra_vars is not None:
            argv += ["-e", "@" + str(self.secret_vars(extra_vars))]
        run_env = self.env(env)
        if json_callback:
            run_env["ANSIBLE_CALLBACK_PLUGINS"] = str(CALLBACKS)
            run_env["ANSIBLE_STDOUT_CALLBACK"] = "opnc_test_json"
        proc = subprocess.run(argv, cwd=self.root, env=run_env, capture_output=True, text=True, timeout=180)
        run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr)
        if json_callback:
            run.results = _results_by_host(proc.stdout)
        return run


def _results_by_host(stdout: str) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(stdout[stdout.index("{"):])
    results: dict[str, list[dict[str, Any]]] = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                results.setdefault(host, []).append(result)
    return results


@pytest.fixture
def ansible(tmp_path: Path) -> Ansible:
    return Ansible(tmp_path)


def connection_vars(sandbox: Any, ansible: Ansible, pair: int = 0, **overrides: Any) -> dict[str, Any]:
    p = sandbox.pairs[pair]
    values = {
        "op_url": p.openproject.url, "op_token": p.openproject.token,
        "nc_url": p.nextcloud.url, "nc_user": p.nextcloud.user, "nc_password": p.nextcloud.password,
        "state_dir": str(ansible.state_dir),
    }
    values.update(overrides)
    return values


CONNECTION = {
    "openproject_url": "{{ op_url }}",
    "openproject_token": "{{ op_token }}",
    "nextcloud_url": "{{ nc_url }}",
    "nextcloud_user": "{{ nc_user }}",
    "nextcloud_password": "{{ nc_password }}",
    "state_dir": "{{ state_dir }}",
}


def integration_task(name: str = "opnc", **options: Any) -> dict[str, Any]:
    return {"name": name, "opnc.integration.integration": {**CONNECTION, **options}}


def info_task(name: str = "info", **options: Any) -> dict[str, Any]:
    return {"name": name, "opnc.integration.integration_info": {**CONNECTION, **options}}


def play(*tasks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": list(tasks)}]


def storages(sandbox: Any, pair: int = 0) -> list[dict[str, Any]]:
    return sandbox.pairs[pair].openproject.state()["storages"]


def nextcloud_integration(sandbox: Any, pair: int = 0) -> dict[str, Any]:
    return sandbox.pairs[pair].nextcloud.state()["integration"]


# -- present -------------------------------------------------------------------------------------


def test_first_run_changes_second_run_sends_nothing_that_mutates(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)

    first = ansible.run(play(integration_task()), extra_vars=variables)
    assert first.code == 0, first.output
    result = first.task(0)
    assert result["changed"] is True
    [storage] = storages(sandbox)
    assert result["storage_id"] == storage["id"]
    assert [(s["name"], s["status"]) for s in result["steps"]] == [
        ("preflight", "done"), ("create_storage", "done"), ("configure_nextcloud", "done"),
        ("store_nextcloud_client", "done"), ("set_app_password", "skipped"), ("verify", "done")]
    assert result["checks"] and all(c["ok"] for c in result["checks"]), result["checks"]
    assert result["openproject_client_id"] == nextcloud_integration(sandbox)["openproject_client_id"] != ""
    assert result["nextcloud_client_id"] != ""
    assert result["state"] == {
        "storage_present": True,
        "storage_id": storage["id"],
        "storage_nextcloud_url": sandbox.nextcloud.url,
        "openproject_client_id": result["openproject_client_id"],
        "nextcloud_client_id": result["nextcloud_client_id"],
        "nextcloud_configured": True,
        "nextcloud_openproject_url": sandbox.openproject.url,
        "project_folders": False,
    }
    assert "rotated" in result and result["rotated"] == []

    op_seq, nc_seq = last_seq(sandbox.openproject), last_seq(sandbox.nextcloud)
    second = ansible.run(play(integration_task()), extra_vars=variables)
    assert second.code == 0, second.output
    again = second.task(0)
    assert again["changed"] is False
    # Only the read-only steps may run on a finished integration.
    assert {s["name"] for s in again["steps"] if s["status"] != "skipped"} <= {"preflight", "verify"}
    assert again["storage_id"] == storage["id"]
    assert again["openproject_client_id"] == result["openproject_client_id"]
    assert again["nextcloud_client_id"] == result["nextcloud_client_id"]
    assert mutating_requests(sandbox.openproject, op_seq) == []
    assert mutating_requests(sandbox.nextcloud, nc_seq) == []

    # Check mode on the finished integration: nothing to do, and the diff shows no difference.
    checked = ansible.run(play(integration_task()), "--check", "--diff", extra_vars=variables)
    assert checked.code == 0, checked.output
    verdict = checked.task(0)
    assert verdict["changed"] is False
    assert verdict["steps"] == []
    assert verdict["diff"]["before"] == verdict["diff"]["after"] == result["state"]
    assert mutating_requests(sandbox.openproject, op_seq) == []
    assert mutating_requests(sandbox.nextcloud, nc_seq) == []


def test_check_diff_on_an_empty_sandbox_reports_the_change_and_changes_nothing(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    run = ansible.run(play(integration_task(project_folders=True)), "--check", "--diff", extra_vars=variables)
    assert run.code == 0, run.output
    result = run.task(0)
    assert result["changed"] is True
    assert [s["name"] for s in result["steps"]] == ["create_storage", "configure_nextcloud",
                                                    "store_nextcloud_client", "set_app_password"]
    assert all(s["reason"] for s in result["steps"])
    assert result["diff"]["before"] == {
        "storage_present": False, "storage_id": None, "storage_nextcloud_url": "",
        "openproject_client_id": "", "nextcloud_client_id": "", "nextcloud_configured": False,
        "nextcloud_openproject_url": "", "project_folders": False,
    }
    assert result["diff"]["after"] == {
        "storage_present": True, "storage_id": KNOWN_AFTER_APPLY, "storage_nextcloud_url": sandbox.nextcloud.url,
        "openproject_client_id": KNOWN_AFTER_APPLY, "nextcloud_client_id": KNOWN_AFTER_APPLY,
        "nextcloud_configured": True, "nextcloud_openproject_url": sandbox.openproject.url,
        "project_folders": True,
    }
    assert storages(sandbox) == []
    assert nextcloud_integration(sandbox) == {"openproject_client_secret_set": False,
                                              "openproject_instance_url": "", "openproject_client_id": ""}
    nc_state = sandbox.nextcloud.state()
    assert nc_state["project_folder_setup"] is False and nc_state["app_password_set"] is False
    assert nc_state["team_folders"] == []
    assert mutating_requests(sandbox.openproject) == []
    assert mutating_requests(sandbox.nextcloud) == []


def test_options_come_from_the_opnc_environment_variables(sandbox, ansible):
    env = dict(sandbox.env())
    env["OPNC_STATE_DIR"] = str(ansible.state_dir)
    env["OPNC_STORAGE_NAME"] = "From the environment"
    env["OPNC_PROJECT_FOLDERS"] = "true"
    run = ansible.run(play({"name": "opnc", "opnc.integration.integration": {}}), env=env)
    assert run.code == 0, run.output
    result = run.task(0)
    assert result["changed"] is True
    [storage] = storages(sandbox)
    assert storage["name"] == "From the environment"
    assert result["state"]["project_folders"] is True
    assert sandbox.nextcloud.state()["project_folder_setup"] is True
    assert list(ansible.state_dir.iterdir()), "the journal goes to OPNC_STATE_DIR"
    # The secrets came from the environment and are no_log there too: not in the invocation shown.
    for secret in sandbox.secrets():
        assert secret not in run.output


# -- failures ------------------------------------------------------------------------------------


def test_a_wrong_nextcloud_password_fails_the_task_with_opncs_message_and_hint(sandbox, ansible, tmp_path):
    wrong = "not-the-password-" + sandbox.nextcloud.password[:4]
    # What opnc itself says about this input, to compare the task's failure with.
    integration = opnc.Integration(opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token),
                                   opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user, wrong),
                                   state_dir=tmp_path / "direct")
    with pytest.raises(opnc.Error) as expected:
        integration.plan()
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()

    run = ansible.run(play(integration_task()), extra_vars=connection_vars(sandbox, ansible, nc_password=wrong))
    assert run.code == 2, run.output
    result = run.task(0)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == expected.value.message
    assert result["hint"] == expected.value.hint != ""
    assert result["kind"] == expected.value.kind
    assert result["step"] == "preflight"
    assert wrong not in run.output
    assert storages(sandbox) == []
    assert mutating_requests(sandbox.openproject) == []
    assert mutating_requests(sandbox.nextcloud) == []


def test_a_failed_step_reports_its_progress_and_the_next_run_completes(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    sandbox.nextcloud.faults([{"method": "POST", "path": "/index.php/apps/integration_openproject/setup",
                               "status": 500, "times": 1}])
    failed = ansible.run(play(integration_task()), extra_vars=variables)
    assert failed.code == 2, failed.output
    result = failed.task(0)
    assert result["failed"] is True
    assert result["step"] == "configure_nextcloud"
    assert result["changed"] is True  # the storage exists now; the journal holds its secret
    assert result["msg"] and result["kind"] == "server_error"
    assert [(s["name"], s["status"]) for s in result["steps"]][:3] == [
        ("preflight", "done"), ("create_storage", "done"), ("configure_nextcloud", "failed")]
    [storage] = storages(sandbox)

    resumed = ansible.run(play(integration_task()), extra_vars=variables)
    assert resumed.code == 0, resumed.output
    result = resumed.task(0)
    assert result["changed"] is True
    assert result["storage_id"] == storage["id"]
    steps = {s["name"]: s["status"] for s in result["steps"]}
    assert steps["create_storage"] == "skipped" and steps["configure_nextcloud"] == "done"
    assert all(c["ok"] for c in result["checks"])


def create_storage_outside_opnc(sandbox: Any, name: str = "Made by hand") -> int:
    """A storage for the sandbox's Nextcloud created through OpenProject's API, as an administrator
    in the browser would; its client secret went to them, not to opnc's journal."""
    op = sandbox.openproject
    body = {"name": name, "applicationPassword": "",
            "_links": {"origin": {"href": sandbox.nextcloud.url},
                       "type": {"href": "urn:openproject-org:api:v3:storages:Nextcloud"},
                       "authenticationMethod": {"href": "urn:openproject-org:api:v3:storages:authenticationMethod:"
                                                        "TwoWayOAuth2"}}}
    credentials = base64.b64encode(f"apikey:{op.token}".encode()).decode()
    request = urllib.request.Request(f"{op.url}/api/v3/storages", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Basic {credentials}",
                                              "Content-Type": "application/json", "Accept": "application/hal+json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        return json.loads(answer.read())["id"]


def test_an_incomplete_storage_from_elsewhere_needs_replace_storage(sandbox, ansible):
    foreign = create_storage_outside_opnc(sandbox)
    variables = connection_vars(sandbox, ansible)
    sandbox.openproject.clear_requests()

    refused = ansible.run(play(integration_task()), extra_vars=variables)
    assert refused.code == 2, refused.output
    result = refused.task(0)
    assert result["failed"] is True
    assert (result["kind"], result["step"], result["changed"]) == ("confirmation_required", "preflight", False)
    assert f"(id {foreign})" in result["msg"]
    # opnc's hint, with its command line option named as the module option.
    assert "replace_storage: true" in result["hint"] and "--replace-storage" not in result["hint"]
    assert mutating_requests(sandbox.openproject) == [] and mutating_requests(sandbox.nextcloud) == []

    planned = ansible.run(play(integration_task(replace_storage=True)), "--check", extra_vars=variables)
    assert planned.code == 0, planned.output
    plan = planned.task(0)
    assert plan["changed"] is True
    assert plan["steps"][0]["name"] == "create_storage"
    assert plan["steps"][0]["reason"].startswith("replace_storage: true: storage \"Made by hand\"")
    assert plan["steps"][0]["warnings"] and plan["warnings"] == [f"create_storage: {w}" for w in plan["steps"][0]["warnings"]]

    replaced = ansible.run(play(integration_task(replace_storage=True)), extra_vars=variables)
    assert replaced.code == 0, replaced.output
    assert replaced.task(0)["changed"] is True
    [storage] = storages(sandbox)
    assert storage["id"] != foreign and replaced.task(0)["storage_id"] == storage["id"]
    assert all(c["ok"] for c in replaced.task(0)["checks"])


def test_a_failed_verify_fails_the_task_after_the_change_with_the_checks_hint(sandbox, ansible):
    # OpenProject's token endpoint refuses every client from now on, as after "Replace OAuth values".
    sandbox.openproject.faults([{"method": "POST", "path": "/oauth/token", "status": 401}])
    run = ansible.run(play(integration_task()), extra_vars=connection_vars(sandbox, ansible))
    assert run.code == 2, run.output
    result = run.task(0)
    assert (result["failed"], result["changed"], result["kind"], result["step"]) == (True, True, "verify_failed",
                                                                                     "verify")
    [failed] = [c for c in result["checks"] if not c["ok"]]
    assert failed["name"] == "openproject_client_secret"
    assert result["msg"] == f"the integration was applied, but 1 verify check(s) failed: {failed['name']}: " \
                            f"{failed['detail']}"
    assert result["hint"] == failed["hint"] != ""
    assert result["storage_id"] == storages(sandbox)[0]["id"]


@pytest.mark.opnc_sandbox(tls=True)
def test_https_with_a_private_ca_needs_the_ca_bundle_option(sandbox, ansible):
    variables = connection_vars(sandbox, ansible, ca_bundle=sandbox.ca_bundle)
    run = ansible.run(play(
        {**integration_task("without the CA"), "ignore_errors": True},
        integration_task("with the CA", ca_bundle="{{ ca_bundle }}"),
    ), extra_vars=variables)
    assert run.code == 0, run.output
    refused, connected = run.task(0), run.task(1)
    assert refused["failed"] is True and refused["kind"] == "tls" and refused["step"] == "preflight"
    assert "ca_bundle" in refused["hint"] and "--ca-bundle" not in refused["hint"]
    assert connected["changed"] is True
    assert connected["state"]["storage_nextcloud_url"] == sandbox.nextcloud.url
    assert sandbox.nextcloud.url.startswith("https://")


def test_without_the_compiled_opnc_the_task_names_the_missing_library(sandbox, ansible):
    # Debian's Python with only the source tree: `opnc` imports, its compiled core does not.
    ansible.python = "/usr/bin/python3"
    ansible.pythonpath = str(REPO / "python")
    run = ansible.run(play(integration_task()), extra_vars=connection_vars(sandbox, ansible))
    assert run.code == 2, run.output
    result = run.task(0)
    assert result["failed"] is True
    assert result["msg"].startswith("Failed to import the required Python library (opnc (the compiled Python "
                                    "package with its opnc._core extension)) on ")
    assert mutating_requests(sandbox.openproject) == [] and mutating_requests(sandbox.nextcloud) == []


def test_invalid_input_fails_before_any_request(sandbox, ansible):
    run = ansible.run(play(integration_task()),
                      extra_vars=connection_vars(sandbox, ansible, nc_url="ftp://cloud.example"))
    assert run.code == 2, run.output
    result = run.task(0)
    assert result["failed"] is True
    assert result["kind"] == "invalid_input"
    assert result["msg"] != ""
    assert sandbox.nextcloud.requests() == [] and sandbox.openproject.requests() == []


# -- absent, info, rotate (the later parts of the API) ------------------------------------------


def test_absent_tears_down_and_a_second_absent_changes_nothing(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    run = ansible.run(play(
        integration_task("set up"),
        {**integration_task("teardown, check mode", state="absent"), "check_mode": True, "diff": True},
        {**integration_task("teardown", state="absent"), "diff": True},
        integration_task("teardown again", state="absent"),
    ), extra_vars=variables)
    assert run.code == 0, run.output
    setup, checked, removed, again = (run.task(i) for i in range(4))
    assert setup["changed"] is True

    assert checked["changed"] is True
    assert checked["notes"] == [f"storage {setup['storage_id']} in OpenProject would be deleted, with its file "
                                f"links and project settings"]
    assert checked["diff"]["before"]["storage_present"] is True
    assert checked["diff"]["after"]["storage_present"] is False
    assert checked["diff"]["after"]["nextcloud_configured"] is False

    assert removed["changed"] is True
    assert len(removed["removed"]) == 2  # the storage, and Nextcloud's settings
    assert f"storage {setup['storage_id']}" in removed["removed"][0]
    assert removed["remaining"] == []  # no project folders were set up
    assert removed["archived_journal"].startswith(str(ansible.state_dir))
    assert removed["diff"]["before"]["storage_id"] == setup["storage_id"]
    assert removed["diff"]["after"]["storage_present"] is False
    assert removed["diff"]["after"]["nextcloud_configured"] is False
    assert again["changed"] is False
    assert again["removed"] == []

    assert storages(sandbox) == []
    assert nextcloud_integration(sandbox)["openproject_client_id"] == ""

    # A further run in its own process: not changed, and nothing that mutates is sent.
    op_seq, nc_seq = last_seq(sandbox.openproject), last_seq(sandbox.nextcloud)
    final = ansible.run(play(integration_task(state="absent")), "--diff", extra_vars=variables)
    assert final.code == 0, final.output
    assert final.task(0)["changed"] is False
    assert final.task(0)["diff"]["before"] == final.task(0)["diff"]["after"]
    assert mutating_requests(sandbox.openproject, op_seq) == []
    assert mutating_requests(sandbox.nextcloud, nc_seq) == []


def test_info_reports_status_state_and_drift_and_changes_nothing(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    run = ansible.run(play(
        info_task("before"),
        integration_task("set up"),
        info_task("after"),
        {**info_task("after, check mode"), "check_mode": True},
    ), extra_vars=variables)
    assert run.code == 0, run.output
    before, setup, after, checked = (run.task(i) for i in range(4))

    assert before["changed"] is False
    assert before["drift"] is True
    assert before["state"]["storage_present"] is False
    assert [s["name"] for s in before["plan"]["steps"]][0] == "create_storage"
    assert before["versions"] == {"openproject": sandbox.openproject.state()["version"],
                                  "nextcloud": sandbox.nextcloud.state()["version"],
                                  "integration_openproject": sandbox.nextcloud.state()["app_version"]}
    assert before["status"]["healthy"] is False

    assert after["changed"] is False
    assert after["drift"] is False
    assert after["status"]["healthy"] is True
    assert all(line["level"] in ("ok", "warning", "problem") for line in after["status"]["lines"])
    assert {"area", "name", "level", "detail", "hint"} <= set(after["status"]["lines"][0])
    assert after["state"] == setup["state"]
    assert checked["state"] == setup["state"] and checked["changed"] is False

    op_seq, nc_seq = last_seq(sandbox.openproject), last_seq(sandbox.nextcloud)
    states = sandbox.openproject.state(), sandbox.nextcloud.state()
    alone = ansible.run(play(info_task()), extra_vars=variables)
    assert alone.code == 0, alone.output
    assert set(mutating_requests(sandbox.openproject, op_seq)) <= CREDENTIAL_PROBES
    assert set(mutating_requests(sandbox.nextcloud, nc_seq)) <= CREDENTIAL_PROBES
    assert (sandbox.openproject.state(), sandbox.nextcloud.state()) == states
    hints = [line["hint"] for line in alone.task(0)["status"]["lines"]]
    # opnc's hints name its command line options; the module names its own options instead.
    assert not [hint for hint in hints if "opnc apply" in hint or " --" in hint]


def test_rotate_replaces_the_credentials_and_teardown_names_what_stays(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    setup_run = ansible.run(play(integration_task("set up", project_folders=True)), extra_vars=variables)
    assert setup_run.code == 0, setup_run.output
    setup = setup_run.task(0)
    [app_password_before] = sandbox.nextcloud.state()["app_password_sha256"]

    run = ansible.run(play(
        {**integration_task("rotate, check mode", project_folders=True, rotate=["nextcloud_client"]),
         "check_mode": True},
        integration_task("rotate", project_folders=True, rotate=["nextcloud_client", "app_password"]),
        integration_task("teardown", state="absent"),
    ), extra_vars=variables)
    assert run.code == 0, run.output
    checked, rotated, removed = (run.task(i) for i in range(3))
    assert checked["changed"] is True and checked["rotated"] == ["nextcloud_client"]
    assert checked["nextcloud_client_id"] == setup["nextcloud_client_id"]

    assert rotated["changed"] is True
    assert rotated["rotated"] == ["nextcloud_client", "app_password"]
    assert {s["name"] for s in rotated["steps"] if s["status"] == "done"} <= {"preflight", "verify"}
    assert [(s["name"], s["status"]) for s in rotated["rotation_steps"]
            if s["name"] in ("configure_nextcloud", "store_nextcloud_client", "set_app_password")] == [
        ("configure_nextcloud", "done"), ("store_nextcloud_client", "done"), ("set_app_password", "done")]
    assert rotated["nextcloud_client_id"] not in ("", setup["nextcloud_client_id"])
    assert rotated["storage_id"] == setup["storage_id"]
    assert all(c["ok"] for c in rotated["checks"]), rotated["checks"]

    # The project folders' user, group, team folder and app password stay in Nextcloud.
    assert removed["changed"] is True
    assert len(removed["remaining"]) == 2
    [app_password_after] = sandbox.nextcloud.state()["app_password_sha256"]
    assert app_password_after != app_password_before
    assert storages(sandbox) == []


# -- secrets -------------------------------------------------------------------------------------


def assert_no_secret_leaked(sandbox: Any, ansible: Ansible, run: PlaybookRun, passed: list[str]) -> None:
    """Neither the secrets the sandbox knows or issued nor the ones passed to Ansible appear in the
    output, nor in any file Ansible left in its home and temporary folders."""
    secrets = list(dict.fromkeys(sandbox.secrets() + passed))
    leaked = [i for i, secret in enumerate(secrets) if secret in run.output]
    assert leaked == [], f"secrets number {leaked} appear in the output"
    for path in ansible.home.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            assert not [s for s in secrets if s in text], f"a secret is in {path}"


def test_no_secret_in_the_whole_output_at_vvvv_of_check_apply_and_failure(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    wrong_password = "wrong-" + sandbox.nextcloud.password[::-1]
    run = ansible.run(play(
        {**integration_task("plan", project_folders=True), "check_mode": True},
        integration_task("set up", project_folders=True),
        integration_task("again", project_folders=True),
        {**integration_task("wrong password", nextcloud_password="{{ wrong_password }}"), "ignore_errors": True},
    ), "-vvvv", "--diff", extra_vars={**variables, "wrong_password": wrong_password}, json_callback=False)
    assert run.code == 0, run.output
    # The run printed what a leak would hide in: invocations, results, diffs and the failure.
    assert run.output.count("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER") >= 8
    assert '"openproject_client_id"' in run.output
    assert f"--- before: {sandbox.openproject.url} <-> {sandbox.nextcloud.url}" in run.output
    assert '+    "storage_present": true\n' in run.output
    assert '"kind": "unauthenticated"' in run.output
    assert len(sandbox.secrets()) >= 6  # tokens and password of the sandbox, client secrets, app password
    assert_no_secret_leaked(sandbox, ansible, run, [wrong_password])


def test_no_secret_in_the_whole_output_at_vvvv_of_info_rotate_and_teardown(sandbox, ansible):
    variables = connection_vars(sandbox, ansible)
    run = ansible.run(play(
        integration_task("set up", project_folders=True),
        info_task("status"),
        integration_task("rotate", project_folders=True, rotate=["nextcloud_client", "app_password"]),
        {**integration_task("teardown, check mode", state="absent"), "check_mode": True},
        integration_task("teardown", state="absent"),
    ), "-vvvv", "--diff", extra_vars=variables, json_callback=False)
    assert run.code == 0, run.output
    assert run.output.count("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER") >= 10
    assert '"healthy": true' in run.output
    assert '"rotated": [' in run.output
    assert_no_secret_leaked(sandbox, ansible, run, [])


# -- the example playbook ------------------------------------------------------------------------


def fleet_inventory(sandbox: Any, ansible: Ansible, tmp_path: Path) -> tuple[Path, list[str]]:
    """An inventory of the example playbook for every sandbox pair, with each pair's secrets in an
    Ansible Vault file; returns it and the ansible-playbook options that open the vault."""
    inventory = tmp_path / "inventory"
    hosts = {}
    for pair in sandbox.pairs:
        name = f"pair{pair.index}"
        hosts[name] = {"openproject_url": pair.openproject.url, "nextcloud_url": pair.nextcloud.url,
                       "nextcloud_admin": pair.nextcloud.user}
        vault = inventory / "host_vars" / name / "vault.yml"
        vault.parent.mkdir(parents=True)
        fd = os.open(vault, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"vault_openproject_api_token": pair.openproject.token,
                       "vault_nextcloud_password": pair.nextcloud.password}, f)
    hosts["pair1"]["project_folders"] = True
    hosts["pair1"]["storage_name"] = "Team files"
    (inventory / "hosts.yml").write_text(json.dumps(
        {"opnc_pairs": {"vars": {"opnc_state_dir": str(ansible.state_dir)}, "hosts": hosts}}))
    password_file = tmp_path / "vault-password"
    password_file.write_text("correct horse battery staple\n")
    password_file.chmod(0o600)
    vault_files = [str(p) for p in sorted(inventory.glob("host_vars/*/vault.yml"))]
    encrypted = subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(password_file), *vault_files],
                               env=ansible.env(), cwd=tmp_path, capture_output=True, text=True)
    assert encrypted.returncode == 0, encrypted.stderr
    assert all(Path(p).read_text().startswith("$ANSIBLE_VAULT;") for p in vault_files)
    return inventory, ["--vault-password-file", str(password_file)]


EXAMPLE = REPO / "examples" / "playbook.yml"


@pytest.mark.opnc_sandbox(pairs=2)
def test_the_example_playbook_in_check_mode_plans_every_pair_and_changes_nothing(sandbox, ansible, tmp_path):
    inventory, options = fleet_inventory(sandbox, ansible, tmp_path)
    run = ansible.run(EXAMPLE, *options, "--check", "--diff", inventory=inventory)
    assert run.code == 0, run.output
    pair0, pair1 = run.results["pair0"], run.results["pair1"]
    assert pair0[0]["changed"] is True and pair1[0]["changed"] is True
    assert pair0[0]["diff"]["after"]["project_folders"] is False
    assert pair1[0]["diff"]["after"]["project_folders"] is True
    assert pair0[1].get("skipped") is True  # the status task needs a real run
    assert pair0[3]["msg"] == "pair0: would run create_storage, configure_nextcloud, store_nextcloud_client"
    assert pair1[3]["msg"] == ("pair1: would run create_storage, configure_nextcloud, store_nextcloud_client, "
                               "set_app_password")
    for pair in sandbox.pairs:
        assert mutating_requests(pair.openproject) == [] and mutating_requests(pair.nextcloud) == []
    assert not [s for s in sandbox.secrets() if s in run.output]


@pytest.mark.opnc_sandbox(pairs=2)
def test_the_example_playbook_connects_every_pair_with_vault_secrets(sandbox, ansible, tmp_path):
    inventory, options = fleet_inventory(sandbox, ansible, tmp_path)
    run = ansible.run(EXAMPLE, *options, inventory=inventory)
    assert run.code == 0, run.output
    for pair in sandbox.pairs:
        host = f"pair{pair.index}"
        integration, status, healthy, summary = run.results[host]
        [storage] = storages(sandbox, pair.index)
        assert integration["changed"] is True
        assert integration["storage_id"] == storage["id"]
        assert status["status"]["healthy"] is True
        assert healthy.get("failed", False) is False
        assert summary["msg"].startswith(f"{host}: storage {storage['id']},")
        assert summary["msg"].endswith(", changed")
    assert storages(sandbox, 0)[0]["name"] == "Nextcloud"
    assert storages(sandbox, 1)[0]["name"] == "Team files"
    assert sandbox.pairs[1].nextcloud.state()["project_folder_setup"] is True
    assert sandbox.pairs[0].nextcloud.state()["project_folder_setup"] is False
    assert not [s for s in sandbox.secrets() if s in run.output]

    again = ansible.run(EXAMPLE, *options, inventory=inventory)
    assert again.code == 0, again.output
    for pair in sandbox.pairs:
        assert again.results[f"pair{pair.index}"][0]["changed"] is False
        assert again.results[f"pair{pair.index}"][3]["msg"].endswith(", unchanged")
