"""How often the exchange writes its journal durably, and that fewer writes lose nothing.

A fresh setup writes the journal four times: the pending mark before the storage is created, the
OpenProject client's one-time secret, Nextcloud's one-time secrets, and the outcome. The last two
steps (store_nextcloud_client, set_app_password) return no secret; what they did goes to disk with
the run's last write, also when verify or one of them fails; if that last write fails, the result
says so in a note and the next run sends the app password again. Each write is a rename of a fully
written temporary file (a new name each time) over the journal, counted here with inotify: the
IN_MOVED_FROM events of those temporary files. (The journal's own IN_MOVED_TO events would not do:
inotify merges an event with the unread one before it when both name the same file.)
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import threading
import time
from typing import Any

import pytest

from .conftest import journal_of, mutating_requests

IN_MOVED_FROM = 0x00000040
EVENT_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


class RenamesFrom:
    """The names of the files renamed away in `folder`, in order (Linux inotify through libc)."""

    def __init__(self, folder: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self._fd, os.fsencode(folder), IN_MOVED_FROM) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def names(self) -> list[str]:
        found: list[str] = []
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _, mask, _, length = EVENT_HEADER.unpack_from(data, offset)
                offset += EVENT_HEADER.size
                name = data[offset:offset + length].rstrip(b"\0").decode()
                offset += length
                if mask & IN_MOVED_FROM:
                    found.append(name)

    def close(self) -> None:
        os.close(self._fd)


@pytest.fixture
def journal_writes(state_dir):
    """Returns the journal files written since the last call (one entry per durable write)."""
    os.mkdir(state_dir, 0o700)
    watch = RenamesFrom(state_dir)
    temporary = re.compile(r"^\.(?P<journal>[^/]+\.json)\.tmp-\w{6}$")
    yield lambda: [m["journal"] for m in map(temporary.match, watch.names()) if m]
    watch.close()


@pytest.mark.parametrize("project_folders", [False, True])
def test_a_fresh_setup_writes_the_journal_four_times_and_a_rerun_never(sandbox, opnc_run, state_dir, journal_writes,
                                                                        project_folders):
    flags = ["--project-folders"] if project_folders else []
    run = opnc_run("apply", *flags)
    assert run.code == 0, run.out + run.err
    done = [s["name"] for s in run.json["steps"] if s["status"] == "done"]
    assert ("set_app_password" in done) is project_folders and "store_nextcloud_client" in done, done
    writes = journal_writes()
    assert len(writes) == 4 and len(set(writes)) == 1, writes
    saved = journal_of(state_dir)
    assert saved["last_step"] == "verify" and saved["pending_step"] == ""
    assert saved["app_password_in_openproject"] is project_folders

    assert opnc_run("apply", *flags).code == 0
    assert journal_writes() == []


def test_when_verify_fails_the_last_steps_are_still_saved(sandbox, opnc_run, state_dir, journal_writes):
    # OpenProject's token endpoint hears only from verify's probe of the OpenProject client.
    sandbox.openproject.faults([{"method": "POST", "path": "/oauth/token", "when": "before", "action": "status",
                                 "status": 500, "times": 1}])
    run = opnc_run("apply", "--project-folders")
    verify = [s for s in run.json["steps"] if s["name"] == "verify"]
    assert verify and verify[0]["status"] == "failed", run.json["steps"]
    assert len(journal_writes()) == 4
    saved = journal_of(state_dir)
    assert saved["app_password_in_openproject"] is True
    assert saved["last_step"] in ("store_nextcloud_client", "set_app_password")

    # The next run verifies again (its probe POSTs to the token endpoint) and changes nothing on
    # either server: it knows both steps are done.
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    again = opnc_run("apply", "--project-folders")
    assert again.code == 0, again.out + again.err
    assert [s["name"] for s in again.json["steps"] if s["status"] == "done"] == ["preflight", "verify"]
    writes = [r for r in mutating_requests(sandbox.openproject) if r["path"] != "/oauth/token"]
    assert writes == [] and mutating_requests(sandbox.nextcloud) == []
    assert journal_of(state_dir)["last_step"] == "verify"


def test_when_one_of_the_last_steps_fails_the_other_is_saved(sandbox, opnc_run, state_dir, journal_writes):
    sandbox.openproject.faults([{"method": "PATCH", "path": "/api/v3/storages/*", "when": "before",
                                 "action": "status", "status": 500, "times": 1}])
    run = opnc_run("apply", "--project-folders")
    assert run.code == 4 and run.json["error"]["step"] == "set_app_password", run.out
    saved = journal_of(state_dir)
    assert saved["last_step"] == "store_nextcloud_client" and saved["app_password_in_openproject"] is False

    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    again = opnc_run("apply", "--project-folders")
    assert again.code == 0, again.out + again.err
    writes = [(r["method"], r["path"]) for r in mutating_requests(sandbox.openproject) if r["path"] != "/oauth/token"]
    assert writes == [("PATCH", f"/api/v3/storages/{saved['storage_id']}")], writes
    assert mutating_requests(sandbox.nextcloud) == []


def test_a_failed_last_save_is_a_note_and_the_next_run_redoes_only_the_app_password(sandbox, state_dir, tmp_path):
    import opnc

    integration = opnc.Integration(opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token),
                                   opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user,
                                                  sandbox.nextcloud.password),
                                   project_folders=True, state_dir=state_dir)
    # Verify's probe of OpenProject's client is held for a moment; meanwhile the state folder is
    # replaced by a file, so that the run's last save (after verify) cannot write.
    sandbox.openproject.faults([{"method": "POST", "path": "/oauth/token", "when": "before", "action": "delay",
                                 "delay_ms": 600, "times": 1}])
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=integration.apply()))
    runner.start()
    deadline = time.monotonic() + 20
    while sandbox.openproject.active_faults() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not sandbox.openproject.active_faults(), "verify's probe never came"
    moved = tmp_path / "state-moved"
    os.rename(state_dir, moved)
    with open(state_dir, "w", encoding="utf-8") as placeholder:
        placeholder.write("not a folder")
    runner.join(30)
    os.unlink(state_dir)
    os.rename(moved, state_dir)

    result = outcome["result"]
    assert result.verify is not None and result.verify.ok and result.error is None
    assert any("the journal could not be saved" in note for note in result.notes), result.notes
    saved = journal_of(state_dir)
    assert saved["last_step"] == "configure_nextcloud" and saved["app_password_in_openproject"] is False

    # Nothing secret was lost: the next run sends the same app password again and nothing else.
    sandbox.openproject.clear_requests()
    sandbox.nextcloud.clear_requests()
    again = integration.apply()
    assert again.error is None and again.verify is not None and again.verify.ok
    writes = [(r["method"], r["path"]) for r in mutating_requests(sandbox.openproject) if r["path"] != "/oauth/token"]
    assert writes == [("PATCH", f"/api/v3/storages/{saved['storage_id']}")], writes
    assert mutating_requests(sandbox.nextcloud) == []
