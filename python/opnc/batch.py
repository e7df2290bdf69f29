"""Many integrations at once: :func:`apply_many` and the batch file reader.

    import opnc
    from opnc.batch import read_batch_file

    entries = read_batch_file("pairs.yaml")            # secrets are read only when a pair starts
    batch = opnc.apply_many(entries, parallel=16, on_event=print)
    print(batch)                                        # one summary line per pair
    failed = [p.name for p in batch if not p.ok]        # rerun later: the journals resume them

Each pair runs in its own thread with its own :class:`opnc.Integration` (its own journal and lock;
a shared ``state_dir`` is fine). The core releases the GIL for every network call, so the threads
really overlap. A pair's failure is a :class:`PairResult` with the error, never an exception that
stops the others; results come back in input order.

Memory stays flat as the number of pairs grows: at most ``parallel`` integrations exist at a time
when the input is lazy (a generator, factories or :class:`BatchEntry` objects), and a finished
pair keeps only its small result.

The batch file (YAML; needs Debian's python3-yaml)::

    defaults:                       # optional; every key may also be set per pair
      storage_name: Nextcloud
      project_folders: true
      state_dir: /var/lib/opnc      # relative paths are relative to the batch file's folder
      timeout: 30
    pairs:
      - name: acme                  # unique; names the pair in events, results and errors
        openproject: {url: https://op.acme.example, token_file: secrets/acme-op-token}
        nextcloud: {url: https://cloud.acme.example, user: admin, password_env: ACME_NC_PASSWORD}

Secrets are references only (``token_file``/``token_env``, ``password_file``/``password_env``); a
secret written into the file itself (``token:``, ``password:`` ...) is refused, and no error
message ever repeats a value from the file.
"""

from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opnc.errors import Error, InternalError, InvalidInput

__all__ = ["apply_many", "PairResult", "BatchResult", "BatchEntry", "ServerRef", "read_batch_file",
           "parse_batch", "PAIR_OPTIONS"]

EventCallback = Callable[[dict[str, Any]], None]

# Options of opnc.Integration that a batch file may set in `defaults` or per pair, with their types.
PAIR_OPTIONS: dict[str, tuple[type, ...]] = {
    "storage_name": (str,),
    "project_folders": (bool,),
    "state_dir": (str,),
    "replace_storage": (bool,),
    "timeout": (int, float),
    "wait": (bool,),
    "ca_bundle": (str,),
}

# Pair statuses. "failed" covers preflight, apply and invalid input of that pair (the error says which).
CHANGED = "changed"
UNCHANGED = "unchanged"
VERIFY_FAILED = "verify_failed"
FAILED = "failed"


# -- results ---------------------------------------------------------------------------------------


@dataclass
class PairResult:
    """The outcome of one pair of a batch.

    ``status`` is ``changed`` (set up or repaired), ``unchanged`` (already complete),
    ``verify_failed`` (apply ran but a check failed) or ``failed`` (``error`` says where: its
    ``step`` is ``""``/``preflight`` when nothing was changed). ``result`` is the
    :class:`opnc.ApplyResult`, partial for a failed step, None when the pair never reached apply.
    """

    index: int
    name: str
    status: str
    duration_ms: float
    result: Any = None  # opnc.ApplyResult | None
    error: Error | None = None

    @property
    def ok(self) -> bool:
        """True when the pair is set up and verified (changed now or already before)."""
        return self.status in (CHANGED, UNCHANGED)

    def to_dict(self) -> dict[str, Any]:
        """The pair's outcome as JSON-ready data (never a secret)."""
        return {
            "index": self.index,
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "duration_ms": round(self.duration_ms, 1),
            "result": self.result.to_dict() if self.result is not None else None,
            "error": self.error.to_dict() if self.error is not None else None,
        }

    def summary(self) -> str:
        """One short phrase: what happened, or where and why it failed."""
        if self.error is not None:
            where = f"{self.error.step}: " if self.error.step else ""
            return f"{where}{self.error.message}"
        if self.status == VERIFY_FAILED and self.result is not None and self.result.verify is not None:
            names = ", ".join(c.name for c in self.result.verify.failed)
            return f"verify failed: {names}"
        if self.result is not None and self.result.storage_id is not None:
            return f"storage {self.result.storage_id}"
        return ""


@dataclass
class BatchResult:
    """The results of :func:`apply_many`, one :class:`PairResult` per pair, in input order."""

    pairs: list[PairResult]
    duration_ms: float
    parallel: int

    @property
    def ok(self) -> bool:
        """True when every pair is set up and verified."""
        return all(p.ok for p in self.pairs)

    @property
    def failed(self) -> list[PairResult]:
        """The pairs that failed or did not verify, in input order."""
        return [p for p in self.pairs if not p.ok]

    def counts(self) -> dict[str, int]:
        """How many pairs ended in each status (changed, unchanged, verify_failed, failed)."""
        counts = {CHANGED: 0, UNCHANGED: 0, VERIFY_FAILED: 0, FAILED: 0}
        for p in self.pairs:
            counts[p.status] += 1
        return counts

    def __iter__(self) -> Iterator[PairResult]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | str) -> PairResult:
        """By position, or by pair name."""
        if isinstance(key, str):
            for p in self.pairs:
                if p.name == key:
                    return p
            raise KeyError(key)
        return self.pairs[key]

    def to_dict(self) -> dict[str, Any]:
        """The whole batch as JSON-ready data (never a secret)."""
        return {"ok": self.ok, "total": len(self.pairs), **self.counts(), "parallel": self.parallel,
                "duration_ms": round(self.duration_ms, 1), "pairs": [p.to_dict() for p in self.pairs]}

    def _rows(self) -> list[list[str]]:
        return [[str(p.index + 1), p.name, p.status, format_duration(p.duration_ms), p.summary()]
                for p in self.pairs]

    def __str__(self) -> str:
        header = ["#", "pair", "status", "time", "detail"]
        rows = [header, *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
        lines = ["  " + "  ".join(cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(r)).rstrip()
                 for r in rows]
        c = self.counts()
        lines.append(f"{len(self.pairs)} pair(s) in {self.duration_ms / 1000:.1f} s (parallel {self.parallel}): "
                     f"{c[CHANGED]} changed, {c[UNCHANGED]} unchanged, {c[VERIFY_FAILED]} verify failed, "
                     f"{c[FAILED]} failed")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("#", "pair", "status", "time", "detail"))
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(cell)}</td>" for cell in row)
                       + "</tr>" for row in self._rows())
        c = self.counts()
        foot = (f"{len(self.pairs)} pair(s), {c[CHANGED]} changed, {c[UNCHANGED]} unchanged, "
                f"{c[VERIFY_FAILED]} verify failed, {c[FAILED]} failed")
        return (f"<div class='opnc'><strong>opnc apply (batch)</strong><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table><p>{html.escape(foot)}</p></div>")


def format_duration(ms: float) -> str:
    """``850 ms`` below a second, ``12.3 s`` above."""
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


# -- apply_many ------------------------------------------------------------------------------------


def apply_many(integrations: Iterable[Any] | Mapping[str, Any], parallel: int = 8,
               on_event: EventCallback | None = None) -> BatchResult:
    """Applies many integrations, ``parallel`` at a time; returns a :class:`BatchResult`.

    ``integrations`` yields, per pair, an :class:`opnc.Integration`, a :class:`BatchEntry`, a
    zero-argument callable that returns an Integration (built when the pair starts), or a
    ``(name, one of those)`` tuple; a mapping of name to one of those works too. Without a name a
    pair is called by its position, starting at 1.

    ``on_event`` receives every event of every pair (the dicts of :meth:`opnc.Integration.apply`)
    with two more keys, ``pair`` (the position, from 0) and ``name``; and, per pair, the batch
    events ``pair_started`` and ``pair_finished`` (``detail`` is the pair's status; ``done`` counts
    the finished pairs). Calls are serialised, so the callback needs no locking of its own. If it
    raises, it is not called again, the batch still completes, and the exception is raised at the
    end with the :class:`BatchResult` as its ``result`` attribute.

    Ctrl-C stops starting new pairs and raises KeyboardInterrupt at once. Pairs already running go
    on in their threads; when the process then ends (the CLI), they are cut off as in a crash,
    which their journals survive: the next run resumes them.
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidInput("parallel must be an integer >= 1")
    if isinstance(integrations, Mapping):
        integrations = list(integrations.items())
    total = len(integrations) if hasattr(integrations, "__len__") else None  # type: ignore[arg-type]
    source = enumerate(integrations)
    events = _EventRelay(on_event)
    lock = threading.Lock()  # guards `source`, `results` and `source_error`
    results: dict[int, PairResult] = {}
    source_error: list[BaseException] = []
    stop = threading.Event()
    started = time.monotonic()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                try:
                    index, item = next(source)
                except StopIteration:
                    return
                except BaseException as exc:  # the caller's generator failed: no more pairs can come
                    source_error.append(exc)
                    stop.set()
                    return
            name, target = _split_item(index, item)
            del item
            result = _run_pair(index, name, target, events)
            del target  # the integration (and its connections) goes now, not when the batch ends
            with lock:
                results[index] = result
                done = len(results)
            events.pair_finished(result, done)

    thread_count = parallel if total is None else max(1, min(parallel, total))
    threads = [threading.Thread(target=worker, name=f"opnc-batch-{n}", daemon=True) for n in range(thread_count)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)  # a timed join, so Ctrl-C reaches the main thread
    except KeyboardInterrupt:
        stop.set()
        raise
    batch = BatchResult([results[i] for i in sorted(results)], (time.monotonic() - started) * 1000, parallel)
    if source_error:
        error = source_error[0]
        error.result = batch  # type: ignore[attr-defined]
        raise error
    if events.callback_error is not None:
        events.callback_error.result = batch  # type: ignore[attr-defined]
        raise events.callback_error
    return batch


def _split_item(index: int, item: Any) -> tuple[str, Any]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    name = getattr(item, "name", None) if isinstance(item, BatchEntry) else None
    return (name or str(index + 1)), item


def _build(target: Any) -> Any:
    """The Integration of a pair: given, built by a BatchEntry, or returned by a factory."""
    if isinstance(target, BatchEntry):
        return target.build()
    if hasattr(target, "apply"):
        return target
    if callable(target):
        built = target()
        if not hasattr(built, "apply"):
            raise InvalidInput(f"the factory returned a {type(built).__name__}, not an opnc.Integration")
        return built
    raise InvalidInput(f"expected an opnc.Integration, a BatchEntry or a factory, not a {type(target).__name__}")


def _run_pair(index: int, name: str, target: Any, events: "_EventRelay") -> PairResult:
    started = time.monotonic()
    events.pair_started(index, name)
    result: Any = None  # opnc.ApplyResult once apply returned (or partial, from a failed step)
    error: Error | None = None
    try:
        integration = _build(target)
        result = integration.apply(on_event=events.for_pair(index, name))
    except Error as exc:
        error = exc
        result = getattr(exc, "result", None)
    except Exception as exc:  # noqa: BLE001 - a bug in one pair must not stop the others
        # Only the type: the text of an arbitrary exception might quote a secret. The original stays
        # reachable as __cause__ for a debugger.
        error = InternalError(f"unexpected {type(exc).__name__} while applying this pair",
                              hint="this is a bug in opnc or in the code that built the integration")
        error.__cause__ = exc
    if error is not None:
        error.__traceback__ = None  # results outlive the run; frames would keep whole integrations alive
        status = FAILED
    elif result.verify is not None and not result.verify.ok:
        status = VERIFY_FAILED
    else:
        status = CHANGED if result.changed else UNCHANGED
    return PairResult(index, name, status, (time.monotonic() - started) * 1000, result, error)


class _EventRelay:
    """Delivers the events of every pair to one callback, one call at a time, tagged with the pair."""

    def __init__(self, callback: EventCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.callback_error: BaseException | None = None
        self._started = time.monotonic()

    def _emit(self, event: dict[str, Any]) -> None:
        if self._callback is None:
            return
        with self._lock:
            if self.callback_error is not None:
                return
            try:
                self._callback(event)
            except Exception as exc:  # noqa: BLE001 - kept and raised when the batch is done
                self.callback_error = exc

    def for_pair(self, index: int, name: str) -> EventCallback | None:
        if self._callback is None:
            return None

        def tagged(event: dict[str, Any]) -> None:
            self._emit({**event, "pair": index, "name": name})

        return tagged

    def pair_started(self, index: int, name: str) -> None:
        self._emit({"type": "pair_started", "step": "", "detail": "", "elapsed_ms": self._elapsed(),
                    "pair": index, "name": name})

    def pair_finished(self, result: PairResult, done: int) -> None:
        self._emit({"type": "pair_finished", "step": result.error.step if result.error else "",
                    "detail": result.status, "elapsed_ms": round(result.duration_ms, 1), "pair": result.index,
                    "name": result.name, "ok": result.ok, "summary": result.summary(), "done": done})

    def _elapsed(self) -> float:
        return round((time.monotonic() - self._started) * 1000, 1)


# -- the batch file --------------------------------------------------------------------------------

# Keys that would hold a secret in the file itself. Checked before anything else, so the message
# can say what to do instead, and never shows the value.
_INLINE_SECRET_KEYS = {
    "openproject": {"token": "token_file or token_env", "api_token": "token_file or token_env",
                    "password": "token_file or token_env"},
    "nextcloud": {"password": "password_file or password_env", "app_password": "password_file or password_env",
                  "token": "password_file or password_env"},
}
_SECRET_WORDS = ("token", "password", "secret")


@dataclass(frozen=True)
class ServerRef:
    """One server of a batch entry: its URL, and where its secret is (a file path or a variable name)."""

    url: str
    secret_file: str | None = None
    secret_env: str | None = None
    user: str | None = None  # Nextcloud only
    ca_bundle: str | None = None

    def read_secret(self, where: str) -> str:
        """The secret's value. `where` names it in errors (``pair 'acme': openproject.token_file``)."""
        if self.secret_file is not None:
            try:
                with open(self.secret_file, encoding="utf-8") as f:
                    value = f.read()
            except OSError as exc:
                raise InvalidInput(f"{where}: cannot read the secret file {self.secret_file} ({exc.strerror})",
                                   hint="check the path (relative paths count from the batch file's folder) "
                                        "and that this user may read it") from None
            value = value.rstrip("\r\n")
        else:
            assert self.secret_env is not None
            value = os.environ.get(self.secret_env, "")
            if not value:
                raise InvalidInput(f"{where}: the environment variable {self.secret_env} is not set or empty",
                                   hint=f"export {self.secret_env} before running the batch")
        if not value.strip():
            raise InvalidInput(f"{where}: the secret is empty")
        return value


@dataclass(frozen=True)
class BatchEntry:
    """One pair of a batch file, validated. It holds no secret: :meth:`build` reads them when the
    pair starts, so a missing secret fails that pair only, and secrets live no longer than needed."""

    index: int
    name: str
    openproject: ServerRef
    nextcloud: ServerRef
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        import opnc

        label = f"pair {self.name!r}"
        secret_key = "token_file" if self.openproject.secret_file is not None else "token_env"
        token = self.openproject.read_secret(f"{label}: openproject.{secret_key}")
        secret_key = "password_file" if self.nextcloud.secret_file is not None else "password_env"
        password = self.nextcloud.read_secret(f"{label}: nextcloud.{secret_key}")
        options = dict(self.options)
        ca_bundle = options.pop("ca_bundle", None)
        op = opnc.OpenProject(self.openproject.url, token, ca_bundle=self.openproject.ca_bundle or ca_bundle)
        nc = opnc.Nextcloud(self.nextcloud.url, self.nextcloud.user or "", password,
                            ca_bundle=self.nextcloud.ca_bundle or ca_bundle)
        del token, password
        return opnc.Integration(op, nc, **options)


def read_batch_file(path: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None) -> list[BatchEntry]:
    """Reads and validates a batch file (see the module's documentation).

    ``defaults`` are options that apply below the file's own ``defaults`` (the CLI passes its
    options here). Raises :class:`opnc.InvalidInput` naming the pair and key at fault; no message
    contains a value from the file.
    """
    path = os.fspath(path)
    try:
        import yaml  # type: ignore[import]
    except ImportError:
        raise InvalidInput("reading a batch file needs PyYAML", hint="install python3-yaml (Debian) or "
                           "the 'batch' extra of opnc") from None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise InvalidInput(f"cannot read the batch file {path} ({exc.strerror})") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        # Not str(exc): it quotes the offending line, which may be a secret written by mistake.
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidInput(f"the batch file {path} is not valid YAML{where}") from None
    except yaml.YAMLError:
        raise InvalidInput(f"the batch file {path} is not valid YAML") from None
    return parse_batch(data, base_dir=os.path.dirname(os.path.abspath(path)), defaults=defaults)


def parse_batch(data: Any, base_dir: str = ".", defaults: Mapping[str, Any] | None = None) -> list[BatchEntry]:
    """Validates the loaded content of a batch file; relative paths are taken from `base_dir`."""
    if not isinstance(data, dict):
        raise InvalidInput("a batch file is a mapping with the keys 'pairs' (and optionally 'defaults')")
    _refuse_unknown(data, {"defaults", "pairs"}, "the batch file")
    options = dict(defaults or {})
    file_defaults = data.get("defaults") or {}
    if not isinstance(file_defaults, dict):
        raise InvalidInput("defaults must be a mapping")
    _refuse_inline_secrets(file_defaults, "defaults")
    _refuse_unknown(file_defaults, set(PAIR_OPTIONS), "defaults")
    options.update(_options(file_defaults, "defaults", base_dir))
    pairs = data.get("pairs")
    if not isinstance(pairs, list) or not pairs:
        raise InvalidInput("pairs must be a non-empty list of pairs")
    entries: list[BatchEntry] = []
    seen: set[str] = set()
    for index, pair in enumerate(pairs):
        entry = _entry(index, pair, options, base_dir)
        if entry.name in seen:
            raise InvalidInput(f"pairs[{index}]: the name {entry.name!r} is used by an earlier pair; names must be unique")
        seen.add(entry.name)
        entries.append(entry)
    return entries


def _entry(index: int, pair: Any, defaults: dict[str, Any], base_dir: str) -> BatchEntry:
    where = f"pairs[{index}]"
    if not isinstance(pair, dict):
        raise InvalidInput(f"{where} must be a mapping with name, openproject and nextcloud")
    name = pair.get("name")
    if isinstance(name, str) and name.strip():
        where = f"pairs[{index}] ({name})"
    _refuse_inline_secrets(pair, where)
    _refuse_unknown(pair, {"name", "openproject", "nextcloud", *PAIR_OPTIONS}, where)
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}: name is required (a non-empty text)")
    options = {**defaults, **_options({k: v for k, v in pair.items() if k in PAIR_OPTIONS}, where, base_dir)}
    openproject = _server(pair.get("openproject"), "openproject", where, base_dir)
    nextcloud = _server(pair.get("nextcloud"), "nextcloud", where, base_dir)
    return BatchEntry(index, name.strip(), openproject, nextcloud, options)


def _server(data: Any, side: str, where: str, base_dir: str) -> ServerRef:
    label = f"{where}: {side}"
    if data is None:
        raise InvalidInput(f"{label} is required")
    if not isinstance(data, dict):
        raise InvalidInput(f"{label} must be a mapping")
    for key, instead in _INLINE_SECRET_KEYS[side].items():
        if key in data:
            raise InvalidInput(f"{label}.{key}: secrets are never accepted inline in a batch file",
                               hint=f"anyone who can read the file, its backups or its history would have it; "
                                    f"use {instead} instead")
    secret = "token" if side == "openproject" else "password"
    allowed = {"url", f"{secret}_file", f"{secret}_env", "ca_bundle"} | ({"user"} if side == "nextcloud" else set())
    _refuse_inline_secrets(data, label, allowed)
    _refuse_unknown(data, allowed, label)
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"{label}.url is required (a text)")
    user = None
    if side == "nextcloud":
        user = data.get("user")
        if not isinstance(user, str) or not user.strip():
            raise InvalidInput(f"{label}.user is required (a text)")
    secret_file, secret_env = data.get(f"{secret}_file"), data.get(f"{secret}_env")
    if (secret_file is None) == (secret_env is None):
        raise InvalidInput(f"{label}: give exactly one of {secret}_file and {secret}_env")
    for key, value in ((f"{secret}_file", secret_file), (f"{secret}_env", secret_env), ("ca_bundle", data.get("ca_bundle"))):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInput(f"{label}.{key} must be a non-empty text")
    ca_bundle = data.get("ca_bundle")
    return ServerRef(url=url.strip(), secret_file=_path(secret_file, base_dir), secret_env=secret_env,
                     user=user, ca_bundle=_path(ca_bundle, base_dir))


def _options(data: dict[str, Any], where: str, base_dir: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        types = PAIR_OPTIONS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            words = {int: "a number", float: "a number", bool: "true or false", str: "a text"}
            expected = " or ".join(dict.fromkeys(words[t] for t in types))
            raise InvalidInput(f"{where}: {key} must be {expected}")
        if key == "timeout" and value <= 0:
            raise InvalidInput(f"{where}: timeout must be a number of seconds > 0")
        if key in ("state_dir", "ca_bundle"):
            value = _path(value, base_dir)
        out[key] = value
    return out


def _path(value: str | None, base_dir: str) -> str | None:
    if value is None:
        return None
    value = os.path.expanduser(value.strip())
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def _refuse_inline_secrets(data: dict[str, Any], where: str, allowed: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    for key in data:
        if key in allowed or not isinstance(key, str):
            continue
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise InvalidInput(f"{where}.{key}: secrets are never accepted inline in a batch file",
                               hint="give secrets per server as token_file/token_env (OpenProject) and "
                                    "password_file/password_env (Nextcloud)")


def _refuse_unknown(data: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
