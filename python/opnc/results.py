"""Result objects of opnc operations: plain data with a readable ``str``, ``to_dict()`` for JSON,
and an HTML table for Jupyter. None of them ever holds a secret."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any


def _table_html(title: str, header: list[str], rows: list[list[str]], footer: str = "") -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    foot = f"<p>{html.escape(footer)}</p>" if footer else ""
    return f"<div class='opnc'><strong>{html.escape(title)}</strong><table><thead><tr>{head}</tr></thead>" \
           f"<tbody>{body}</tbody></table>{foot}</div>"


def _aligned(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


@dataclass
class PlannedStep:
    """A step that apply would run, why, and what it would disturb."""

    name: str
    reason: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What :meth:`opnc.Integration.apply` would do. ``changes`` is False when nothing is missing."""

    steps: list[PlannedStep]
    notes: list[str]
    observed: dict[str, Any]

    @property
    def changes(self) -> bool:
        """True when apply would run at least one step."""
        return bool(self.steps)

    @classmethod
    def from_core(cls, data: dict[str, Any]) -> "Plan":
        """Builds the plan from the dict that ``opnc._core.Integration.plan()`` returns."""
        return cls([PlannedStep(**s) for s in data["steps"]], list(data["notes"]), dict(data["observed"]))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (what ``--json`` prints); never a secret."""
        return {"changes": self.changes, "steps": [asdict(s) for s in self.steps], "notes": self.notes,
                "observed": self.observed}

    def __str__(self) -> str:
        if not self.steps:
            lines = ["Nothing to do: the integration is complete."]
        else:
            lines = ["Plan:"] + _aligned([[f"{i}.", s.name, s.reason] for i, s in enumerate(self.steps, 1)])
            lines += [f"  ! {w}" for s in self.steps for w in s.warnings]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [[s.name, s.reason, "; ".join(s.warnings)] for s in self.steps]
        footer = " ".join(self.notes) or ("" if self.steps else "Nothing to do: the integration is complete.")
        return _table_html("opnc plan", ["step", "why", "warnings"], rows, footer)


@dataclass
class StepOutcome:
    """One step of an apply run: ``status`` is ``done``, ``skipped`` or ``failed``."""

    name: str
    status: str
    duration_ms: float
    detail: str = ""


@dataclass
class Check:
    """One verify check."""

    name: str
    ok: bool
    detail: str = ""
    hint: str = ""


@dataclass
class VerifyResult:
    """The checks of :meth:`opnc.Integration.verify`; ``ok`` when all passed."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.ok]

    @classmethod
    def from_core(cls, data: dict[str, Any]) -> "VerifyResult":
        """Builds the result from the dict that ``opnc._core.Integration.verify()`` returns."""
        return cls([Check(**c) for c in data["checks"]])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (what ``--json`` prints); never a secret."""
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def __str__(self) -> str:
        rows = [["ok" if c.ok else "FAIL", c.name, c.detail + (f" (hint: {c.hint})" if c.hint and not c.ok else "")]
                for c in self.checks]
        head = "Verify: all checks passed." if self.ok else f"Verify: {len(self.failed)} check(s) failed."
        return "\n".join([head, *_aligned(rows)])

    def _repr_html_(self) -> str:
        rows = [["ok" if c.ok else "FAIL", c.name, c.detail, "" if c.ok else c.hint] for c in self.checks]
        return _table_html("opnc verify", ["", "check", "detail", "hint"], rows)


@dataclass
class ApplyResult:
    """The outcome of :meth:`opnc.Integration.apply`."""

    changed: bool
    steps: list[StepOutcome]
    storage_id: int | None
    openproject_client_id: str
    nextcloud_client_id: str
    notes: list[str]
    verify: VerifyResult | None = None
    error: dict[str, Any] | None = None

    @classmethod
    def from_core(cls, data: dict[str, Any]) -> "ApplyResult":
        """Builds the result from the dict that ``opnc._core.Integration.apply()`` returns."""
        verify = VerifyResult.from_core(data["verify"]) if data.get("verify") is not None else None
        return cls(
            changed=bool(data["changed"]),
            steps=[StepOutcome(**s) for s in data["steps"]],
            storage_id=data.get("storage_id"),
            openproject_client_id=data.get("openproject_client_id", ""),
            nextcloud_client_id=data.get("nextcloud_client_id", ""),
            notes=list(data.get("notes", [])),
            verify=verify,
            error=data.get("error"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (what ``--json`` prints); never a secret."""
        out: dict[str, Any] = {
            "changed": self.changed,
            "steps": [asdict(s) for s in self.steps],
            "storage_id": self.storage_id,
            "openproject_client_id": self.openproject_client_id,
            "nextcloud_client_id": self.nextcloud_client_id,
            "notes": self.notes,
        }
        if self.verify is not None:
            out["checks"] = [asdict(c) for c in self.verify.checks]
        if self.error is not None:
            out["error"] = self.error
        return out

    def __str__(self) -> str:
        rows = [[{"done": "done", "skipped": "-", "failed": "FAILED"}.get(s.status, s.status), s.name,
                 f"{s.duration_ms:.0f} ms", s.detail] for s in self.steps]
        if self.error:
            head = f"Apply failed at step {self.error.get('step') or '?'}: {self.error.get('message', '')}"
        elif self.changed:
            head = "Apply: the integration is set up."
        else:
            head = "Apply: nothing to do, the integration was already complete."
        lines = [head, *_aligned(rows)]
        if self.storage_id is not None:
            lines.append(f"  storage id {self.storage_id}, OpenProject client {self.openproject_client_id or '-'}, "
                         f"Nextcloud client {self.nextcloud_client_id or '-'}")
        lines += [f"Note: {n}" for n in self.notes]
        if self.verify is not None and not self.verify.ok:
            lines.append(str(self.verify))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [[s.status, s.name, f"{s.duration_ms:.0f} ms", s.detail] for s in self.steps]
        footer = " ".join(self.notes)
        return _table_html("opnc apply", ["status", "step", "time", "detail"], rows, footer)


@dataclass
class StatusLine:
    """One line of the status report: ``level`` is ``ok``, ``warning`` or ``problem``."""

    area: str
    name: str
    level: str
    detail: str = ""
    hint: str = ""


@dataclass
class Status:
    """The health of an integration: both sides, the journal, and every disagreement (drift)."""

    lines: list[StatusLine]

    @property
    def healthy(self) -> bool:
        """True when no line is a problem (warnings are allowed)."""
        return all(line.level != "problem" for line in self.lines)

    @property
    def problems(self) -> list[StatusLine]:
        """The lines whose level is ``problem``."""
        return [line for line in self.lines if line.level == "problem"]

    @classmethod
    def from_core(cls, data: dict[str, Any]) -> "Status":
        """Builds the report from the dict that ``opnc._core.Integration.status()`` returns."""
        return cls([StatusLine(**line) for line in data["lines"]])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (what ``--json`` prints); never a secret."""
        return {"healthy": self.healthy, "lines": [asdict(line) for line in self.lines]}

    def __str__(self) -> str:
        marks = {"ok": "ok", "warning": "warn", "problem": "PROBLEM"}
        rows = [[marks.get(l.level, l.level), l.area, l.name,
                 l.detail + (f" (hint: {l.hint})" if l.hint and l.level != "ok" else "")] for l in self.lines]
        head = "Status: healthy." if self.healthy else f"Status: {len(self.problems)} problem(s)."
        return "\n".join([head, *_aligned(rows)])

    def _repr_html_(self) -> str:
        rows = [[l.level, l.area, l.name, l.detail, "" if l.level == "ok" else l.hint] for l in self.lines]
        return _table_html("opnc status", ["level", "area", "item", "detail", "hint"], rows)


@dataclass
class TeardownResult:
    """What :meth:`opnc.Integration.teardown` removed, and what stays with how to remove it."""

    changed: bool
    removed: list[str]
    remaining: list[str]
    notes: list[str]
    archived_journal: str = ""

    @classmethod
    def from_core(cls, data: dict[str, Any]) -> "TeardownResult":
        """Builds the result from the dict that ``opnc._core.Integration.teardown()`` returns."""
        return cls(bool(data["changed"]), list(data["removed"]), list(data["remaining"]), list(data["notes"]),
                   data.get("archived_journal", ""))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (what ``--json`` prints); never a secret."""
        return asdict(self)

    def __str__(self) -> str:
        lines = ["Teardown: removed" if self.changed else "Teardown: nothing left to remove."]
        lines += [f"  - {r}" for r in self.removed]
        if self.remaining:
            lines.append("Still on the servers (remove by hand if wanted):")
            lines += [f"  - {r}" for r in self.remaining]
        lines += [f"Note: {n}" for n in self.notes]
        if self.archived_journal:
            lines.append(f"The journal was archived as {self.archived_journal}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [["removed", r] for r in self.removed] + [["remaining", r] for r in self.remaining]
        return _table_html("opnc teardown", ["", "what"], rows, " ".join(self.notes))
