"""`opnc apply --batch` without servers: options, exit codes, output, the progress display.
Pairs are scripted by replacing BatchEntry.build (the same against the sandbox: test_batch_sandbox.py)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys

import pytest

from opnc import batch_cli, cli, errors
from opnc.batch import BatchEntry
from opnc.results import ApplyResult, Check, StepOutcome, VerifyResult


@pytest.fixture(autouse=True)
def no_opnc_environment(monkeypatch):
    """The CLI reads OPNC_* defaults when its parser is built; the tests start from none."""
    for key in [k for k in os.environ if k.startswith("OPNC_")]:
        monkeypatch.delenv(key)


def parser():
    p = cli.build_parser()
    subparsers = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    apply_parser = subparsers.choices["apply"]
    if not any("--batch" in a.option_strings for a in apply_parser._actions):
        batch_cli.add_batch_arguments(apply_parser)  # until cli.py adds them itself
    return p


class Outcome:
    """What a scripted pair does, chosen by its name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, on_event=None):
        kind = self.name.split("-")[0]
        if kind == "fail":
            raise errors.ServerError("HTTP 500", step="configure_nextcloud")
        if kind == "preflight":
            raise errors.AuthenticationFailed("token refused", step="preflight")
        if kind == "invalid":
            raise errors.InvalidInput("bad url")
        verify = VerifyResult([Check("probe", kind != "unverified", "", "")])
        return ApplyResult(kind == "new", [StepOutcome("preflight", "done", 1.0)], 3, "op", "nc", [], verify)


def batch_file(tmp_path, names):
    lines = ["pairs:"]
    for name in names:
        lines += [f"  - name: {name}", "    openproject: {url: 'http://op', token_env: T}",
                  "    nextcloud: {url: 'http://nc', user: admin, password_env: P}"]
    path = tmp_path / "pairs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(argv, monkeypatch, tty=False):
    monkeypatch.setattr(BatchEntry, "build", lambda self: Outcome(self.name))
    out, err = io.StringIO(), io.StringIO()
    err.isatty = lambda: tty  # type: ignore[method-assign]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = batch_cli.run_batch(parser().parse_args(argv))
        except cli.UsageError as e:
            print(f"opnc: error: {e}", file=sys.stderr)
            code = 2
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("names,code", [
    (["new-a", "same-b"], 0),
    (["new-a", "unverified-b"], 5),
    (["invalid-a", "unverified-b"], 5),
    (["invalid-a", "new-b"], 2),
    (["unverified-a", "preflight-b"], 3),
    (["preflight-a", "fail-b", "unverified-c"], 4),
])
def test_the_exit_code_is_that_of_the_worst_pair(tmp_path, monkeypatch, names, code):
    got, out, err = run(["apply", "--batch", batch_file(tmp_path, names), "--json"], monkeypatch)
    assert got == code, out + err
    data = json.loads(out)
    assert data["exit_code"] == code
    assert [p["name"] for p in data["pairs"]] == names


def test_json_output_has_per_pair_exit_codes_and_counts(tmp_path, monkeypatch):
    code, out, err = run(["apply", "--batch", batch_file(tmp_path, ["new-a", "fail-b", "same-c", "unverified-d"]),
                          "--parallel", "2", "--json"], monkeypatch)
    data = json.loads(out)
    assert (data["total"], data["changed"], data["unchanged"], data["verify_failed"], data["failed"]) == (4, 1, 1, 1, 1)
    assert data["parallel"] == 2
    assert [p["exit_code"] for p in data["pairs"]] == [0, 4, 0, 5]
    assert data["pairs"][1]["error"] == {"kind": "server_error", "step": "configure_nextcloud", "message": "HTTP 500",
                                         "hint": "", "http_status": 0, "server_id": ""}
    assert err == ""  # not a terminal and JSON: no progress lines


def test_text_output_with_a_line_per_finished_pair_when_not_a_terminal(tmp_path, monkeypatch):
    code, out, err = run(["apply", "--batch", batch_file(tmp_path, ["new-a", "fail-b"]), "--parallel", "1"], monkeypatch)
    assert code == 4
    assert err.splitlines()[0].startswith("  ✓ [1/2] new-a changed (")
    assert err.splitlines()[1].startswith("  ✗ [2/2] fail-b failed (")
    assert err.splitlines()[1].endswith("s): configure_nextcloud: HTTP 500")
    table = out.splitlines()
    assert table[1].split()[:3] == ["1", "new-a", "changed"]
    assert table[2].split()[:3] == ["2", "fail-b", "failed"]


def test_on_a_terminal_one_live_line_and_a_line_per_failure(tmp_path, monkeypatch):
    code, out, err = run(["apply", "--batch", batch_file(tmp_path, ["new-a", "fail-b", "same-c"]), "--parallel", "1"],
                         monkeypatch, tty=True)
    assert code == 4
    assert "\r\x1b[2K  ✗ [2/3] fail-b failed (" in err
    assert "✓" not in err  # good pairs only move the live line
    last = err.rstrip("\n").split("\r\x1b[2K")[-1]
    assert last.startswith("  [" + "#" * 24 + "] 3/3 done, 1 failed, 0 running, ")


def test_cli_options_are_defaults_below_the_file(tmp_path, monkeypatch):
    seen = {}

    def build(self):
        seen[self.name] = dict(self.options)
        return Outcome("same")

    path = tmp_path / "pairs.yaml"
    path.write_text("defaults: {storage_name: FromFile}\npairs:\n"
                    "  - name: a\n    openproject: {url: o, token_env: T}\n    nextcloud: {url: n, user: u, password_env: P}\n"
                    "  - name: b\n    project_folders: false\n    openproject: {url: o, token_env: T}\n"
                    "    nextcloud: {url: n, user: u, password_env: P}\n")
    monkeypatch.setattr(BatchEntry, "build", build)
    args = parser().parse_args(["apply", "--batch", str(path), "--project-folders", "--storage-name", "FromCli",
                                "--state-dir", str(tmp_path / "s"), "--timeout", "7", "--json"])
    with contextlib.redirect_stdout(io.StringIO()):
        assert batch_cli.run_batch(args) == 0
    assert seen["a"] == {"storage_name": "FromFile", "project_folders": True, "state_dir": str(tmp_path / "s"),
                         "timeout": 7.0, "wait": False, "replace_storage": False}
    assert seen["b"]["project_folders"] is False


def test_a_secret_argument_is_refused(tmp_path, monkeypatch):
    code, out, err = run(["apply", "--batch", batch_file(tmp_path, ["new-a"]), "--token", "abc"], monkeypatch)
    assert code == 2
    assert "--token is not accepted" in err and "abc" not in err


@pytest.mark.parametrize("value", ["0", "257", "many"])
def test_parallel_is_checked(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["apply", "--batch", "x.yaml", "--parallel", value])
    assert info.value.code == 2
    assert "argument --parallel" in capsys.readouterr().err


def test_parallel_defaults_to_eight_or_opnc_parallel(monkeypatch):
    monkeypatch.delenv("OPNC_PARALLEL", raising=False)
    assert parser().parse_args(["apply", "--batch", "x.yaml"]).parallel == 8
    monkeypatch.setenv("OPNC_PARALLEL", "32")
    assert parser().parse_args(["apply", "--batch", "x.yaml"]).parallel == 32


def test_an_invalid_batch_file_is_a_usage_error_naming_the_problem(tmp_path, monkeypatch):
    path = tmp_path / "pairs.yaml"
    path.write_text("pairs: []\n")
    code, out, err = run(["apply", "--batch", str(path)], monkeypatch)
    assert code == 2 and out == ""
    assert err == "opnc: error: pairs must be a non-empty list of pairs\n"
    assert not os.path.exists(tmp_path / "state")
