"""Fixtures of the exchange tests: a runner of the `opnc` CLI against the test's sandbox (the
`sandbox` fixture of tests/python/conftest.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from typing import Any

import pytest

MUTATING = ("POST", "PATCH", "PUT", "DELETE")


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.out)


class OpncRunner:
    """Runs `opnc` in-process (fast), with the sandbox's credentials in the environment."""

    def __init__(self, sandbox: Any, state_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sandbox = sandbox
        self.state_dir = state_dir
        self.monkeypatch = monkeypatch

    def env(self, pair: int = 0) -> dict[str, str]:
        p = self.sandbox.pairs[pair]
        return {
            "OPNC_OPENPROJECT_URL": p.openproject.url,
            "OPNC_OPENPROJECT_TOKEN": p.openproject.token,
            "OPNC_NEXTCLOUD_URL": p.nextcloud.url,
            "OPNC_NEXTCLOUD_USER": p.nextcloud.user,
            "OPNC_NEXTCLOUD_PASSWORD": p.nextcloud.password,
            "OPNC_STATE_DIR": self.state_dir,
        }

    def __call__(self, *args: str, env: dict[str, str | None] | None = None, json_output: bool = True) -> CliRun:
        from opnc import cli

        merged: dict[str, str | None] = {**self.env(), **(env or {})}
        with self.monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("OPNC_")]:
                m.delenv(key)
            for key, value in merged.items():
                if value is not None:
                    m.setenv(key, value)
            out, err = io.StringIO(), io.StringIO()
            argv = list(args) + (["--json"] if json_output and args and args[0] in ("plan", "apply", "verify", "status", "rotate", "teardown") else [])
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(argv)
        return CliRun(code, out.getvalue(), err.getvalue())


@pytest.fixture
def opnc_cli(sandbox, tmp_path, monkeypatch) -> OpncRunner:
    state = tmp_path / "state"
    return OpncRunner(sandbox, str(state), monkeypatch)


def mutating_requests(endpoint: Any) -> list[dict[str, Any]]:
    return [r for r in endpoint.requests() if r["method"] in MUTATING]
