"""Issue 10 item 4: TLS against `opnc sandbox --tls`.

With --ca-bundle the exchange succeeds; without it the run fails with a TLS error that names the
host and says how to pass the CA. No option, environment variable or API parameter turns
certificate verification off.
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from .conftest import OpncRunner, start_opnc


def _read_env_file(path: Path) -> dict[str, str]:
    import shlex

    variables = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):]
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            variables[name] = shlex.split(value)[0] if value else ""
    return variables


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real `opnc sandbox --tls` process; yields the variables of its env file."""
    env_file = tmp_path_factory.mktemp("tls") / "sandbox.env"
    proc = start_opnc(["sandbox", "--tls", "--env-file", str(env_file)], {})
    try:
        deadline = time.monotonic() + 20
        while not (env_file.exists() and "OPNC_CA_BUNDLE" in env_file.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "opnc sandbox --tls did not write its env file"
            time.sleep(0.05)
        yield _read_env_file(env_file)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


class _EnvOnlySandbox:
    """Lets OpncRunner use the variables of an external sandbox process."""

    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables

    def env(self, pair: int = 0) -> dict[str, str]:
        return dict(self.variables)


@pytest.fixture
def tls_run(tls_sandbox: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OpncRunner:
    return OpncRunner(_EnvOnlySandbox(tls_sandbox), str(tmp_path / "state"), monkeypatch)


def test_env_file_names_https_urls_and_a_ca_bundle(tls_sandbox):
    assert tls_sandbox["OPNC_OPENPROJECT_URL"].startswith("https://127.0.0.1:")
    assert tls_sandbox["OPNC_NEXTCLOUD_URL"].startswith("https://127.0.0.1:")
    assert os.path.isfile(tls_sandbox["OPNC_CA_BUNDLE"])


def test_with_the_ca_bundle_option_the_exchange_succeeds(tls_sandbox, tls_run):
    bundle = tls_sandbox["OPNC_CA_BUNDLE"]
    run = tls_run("apply", "--project-folders", "--ca-bundle", bundle, env={"OPNC_CA_BUNDLE": None})
    assert run.code == 0, run.text
    assert run.json["changed"] is True
    assert all(c["ok"] for c in run.json["checks"]), run.json["checks"]
    verify = tls_run("verify", "--ca-bundle", bundle, env={"OPNC_CA_BUNDLE": None})
    assert verify.code == 0, verify.text
    assert verify.json["ok"] is True


def _hosts(tls_sandbox: dict[str, str]) -> set[str]:
    return {urlsplit(tls_sandbox[v]).netloc for v in ("OPNC_OPENPROJECT_URL", "OPNC_NEXTCLOUD_URL")}


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_without_the_ca_a_tls_error_names_the_host_and_the_option(tls_sandbox, tls_run, command):
    run = tls_run(command, env={"OPNC_CA_BUNDLE": None})
    assert run.code == 3, run.text
    error = run.json["error"]
    assert error["kind"] == "tls", error
    assert error["step"] == "preflight"
    assert any(host in error["message"] for host in _hosts(tls_sandbox)), error
    assert "--ca-bundle" in error["hint"], error


def test_without_the_ca_verify_fails_every_check_with_the_host_and_the_option(tls_sandbox, tls_run):
    run = tls_run("verify", env={"OPNC_CA_BUNDLE": None})
    assert run.code == 5, run.text
    checks = run.json["checks"]
    assert checks and not [c for c in checks if c["ok"]], checks
    for check in checks:
        assert "TLS" in check["detail"] and any(host in check["detail"] for host in _hosts(tls_sandbox)), check
        assert "--ca-bundle" in check["hint"], check


def test_a_ca_bundle_that_is_not_the_servers_ca_fails_the_same_way(tls_run, tmp_path):
    from opnc.sandbox import tls

    other = tls.generate()  # a CA that signed nothing these servers present
    try:
        run = tls_run("plan", "--ca-bundle", other.ca_bundle, env={"OPNC_CA_BUNDLE": None})
    finally:
        other.cleanup()
    assert run.code == 3, run.text
    assert run.json["error"]["kind"] == "tls"
    assert "--ca-bundle" in run.json["error"]["hint"]


def test_a_missing_ca_bundle_file_is_invalid_input_not_a_silent_fallback(tls_run, tmp_path):
    run = tls_run("plan", "--ca-bundle", str(tmp_path / "no-such-ca.pem"), env={"OPNC_CA_BUNDLE": None})
    assert run.code == 2, run.text
    error = run.json["error"]
    # Refused up front, before any request: never ignored, never mistaken for a server's TLS problem.
    assert error["kind"] == "invalid_input", error
    assert "no-such-ca.pem" in error["message"], error


VERIFY_OFF_WORDS = ("insecure", "no-verify", "noverify", "verify-ssl", "verify-tls", "skip-verify", "tls-verify",
                    "ssl-verify", "validate-certs", "no-check-certificate")


def test_no_switch_turns_verification_off():
    from opnc import cli

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        options = [o for action in sub._actions for o in action.option_strings]
        assert not [o for o in options if any(w in o.lower() for w in VERIFY_OFF_WORDS)], (name, options)
    import opnc

    for api in (opnc.OpenProject, opnc.Nextcloud, opnc.Integration):
        parameters = inspect.signature(api).parameters
        assert not [p for p in parameters if "verify" in p or "insecure" in p], (api, list(parameters))


def test_an_insecure_flag_is_refused(tls_run):
    run = tls_run("apply", "--insecure", json_output=False)
    assert run.code == 2, run.text
    assert "--insecure" in run.err


def test_the_ca_bundle_from_the_environment_is_used(tls_run):
    # OPNC_CA_BUNDLE comes from the sandbox's env file. (The sandbox is shared by this module's
    # tests, so whether there is anything left to do depends on their order; reading both sides
    # over TLS without an error is the point.)
    run = tls_run("plan")
    assert run.code == 0, run.text
    assert "error" not in run.json
    assert run.json["observed"], run.json


def test_python_api_with_and_without_the_ca_bundle(tls_sandbox, tmp_path):
    import opnc

    def integration(ca_bundle: str | None) -> "opnc.Integration":
        return opnc.Integration(
            opnc.OpenProject(tls_sandbox["OPNC_OPENPROJECT_URL"], tls_sandbox["OPNC_OPENPROJECT_TOKEN"],
                             ca_bundle=ca_bundle),
            opnc.Nextcloud(tls_sandbox["OPNC_NEXTCLOUD_URL"], tls_sandbox["OPNC_NEXTCLOUD_USER"],
                           tls_sandbox["OPNC_NEXTCLOUD_PASSWORD"], ca_bundle=ca_bundle),
            state_dir=tmp_path / "state")

    assert integration(tls_sandbox["OPNC_CA_BUNDLE"]).plan().observed
    with pytest.raises(opnc.TlsError if hasattr(opnc, "TlsError") else opnc.Error) as caught:
        integration(None).plan()
    assert caught.value.kind == "tls"
    assert "ca_bundle" in caught.value.hint or "--ca-bundle" in caught.value.hint
    assert any(host in caught.value.message for host in _hosts(tls_sandbox))
