"""Fault rules: make an emulator answer badly on purpose, the way real networks and servers do.

A rule names the requests it applies to (``method``, ``path`` with ``*`` standing for exactly one
path segment), the moment it acts (``when``) and what it does (``action``):

- ``when: "before"``: the rule acts before the emulator sees the request, so the request is **not**
  applied (a server that failed, or a proxy that refused it).
- ``when: "after"``: the emulator applies the request (its state changes), then the rule replaces
  the answer. This is the "response lost" case that clients must survive: the POST happened, but
  the client cannot know.

- ``action: "status"``: answer with ``status`` and a plausible body for that emulator.
- ``action: "reset"``: close the connection without any answer.
- ``action: "delay"``: wait ``delay_ms``, then go on normally.

``delay_ms`` also applies to the other two actions (wait, then answer or reset), which is how a slow
failure or a read timeout is simulated. ``times`` limits how many requests a rule affects; it counts
down and the rule disappears at zero. Without ``times`` a rule stays until the faults are cleared.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

WHEN_MODES = ("before", "after")
ACTIONS = ("status", "reset", "delay")


class FaultRuleError(ValueError):
    """A fault rule that cannot be used; the message says which field is wrong."""


@dataclass
class FaultRule:
    method: str = "*"  # HTTP method, upper case, or "*" for any
    path: str = "*"  # "/api/v3/storages/*"; "*" alone matches every path
    when: str = "before"
    action: str = "status"
    status: int | None = None
    delay_ms: int = 0
    times: int | None = None  # None: until cleared

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise FaultRuleError("method must be an HTTP method or '*'")
        self.method = self.method.upper()
        if not isinstance(self.path, str) or not (self.path == "*" or self.path.startswith("/")):
            raise FaultRuleError("path must start with '/' (or be '*' for every path)")
        if self.when not in WHEN_MODES:
            raise FaultRuleError(f"when must be one of {', '.join(WHEN_MODES)}")
        if self.action not in ACTIONS:
            raise FaultRuleError(f"action must be one of {', '.join(ACTIONS)}")
        if self.action == "status":
            if not _is_int(self.status) or not 100 <= self.status <= 599:
                raise FaultRuleError("status must be an HTTP status code (100-599) for action 'status'")
        elif self.status is not None:
            raise FaultRuleError(f"status is only used with action 'status', not {self.action!r}")
        if not _is_int(self.delay_ms) or self.delay_ms < 0:
            raise FaultRuleError("delay_ms must be an integer >= 0")
        if self.action == "delay" and self.delay_ms == 0:
            raise FaultRuleError("delay_ms must be > 0 for action 'delay'")
        if self.times is not None and (not _is_int(self.times) or self.times < 1):
            raise FaultRuleError("times must be an integer >= 1 (or absent: until cleared)")

    @classmethod
    def from_json(cls, data: Any) -> "FaultRule":
        if not isinstance(data, dict):
            raise FaultRuleError("a fault rule must be a JSON object")
        known = {"method", "path", "when", "action", "status", "delay_ms", "times"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultRuleError(f"unknown fault rule field(s): {', '.join(unknown)}")
        return cls(**data)

    def matches(self, method: str, path: str, when: str) -> bool:
        return when == self.when and method_matches(self.method, method) and path_matches(self.path, path)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def method_matches(pattern: str, method: str) -> bool:
    return pattern == "*" or pattern.upper() == method.upper()


def path_matches(pattern: str, path: str) -> bool:
    """`pattern` is a path where ``*`` stands for exactly one non-empty segment; ``*`` alone is any path.

    So ``/api/v3/storages/*`` matches ``/api/v3/storages/7`` but neither ``/api/v3/storages`` nor
    ``/api/v3/storages/7/oauth_client_credentials``.
    """
    if pattern == "*":
        return True
    wanted = pattern.split("/")
    segments = path.split("/")
    if len(wanted) != len(segments):
        return False
    return all(w == s or (w == "*" and s != "") for w, s in zip(wanted, segments))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FaultSet:
    """The active rules of one emulator, in the order they were added. Thread-safe.

    :meth:`take` finds the first rule that matches and counts its use down in one step under the
    lock, so ``times: 1`` affects exactly one request even when many arrive at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str, when: str) -> FaultRule | None:
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(method, path, when):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        del self._rules[index]
                return rule
        return None


def parse_rules(data: Any) -> list[FaultRule]:
    """A JSON list of rules (or a single rule object) as sent to ``POST /_sandbox/faults``."""
    items = data if isinstance(data, list) else [data]
    rules = []
    for position, item in enumerate(items):
        try:
            rules.append(FaultRule.from_json(item))
        except FaultRuleError as exc:
            raise FaultRuleError(f"rule {position}: {exc}") from None
        except TypeError as exc:  # a field of the wrong JSON type that the checks did not catch
            raise FaultRuleError(f"rule {position}: {exc}") from None
    return rules
