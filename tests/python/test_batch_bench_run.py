"""bench/run keeps working: a small run (no timing is judged here; BENCHMARKS.md has the figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "run")


def test_a_small_bench_run_reports_every_figure_of_issue_9():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, BENCH, "--json", "--latency-ms", "5", "--repeats", "1", "--pairs", "3",
                          "--parallel", "3", "--memory-pairs", "2", "--batch-repeats", "2"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    for key in ("rounds", "rerun_rounds", "requests"):
        assert isinstance(report[key], int) and report[key] >= 1, key
    for key in ("critical_path_ratio", "sequential_baseline_ratio", "rerun_ms", "batch_speedup", "import_ms",
                "peak_rss_mb", "fresh_ms", "critical_path_ms"):
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert report["latency_ms"] == 5
    assert report["batch"]["pairs"] == 3 and report["batch"]["parallel"] == 3
    assert list(report["batch"]["peak_rss_mb_by_pairs"]) == ["2", "3"]
    runs = report["batch"]["ms_of_each_run"]
    assert len(runs) == 2 and report["batch"]["ms"] == max(runs)  # of an even count, the slower middle run
    assert report["acceptance"]["applies"] is False  # judged at 50 ms only
    assert report["command"] == ("bench/run --json --latency-ms 5 --repeats 1 --pairs 3 --parallel 3 --memory-pairs 2 "
                                 "--batch-repeats 2")
    assert len(report["round_detail"]) == report["rounds"]
