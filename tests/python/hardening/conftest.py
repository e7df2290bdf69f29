"""Fixtures of the hardening tests.

- ``opnc_run``: runs the ``opnc`` CLI in-process against the test's sandbox, secrets in ``OPNC_*``
  environment variables, and keeps every output it produced for the leak scan;
- ``opnc_process``: starts ``python -m opnc`` as a real child process (for SIGKILL and ``/proc``
  checks), with the same environment rules;
- ``end_state``: checks the end state every converged scenario must reach.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MUTATING = ("POST", "PATCH", "PUT", "DELETE")
NC_SETUP = "/index.php/apps/integration_openproject/setup"
# Nextcloud's "is this an OpenProject?" check is a POST that changes nothing; preflight sends it.
READ_ONLY_POSTS = ("/index.php/apps/integration_openproject/is-valid-op-instance",)


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    log: str = ""  # what the run wrote to Python logging, captured at DEBUG

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.out)

    @property
    def text(self) -> str:
        return self.out + self.err


def sandbox_env(sandbox: Any, state_dir: str, pair: int = 0) -> dict[str, str]:
    """The OPNC_* variables that point opnc at `sandbox` (secrets included: environment, never argv)."""
    env = dict(sandbox.env(pair))
    env["OPNC_STATE_DIR"] = state_dir
    return env


@dataclass
class OpncRunner:
    """Runs `opnc` in-process with only the given OPNC_* variables set; every run's output is kept
    in :attr:`outputs` so a test can scan all of it for secrets afterwards."""

    sandbox: Any
    state_dir: str
    monkeypatch: pytest.MonkeyPatch
    outputs: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return sandbox_env(self.sandbox, self.state_dir)

    def __call__(self, *args: str, env: dict[str, str | None] | None = None, json_output: bool = True,
                 stdin: str | None = None) -> CliRun:
        from opnc import cli

        merged: dict[str, str | None] = {**self.env(), **(env or {})}
        with self.monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("OPNC_")]:
                m.delenv(key)
            for key, value in merged.items():
                if value is not None:
                    m.setenv(key, value)
            if stdin is not None:
                m.setattr(sys, "stdin", io.StringIO(stdin))
            out, err = io.StringIO(), io.StringIO()
            command = next((a for a in args if not a.startswith("-")), "")  # after options like --debug
            wants_json = json_output and command in ("plan", "apply", "verify", "status", "teardown", "rotate")
            argv = list(args) + (["--json"] if wants_json else [])
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), LogCapture().attached() as log:
                try:
                    code = cli.main(argv)
                except SystemExit as e:  # argparse errors and --help
                    code = int(e.code or 0)
        run = CliRun(code, out.getvalue(), err.getvalue(), log.text)
        self.outputs.append(run.text + "\n" + run.log)
        return run


@pytest.fixture
def state_dir(tmp_path: Path) -> str:
    return str(tmp_path / "state")


@pytest.fixture
def opnc_run(sandbox: Any, state_dir: str, monkeypatch: pytest.MonkeyPatch) -> OpncRunner:
    return OpncRunner(sandbox, state_dir, monkeypatch)


def child_pythonpath() -> str:
    """PYTHONPATH for a child `python -m opnc` that imports the same opnc package and extension as
    this test process (a source checkout plus a build folder, or an installed package)."""
    import opnc
    from opnc import _core

    roots = [str(Path(opnc.__file__).resolve().parent.parent), str(Path(_core.__file__).resolve().parent.parent)]
    unique = list(dict.fromkeys(roots))
    return os.pathsep.join(unique)


def child_env(variables: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPNC_")}
    env.update(variables)
    env["PYTHONPATH"] = child_pythonpath()
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_opnc(args: list[str], variables: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    """Starts `python -m opnc ARGS` with `variables` in its environment; stdout and stderr piped."""
    return subprocess.Popen([sys.executable, "-m", "opnc", *args], env=child_env(variables), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, **popen)


@pytest.fixture
def opnc_process(sandbox: Any, state_dir: str):
    """Starts `python -m opnc` against the test's sandbox; returns the Popen (caller waits or kills)."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = start_opnc(list(args), {**sandbox_env(sandbox, state_dir), **(env or {})})
        started.append(proc)
        return proc

    yield start
    for proc in started:  # only the processes this fixture started, by their own handle
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def mutating_requests(endpoint: Any, since: int = 0) -> list[dict[str, Any]]:
    """Requests that may change a server's state (Nextcloud's read-only POST checks left out)."""
    return [r for r in endpoint.requests(since=since)
            if r["method"] in MUTATING and r["path"] not in READ_ONLY_POSTS]


def journal_of(state_dir: str) -> dict[str, Any]:
    """The one journal in `state_dir`, parsed."""
    journals = sorted(p for p in Path(state_dir).glob("*.json") if not p.name.startswith("."))
    assert len(journals) == 1, [p.name for p in journals]
    return json.loads(journals[0].read_text())


def assert_end_state(sandbox: Any, state_dir: str, project_folders: bool) -> dict[str, Any]:
    """The end state of every converged run: exactly one storage for the Nextcloud host, exactly one
    Nextcloud OAuth client, and the client ids equal on both sides and in the journal (and the app
    password in OpenProject is the one Nextcloud issued last and the journal holds)."""
    op_state = sandbox.openproject.state()
    nc_state = sandbox.nextcloud.state()
    for_host = [s for s in op_state["storages"] if s["host"].rstrip("/") == sandbox.nextcloud.url]
    assert len(for_host) == 1, op_state["storages"]
    storage = for_host[0]
    assert storage["authentication_method"] == "two_way_oauth2"
    assert storage["configured"] is True
    clients = nc_state["oauth_clients"]
    assert len(clients) == 1, clients
    integration = nc_state["integration"]
    journal = journal_of(state_dir)

    assert storage["oauth_client_client_id"] == clients[0]["client_id"] == journal["nextcloud_client_id"]
    assert storage["oauth_application_client_id"] == integration["openproject_client_id"] \
        == journal["openproject_client_id"] == journal["nextcloud_configured_with"]
    assert len(op_state["oauth_applications"]) == 1, op_state["oauth_applications"]
    assert integration["openproject_instance_url"].rstrip("/") == sandbox.openproject.url
    assert journal["storage_id"] == storage["id"]
    assert journal["pending_step"] == ""
    assert storage["has_application_password"] is project_folders
    if project_folders:
        assert journal["app_password_in_openproject"] is True
        digest = hashlib.sha256(journal["app_password"].encode()).hexdigest()
        assert nc_state["app_password_sha256"] == [digest]
    return storage


@pytest.fixture
def end_state():
    return assert_end_state


# -- secret-leak scanning -------------------------------------------------------------------------


def secret_forms(secret: str) -> set[str]:
    """The ways a secret could show up in text: as is, percent-encoded, JSON-escaped."""
    from urllib.parse import quote, quote_plus

    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def credential_forms(sandbox: Any) -> dict[str, str]:
    """Basic-auth header values of the sandbox's credentials, which a debug log of headers would show."""
    import base64

    forms = {}
    for pair in sandbox.pairs:
        for user, password in (("apikey", pair.openproject.token), (pair.nextcloud.user, pair.nextcloud.password)):
            forms[f"Basic auth of {user}"] = base64.b64encode(f"{user}:{password}".encode()).decode()
    return forms


def find_leaks(texts: dict[str, str], secrets: list[str], extra: dict[str, str] | None = None) -> list[str]:
    """Where any of `secrets` (or the `extra` named values) occurs in `texts` (name -> content).

    The findings name the place and the secret's length, never the secret itself."""
    needles: list[tuple[str, str]] = []
    for index, secret in enumerate(dict.fromkeys(s for s in secrets if s)):
        assert len(secret) >= 8, "a secret this short would match by chance; the scan would be meaningless"
        needles += [(f"secret #{index} ({len(secret)} chars)", form) for form in secret_forms(secret)]
    needles += list((extra or {}).items())
    found = []
    for where, text in texts.items():
        for name, needle in needles:
            if needle in text:
                found.append(f"{name} in {where}")
    return sorted(set(found))


def state_files_except_journal(state_dir: str) -> dict[str, str]:
    """Every file of the state folder but the journals (locks, temporary files, anything else)."""
    root = Path(state_dir)
    if not root.exists():
        return {}
    files = {}
    for path in root.rglob("*"):
        if path.is_file() and not (path.suffix == ".json" and not path.name.startswith(".")):
            files[f"state file {path.name}"] = path.read_bytes().decode("utf-8", errors="replace")
    return files


class LogCapture(logging.Handler):
    """Collects every record of the `opnc` loggers (and the root) at DEBUG while attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @contextlib.contextmanager
    def attached(self):
        loggers = [logging.getLogger(), logging.getLogger("opnc")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(self)
            lg.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            for lg, level in zip(loggers, levels):
                lg.removeHandler(self)
                lg.setLevel(level)


def cli_supports(option: str, command: str = "apply") -> bool:
    """Whether `opnc COMMAND` (or opnc itself) accepts `option` (features other engineers add)."""
    from opnc import cli

    parser = cli.build_parser()
    options = [o for a in parser._actions for o in a.option_strings]
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is not None and command in sub.choices:
        options += [o for a in sub.choices[command]._actions for o in a.option_strings]
    return option in options


def with_debug(args: list[str]) -> list[str]:
    """`args` (a command and its options) with --debug where the CLI takes it, if it has it yet."""
    if cli_supports("--debug", "__top__"):
        return ["--debug", *args]
    if cli_supports("--debug", args[0]):
        return [*args, "--debug"]
    return list(args)


def cli_commands() -> list[str]:
    from opnc import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)
