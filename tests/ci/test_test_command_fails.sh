#!/usr/bin/env bash
# Proves that the test command (tools/test, which .ci/run calls) exits non-zero when a Python test
# fails and when no test ran, and zero when the selected test passes (the control, so the failures
# below come from the planted test and not from a broken command). It plants a small test module
# in tests/python for the duration of the check; its tests only do something when OPNC_CI_PLANTED
# is set, so a copy left behind by a killed run is inert. The python stage alone is run; the C++
# stages fail through `set -e` on ctest's own exit status (ctest runs with --no-tests=error).
# Usage: bash tests/ci/test_test_command_fails.sh   (needs ./.venv from tools/bootstrap)
set -uo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
planted="$repo/tests/python/test_zz_ci_planted.py"
log="$(mktemp "${TMPDIR:-/tmp}/opnc-ci-command-XXXXXX")"
trap 'rm -f "$planted" "$log"' EXIT

cat >"$planted" <<'PY'
"""Planted by tests/ci/test_test_command_fails.sh for the duration of that check."""
import os

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("OPNC_CI_PLANTED"), reason="planted by the CI self-check only")


def test_ci_planted_pass():
    assert True


def test_ci_planted_failure():
    assert 1 + 1 == 3, "deliberately failing test planted by the CI self-check"
PY

failures=0
expect() {  # expect <zero|nonzero> <description> <pytest args...>
    local want="$1" what="$2"
    shift 2
    OPNC_CI_PLANTED=1 OPNC_TEST_STAGES=python bash "$repo/tools/test" -q "$@" >"$log" 2>&1
    local status=$?
    if { [[ "$want" == zero ]] && ((status == 0)); } || { [[ "$want" == nonzero ]] && ((status != 0)); }; then
        echo "ok: $what (exit $status)"
    else
        echo "FAILED: $what: exit $status, expected $want; output:" >&2
        tail -n 30 "$log" >&2
        failures=$((failures + 1))
    fi
}

expect zero "a passing test: the command succeeds" -k ci_planted_pass
expect nonzero "a failing test: the command fails" -k ci_planted_failure
expect nonzero "no test selected (pytest exit 5): the command fails" -k matches_no_test_anywhere_in_opnc

if ((failures)); then
    echo "test_test_command_fails: $failures expectation(s) did not hold" >&2
    exit 1
fi
echo "test_test_command_fails: the test command fails on a failing test and on no tests, and passes otherwise"
