"""`opnc apply --batch FILE --parallel N`: many pairs from a batch file (see :mod:`opnc.batch`).

The options of `opnc apply` (``--storage-name``, ``--project-folders``, ``--state-dir``,
``--timeout``, ``--wait``, ``--replace-storage``, ``--ca-bundle``) act as defaults below the file's
own ``defaults`` and the pair's keys; the connection options are not used with ``--batch``.

Progress goes to standard error: on a terminal one live line over all pairs (plus a line per
failed pair); elsewhere a line per finished pair (none with ``--json``). At the end: a summary
table, or with ``--json`` one object (:meth:`opnc.batch.BatchResult.to_dict`).

Exit code: 0 when every pair succeeded; else that of the worst pair, in this order: 1 unexpected
error, 4 apply failed, 3 preflight failed, 5 verify failed, 2 invalid input of that pair (a
missing secret file, say). An invalid batch file exits with 2 before any pair starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any, TextIO

from opnc import cli
from opnc.batch import format_duration

DEFAULT_PARALLEL = 8
MAX_PARALLEL = 256

# Worst first: the exit code of a batch is the first of these that any pair has.
_SEVERITY = (cli.EXIT_UNEXPECTED, cli.EXIT_APPLY, cli.EXIT_PREFLIGHT, cli.EXIT_VERIFY, cli.EXIT_INVALID_INPUT)


def _parallel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= value <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PARALLEL}")
    return value


def add_batch_arguments(apply_parser: argparse.ArgumentParser) -> None:
    """Adds ``--batch`` and ``--parallel`` to the parser of `opnc apply`."""
    g = apply_parser.add_argument_group("batch (many pairs; see `pydoc opnc.batch` for the file format)")
    g.add_argument("--batch", metavar="FILE",
                   help="apply every pair of this YAML file (secrets by file or environment variable reference, "
                        "never inline); the connection options are then not used")
    # A text default goes through `type` at parse time, so a bad OPNC_PARALLEL is a usage error then.
    g.add_argument("--parallel", type=_parallel, metavar="N",
                   default=os.environ.get("OPNC_PARALLEL") or str(DEFAULT_PARALLEL),
                   help=f"pairs applied at the same time (OPNC_PARALLEL, default {DEFAULT_PARALLEL})")


def _cli_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """The `opnc apply` options that become batch defaults (None means: not given)."""
    defaults = {
        "storage_name": getattr(args, "storage_name", None),
        "project_folders": getattr(args, "project_folders", False),
        "state_dir": getattr(args, "state_dir", None),
        "timeout": getattr(args, "timeout", None),
        "wait": getattr(args, "wait", False),
        "replace_storage": getattr(args, "replace_storage", False),
        "ca_bundle": getattr(args, "ca_bundle", None),
    }
    return {k: v for k, v in defaults.items() if v is not None}


def pair_exit_code(pair: Any) -> int:
    """The exit code `opnc apply` would have given for this pair alone."""
    if pair.ok:
        return cli.EXIT_OK
    if pair.error is None:
        return cli.EXIT_VERIFY
    from opnc import errors

    if isinstance(pair.error, errors.InternalError):
        return cli.EXIT_UNEXPECTED  # exit_code_for would read its empty step as "preflight"
    return cli.exit_code_for(pair.error)


def batch_exit_code(batch: Any) -> int:
    codes = {pair_exit_code(p) for p in batch}
    for code in _SEVERITY:
        if code in codes:
            return code
    return cli.EXIT_OK


def run_batch(args: argparse.Namespace) -> int:
    """Runs `opnc apply --batch FILE`; returns the exit code. Raises cli.UsageError on bad input."""
    from opnc import errors
    from opnc.batch import apply_many, read_batch_file

    cli._check_no_secret_arguments(args)
    try:
        entries = read_batch_file(args.batch, defaults=_cli_defaults(args))
    except errors.InvalidInput as e:
        raise cli.UsageError(e.message + (f" ({e.hint})" if e.hint else "")) from None
    display = ProgressDisplay(len(entries), sys.stderr, as_json=getattr(args, "json", False))
    display.start()
    try:
        batch = apply_many(entries, parallel=args.parallel, on_event=display.on_event)
    finally:
        display.stop()
    code = batch_exit_code(batch)
    if getattr(args, "json", False):
        out = batch.to_dict()
        out["exit_code"] = code
        for pair_dict, pair in zip(out["pairs"], batch):
            pair_dict["exit_code"] = pair_exit_code(pair)
        cli.print_json(out)
    else:
        print(batch)
    return code


class ProgressDisplay:
    """Progress over all pairs of a batch, on standard error.

    On a terminal: one line redrawn in place (a bar, counts, the elapsed time) and a line per failed
    pair above it. Elsewhere (a log, CI): one line per finished pair, none when the output is JSON.
    Events arrive from the batch's threads one at a time (apply_many serialises them); a ticker
    thread redraws the live line so the clock moves while pairs are slow.
    """

    BAR_WIDTH = 24

    def __init__(self, total: int, stream: TextIO, as_json: bool = False) -> None:
        self.total = total
        self.stream = stream
        self.live = stream.isatty()
        self.quiet = as_json and not self.live
        self.done = 0
        self.failed = 0
        self.running = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> None:
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="opnc-batch-progress", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            with self._lock:
                self._draw()
                self.stream.write("\n")
                self.stream.flush()

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind not in ("pair_started", "pair_finished"):
            return  # step events of single pairs would scroll hundreds of lines
        with self._lock:
            if kind == "pair_started":
                self.running += 1
            else:
                self.running -= 1
                self.done += 1
                if not event["ok"]:
                    self.failed += 1
                self._report_finished(event)
            if self.live:
                self._draw()

    def _report_finished(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        mark = "✓" if event["ok"] else "✗"
        detail = f": {event['summary']}" if event["summary"] else ""
        line = (f"  {mark} [{self.done}/{self.total}] {event['name']} {event['detail']} "
                f"({format_duration(event['elapsed_ms'])}){detail}")
        if self.live:
            if event["ok"]:
                return  # the live line counts the good ones; only failures get a line of their own
            self.stream.write("\r\x1b[2K" + line + "\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        filled = self.BAR_WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.BAR_WIDTH - filled)
        elapsed = time.monotonic() - self._started
        self.stream.write(f"\r\x1b[2K  [{bar}] {self.done}/{self.total} done, {self.failed} failed, "
                          f"{self.running} running, {elapsed:.1f} s")
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._draw()
