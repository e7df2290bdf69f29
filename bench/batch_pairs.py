"""Many pairs: `opnc apply --batch` over the sandbox pairs at a given parallelism, in a child process.

Every run starts from fresh emulators (all pairs reset) and an empty state folder, so each run does
the same work: a fresh setup with project folders of every pair. Throughput is pairs per second of
the batch's own duration (``duration_ms`` of its JSON; process start and ``import`` not counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from sandbox_process import PairAccess, SandboxProcess

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch_child.py")


@dataclass
class BatchRun:
    pairs: int
    parallel: int
    duration_ms: float
    succeeded: int
    peak_rss_mb: float

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / (self.duration_ms / 1000)


def write_batch_file(path: str, pairs: list[PairAccess], state_dir: str) -> None:
    """Secrets by reference to the sandbox's environment variables, as an operator would write it."""
    lines = ["defaults:", "  project_folders: true", f"  state_dir: {state_dir}", "pairs:"]
    for pair in pairs:
        lines += [f"  - name: pair-{pair.index + 1}",
                  f"    openproject: {{url: '{pair.openproject_url}', token_env: OPNC_OPENPROJECT_TOKEN{pair.env_suffix}}}",
                  f"    nextcloud: {{url: '{pair.nextcloud_url}', user: '{pair.nextcloud_user}', "
                  f"password_env: OPNC_NEXTCLOUD_PASSWORD{pair.env_suffix}}}"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def run_batch(sandbox: SandboxProcess, count: int, parallel: int) -> BatchRun:
    pairs = sandbox.pairs[:count]
    sandbox.reset(pairs)
    with tempfile.TemporaryDirectory(prefix="opnc-bench-batch-") as folder:
        batch_file = os.path.join(folder, "pairs.yaml")
        write_batch_file(batch_file, pairs, os.path.join(folder, "state"))
        env = {**os.environ, **sandbox.env}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            child = subprocess.Popen([sys.executable, CHILD, "--batch", batch_file, "--parallel", str(parallel)],
                                     stdout=out, stderr=err, env=env)
            # wait4 gives this child's own resource usage (Popen.wait would not)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            output, errors = out.read().decode(), err.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"the batch of {count} pairs at parallel {parallel} exited with {child.returncode}: "
                           f"{errors.strip()[-2000:]}")
    data = json.loads(output)
    return BatchRun(pairs=count, parallel=parallel, duration_ms=data["duration_ms"],
                    succeeded=data["changed"] + data["unchanged"], peak_rss_mb=usage.ru_maxrss / 1024)
