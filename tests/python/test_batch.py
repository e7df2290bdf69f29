"""apply_many with scripted integrations (no servers): isolation, order, parallelism, events,
laziness. The same against the sandbox is in test_batch_sandbox.py."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from opnc import errors
from opnc.batch import BatchResult, apply_many
from opnc.results import ApplyResult, Check, StepOutcome, VerifyResult


class ScriptedIntegration:
    """Stands in for opnc.Integration: apply() sleeps, emits two events, then returns or raises."""

    alive = 0
    alive_lock = threading.Lock()

    def __init__(self, storage_id: int, delay_s: float = 0.0, fail: errors.Error | None = None,
                 changed: bool = True, verify_ok: bool = True, crash: Exception | None = None) -> None:
        self.storage_id = storage_id
        self.delay_s = delay_s
        self.fail = fail
        self.changed = changed
        self.verify_ok = verify_ok
        self.crash = crash
        self.threads: list[str] = []
        with ScriptedIntegration.alive_lock:
            ScriptedIntegration.alive += 1

    def __del__(self) -> None:
        with ScriptedIntegration.alive_lock:
            ScriptedIntegration.alive -= 1

    def apply(self, on_event=None) -> ApplyResult:
        self.threads.append(threading.current_thread().name)
        if on_event:
            on_event({"type": "step_started", "step": "preflight", "detail": "", "elapsed_ms": 0.0})
        time.sleep(self.delay_s)
        if self.crash is not None:
            raise self.crash
        if self.fail is not None:
            if on_event:
                on_event({"type": "step_failed", "step": self.fail.step, "detail": self.fail.message, "elapsed_ms": 1.0})
            self.fail.result = ApplyResult(False, [StepOutcome(self.fail.step, "failed", 1.0, self.fail.message)],
                                           None, "", "", [])
            raise self.fail
        if on_event:
            on_event({"type": "step_finished", "step": "preflight", "detail": "", "elapsed_ms": 1.0})
        verify = VerifyResult([Check("storage_matches", self.verify_ok, "", "" if self.verify_ok else "fix it")])
        return ApplyResult(self.changed, [StepOutcome("preflight", "done", 1.0)], self.storage_id,
                           f"op-{self.storage_id}", f"nc-{self.storage_id}", [], verify)


def test_results_are_in_input_order_with_names_and_statuses():
    pairs = [
        ("acme", ScriptedIntegration(1, delay_s=0.05)),
        ("beta", ScriptedIntegration(2, fail=errors.ServerError("boom", step="configure_nextcloud"))),
        ("gamma", ScriptedIntegration(3, changed=False)),
        ("delta", ScriptedIntegration(4, verify_ok=False)),
        ("eps", ScriptedIntegration(5, fail=errors.PreflightFailed("no admin", step="preflight"))),
    ]
    batch = apply_many(pairs, parallel=3)
    assert isinstance(batch, BatchResult)
    assert [p.name for p in batch] == ["acme", "beta", "gamma", "delta", "eps"]
    assert [p.index for p in batch] == [0, 1, 2, 3, 4]
    assert [p.status for p in batch] == ["changed", "failed", "unchanged", "verify_failed", "failed"]
    assert [p.ok for p in batch] == [True, False, True, False, False]
    assert batch.ok is False
    assert batch.counts() == {"changed": 1, "unchanged": 1, "verify_failed": 1, "failed": 2}
    assert batch["acme"].result.storage_id == 1
    beta = batch["beta"]
    assert isinstance(beta.error, errors.ServerError)
    assert beta.error.step == "configure_nextcloud"
    assert [s.status for s in beta.result.steps] == ["failed"]  # the partial result of the failed step
    assert batch["delta"].summary() == "verify failed: storage_matches"
    assert batch["eps"].summary() == "preflight: no admin"
    assert [p.name for p in batch.failed] == ["beta", "delta", "eps"]


def test_a_crashing_pair_is_a_result_whose_message_does_not_quote_the_exception():
    secretish = "s3cr3t-value-in-an-exception"
    batch = apply_many([ScriptedIntegration(1, crash=RuntimeError(secretish)), ScriptedIntegration(2)], parallel=2)
    crashed, fine = batch.pairs
    assert crashed.status == "failed"
    assert isinstance(crashed.error, errors.InternalError)
    assert crashed.error.message == "unexpected RuntimeError while applying this pair"
    assert secretish not in str(batch.to_dict())
    assert secretish not in str(batch)
    assert isinstance(crashed.error.__cause__, RuntimeError)
    assert fine.status == "changed"


def test_pairs_without_names_are_numbered_from_one_and_mappings_give_names():
    batch = apply_many([ScriptedIntegration(1), ScriptedIntegration(2)], parallel=1)
    assert [p.name for p in batch] == ["1", "2"]
    batch = apply_many({"x": ScriptedIntegration(1), "y": ScriptedIntegration(2)}, parallel=2)
    assert [p.name for p in batch] == ["x", "y"]


def test_pairs_run_in_parallel_up_to_the_limit():
    n, delay = 12, 0.2
    started = time.monotonic()
    batch = apply_many([ScriptedIntegration(i, delay_s=delay) for i in range(n)], parallel=4)
    wall = time.monotonic() - started
    assert batch.ok and len(batch) == n
    # 12 pairs of 0.2 s at 4 at a time: 3 waves (0.6 s); one at a time would take 2.4 s.
    assert 0.55 <= wall < 1.5, wall


def test_parallel_one_is_strictly_sequential():
    active, peak = [0], [0]
    lock = threading.Lock()

    class Counting(ScriptedIntegration):
        def apply(self, on_event=None):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                return super().apply(on_event)
            finally:
                with lock:
                    active[0] -= 1

    batch = apply_many([Counting(i, delay_s=0.02) for i in range(6)], parallel=1)
    assert batch.ok and peak[0] == 1


def test_events_are_tagged_serialised_and_include_pair_boundaries():
    events = []
    inside = [0]
    overlap = [False]

    def on_event(event):
        inside[0] += 1
        if inside[0] > 1:
            overlap[0] = True
        time.sleep(0.001)
        events.append(event)
        inside[0] -= 1

    batch = apply_many([("a", ScriptedIntegration(1, delay_s=0.02)),
                        ("b", ScriptedIntegration(2, fail=errors.Conflict("taken", step="create_storage")))],
                       parallel=2, on_event=on_event)
    assert not overlap[0]
    by_pair = {name: [e["type"] for e in events if e["name"] == name] for name in ("a", "b")}
    assert by_pair["a"] == ["pair_started", "step_started", "step_finished", "pair_finished"]
    assert by_pair["b"] == ["pair_started", "step_started", "step_failed", "pair_finished"]
    finished = {e["name"]: e for e in events if e["type"] == "pair_finished"}
    assert finished["a"]["detail"] == "changed" and finished["a"]["ok"] is True and finished["a"]["pair"] == 0
    assert finished["b"]["detail"] == "failed" and finished["b"]["ok"] is False and finished["b"]["pair"] == 1
    assert finished["b"]["step"] == "create_storage"
    assert sorted(e["done"] for e in finished.values()) == [1, 2]
    assert batch.ok is False


def test_a_raising_callback_does_not_stop_the_batch_and_is_raised_at_the_end():
    calls = []

    def on_event(event):
        calls.append(event["type"])
        raise ValueError("display broke")

    integrations = [ScriptedIntegration(i) for i in range(4)]
    with pytest.raises(ValueError, match="display broke") as info:
        apply_many(integrations, parallel=2, on_event=on_event)
    assert calls == ["pair_started"]  # never called again after it raised
    batch = info.value.result
    assert isinstance(batch, BatchResult)
    assert [p.status for p in batch] == ["changed"] * 4


def test_a_lazy_source_keeps_at_most_parallel_integrations_alive():
    gc.collect()
    baseline = ScriptedIntegration.alive
    peak = [0]
    refs = []

    def factories():
        for i in range(40):
            def make(i=i):
                integration = ScriptedIntegration(i, delay_s=0.005)
                refs.append(weakref.ref(integration))
                peak[0] = max(peak[0], ScriptedIntegration.alive - baseline)
                return integration
            yield (f"p{i}", make)

    batch = apply_many(factories(), parallel=4)
    assert batch.ok and len(batch) == 40
    assert peak[0] <= 4 + 1, peak[0]  # one may be waiting for the garbage collector of its thread
    gc.collect()
    assert all(ref() is None for ref in refs)  # results keep no integration


def test_a_failing_source_stops_new_pairs_and_raises_with_the_finished_ones():
    def source():
        yield ("one", ScriptedIntegration(1))
        raise OSError("the inventory went away")

    with pytest.raises(OSError, match="inventory") as info:
        apply_many(source(), parallel=1)
    assert [p.name for p in info.value.result] == ["one"]


def test_factory_returning_something_else_fails_only_that_pair():
    batch = apply_many([("bad", lambda: 42), ("good", ScriptedIntegration(1))], parallel=2)
    assert batch["bad"].status == "failed"
    assert isinstance(batch["bad"].error, errors.InvalidInput)
    assert batch["bad"].error.message == "the factory returned a int, not an opnc.Integration"
    assert batch["good"].status == "changed"


@pytest.mark.parametrize("parallel", [0, -1, 1.5, True, "4"])
def test_parallel_must_be_a_positive_integer(parallel):
    with pytest.raises(errors.InvalidInput, match="parallel must be an integer >= 1"):
        apply_many([ScriptedIntegration(1)], parallel=parallel)


def test_to_dict_and_table():
    batch = apply_many([("acme", ScriptedIntegration(7)),
                        ("beta", ScriptedIntegration(8, fail=errors.ServerError("HTTP 500", step="configure_nextcloud")))],
                       parallel=2)
    data = batch.to_dict()
    assert data["ok"] is False
    assert (data["total"], data["changed"], data["unchanged"], data["verify_failed"], data["failed"]) == (2, 1, 0, 0, 1)
    assert data["parallel"] == 2
    acme, beta = data["pairs"]
    assert acme["name"] == "acme" and acme["status"] == "changed" and acme["error"] is None
    assert acme["result"]["storage_id"] == 7
    assert beta["error"]["kind"] == "server_error" and beta["error"]["step"] == "configure_nextcloud"
    assert beta["result"]["steps"][0]["status"] == "failed"
    text = str(batch)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "pair", "status", "time", "detail"]
    assert lines[1].split()[:3] == ["1", "acme", "changed"] and lines[1].endswith("storage 7")
    assert lines[2].split()[:3] == ["2", "beta", "failed"] and lines[2].endswith("configure_nextcloud: HTTP 500")
    assert lines[3].startswith("2 pair(s) in ") and lines[3].endswith(
        "(parallel 2): 1 changed, 0 unchanged, 0 verify failed, 1 failed")
    assert "<td style='text-align:left'>beta</td>" in batch._repr_html_()


CTRL_C_SCRIPT = r"""
import sys, threading, time
sys.path[:0] = {paths!r}
from opnc.batch import apply_many
from opnc.results import ApplyResult

started = []

class Slow:
    def __init__(self, i):
        self.i = i
    def apply(self, on_event=None):
        started.append(self.i)
        time.sleep(0.6)
        return ApplyResult(True, [], self.i, "", "", [])

print("ready", flush=True)
t = time.monotonic()
try:
    apply_many([Slow(i) for i in range(40)], parallel=2)
except KeyboardInterrupt:
    print(f"interrupted after {{time.monotonic() - t:.2f}} s with {{len(started)}} started", flush=True)
    time.sleep(0.8)  # pairs already running may finish; no new one may start
    print(f"then {{len(started)}} started", flush=True)
"""


def test_ctrl_c_stops_starting_new_pairs_and_raises_at_once(tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT.format(paths=sys.path))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    time.sleep(0.9)  # pairs take 0.6 s: the first two are done, the next two are running
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=10)
    first, second = out.splitlines()
    seconds, started = first.split(" after ")[1].split(" s with ")
    assert 0.85 <= float(seconds) < 1.3, first  # raised within the join's 0.1 s polling, not after 40 pairs
    assert started == "4 started"
    assert second == "then 4 started"


def test_durations_read_as_milliseconds_below_a_second():
    from opnc.batch import format_duration

    assert [format_duration(ms) for ms in (0.4, 850.2, 999.4, 1000, 12345)] == ["0 ms", "850 ms", "999 ms", "1.0 s", "12.3 s"]
