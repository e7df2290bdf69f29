"""Issue 8 in the command line: `opnc --debug` logs the steps and every HTTP request to stderr
(never a secret), and `opnc apply` shows its progress on stderr while stdout keeps the result."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from typing import Any

import pytest

from opnc import cli, logging_bridge  # noqa: F401 - the bridge adds its NullHandler at import, before the test looks

STEPS = ["preflight", "create_storage", "configure_nextcloud", "store_nextcloud_client", "set_app_password", "verify"]


def run_cli(sandbox: Any, state_dir: Any, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    with monkeypatch.context() as m:
        for key, value in {**sandbox.env(), "OPNC_STATE_DIR": str(state_dir)}.items():
            m.setenv(key, value)
        m.delenv("OPNC_DEBUG", raising=False)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_debug_flag_logs_steps_and_requests_to_stderr_without_secrets(sandbox, tmp_path, monkeypatch):
    logger = logging.getLogger("opnc")
    handlers_before, level_before = list(logger.handlers), logger.level
    code, out, err = run_cli(sandbox, tmp_path, monkeypatch, "--debug", "apply", "--project-folders", "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] is True  # stdout is exactly one JSON object
    for step in STEPS:
        assert re.search(rf" INFO    opnc: step {step} done \(at \d+ ms\)", err), (step, err)
    assert re.search(rf" DEBUG   opnc\.http: POST {re.escape(sandbox.openproject.url)}/api/v3/storages -> 201 "
                     r"\(\d+\.\d ms, new connection\)", err), err
    assert re.search(rf" DEBUG   opnc\.http: POST {re.escape(sandbox.nextcloud.url)}"
                     r"/index\.php/apps/integration_openproject/setup -> 200 ", err), err
    for secret in sandbox.secrets():
        assert secret not in err and secret not in out
    # The command's logging does not outlast it.
    assert logger.handlers == handlers_before and logger.level == level_before


def test_without_debug_nothing_is_logged(sandbox, tmp_path, monkeypatch):
    code, out, err = run_cli(sandbox, tmp_path, monkeypatch, "plan")
    assert code == 0, err
    assert "opnc.http" not in err and "DEBUG" not in err


def test_apply_shows_plain_progress_lines_on_a_pipe(sandbox, tmp_path, monkeypatch):
    code, out, err = run_cli(sandbox, tmp_path, monkeypatch, "apply")
    assert code == 0, err
    assert out.splitlines()[0] == "Apply: the integration is set up."
    lines = [line for line in err.splitlines() if not line.startswith("  note:")]
    assert [re.match(r"  ([✓-]) (\w+)", line).group(2) for line in lines[:3]] == STEPS[:3]
    assert sorted(re.match(r"  ([✓-]) (\w+)", line).groups() for line in lines[3:5]) == [
        ("-", "set_app_password"), ("✓", "store_nextcloud_client")]
    assert re.fullmatch(r"  ✓ verify \(\d+ ms\): .+", lines[5])
    assert "\r" not in err and "\033" not in err


def test_apply_json_keeps_stdout_one_object_and_progress_on_stderr(sandbox, tmp_path, monkeypatch):
    code, out, err = run_cli(sandbox, tmp_path, monkeypatch, "apply", "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] is True
    assert re.search(r"^  ✓ create_storage \(\d+ ms\)", err, re.M), err


def test_apply_on_a_terminal_shows_a_live_status_line(sandbox, tmp_path):
    # `opnc apply` with a real pseudo-terminal as stdout and stderr.
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    import opnc
    from opnc import _core

    paths = [str(Path(p).parent) for p in opnc.__path__] + [str(Path(_core.__file__).parent.parent)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPNC_")}
    env.update(sandbox.env(), OPNC_STATE_DIR=str(tmp_path / "state"), TERM="xterm",
               PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))
    controller, terminal = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "opnc", "apply"], stdin=terminal, stdout=terminal,
                             stderr=terminal, env=env, close_fds=True)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert child.wait(timeout=60) == 0, output
    text = output.decode("utf-8")
    assert re.search(r"  … running: preflight \(\d+\.\d s\)\r\x1b\[K", text), repr(text)
    assert re.search(r"  … running: create_storage \(\d+\.\d s\)\r\x1b\[K  ✓ create_storage \(\d+ ms\)", text), repr(text)
    assert "Apply: the integration is set up." in text
    # Nothing is left of the status line at the end.
    assert "running" not in text.rsplit("\x1b[K", 1)[1]
