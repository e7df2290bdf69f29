"""opnc's diagnostics in Python's :mod:`logging`, under the logger ``opnc``.

- ``opnc`` (INFO): the steps of a run as they start, finish, are skipped or fail, and its notes
  (:func:`logged_events` turns the exchange's events into these records).
- ``opnc.http`` (DEBUG): one record per HTTP request the C++ core sends: method, URL without its
  query, status (or the failure) and time. The core forwards them itself (bindings/log.cpp); header
  values and bodies, where credentials and one-time secrets travel, are never logged.

Nothing is printed unless the application configures logging (opnc adds a
:class:`logging.NullHandler`, as libraries should). To see everything::

    import logging
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("opnc").setLevel(logging.DEBUG)

or call :func:`enable_debug` (``opnc --debug`` uses :func:`debug_logging`, its scoped form).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

LOGGER_NAME = "opnc"
HTTP_LOGGER_NAME = "opnc.http"

logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())

DEBUG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

EventCallback = Callable[[dict[str, Any]], None]


def log_event(event: dict[str, Any]) -> None:
    """Writes one exchange event (``{"type", "step", "detail", "elapsed_ms"}``) to the ``opnc`` logger.

    Started, finished and skipped steps and notes are INFO; a failed step is ERROR. The event's
    ``elapsed_ms`` counts from the start of the run.
    """
    kind = event.get("type", "")
    step = event.get("step", "")
    detail = event.get("detail", "")
    at = f"{float(event.get('elapsed_ms', 0.0)):.0f} ms"
    suffix = f": {detail}" if detail else ""
    if kind == "step_started":
        logger.info("step %s started (at %s)", step, at)
    elif kind == "step_finished":
        logger.info("step %s done (at %s)%s", step, at, suffix)
    elif kind == "step_skipped":
        logger.info("step %s skipped%s", step, suffix)
    elif kind == "step_failed":
        logger.error("step %s failed (at %s)%s", step, at, suffix)
    elif kind == "note":
        logger.info("note: %s", detail)
    else:
        logger.info("event %s %s%s", kind, step, suffix)


def logged_events(on_event: EventCallback | None = None) -> EventCallback:
    """An event callback that logs each event (:func:`log_event`), then passes it to ``on_event``.

    ``Integration.apply`` wraps its caller's callback with this, so the steps reach the log whether
    or not anyone watches the progress.
    """

    def callback(event: dict[str, Any]) -> None:
        log_event(event)
        if on_event is not None:
            on_event(event)

    return callback


class _DebugHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`enable_debug` adds; a class of its own so that it is added only once."""


def enable_debug(stream: TextIO | None = None) -> logging.Handler:
    """Turns on DEBUG output of opnc (steps and every HTTP request) to ``stream`` (default stderr).

    Adds one handler to the ``opnc`` logger (calling it again reuses it) and sets the logger's
    level to DEBUG. Returns the handler, so that a caller can remove it again.
    """
    for handler in logger.handlers:
        if isinstance(handler, _DebugHandler):
            handler.setStream(stream or sys.stderr)
            break
    else:
        handler = _DebugHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(DEBUG_FORMAT))
        logger.addHandler(handler)
    handler.setLevel(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    return handler


@contextlib.contextmanager
def debug_logging(enabled: bool = True, stream: TextIO | None = None) -> Iterator[logging.Handler | None]:
    """:func:`enable_debug` for the duration of a ``with`` block, then the logger as it was.

    For a command that runs in a process that lives on (``opnc.cli.main`` called from tests or from
    another program): the handler and the level do not outlast the command. With ``enabled`` False
    it does nothing (so a ``--debug`` flag can be passed straight in).
    """
    if not enabled:
        yield None
        return
    level = logger.level
    had_handler = any(isinstance(h, _DebugHandler) for h in logger.handlers)
    handler = enable_debug(stream)
    try:
        yield handler
    finally:
        logger.setLevel(level)
        if not had_handler:
            logger.removeHandler(handler)


def set_core_level(level: int) -> None:
    """The lowest level the C++ core forwards at all (default ``logging.DEBUG``: the loggers decide).

    Raising it to ``logging.INFO`` saves one GIL round trip per HTTP request, which only matters
    for many integrations run in parallel with DEBUG switched off.
    """
    from opnc import _core

    _core.set_log_level(int(level))


__all__ = ["LOGGER_NAME", "HTTP_LOGGER_NAME", "logger", "log_event", "logged_events", "enable_debug",
           "debug_logging", "set_core_level"]
