"""Reading the sandbox request logs of one run: rounds, critical path, sequential time.

Both emulators log every request with ``start_ms`` and ``end_ms`` (wall clock of the same machine),
so their logs merge into one timeline.

- A **round** is a group of requests that overlap in time: sorted by start, a new round begins when a
  request starts after every earlier request has ended. Rounds are the sequential steps of a run;
  requests inside a round ran concurrently.
- The **critical path** is the sum over the rounds of each round's slowest request: the time the
  servers themselves needed when every round waits for its slowest request. A client that adds
  nothing would take exactly this long.
- The **sequential time** is the sum of the durations of the requests opnc sent: what a client that
  sends the same requests one at a time (as the shell script does) spends waiting for the servers,
  not counting its own work or new connections, so it is a lower bound of such a client's time.

Requests that an emulator sends to the other one while answering (Nextcloud probing OpenProject
during setup, OpenProject probing Nextcloud while validating a storage) are part of their parent
request's time, so they are not counted again in the sequential time. Only opnc's writes make an
emulator call the other one, so a request is taken for such a nested call when it does not carry
opnc's admin credentials (opnc authenticates to OpenProject as ``apikey`` and to Nextcloud as the
admin user) and lies within a write (POST, PATCH, PUT, DELETE) that opnc sent to the other emulator
with those credentials. A request of opnc mistaken for a nested one can only make the sequential
time smaller, i.e. the baseline ratio more modest, never larger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SIDE_LABELS = {"openproject": "OP", "nextcloud": "NC"}
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@dataclass
class LoggedRequest:
    side: str  # "openproject" or "nextcloud"
    method: str
    path: str
    status: int | None
    start_ms: float
    end_ms: float
    auth_user: str | None
    nested: bool = False

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms

    def label(self) -> str:
        return f"{SIDE_LABELS[self.side]} {self.method} {self.path}"


@dataclass
class Round:
    requests: list[LoggedRequest] = field(default_factory=list)

    @property
    def start_ms(self) -> float:
        return min(r.start_ms for r in self.requests)

    @property
    def end_ms(self) -> float:
        return max(r.end_ms for r in self.requests)

    @property
    def slowest_ms(self) -> float:
        return max(r.duration_ms for r in self.requests)


@dataclass
class RunAnalysis:
    requests: list[LoggedRequest]
    rounds: list[Round]

    @property
    def critical_path_ms(self) -> float:
        return sum(r.slowest_ms for r in self.rounds)

    @property
    def sequential_ms(self) -> float:
        return sum(r.duration_ms for r in self.requests if not r.nested)

    @property
    def own_requests(self) -> int:
        return sum(1 for r in self.requests if not r.nested)

    def gaps_ms(self, started_ms: float, ended_ms: float) -> dict[str, float]:
        """Where the client's own time went: before the first request, between the rounds (the
        client reading answers, writing its journal, deciding), after the last one. Times are wall
        clock (``time.time()``) in ms, like the log's."""
        between = sum(max(0.0, b.start_ms - a.end_ms) for a, b in zip(self.rounds, self.rounds[1:]))
        return {"before_first_request_ms": round(self.rounds[0].start_ms - started_ms, 1),
                "between_rounds_ms": round(between, 1),
                "after_last_request_ms": round(ended_ms - self.rounds[-1].end_ms, 1)}

    def describe(self) -> list[str]:
        """One line per round: its requests (nested ones marked) and its slowest time."""
        lines = []
        for number, rnd in enumerate(self.rounds, 1):
            names = ", ".join(("(" + r.label() + ")") if r.nested else r.label() for r in rnd.requests)
            gap = f" after a gap of {rnd.start_ms - self.rounds[number - 2].end_ms:.0f} ms" if number > 1 else ""
            lines.append(f"round {number}: {rnd.slowest_ms:.0f} ms{gap}  {names}")
        return lines


def merge_logs(openproject_log: list[dict[str, Any]], nextcloud_log: list[dict[str, Any]],
               admin_users: tuple[str, ...]) -> list[LoggedRequest]:
    """The requests of both emulators on one timeline, nested emulator-to-emulator calls marked."""
    requests = [LoggedRequest(side, e["method"], e["path"], e.get("status"), float(e["start_ms"]), float(e["end_ms"]),
                              e.get("auth_user"))
                for side, log in (("openproject", openproject_log), ("nextcloud", nextcloud_log))
                for e in log if "end_ms" in e]
    requests.sort(key=lambda r: (r.start_ms, r.end_ms))
    parents = [r for r in requests if r.method in WRITES and r.auth_user in admin_users]
    for inner in requests:
        if inner.auth_user in admin_users:
            continue
        inner.nested = any(outer.side != inner.side and outer.start_ms <= inner.start_ms and inner.end_ms <= outer.end_ms
                           for outer in parents)
    return requests


def group_rounds(requests: list[LoggedRequest]) -> list[Round]:
    """Overlapping requests form one round; a request that starts after all earlier ones ended opens the next."""
    rounds: list[Round] = []
    horizon = float("-inf")
    for request in sorted(requests, key=lambda r: (r.start_ms, r.end_ms)):
        if not rounds or request.start_ms >= horizon:
            rounds.append(Round())
        rounds[-1].requests.append(request)
        horizon = max(horizon, request.end_ms)
    return rounds


def analyse(openproject_log: list[dict[str, Any]], nextcloud_log: list[dict[str, Any]],
            admin_users: tuple[str, ...]) -> RunAnalysis:
    requests = merge_logs(openproject_log, nextcloud_log, admin_users)
    return RunAnalysis(requests, group_rounds(requests))
