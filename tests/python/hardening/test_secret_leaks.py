"""Issue 10 item 2: the secret-leak scan.

Every CLI command (with --debug when the CLI has it) runs as a real process while a sampler reads
the argument list (/proc/<pid>/cmdline) of it and of everything it starts; the Python API runs with
DEBUG logging captured; the Ansible modules run with -vvvv. All output, every log record, every
repr and error and every file of the state folder other than the journal are scanned for every
secret the sandbox issued or the test passed in (API tokens, passwords, OAuth client secrets, app
passwords, codes), also percent-encoded, JSON-escaped and as Basic-auth header values.
The error paths of the fault matrix are scanned by test_fault_matrix.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (child_env, cli_commands, credential_forms, find_leaks, state_files_except_journal,
                       sandbox_env, with_debug)


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


class ArgvSampler:
    """Reads /proc/<pid>/cmdline of a process and all its descendants every few milliseconds
    until the process ends; keeps every distinct argument list seen."""

    def __init__(self, proc: subprocess.Popen[Any]) -> None:
        self.proc = proc
        self.seen: set[str] = set()
        self.samples = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.proc.poll() is None:
            for pid in _descendants(self.proc.pid):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = f.read().replace(b"\0", b" ").decode("utf-8", errors="replace").strip()
                except OSError:
                    continue
                if argv:
                    self.seen.add(f"{pid}: {argv}")
            self.samples += 1
            time.sleep(0.003)

    def join(self) -> None:
        self._thread.join(timeout=10)


def _run_process(argv: list[str], env: dict[str, str], stdin: str | None = None,
                 timeout: float = 60) -> tuple[int, str, ArgvSampler]:
    proc = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    sampler = ArgvSampler(proc)
    out, err = proc.communicate(stdin, timeout=timeout)
    sampler.join()
    return proc.returncode, out + err, sampler


def _command_lines(commands: list[str]) -> list[tuple[str, list[str], int]]:
    """(label, argv after `opnc`, expected exit code) for every command the CLI has, in an order
    where each finds the state it needs (teardown last)."""
    lines = [
        ("plan", ["plan"], 0),
        ("apply", ["apply", "--project-folders"], 0),
        ("apply again", ["apply", "--project-folders", "--json"], 0),
        ("verify", ["verify", "--project-folders"], 0),
    ]
    if "status" in commands:
        lines.append(("status", ["status", "--project-folders", "--json"], 0))
    if "rotate" in commands:
        lines.append(("rotate", ["rotate", "--project-folders", "--nextcloud-client", "--app-password"], 0))
        lines.append(("verify after rotate", ["verify", "--project-folders", "--json"], 0))
    if "teardown" in commands:
        lines.append(("teardown", ["teardown", "--project-folders", "--yes"], 0))
    return lines


# The commands this file scans: the exchange commands below, `demo` and `sandbox` in tests of their own.
SCANNED_COMMANDS = {"plan", "apply", "verify", "status", "rotate", "teardown", "demo", "sandbox"}


def test_every_cli_command_is_scanned():
    unscanned = set(cli_commands()) - SCANNED_COMMANDS
    assert unscanned == set(), f"new CLI command(s) {sorted(unscanned)}: add them to the leak scan"


def test_every_cli_command_leaks_nothing_and_puts_no_secret_in_argv(sandbox, state_dir, tmp_path):
    commands = cli_commands()
    # A private TMPDIR, so that any temporary file opnc makes outside the state folder is scanned too.
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    variables = {**sandbox_env(sandbox, state_dir), "TMPDIR": str(temp_dir)}
    texts: dict[str, str] = {}
    argvs: dict[str, str] = {}
    for label, args, expected in _command_lines(commands):
        code, output, sampler = _run_process([sys.executable, "-m", "opnc", *with_debug(args)], child_env(variables))
        assert code == expected, f"{label}: exit {code}\n{output}"
        assert sampler.samples > 0
        texts[f"opnc {label}"] = output
        argvs.update({f"argv of opnc {label}: {line.split(':', 1)[0]}": line for line in sampler.seen})

    # Error paths of the CLI itself: wrong credentials, secrets given through files and stdin.
    token_file = tmp_path / "token"
    token_file.write_text(sandbox.openproject.token + "\n")
    token_file.chmod(0o600)
    errors = [
        ("wrong token", ["apply"], {"OPNC_OPENPROJECT_TOKEN": "wrong-token-" + "x" * 20}, None, 3),
        ("wrong password", ["verify", "--json"], {"OPNC_NEXTCLOUD_PASSWORD": "wrong-password-" + "y" * 20}, None, 5),
        ("token from file", ["plan", "--openproject-token-file", str(token_file)], {"OPNC_OPENPROJECT_TOKEN": ""},
         None, 0),
        ("password from stdin", ["plan", "--nextcloud-password-file", "-"], {"OPNC_NEXTCLOUD_PASSWORD": ""},
         sandbox.nextcloud.password + "\n", 0),
    ]
    passed_in = ["wrong-token-" + "x" * 20, "wrong-password-" + "y" * 20]
    for label, args, overrides, stdin, expected in errors:
        env = child_env({**variables, **overrides})
        code, output, sampler = _run_process([sys.executable, "-m", "opnc", *with_debug(args)], env, stdin)
        assert code == expected, f"{label}: exit {code}\n{output}"
        texts[f"opnc {label}"] = output
        argvs.update({f"argv of opnc {label}: {line.split(':', 1)[0]}": line for line in sampler.seen})

    if with_debug(["apply"]) != ["apply"]:
        # --debug really logged every request (the scan covers the debug log, not just the summary).
        assert "opnc.http" in texts["opnc apply"] and "POST " in texts["opnc apply"], texts["opnc apply"][-2000:]
    texts.update(state_files_except_journal(state_dir))
    texts.update({f"temporary file {p.name}": p.read_bytes().decode("utf-8", errors="replace")
                  for p in temp_dir.rglob("*") if p.is_file()})
    secrets = sandbox.secrets() + passed_in
    assert find_leaks(texts, secrets, credential_forms(sandbox)) == []
    assert find_leaks(argvs, secrets, credential_forms(sandbox)) == []
    # The scan saw real work: every process was sampled, and the commands ran against the sandbox.
    assert argvs and all("-m opnc" in line for line in argvs.values()), argvs


def test_a_secret_given_on_the_command_line_is_refused_without_echoing_it(sandbox, state_dir):
    from opnc import cli

    variables = sandbox_env(sandbox, state_dir)
    secret = "argv-secret-" + "z" * 24
    outputs = {}
    for option in [o for o in cli._SECRET_ARGUMENTS]:
        for form in ([f"{option}={secret}"], [option, secret]):
            code, output, _ = _run_process([sys.executable, "-m", "opnc", "apply", *form], child_env(variables))
            assert code == 2, (option, output)
            outputs[f"opnc apply {option}"] = output
    assert find_leaks(outputs, [secret]) == []
    assert sandbox.openproject.state()["storages"] == []


def test_python_api_with_debug_logging_leaks_nothing(sandbox, state_dir):
    import opnc

    from .conftest import LogCapture

    texts: dict[str, str] = {}
    events: list[dict[str, Any]] = []
    op = opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token)
    nc = opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user, sandbox.nextcloud.password)
    integration = opnc.Integration(op, nc, project_folders=True, state_dir=state_dir)
    with LogCapture().attached() as log:
        plan = integration.plan()
        result = integration.apply(on_event=events.append)
        verify = integration.verify()
        extra: list[Any] = []
        if hasattr(integration, "status"):
            extra.append(integration.status())
        if hasattr(integration, "rotate"):
            extra.append(integration.rotate(nextcloud_client=True, app_password=True))
        if hasattr(integration, "teardown"):
            extra.append(integration.teardown(confirm=True))
        # Error paths: refused credentials on both sides.
        failures = []
        for bad in (opnc.Integration(opnc.OpenProject(sandbox.openproject.url, "bad-token-" + "q" * 20), nc,
                                     state_dir=state_dir),
                    opnc.Integration(op, opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user,
                                                        "bad-password-" + "w" * 20), state_dir=state_dir)):
            with pytest.raises(opnc.Error) as caught:
                bad.apply()
            failures.append(caught.value)
    assert result.changed is True and verify.ok is True
    assert [e for e in log.lines if "opnc" in e], "DEBUG logging captured nothing from opnc"
    texts["log"] = log.text
    texts["events"] = json.dumps(events)
    for name, value in [("op", op), ("nc", nc), ("integration", integration), ("plan", plan), ("result", result),
                        ("verify", verify)] + [(f"extra {i}", v) for i, v in enumerate(extra)]:
        texts[f"repr {name}"] = repr(value)
        texts[f"str {name}"] = str(value)
        if hasattr(value, "to_dict"):
            texts[f"to_dict {name}"] = json.dumps(value.to_dict(), default=str)
    for i, error in enumerate(failures):
        texts[f"error {i}"] = f"{error!r} {error} {json.dumps(error.to_dict())}"
    texts.update(state_files_except_journal(state_dir))
    secrets = sandbox.secrets() + ["bad-token-" + "q" * 20, "bad-password-" + "w" * 20]
    assert find_leaks(texts, secrets, credential_forms(sandbox)) == []


COLLECTION = Path(__file__).resolve().parents[3] / "ansible_collections" / "opnc" / "integration"


def test_ansible_modules_with_vvvv_leak_nothing(sandbox, tmp_path):
    home = tmp_path / "ansible-home"
    home.mkdir()
    state = tmp_path / "state"
    connection = {"openproject_url": "{{ op_url }}", "openproject_token": "{{ op_token }}",
                  "nextcloud_url": "{{ nc_url }}", "nextcloud_user": "{{ nc_user }}",
                  "nextcloud_password": "{{ nc_password }}", "state_dir": "{{ state_dir }}"}
    tasks = [
        {"name": "apply", "opnc.integration.integration": {**connection, "project_folders": True}},
        {"name": "info", "opnc.integration.integration_info": connection},
        {"name": "wrong token", "ignore_errors": True,
         "opnc.integration.integration": {**connection, "openproject_token": "ansible-bad-token-" + "k" * 16}},
    ]
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                     "tasks": tasks}]))
    variables = tmp_path / "vars.json"
    fd = os.open(variables, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"op_url": sandbox.openproject.url, "op_token": sandbox.openproject.token,
                   "nc_url": sandbox.nextcloud.url, "nc_user": sandbox.nextcloud.user,
                   "nc_password": sandbox.nextcloud.password, "state_dir": str(state)}, f)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local\n")
    env = child_env({})
    env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTION.parents[1]), "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
                "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"), "ANSIBLE_RETRY_FILES_ENABLED": "false",
                "ANSIBLE_NOCOLOR": "true", "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"),
                "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_LOG_PATH": str(tmp_path / "ansible.log")})
    code, output, sampler = _run_process(["ansible-playbook", "-vvvv", "-i", str(inventory), str(playbook),
                                          "-e", "@" + str(variables)], env, timeout=180)
    assert code == 0, output[-3000:]
    assert "ok=" in output and "failed=0" in output, output[-2000:]
    # -vvvv really was verbose: it shows the module invocations and their results.
    assert "opnc.integration.integration" in output and "<localhost> EXEC" in output, output[-2000:]
    assert '"changed": true' in output, output[-2000:]
    assert len(sandbox.openproject.state()["storages"]) == 1
    texts = {"ansible-playbook -vvvv output": output}
    log_file = tmp_path / "ansible.log"
    if log_file.exists():
        texts["ansible log"] = log_file.read_text(errors="replace")
    texts.update(state_files_except_journal(str(state)))
    # The modules and opnc run inside ansible's children; none may carry a secret in its argv.
    argvs = {f"argv {line.split(':', 1)[0]}": line for line in sampler.seen}
    secrets = sandbox.secrets() + ["ansible-bad-token-" + "k" * 16]
    assert find_leaks(texts, secrets, credential_forms(sandbox)) == []
    assert find_leaks(argvs, secrets, credential_forms(sandbox)) == []


def test_demo_prints_no_secret_of_its_own_sandbox(monkeypatch):
    """`opnc demo` runs against a sandbox it starts itself; its secrets are collected just before
    that sandbox stops, then the demo's whole output is scanned for them."""
    import contextlib
    import io

    from opnc import cli
    from opnc.sandbox import Sandbox

    from .conftest import LogCapture

    issued: list[str] = []
    basic: dict[str, str] = {}
    original_stop = Sandbox.stop

    def stop_and_remember(self: Sandbox) -> None:
        if self.pairs:
            issued.extend(self.secrets())
            basic.update(credential_forms(self))
        original_stop(self)

    monkeypatch.setattr(Sandbox, "stop", stop_and_remember)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), LogCapture().attached() as log:
        code = cli.main(with_debug(["demo"]))
    assert code == 0, out.getvalue() + err.getvalue()
    assert len(issued) >= 5, "the demo's sandbox issued no secrets: the scan would prove nothing"
    texts = {"demo stdout": out.getvalue(), "demo stderr": err.getvalue(), "demo log": log.text}
    assert find_leaks(texts, issued, basic) == []


def test_sandbox_command_keeps_its_credentials_out_of_output_and_argv(tmp_path):
    env_file = tmp_path / "sandbox.env"
    proc = subprocess.Popen([sys.executable, "-m", "opnc", "sandbox", "--env-file", str(env_file)],
                            env=child_env({}), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = ArgvSampler(proc)
    try:
        deadline = time.monotonic() + 20
        while not (env_file.exists() and "OPNC_NEXTCLOUD_PASSWORD" in env_file.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "opnc sandbox did not write its env file"
            time.sleep(0.05)
        secrets = [line.split("=", 1)[1].strip().strip("'\"") for line in env_file.read_text().splitlines()
                   if line.split("=", 1)[0].replace("export ", "").strip() in
                   ("OPNC_OPENPROJECT_TOKEN", "OPNC_NEXTCLOUD_PASSWORD")]
        assert len(secrets) == 2 and all(secrets), "the env file holds no credentials"
        assert env_file.stat().st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        sampler.join()
    assert str(env_file) in out, out  # the banner points at the file instead of printing its content
    texts = {"sandbox output": out + err}
    argvs = {f"argv {line.split(':', 1)[0]}": line for line in sampler.seen}
    assert find_leaks(texts, secrets) == []
    assert find_leaks(argvs, secrets) == []
