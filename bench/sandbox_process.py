"""The sandbox in a process of its own, as the benchmarks need it.

Real servers do not share a Python interpreter (and its GIL) with the client, so the emulators run
in a separate `opnc sandbox` process. Its env file (mode 0600, removed when it stops) carries the URLs
and credentials; the control API (``/_sandbox/...``, loopback only) resets pairs and returns the
request logs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

VARIABLES = ("OPNC_OPENPROJECT_URL", "OPNC_OPENPROJECT_TOKEN", "OPNC_NEXTCLOUD_URL", "OPNC_NEXTCLOUD_USER",
             "OPNC_NEXTCLOUD_PASSWORD")


@dataclass(frozen=True, repr=False)
class PairAccess:
    """URLs and credentials of one sandbox pair; ``env_suffix`` names its variables in the env file."""

    index: int
    openproject_url: str
    openproject_token: str
    nextcloud_url: str
    nextcloud_user: str
    nextcloud_password: str
    env_suffix: str

    def __repr__(self) -> str:
        return f"PairAccess({self.index}, {self.openproject_url}, {self.nextcloud_url})"


class SandboxProcess:
    """``with SandboxProcess(pairs=100, latency_ms=50) as sb: sb.pairs[0].openproject_url ...``"""

    def __init__(self, pairs: int, latency_ms: int, start_timeout_s: float = 120.0) -> None:
        self.pair_count = pairs
        self.latency_ms = latency_ms
        self.start_timeout_s = start_timeout_s
        self.pairs: list[PairAccess] = []
        self.env: dict[str, str] = {}
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "SandboxProcess":
        self._dir = tempfile.TemporaryDirectory(prefix="opnc-bench-")
        os.chmod(self._dir.name, 0o700)
        env_file = os.path.join(self._dir.name, "sandbox.env")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "opnc", "sandbox", "--pairs", str(self.pair_count), "--latency-ms",
             str(self.latency_ms), "--env-file", env_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
        deadline = time.monotonic() + self.start_timeout_s
        while not os.path.exists(env_file):
            if self._process.poll() is not None:
                message = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise RuntimeError(f"the sandbox process ended with {self._process.returncode}: {message.strip()}")
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the sandbox did not start within {self.start_timeout_s:.0f} s")
            time.sleep(0.05)
        self.env = _read_env_file(env_file)
        self.pairs = [self._pair(i) for i in range(self.pair_count)]
        return self

    def _pair(self, index: int) -> PairAccess:
        suffix = f"_{index + 1}" if self.pair_count > 1 else ""
        values = [self.env[name + suffix] for name in VARIABLES]
        return PairAccess(index, *values, env_suffix=suffix)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    # -- control API ------------------------------------------------------------------------------

    @staticmethod
    def control(base_url: str, route: str, method: str = "GET", payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{base_url}/_sandbox/{route}", data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def reset(self, pairs: list[PairAccess] | None = None) -> None:
        """State, request log, faults and latency as at start (credentials are kept)."""
        for pair in pairs if pairs is not None else self.pairs:
            for url in (pair.openproject_url, pair.nextcloud_url):
                self.control(url, "reset", "POST")

    def clear_logs(self, pair: PairAccess) -> None:
        for url in (pair.openproject_url, pair.nextcloud_url):
            self.control(url, "requests", "DELETE")

    def logs(self, pair: PairAccess) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The request logs of the pair's OpenProject and Nextcloud emulators."""
        return (self.control(pair.openproject_url, "requests")["requests"],
                self.control(pair.nextcloud_url, "requests")["requests"])


def _read_env_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                values[name] = value
    return values
