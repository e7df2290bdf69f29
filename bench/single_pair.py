"""One pair: a fresh setup with project folders, then a rerun, timed and read from the request logs.

Each repetition resets the pair (both emulators as at start) and uses a fresh state folder, so every
fresh setup starts from nothing. The wall time is that of ``Integration.apply()`` in this process
(building the Integration object is not counted; its connections are opened inside apply).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from request_log import RunAnalysis, analyse
from sandbox_process import PairAccess, SandboxProcess


@dataclass
class Measured:
    wall_ms: float
    analysis: RunAnalysis
    steps: list[str]
    changed: bool
    gaps: dict[str, float]


@dataclass
class PairRun:
    fresh: Measured
    rerun: Measured


def _apply(sandbox: SandboxProcess, pair: PairAccess, state_dir: str) -> Measured:
    import opnc

    op = opnc.OpenProject(pair.openproject_url, pair.openproject_token)
    nc = opnc.Nextcloud(pair.nextcloud_url, pair.nextcloud_user, pair.nextcloud_password)
    integration = opnc.Integration(op, nc, project_folders=True, state_dir=state_dir)
    sandbox.clear_logs(pair)
    started_clock = time.time() * 1000  # the emulators log in wall-clock ms
    started = time.perf_counter()
    result = integration.apply()
    wall_ms = (time.perf_counter() - started) * 1000
    ended_clock = time.time() * 1000
    if result.verify is not None and not result.verify.ok:
        raise RuntimeError(f"the benchmark's integration did not verify: {result.verify}")
    op_log, nc_log = sandbox.logs(pair)
    analysis = analyse(op_log, nc_log, admin_users=("apikey", pair.nextcloud_user))
    return Measured(wall_ms, analysis, [f"{s.name}:{s.status}" for s in result.steps], result.changed,
                    analysis.gaps_ms(started_clock, ended_clock))


def measure(sandbox: SandboxProcess, pair: PairAccess, repeats: int) -> list[PairRun]:
    runs = []
    for _ in range(repeats):
        sandbox.reset([pair])
        with tempfile.TemporaryDirectory(prefix="opnc-bench-state-") as state_dir:
            fresh = _apply(sandbox, pair, state_dir)
            rerun = _apply(sandbox, pair, state_dir)
        if not fresh.changed or rerun.changed:
            raise RuntimeError("expected a fresh setup that changes things and a rerun that does not")
        runs.append(PairRun(fresh, rerun))
    return runs


def summarise(runs: list[PairRun]) -> dict[str, Any]:
    """Medians over the repetitions (the figures of each run are under ``runs``)."""
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    per_run = [{
        "wall_ms": round(r.fresh.wall_ms, 1),
        "rounds": len(r.fresh.analysis.rounds),
        "critical_path_ms": round(r.fresh.analysis.critical_path_ms, 1),
        "sequential_ms": round(r.fresh.analysis.sequential_ms, 1),
        "requests": r.fresh.analysis.own_requests,
        "rerun_ms": round(r.rerun.wall_ms, 1),
        "rerun_rounds": len(r.rerun.analysis.rounds),
        "rerun_requests": r.rerun.analysis.own_requests,
        "client_time": r.fresh.gaps,
    } for r in runs]
    fresh_wall = [r.fresh.wall_ms for r in runs]
    return {
        "rounds": max(len(r.fresh.analysis.rounds) for r in runs),  # the worst, not the median
        "critical_path_ratio": median([r.fresh.wall_ms / r.fresh.analysis.critical_path_ms for r in runs]),
        "sequential_baseline_ratio": median([r.fresh.analysis.sequential_ms / r.fresh.wall_ms for r in runs]),
        "fresh_ms": median(fresh_wall),
        "critical_path_ms": median([r.fresh.analysis.critical_path_ms for r in runs]),
        "sequential_ms": median([r.fresh.analysis.sequential_ms for r in runs]),
        "requests": runs[0].fresh.analysis.own_requests,
        "rerun_rounds": max(len(r.rerun.analysis.rounds) for r in runs),
        "rerun_ms": median([r.rerun.wall_ms for r in runs]),
        "client_time_ms": {key: median([r.fresh.gaps[key] for r in runs]) for key in runs[0].fresh.gaps},
        "runs": per_run,
        "round_detail": runs[len(runs) // 2].fresh.analysis.describe(),
        "rerun_round_detail": runs[len(runs) // 2].rerun.analysis.describe(),
    }
