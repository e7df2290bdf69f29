"""`opnc sandbox` as a user runs it: a subprocess, its env file, curl, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
READY_WITHIN_S = 2.0


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class RunningSandbox:
    def __init__(self, process: subprocess.Popen[str], env_file: Path, ready_after: float) -> None:
        self.process = process
        self.env_file = env_file
        self.ready_after = ready_after
        self.variables = read_env_file(env_file)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 5) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


def read_env_file(path: Path) -> dict[str, str]:
    variables = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value
    return variables


def start_sandbox(tmp_path: Path, *options: str, env_file: Path | None = None) -> RunningSandbox:
    env_file = env_file or tmp_path / "sandbox.env"
    started = time.monotonic()
    process = subprocess.Popen([PYTHON, "-m", "opnc", "sandbox", "--env-file", str(env_file), *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                               cwd=tmp_path)
    while not env_file.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"opnc sandbox exited with {process.returncode}: {err}")
        if time.monotonic() - started > 10:
            process.kill()
            pytest.fail("opnc sandbox did not write its env file within 10 s")
        time.sleep(0.01)
    return RunningSandbox(process, env_file, time.monotonic() - started)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningSandbox]:
    sandbox = start_sandbox(tmp_path)
    yield sandbox
    if sandbox.process.poll() is None:
        sandbox.stop()


def curl(*arguments: str, config: str) -> subprocess.CompletedProcess[str]:
    """curl with its credentials in a config read from standard input (-K -), never in argv."""
    return subprocess.run(["curl", "-sS", "--noproxy", "*", "-K", "-", *arguments], input=config,
                          capture_output=True, text=True, timeout=10)


def get_json(url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/hal+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_ready_within_two_seconds_with_a_private_env_file(running: RunningSandbox) -> None:
    assert running.ready_after < READY_WITHIN_S
    assert stat.S_IMODE(os.stat(running.env_file).st_mode) == 0o600
    variables = running.variables
    assert sorted(variables) == ["OPNC_NEXTCLOUD_PASSWORD", "OPNC_NEXTCLOUD_URL", "OPNC_NEXTCLOUD_USER",
                                 "OPNC_OPENPROJECT_TOKEN", "OPNC_OPENPROJECT_URL"]
    assert variables["OPNC_OPENPROJECT_URL"].startswith("http://127.0.0.1:")
    assert variables["OPNC_NEXTCLOUD_URL"].startswith("http://127.0.0.1:")
    assert variables["OPNC_OPENPROJECT_URL"] != variables["OPNC_NEXTCLOUD_URL"]
    assert variables["OPNC_NEXTCLOUD_USER"] == "admin"
    assert len(variables["OPNC_OPENPROJECT_TOKEN"]) >= 32
    assert not [name for name in os.listdir(running.env_file.parent) if name.endswith(".tmp")]


def test_env_file_works_with_curl_by_hand(running: RunningSandbox) -> None:
    variables = running.variables
    result = curl(f"{variables['OPNC_OPENPROJECT_URL']}/api/v3",
                  config=f'user = "apikey:{variables["OPNC_OPENPROJECT_TOKEN"]}"\n')
    assert result.returncode == 0, result.stderr
    root = json.loads(result.stdout)
    assert root["_type"] == "Root"
    assert root["instanceName"] == "OpenProject sandbox"
    # the Nextcloud credentials work the same way
    result = curl("-H", "OCS-APIRequest: true", "-H", "Accept: application/json",
                  f"{variables['OPNC_NEXTCLOUD_URL']}/index.php/apps/integration_openproject/project-folder-status",
                  config=f'user = "{variables["OPNC_NEXTCLOUD_USER"]}:{variables["OPNC_NEXTCLOUD_PASSWORD"]}"\n')
    assert result.returncode == 0, result.stderr
    assert "result" in json.loads(result.stdout)


def test_the_readme_shell_snippet_works(running: RunningSandbox) -> None:
    # What the banner and the README show: load the file, feed curl its config through a builtin.
    script = (f"set -a; . '{running.env_file}'; set +a; "
              "printf 'user = \"apikey:%s\"\\n' \"$OPNC_OPENPROJECT_TOKEN\" | "
              "curl -sS --noproxy '*' -K - \"$OPNC_OPENPROJECT_URL/api/v3/users/me\"")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["admin"] is True


def test_sigterm_stops_cleanly(running: RunningSandbox) -> None:
    url = running.variables["OPNC_OPENPROJECT_URL"]
    port = int(url.rsplit(":", 1)[1])
    code, out, err = running.stop(signal.SIGTERM)
    assert code == 0, err
    assert "opnc sandbox: SIGTERM received, stopping" in out
    assert out.rstrip().endswith("opnc sandbox: stopped")
    assert err == ""
    assert not running.env_file.exists()  # the credentials died with the emulators
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_sigint_stops_cleanly(running: RunningSandbox) -> None:
    code, out, err = running.stop(signal.SIGINT)
    assert code == 0, err
    assert "opnc sandbox: SIGINT received, stopping" in out
    assert "Traceback" not in err


def test_banner_shows_urls_and_how_to_load_but_no_secret(running: RunningSandbox) -> None:
    variables = running.variables
    code, out, _ = running.stop()
    assert code == 0
    assert variables["OPNC_OPENPROJECT_URL"] in out
    assert variables["OPNC_NEXTCLOUD_URL"] in out
    assert f"set -a; . {running.env_file}; set +a" in out
    assert "Ready." in out
    assert variables["OPNC_OPENPROJECT_TOKEN"] not in out
    assert variables["OPNC_NEXTCLOUD_PASSWORD"] not in out


def test_pairs_are_independent(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path, "--pairs", "2")
    try:
        variables = sandbox.variables
        assert variables["OPNC_PAIRS"] == "2"
        for name in ("OPNC_OPENPROJECT_URL", "OPNC_OPENPROJECT_TOKEN", "OPNC_NEXTCLOUD_URL",
                     "OPNC_NEXTCLOUD_USER", "OPNC_NEXTCLOUD_PASSWORD"):
            assert variables[name] == variables[f"{name}_1"]
            assert f"{name}_2" in variables
        op1, op2 = variables["OPNC_OPENPROJECT_URL_1"], variables["OPNC_OPENPROJECT_URL_2"]
        token1, token2 = variables["OPNC_OPENPROJECT_TOKEN_1"], variables["OPNC_OPENPROJECT_TOKEN_2"]
        assert len({op1, op2, variables["OPNC_NEXTCLOUD_URL_1"], variables["OPNC_NEXTCLOUD_URL_2"]}) == 4
        assert token1 != token2
        assert variables["OPNC_NEXTCLOUD_PASSWORD_1"] != variables["OPNC_NEXTCLOUD_PASSWORD_2"]
        assert get_json(f"{op1}/api/v3/users/me", token1)[0] == 200
        assert get_json(f"{op2}/api/v3/users/me", token1)[0] == 401  # pair 1's token means nothing to pair 2
        # a change in pair 1 does not reach pair 2
        change = urllib.request.Request(f"{op1}/_sandbox/config", data=b'{"instance_name": "first"}',
                                        headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(change, timeout=5) as answer:
            assert answer.status == 200
        assert get_json(f"{op1}/api/v3", token1)[1]["instanceName"] == "first"
        assert get_json(f"{op2}/api/v3", token2)[1]["instanceName"] == "OpenProject sandbox"
    finally:
        sandbox.stop()


def test_tls_reports_the_ca_bundle_and_serves_https(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path, "--tls")
    try:
        assert sandbox.ready_after < READY_WITHIN_S
        variables = sandbox.variables
        bundle = variables["OPNC_CA_BUNDLE"]
        assert os.path.isfile(bundle)
        assert variables["OPNC_OPENPROJECT_URL"].startswith("https://127.0.0.1:")
        assert variables["OPNC_NEXTCLOUD_URL"].startswith("https://127.0.0.1:")
        config = f'user = "apikey:{variables["OPNC_OPENPROJECT_TOKEN"]}"\n'
        trusted = curl("--cacert", bundle, f"{variables['OPNC_OPENPROJECT_URL']}/api/v3", config=config)
        assert trusted.returncode == 0, trusted.stderr
        assert json.loads(trusted.stdout)["_type"] == "Root"
        untrusted = curl(f"{variables['OPNC_OPENPROJECT_URL']}/api/v3", config=config)
        assert untrusted.returncode == 60  # CURLE_PEER_FAILED_VERIFICATION
    finally:
        code, out, _ = sandbox.stop()
    assert code == 0
    assert f"CA bundle   {bundle}" in out
    assert not os.path.exists(bundle)  # the throwaway CA is gone with the sandbox


def test_latency_option_delays_answers(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path, "--latency-ms", "300")
    try:
        started = time.monotonic()
        status, _ = get_json(f"{sandbox.variables['OPNC_OPENPROJECT_URL']}/api/v3", sandbox.variables["OPNC_OPENPROJECT_TOKEN"])
        assert status == 200
        assert time.monotonic() - started >= 0.3
    finally:
        sandbox.stop()


def test_settings_override_the_emulators(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path, "--openproject-set", "version=15.4.1", "--openproject-set", "instance_name=Test OP")
    try:
        status, root = get_json(f"{sandbox.variables['OPNC_OPENPROJECT_URL']}/api/v3", sandbox.variables["OPNC_OPENPROJECT_TOKEN"])
        assert status == 200
        assert (root["coreVersion"], root["instanceName"]) == ("15.4.1", "Test OP")
    finally:
        sandbox.stop()


def test_default_env_file_lives_in_a_private_folder(tmp_path: Path) -> None:
    process = subprocess.Popen([PYTHON, "-m", "opnc", "sandbox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=child_env(), cwd=tmp_path)
    try:
        assert process.stdout is not None
        env_line = ""
        while "env file" not in env_line:
            env_line = process.stdout.readline()
            assert env_line, "the banner ended without an env file line"
        path = env_line.split("env file", 1)[1].strip().split(" (mode", 1)[0]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert "OPNC_OPENPROJECT_TOKEN" in read_env_file(Path(path))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=5)
    assert process.returncode == 0
    assert not os.path.exists(os.path.dirname(path))


@pytest.mark.parametrize("options,message", [
    (["--openproject-set", "admin_token=chosen"], "admin_token is a credential"),
    (["--nextcloud-set", "admin_password=chosen"], "admin_password is a credential"),
    (["--openproject-set", "no_such_setting=1"], "unknown setting 'no_such_setting'"),
    (["--nextcloud-set", "groupfolders=maybe"], "groupfolders: expected true or false"),
])
def test_invalid_settings_exit_2_without_echoing_values(tmp_path: Path, options: list[str], message: str) -> None:
    result = subprocess.run([PYTHON, "-m", "opnc", "sandbox", "--env-file", str(tmp_path / "e.env"), *options],
                            capture_output=True, text=True, env=child_env(), timeout=10)
    assert result.returncode == 2
    assert message in result.stderr
    assert "chosen" not in result.stderr + result.stdout
    assert not (tmp_path / "e.env").exists()


@pytest.mark.parametrize("options", [["--pairs", "0"], ["--latency-ms", "-1"], ["--openproject-port", "70000"]])
def test_invalid_numbers_exit_2(tmp_path: Path, options: list[str]) -> None:
    result = subprocess.run([PYTHON, "-m", "opnc", "sandbox", *options], capture_output=True, text=True,
                            env=child_env(), timeout=10)
    assert result.returncode == 2


def test_busy_port_exits_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([PYTHON, "-m", "opnc", "sandbox", "--openproject-port", str(port)],
                                capture_output=True, text=True, env=child_env(), timeout=10)
    assert result.returncode == 1
    assert "cannot start the emulators" in result.stderr


def test_overlapping_fixed_port_ranges_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([PYTHON, "-m", "opnc", "sandbox", "--pairs", "2", "--openproject-port", "18000",
                             "--nextcloud-port", "18001"], capture_output=True, text=True, env=child_env(), timeout=10)
    assert result.returncode == 2
    assert "port ranges overlap" in result.stderr


def test_fixed_ports_are_used(tmp_path: Path) -> None:
    ports = []
    for _ in range(2):  # two free ports, released just before the sandbox binds them
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    sandbox = start_sandbox(tmp_path, "--openproject-port", str(ports[0]), "--nextcloud-port", str(ports[1]))
    try:
        assert sandbox.variables["OPNC_OPENPROJECT_URL"] == f"http://127.0.0.1:{ports[0]}"
        assert sandbox.variables["OPNC_NEXTCLOUD_URL"] == f"http://127.0.0.1:{ports[1]}"
    finally:
        sandbox.stop()


def test_run_in_process_stops_on_event(tmp_path: Path) -> None:
    import io
    import threading

    from opnc.cli import build_parser

    args = build_parser().parse_args(["sandbox", "--pairs", "2", "--tls", "--env-file", str(tmp_path / "p.env")])
    out = io.StringIO()
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(args.func(args, out=out, stop=stop)))
    worker.start()
    deadline = time.monotonic() + 5
    while not (tmp_path / "p.env").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    variables = read_env_file(tmp_path / "p.env")
    stop.set()
    worker.join(5)
    assert result == [0]
    text = out.getvalue()
    assert "opnc sandbox: 2 pairs of emulators on 127.0.0.1 (HTTPS)" in text
    assert "  pair 1" in text and "  pair 2" in text
    assert "$OPNC_OPENPROJECT_TOKEN_2" in text
    assert '--cacert "$OPNC_CA_BUNDLE"' in text
    assert variables["OPNC_CA_BUNDLE_2"] == variables["OPNC_CA_BUNDLE"]
    assert variables["OPNC_OPENPROJECT_URL_2"].startswith("https://")
    assert not (tmp_path / "p.env").exists()


def test_env_file_replaces_an_existing_file_atomically_with_mode_0600(tmp_path: Path) -> None:
    from opnc.sandbox.cli import write_env_file

    target = tmp_path / "existing.env"
    target.write_text("OLD=1\n")
    os.chmod(target, 0o644)
    write_env_file(str(target), {"OPNC_OPENPROJECT_URL": "http://127.0.0.1:1", "OPNC_OPENPROJECT_TOKEN": "abc"})
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert read_env_file(target) == {"OPNC_OPENPROJECT_URL": "http://127.0.0.1:1", "OPNC_OPENPROJECT_TOKEN": "abc"}
    assert sorted(os.listdir(tmp_path)) == ["existing.env"]


def test_env_file_refuses_values_that_would_need_quoting(tmp_path: Path) -> None:
    from opnc.sandbox.cli import write_env_file

    with pytest.raises(ValueError, match="OPNC_NEXTCLOUD_PASSWORD holds a character"):
        write_env_file(str(tmp_path / "bad.env"), {"OPNC_NEXTCLOUD_PASSWORD": "a b$c"})
    assert os.listdir(tmp_path) == []
