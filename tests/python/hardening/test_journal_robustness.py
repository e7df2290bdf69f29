"""Issue 10 item 5: a truncated or corrupted journal is reported and kept, never silently
overwritten; concurrent runs on one integration are refused by the lock (or wait with --wait)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from .conftest import mutating_requests


def _journal_file(state_dir: str) -> Path:
    files = [p for p in Path(state_dir).glob("*.json") if not p.name.startswith(".")]
    assert len(files) == 1, files
    return files[0]


CORRUPTIONS = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "not-json": lambda text: "this is not a journal\n",
    "binary-garbage": lambda text: "\x00\x01\x02\xff" * 16,
    "wrong-type": lambda text: json.dumps({**json.loads(text), "storage_id": "seven"}),
    "not-an-object": lambda text: "[1, 2, 3]",
    "other-format-version": lambda text: json.dumps({**json.loads(text), "format": 99}),
    "other-integration": lambda text: json.dumps({**json.loads(text), "openproject_url": "https://elsewhere.example"}),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("command", ["apply", "plan", "verify"])
def test_a_damaged_journal_is_reported_and_kept(sandbox, opnc_run, state_dir, corruption, command):
    assert opnc_run("apply").code == 0
    path = _journal_file(state_dir)
    damaged = CORRUPTIONS[corruption](path.read_text())
    path.write_text(damaged, encoding="latin-1")
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()

    run = opnc_run(command)
    assert run.code != 0, run.text
    error = run.json.get("error") if "error" in run.json else None
    if command == "verify" and error is None:
        # verify reports through its checks: one of them must name the journal.
        journal_checks = [c for c in run.json["checks"] if not c["ok"] and path.name in c["detail"]]
        assert journal_checks, run.json["checks"]
    else:
        assert error is not None, run.text
        assert error["kind"] == "journal", error
        assert path.name in error["message"], error
        assert error["hint"], error
    # Kept exactly as it was, and nothing was changed on either server.
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in Path(state_dir).glob("*.json")] == [path.name]
    assert mutating_requests(sandbox.openproject) == []
    assert mutating_requests(sandbox.nextcloud) == []


def test_a_journal_readable_by_others_is_tightened_not_rejected(sandbox, opnc_run, state_dir):
    assert opnc_run("apply").code == 0
    path = _journal_file(state_dir)
    os.chmod(path, 0o644)
    run = opnc_run("apply")
    assert run.code == 0, run.text
    assert path.stat().st_mode & 0o777 == 0o600


def _hold_the_lock(sandbox, opnc_process):
    """Starts an `opnc apply` whose create_storage request the server holds for 2 s; returns it
    once that request is in the server's hands (so the process holds the integration's lock)."""
    sandbox.openproject.faults([{"method": "POST", "path": "/api/v3/storages", "when": "before",
                                 "action": "delay", "delay_ms": 2000, "times": 1}])
    proc = opnc_process("apply", "--json")
    deadline = time.monotonic() + 20
    while sandbox.openproject.active_faults():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first run never sent create_storage"
        time.sleep(0.02)
    return proc


def test_a_concurrent_run_is_refused_by_the_lock(sandbox, opnc_run, opnc_process, state_dir, end_state):
    holder = _hold_the_lock(sandbox, opnc_process)
    second = opnc_run("apply")
    assert second.code == 3, second.text
    error = second.json["error"]
    assert error["kind"] == "in_progress", error
    assert f"pid {holder.pid}" in error["message"], error
    assert "--wait" in error["hint"], error
    out, err = holder.communicate(timeout=30)
    assert holder.returncode == 0, out + err
    # The refused run sent no write of its own: the only storage POST is the first run's.
    assert [r["path"] for r in mutating_requests(sandbox.openproject) if r["method"] == "POST"
            and r["path"] == "/api/v3/storages"] == ["/api/v3/storages"]
    end_state(sandbox, state_dir, project_folders=False)


def test_a_concurrent_run_with_wait_waits_then_finds_nothing_to_do(sandbox, opnc_run, opnc_process, state_dir,
                                                                     end_state):
    holder = _hold_the_lock(sandbox, opnc_process)
    second = opnc_run("apply", "--wait")
    out, err = holder.communicate(timeout=30)
    assert holder.returncode == 0, out + err
    assert second.code == 0, second.text
    assert second.json["changed"] is False
    end_state(sandbox, state_dir, project_folders=False)


def test_two_threads_of_one_process_are_refused_too(sandbox, state_dir, end_state):
    """flock() locks are per open file, so the lock also keeps two Integration objects of one
    process (e.g. two notebook cells, or a thread pool) from running one integration at once."""
    import threading

    import opnc

    def integration() -> "opnc.Integration":
        return opnc.Integration(opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token),
                                opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user, sandbox.nextcloud.password),
                                state_dir=state_dir)

    sandbox.openproject.faults([{"method": "POST", "path": "/api/v3/storages", "when": "before",
                                 "action": "delay", "delay_ms": 1500, "times": 1}])
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(integration().apply()))
    first.start()
    deadline = time.monotonic() + 20
    while sandbox.openproject.active_faults():
        assert time.monotonic() < deadline and first.is_alive(), "the first run never sent create_storage"
        time.sleep(0.02)
    with pytest.raises(opnc.Error) as refused:
        integration().apply()
    first.join(timeout=30)
    assert refused.value.kind == "in_progress"
    assert "this process" in refused.value.message
    assert len(results) == 1 and results[0].changed is True
    end_state(sandbox, state_dir, project_folders=False)


@pytest.mark.parametrize("replacement", ["directory", "symlink", "fifo"])
def test_a_journal_that_is_not_a_regular_file_is_reported_and_left_alone(sandbox, opnc_run, state_dir, tmp_path,
                                                                            replacement):
    assert opnc_run("apply").code == 0
    path = _journal_file(state_dir)
    saved = path.read_bytes()
    path.unlink()
    elsewhere = tmp_path / "elsewhere.json"
    if replacement == "directory":
        path.mkdir()
    elif replacement == "symlink":
        elsewhere.write_bytes(saved)
        path.symlink_to(elsewhere)
    else:
        os.mkfifo(path)
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()

    run = opnc_run("apply")
    assert run.code == 3, run.text
    error = run.json["error"]
    assert error["kind"] == "journal", error
    assert path.name in error["message"] and error["hint"], error
    # Left as it was: still a directory, a symlink to the untouched target, or a FIFO.
    if replacement == "directory":
        assert path.is_dir()
    elif replacement == "symlink":
        assert path.is_symlink() and elsewhere.read_bytes() == saved
    else:
        import stat

        assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert mutating_requests(sandbox.openproject) == []
    assert mutating_requests(sandbox.nextcloud) == []
