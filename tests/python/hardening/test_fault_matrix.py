"""Issue 10 item 1: the fault matrix.

Every mutating step of the exchange x {500 before, 500 after, reset after, delay past the timeout
after}, plus a SIGKILL of a real `opnc apply` process while the step's request is held by the
server (once before the server applies it, once after). In every scenario the failing run names the
step (in its error, or for a killed process in the journal's ``pending_step``), and the next run
converges: one storage for the host, one Nextcloud OAuth client, client ids equal on both sides and
in the journal, and credentials the verify probes accept.

The last test prints ``N/N scenarios converged``; it runs any scenario that was deselected, so it
also works alone (``-k summary``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import (NC_SETUP, cli_supports, credential_forms, find_leaks, journal_of, state_files_except_journal,
                       with_debug)

# (step, emulator, method, path pattern of the step's one request)
STEPS = [
    ("create_storage", "openproject", "POST", "/api/v3/storages"),
    ("configure_nextcloud", "nextcloud", "POST", NC_SETUP),
    ("store_nextcloud_client", "openproject", "POST", "/api/v3/storages/*/oauth_client_credentials"),
    ("set_app_password", "openproject", "PATCH", "/api/v3/storages/*"),
]
STEP_REQUEST = {s[0]: s[1:] for s in STEPS}

TIMEOUT_S = 1          # opnc's --timeout in the delay scenarios
DELAY_PAST_MS = 2000   # the server's answer comes this late: past the timeout
KILL_HOLD_MS = 1500    # how long the server holds the request the killed process waits for

FAULTS = {
    "500-before": {"when": "before", "action": "status", "status": 500},
    "500-after": {"when": "after", "action": "status", "status": 500},
    "reset-after": {"when": "after", "action": "reset"},
    "delay-after": {"when": "after", "action": "delay", "delay_ms": DELAY_PAST_MS},
    "sigkill-before": {"when": "before", "action": "delay", "delay_ms": KILL_HOLD_MS},
    "sigkill-after": {"when": "after", "action": "delay", "delay_ms": KILL_HOLD_MS},
}
# The kind of error the failing run reports, per fault (SIGKILL: the process reports nothing).
EXPECTED_KIND = {"500-before": "server_error", "500-after": "server_error", "reset-after": "connection_failed",
                 "delay-after": "timeout"}

SCENARIOS = [(step, fault) for fault in FAULTS for step, *_ in STEPS]

# Nextcloud's /setup gets the core's own setup timeout (120 s: it may revoke many users' tokens), not
# --timeout, so a 2 s delay does not make that request time out unless the CLI lets us lower it
# (a --setup-timeout option, proposed to the lead). Strict: the mark goes once the option exists.
SETUP_TIMEOUT_SETTABLE = cli_supports("--setup-timeout")
SETUP_TIMEOUT_NOT_SETTABLE = pytest.mark.xfail(
    not SETUP_TIMEOUT_SETTABLE, strict=True,
    reason="the /setup request ignores --timeout (IntegrationOptions::setup_timeout is 120 s and not settable "
           "from Python or the CLI)")


@dataclass
class Outcome:
    converged: bool
    first_run_problem: str  # "" when the failing run named the step as required
    convergence_problem: str
    leaks: str = ""  # where a secret showed up (item 2), "" when nowhere


RESULTS: dict[str, Outcome] = {}


def scenario_id(step: str, fault: str) -> str:
    return f"{step}-{fault}"


def _rule(step: str, fault: str) -> dict[str, Any]:
    _, method, path = STEP_REQUEST[step]
    return {"method": method, "path": path, "times": 1, **FAULTS[fault]}


def _wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _request_finished(endpoint: Any, step: str) -> bool:
    """Whether the server has finished (answered, reset or given up on) the faulted request."""
    _, method, path = STEP_REQUEST[step]
    return any(r["fault"] is not None for r in endpoint.requests(method=method, path=path))


def _first_run_in_process(sandbox: Any, opnc_run: Any, step: str, fault: str) -> None:
    endpoint = getattr(sandbox, STEP_REQUEST[step][0])
    endpoint.faults([_rule(step, fault)])
    timeouts = ["--timeout", str(TIMEOUT_S)] + (["--setup-timeout", str(TIMEOUT_S)] if SETUP_TIMEOUT_SETTABLE else [])
    first = opnc_run(*with_debug(["apply", "--project-folders", *timeouts]))
    assert first.code == 4, f"exit code {first.code}, expected 4 (the step fails): {first.text[:400]}"
    error = first.json["error"]
    assert error["step"] == step, error
    assert error["kind"] == EXPECTED_KIND[fault], error
    assert error["message"] and error["hint"], error
    failed = [s["name"] for s in first.json["steps"] if s["status"] == "failed"]
    assert failed == [step], first.json["steps"]


def _first_run_killed(sandbox: Any, opnc_process: Any, state_dir: str, step: str, fault: str,
                      outputs: list[str]) -> None:
    endpoint = getattr(sandbox, STEP_REQUEST[step][0])
    endpoint.faults([_rule(step, fault)])
    proc = opnc_process(*with_debug(["apply", "--project-folders", "--json", "--timeout", "10"]))
    # The rule disappears when it is taken: the step's request is then in the server's hands.
    _wait_until(lambda: not endpoint.active_faults() or proc.poll() is not None, 20, f"the {step} request")
    assert proc.poll() is None, proc.communicate()
    proc.kill()
    out, err = proc.communicate(timeout=10)
    outputs.append(out + err)
    assert proc.returncode == -9
    _wait_until(lambda: _request_finished(endpoint, step), 10, f"the {step} request to finish")
    # The killed run could not report; its journal does. The first two steps mark their request as
    # pending before it leaves (its answer carries one-time secrets); the last two are idempotent
    # writes without such a mark, and the journal must not count them as done.
    journal = journal_of(state_dir)
    if step in ("create_storage", "configure_nextcloud"):
        assert journal["pending_step"] == step, journal["pending_step"]
    else:
        assert journal["pending_step"] == ""
        assert journal["last_step"] != step
        if step == "set_app_password":
            assert journal["app_password_in_openproject"] is False


def _first_line(error: AssertionError) -> str:
    return (str(error).splitlines() or ["assertion failed"])[0]


def run_scenario(sandbox: Any, opnc_run: Any, opnc_process: Any, state_dir: str, end_state: Any,
                 step: str, fault: str) -> Outcome:
    """Runs the failing run, then the converging run; the second runs even when the first did not
    fail as expected, so that convergence is judged on its own."""
    first_problem = ""
    killed_output: list[str] = []
    try:
        if fault.startswith("sigkill"):
            _first_run_killed(sandbox, opnc_process, state_dir, step, fault, killed_output)
        else:
            _first_run_in_process(sandbox, opnc_run, step, fault)
    except AssertionError as e:
        first_problem = "first run: " + _first_line(e)
    # The server may still hold a delayed request; the next run starts once it is done with it.
    endpoint = getattr(sandbox, STEP_REQUEST[step][0])
    _wait_until(lambda: _request_finished(endpoint, step), 10, f"the {step} request to finish")
    try:
        _converge(sandbox, opnc_run, state_dir, end_state)
    except AssertionError as e:
        return Outcome(False, first_problem, "next run: " + _first_line(e))
    # Item 2 on every error path of the matrix: no output, log or state file (but the journal)
    # holds a secret the sandbox issued or the test passed in.
    texts = {f"output of run {i}": text for i, text in enumerate(opnc_run.outputs + killed_output)}
    texts.update(state_files_except_journal(state_dir))
    leaks = find_leaks(texts, sandbox.secrets(), credential_forms(sandbox))
    return Outcome(True, first_problem, "", "; ".join(leaks))


def _converge(sandbox: Any, opnc_run: Any, state_dir: str, end_state: Any) -> None:
    second = opnc_run("apply", "--project-folders")
    assert second.code == 0, second.text
    # An apply that found nothing to do skips its verify step; the verify command below always checks.
    failed_checks = [c["name"] for c in second.json.get("checks", []) if not c["ok"]]
    assert failed_checks == [], second.json["checks"]
    verify = opnc_run("verify")
    assert verify.code == 0, verify.text
    assert verify.json["ok"] is True
    end_state(sandbox, state_dir, project_folders=True)


def _marks(step: str, fault: str) -> list[Any]:
    return [SETUP_TIMEOUT_NOT_SETTABLE] if (step, fault) == ("configure_nextcloud", "delay-after") else []


@pytest.mark.parametrize("step,fault", [pytest.param(s, f, marks=_marks(s, f), id=scenario_id(s, f))
                                        for s, f in SCENARIOS])
def test_scenario_fails_at_the_step_and_the_next_run_converges(sandbox, opnc_run, opnc_process, state_dir,
                                                                end_state, step, fault):
    key = scenario_id(step, fault)
    RESULTS[key] = Outcome(False, "", "did not finish")
    outcome = run_scenario(sandbox, opnc_run, opnc_process, state_dir, end_state, step, fault)
    RESULTS[key] = outcome
    assert outcome.leaks == "", outcome.leaks
    assert outcome.first_run_problem == "", outcome.first_run_problem
    assert outcome.converged, outcome.convergence_problem


def test_summary_all_scenarios_converged(request, tmp_path, monkeypatch, capsys):
    """Prints `N/N scenarios converged`; runs the scenarios this session did not run."""
    from opnc.sandbox import Sandbox

    from .conftest import OpncRunner, assert_end_state, sandbox_env, start_opnc

    for step, fault in SCENARIOS:
        key = scenario_id(step, fault)
        if key in RESULTS:
            continue
        state = str(tmp_path / key)
        with Sandbox() as sb:
            runner = OpncRunner(sb, state, monkeypatch)
            procs = []

            def process(*args: str, env: dict[str, str] | None = None):
                procs.append(start_opnc(list(args), {**sandbox_env(sb, state), **(env or {})}))
                return procs[-1]
            try:
                RESULTS[key] = run_scenario(sb, runner, process, state, assert_end_state, step, fault)
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                    p.communicate(timeout=10)

    total = len(SCENARIOS)
    # Convergence is counted on its own; a first run that did not name its step is reported by the
    # scenario's own test (and listed here).
    converged = [k for k, o in RESULTS.items() if o.converged]
    line = f"{len(converged)}/{total} scenarios converged"
    with capsys.disabled():
        print("\n" + line)
        for key, outcome in sorted(RESULTS.items()):
            for problem in (outcome.first_run_problem, outcome.convergence_problem, outcome.leaks):
                if problem:
                    print(f"  {key}: {problem}")
    assert total >= 20
    assert len(converged) == total, line
    assert [k for k, o in RESULTS.items() if o.leaks] == []
