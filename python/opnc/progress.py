"""Progress displays for ``Integration.apply(on_event=...)``: a terminal, a log file, a notebook.

Every display is an event callback: pass it as ``on_event``. The core calls it with the GIL held,
from whichever thread runs the step (the last two steps run in parallel), so each display guards
its state with a lock.

- :class:`LineProgress`: one plain line per finished, skipped or failed step and per note (logs,
  pipes, CI; what ``opnc`` prints when its output is not a terminal).
- :class:`TerminalProgress`: the same lines, plus a live status line naming the steps that are
  running right now, rewritten in place (``opnc`` on a terminal).
- :class:`NotebookProgress`: an HTML table in Jupyter that updates in place as the steps run.

:func:`progress_display` picks the right one::

    result = integration.apply(on_event=opnc.progress.progress_display())
"""

from __future__ import annotations

import html
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

# What each display shows for a step's state.
_SYMBOLS = {"running": "…", "done": "✓", "skipped": "-", "failed": "✗"}


@dataclass
class StepProgress:
    """What a display knows about one step: its state and, once over, how long it took."""

    name: str
    state: str = "running"  # running, done, skipped, failed
    started_ms: float = 0.0
    duration_ms: float | None = None
    detail: str = ""


class ProgressTracker:
    """Folds the event stream into the state of each step, in the order the steps first appeared.

    The displays share it; it is usable on its own to collect a run's timeline.
    """

    def __init__(self) -> None:
        self.steps: dict[str, StepProgress] = {}
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def update(self, event: dict[str, Any]) -> StepProgress | None:
        """Applies one event; returns the step it concerned (None for a note)."""
        kind = event.get("type", "")
        name = event.get("step", "")
        at = float(event.get("elapsed_ms", 0.0))
        detail = event.get("detail", "") or ""
        with self._lock:
            if kind == "note" or not name:
                if detail:
                    self.notes.append(detail)
                return None
            step = self.steps.get(name)
            if step is None:
                step = self.steps[name] = StepProgress(name, started_ms=at)
            if kind == "step_started":
                step.state, step.started_ms, step.duration_ms = "running", at, None
            elif kind in ("step_finished", "step_skipped", "step_failed"):
                step.state = {"step_finished": "done", "step_skipped": "skipped", "step_failed": "failed"}[kind]
                # A skipped step never started: it took no time.
                step.duration_ms = 0.0 if kind == "step_skipped" else max(0.0, at - step.started_ms)
            step.detail = detail or step.detail
            return step

    def running(self) -> list[str]:
        """The steps started and not yet over."""
        with self._lock:
            return [s.name for s in self.steps.values() if s.state == "running"]


def _step_line(step: StepProgress) -> str:
    timing = f" ({step.duration_ms:.0f} ms)" if step.state in ("done", "failed") and step.duration_ms is not None else ""
    detail = f": {step.detail}" if step.detail else ""
    return f"  {_SYMBOLS.get(step.state, '?')} {step.name}{timing}{detail}"


class LineProgress:
    """One plain line per finished, skipped or failed step and per note; nothing is ever rewritten."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tracker = ProgressTracker()
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        step = self.tracker.update(event)
        with self._lock:
            if step is None:
                if event.get("detail"):
                    self._write(f"  note: {event['detail']}")
            elif step.state != "running":
                self._write(_step_line(step))

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class TerminalProgress(LineProgress):
    """:class:`LineProgress` plus a live status line ("… running: a, b") kept at the bottom.

    Finished steps are printed above the status line, which is cleared and redrawn after each event
    (ANSI "erase line"), so the terminal ends with the list of finished steps only.
    """

    _CLEAR = "\r\033[K"

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._status_shown = False
        self._started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        step = self.tracker.update(event)
        with self._lock:
            if self._status_shown:
                self.stream.write(self._CLEAR)
                self._status_shown = False
            if step is None:
                if event.get("detail"):
                    self.stream.write(f"  note: {event['detail']}\n")
            elif step.state != "running":
                self.stream.write(_step_line(step) + "\n")
            running = self.tracker.running()
            if running:
                elapsed = time.monotonic() - self._started
                self.stream.write(f"  … running: {', '.join(running)} ({elapsed:.1f} s)")
                self._status_shown = True
            self.stream.flush()

    def close(self) -> None:
        """Removes a status line left behind by a run that ended without its last event."""
        with self._lock:
            if self._status_shown:
                self.stream.write(self._CLEAR)
                self.stream.flush()
                self._status_shown = False


class NotebookProgress:
    """A table of the steps in a Jupyter notebook, updated in place while the run goes on.

    The table is shown on the first event (so a run that fails before any step shows nothing) and
    replaced through its display id on every event after that.
    """

    def __init__(self, title: str = "opnc apply") -> None:
        self.title = title
        self.tracker = ProgressTracker()
        self._lock = threading.Lock()
        self._handle: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        self.tracker.update(event)
        with self._lock:
            from IPython.display import HTML, display  # type: ignore[import]  # IPython ships no types

            page = HTML(self._repr_html_())
            if self._handle is None:
                self._handle = display(page, display_id=True)
            else:
                self._handle.update(page)

    def _repr_html_(self) -> str:
        rows = []
        for step in list(self.tracker.steps.values()):
            timing = "" if step.duration_ms is None else f"{step.duration_ms:.0f} ms"
            rows.append("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(cell)}</td>" for cell in (
                _SYMBOLS.get(step.state, "?"), step.name, step.state, timing, step.detail)) + "</tr>")
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.tracker.notes)
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("", "step", "state", "time", "detail"))
        return (f"<div class='opnc opnc-progress'><strong>{html.escape(self.title)}</strong>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{notes}</div>")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell that sends rich output to a front end)."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    shell = ipython_module.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_display(stream: TextIO | None = None) -> LineProgress | TerminalProgress | NotebookProgress:
    """The display that fits where the output goes: a notebook table in Jupyter, a live display on
    a terminal, plain lines otherwise (a pipe, a file, CI). ``stream`` defaults to stderr."""
    if in_notebook():
        return NotebookProgress()
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    if callable(isatty) and isatty():
        return TerminalProgress(target)
    return LineProgress(target)


__all__ = ["StepProgress", "ProgressTracker", "LineProgress", "TerminalProgress", "NotebookProgress",
           "in_notebook", "progress_display"]
