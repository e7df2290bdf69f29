"""Issue 8, progress and rendering: the progress displays (plain lines, live terminal, notebook
table) and the text and HTML forms of the results."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest

import opnc
from opnc.progress import (LineProgress, NotebookProgress, ProgressTracker, TerminalProgress, in_notebook,
                           progress_display)
from opnc.results import ApplyResult, Check, Plan, PlannedStep, StepOutcome, VerifyResult


def ev(kind: str, step: str = "", at: float = 0.0, detail: str = "") -> dict[str, Any]:
    return {"type": kind, "step": step, "detail": detail, "elapsed_ms": at}


# The event stream of a fresh run with project folders: the last two steps run in parallel.
RUN = [
    ev("step_started", "preflight", 0.0), ev("step_finished", "preflight", 30.2),
    ev("note", detail="OpenProject 15.2.0, Nextcloud 30.0.1"),
    ev("step_started", "create_storage", 30.5), ev("step_finished", "create_storage", 80.0, "storage 3"),
    ev("step_started", "configure_nextcloud", 80.1), ev("step_finished", "configure_nextcloud", 120.4),
    ev("step_started", "store_nextcloud_client", 120.5), ev("step_started", "set_app_password", 120.6),
    ev("step_finished", "set_app_password", 150.0), ev("step_finished", "store_nextcloud_client", 161.0),
    ev("step_started", "verify", 161.2), ev("step_failed", "verify", 200.0, "1 check failed"),
]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class TableParser(HTMLParser):
    """The header cells and body rows of every <table> in an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[list[str]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._row: list[str] = []
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "thead":
            self._in_head = True
            self.headers.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            (self.headers[-1] if self._in_head else self._row).append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and not self._in_head:
            self.rows.append(self._row)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_of(html_text: str) -> TableParser:
    parser = TableParser()
    parser.feed(html_text)
    return parser


def test_tracker_folds_parallel_steps_with_durations():
    tracker = ProgressTracker()
    for event in RUN[:9]:
        tracker.update(event)
    assert tracker.running() == ["store_nextcloud_client", "set_app_password"]
    for event in RUN[9:]:
        tracker.update(event)
    assert [(s.name, s.state, round(s.duration_ms or 0, 1)) for s in tracker.steps.values()] == [
        ("preflight", "done", 30.2), ("create_storage", "done", 49.5), ("configure_nextcloud", "done", 40.3),
        ("store_nextcloud_client", "done", 40.5), ("set_app_password", "done", 29.4), ("verify", "failed", 38.8)]
    assert tracker.notes == ["OpenProject 15.2.0, Nextcloud 30.0.1"]
    assert tracker.running() == []


def test_line_progress_prints_one_line_per_outcome_and_never_rewrites():
    out = io.StringIO()
    display = LineProgress(out)
    for event in RUN + [ev("step_skipped", "set_app_password", 0.0)]:
        display(event)
    assert out.getvalue().splitlines() == [
        "  ✓ preflight (30 ms)",
        "  note: OpenProject 15.2.0, Nextcloud 30.0.1",
        "  ✓ create_storage (50 ms): storage 3",
        "  ✓ configure_nextcloud (40 ms)",
        "  ✓ set_app_password (29 ms)",
        "  ✓ store_nextcloud_client (40 ms)",
        "  ✗ verify (39 ms): 1 check failed",
        "  - set_app_password",
    ]
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()


def test_terminal_progress_keeps_a_live_line_of_the_running_steps():
    out = Tty()
    display = TerminalProgress(out)
    for event in RUN[:9]:
        display(event)
    text = out.getvalue()
    # The status line is at the bottom, naming both parallel steps, and is not ended by a newline.
    last = text.rsplit("\r\033[K", 1)[-1]
    assert re.fullmatch(r"  … running: store_nextcloud_client, set_app_password \(\d+\.\d s\)", last), repr(last)
    for event in RUN[9:]:
        display(event)
    final = out.getvalue()
    assert final.endswith("  ✗ verify (39 ms): 1 check failed\n")
    # What is left on screen once every erase is applied: the finished steps only.
    screen = [re.sub(r"^.*\r\033\[K", "", line) for line in final.split("\n")]
    assert [line for line in screen if line] == [
        "  ✓ preflight (30 ms)", "  note: OpenProject 15.2.0, Nextcloud 30.0.1", "  ✓ create_storage (50 ms): storage 3",
        "  ✓ configure_nextcloud (40 ms)", "  ✓ set_app_password (29 ms)", "  ✓ store_nextcloud_client (40 ms)",
        "  ✗ verify (39 ms): 1 check failed"]


def test_terminal_progress_close_clears_a_leftover_status_line():
    out = Tty()
    display = TerminalProgress(out)
    display(ev("step_started", "preflight"))
    display.close()
    assert out.getvalue().endswith("\r\033[K")
    display.close()
    assert out.getvalue().count("\r\033[K") == 1


def test_notebook_progress_renders_the_steps_as_a_table():
    display = NotebookProgress()
    for event in RUN[:9]:
        display.tracker.update(event)
    table = table_of(display._repr_html_())
    assert table.headers == [["", "step", "state", "time", "detail"]]
    assert table.rows == [
        ["✓", "preflight", "done", "30 ms", ""], ["✓", "create_storage", "done", "50 ms", "storage 3"],
        ["✓", "configure_nextcloud", "done", "40 ms", ""], ["…", "store_nextcloud_client", "running", "", ""],
        ["…", "set_app_password", "running", "", ""]]
    assert "OpenProject 15.2.0, Nextcloud 30.0.1" in display._repr_html_()


def test_notebook_progress_escapes_what_the_servers_said():
    display = NotebookProgress()
    display.tracker.update(ev("step_failed", "create_storage", 3.0, "<script>alert(1)</script>"))
    assert "<script>" not in display._repr_html_()
    assert "&lt;script&gt;" in display._repr_html_()


def test_progress_display_fits_the_output():
    assert not in_notebook()
    assert type(progress_display(io.StringIO())) is LineProgress
    assert type(progress_display(Tty())) is TerminalProgress


def test_line_progress_of_a_real_apply(sandbox, tmp_path):
    out = io.StringIO()
    integration = opnc.Integration(opnc.OpenProject(sandbox.openproject.url, sandbox.openproject.token),
                                   opnc.Nextcloud(sandbox.nextcloud.url, sandbox.nextcloud.user, sandbox.nextcloud.password),
                                   state_dir=tmp_path)
    integration.apply(on_event=LineProgress(out))
    lines = out.getvalue().splitlines()
    steps = [re.match(r"  ([✓-]) (\w+)", line).groups() for line in lines if not line.startswith("  note:")]
    # The last two steps run in parallel: their order may vary; the rest is sequential.
    assert steps[:3] == [("✓", "preflight"), ("✓", "create_storage"), ("✓", "configure_nextcloud")]
    assert sorted(steps[3:5]) == [("-", "set_app_password"), ("✓", "store_nextcloud_client")]
    assert steps[5:] == [("✓", "verify")]


# -- results: text and HTML -------------------------------------------------------------------------

def sample_plan() -> Plan:
    return Plan([PlannedStep("create_storage", "no storage for this Nextcloud"),
                 PlannedStep("configure_nextcloud", "the app is not configured", ["replaces <old> client"])],
                ["Nextcloud 30"], {"storage_id": None})


def test_plan_renders_as_text_and_html():
    plan = sample_plan()
    assert str(plan).splitlines() == [
        "Plan:",
        "  1.  create_storage       no storage for this Nextcloud",
        "  2.  configure_nextcloud  the app is not configured",
        "  ! replaces <old> client",
        "Note: Nextcloud 30",
    ]
    table = table_of(plan._repr_html_())
    assert table.headers == [["step", "why", "warnings"]]
    assert table.rows == [["create_storage", "no storage for this Nextcloud", ""],
                          ["configure_nextcloud", "the app is not configured", "replaces <old> client"]]
    assert "&lt;old&gt;" in plan._repr_html_()
    assert str(Plan([], [], {})) == "Nothing to do: the integration is complete."


def test_apply_and_verify_results_render_as_text_and_html():
    verify = VerifyResult([Check("storage", True, "storage 3 is configured"),
                           Check("nextcloud_client", False, "client unknown", "run opnc apply")])
    result = ApplyResult(True, [StepOutcome("preflight", "done", 30.4), StepOutcome("set_app_password", "skipped", 0.0)],
                         3, "op-client", "nc-client", [], verify)
    assert str(result).splitlines()[:3] == [
        "Apply: the integration is set up.",
        "  done  preflight         30 ms",
        "  -     set_app_password  0 ms",
    ]
    assert "  storage id 3, OpenProject client op-client, Nextcloud client nc-client" in str(result).splitlines()
    assert table_of(result._repr_html_()).rows == [["done", "preflight", "30 ms", ""],
                                                   ["skipped", "set_app_password", "0 ms", ""]]
    assert str(verify).splitlines() == [
        "Verify: 1 check(s) failed.",
        "  ok    storage           storage 3 is configured",
        "  FAIL  nextcloud_client  client unknown (hint: run opnc apply)",
    ]
    vt = table_of(verify._repr_html_())
    assert vt.headers == [["", "check", "detail", "hint"]]
    assert vt.rows == [["ok", "storage", "storage 3 is configured", ""],
                       ["FAIL", "nextcloud_client", "client unknown", "run opnc apply"]]


@pytest.mark.parametrize("name", ["Plan", "ApplyResult", "VerifyResult"])
def test_results_are_exported_with_html(name):
    cls = getattr(opnc, name)
    assert callable(getattr(cls, "_repr_html_"))
    assert callable(getattr(cls, "to_dict"))
