"""bench/request_log.py: rounds, critical path and sequential time from the sandbox request logs."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

from request_log import analyse  # noqa: E402


def entry(method, path, start, end, user="apikey"):
    return {"method": method, "path": path, "status": 200, "start_ms": start, "end_ms": end, "auth_user": user}


def test_overlapping_requests_form_one_round_and_the_slowest_counts():
    op = [entry("GET", "/api/v3", 0, 50), entry("POST", "/api/v3/storages", 60, 120),
          entry("POST", "/api/v3/storages/1/oauth_client_credentials", 300, 350),
          entry("PATCH", "/api/v3/storages/1", 301, 380)]
    nc = [entry("GET", "/status.php", 2, 55, user=None), entry("POST", "/setup", 130, 290, user="admin")]
    result = analyse(op, nc, admin_users=("apikey", "admin"))
    assert [[r.label() for r in rnd.requests] for rnd in result.rounds] == [
        ["OP GET /api/v3", "NC GET /status.php"],
        ["OP POST /api/v3/storages"],
        ["NC POST /setup"],
        ["OP POST /api/v3/storages/1/oauth_client_credentials", "OP PATCH /api/v3/storages/1"],
    ]
    assert [rnd.slowest_ms for rnd in result.rounds] == [53, 60, 160, 79]
    assert result.critical_path_ms == 53 + 60 + 160 + 79
    assert result.sequential_ms == 50 + 60 + 50 + 79 + 53 + 160
    assert result.own_requests == 6


def test_a_request_that_starts_exactly_when_the_last_one_ended_opens_a_new_round():
    result = analyse([entry("GET", "/a", 0, 10), entry("GET", "/b", 10, 20)], [], admin_users=("apikey",))
    assert len(result.rounds) == 2


def test_calls_between_the_emulators_stay_in_their_parents_round_and_are_not_counted_twice():
    # Nextcloud's setup probes OpenProject (no opnc credentials) while opnc waits for it.
    nc = [entry("POST", "/index.php/apps/integration_openproject/setup", 100, 220, user="admin")]
    op = [entry("POST", "/api/v3/storages", 0, 90), entry("GET", "/api/v3/", 120, 170, user=None)]
    result = analyse(op, nc, admin_users=("apikey", "admin"))
    assert len(result.rounds) == 2
    nested = [r.label() for r in result.requests if r.nested]
    assert nested == ["OP GET /api/v3/"]
    assert result.sequential_ms == 90 + 120
    assert result.critical_path_ms == 90 + 120
    assert result.describe()[1] == "round 2: 120 ms after a gap of 10 ms  NC POST /index.php/apps/integration_openproject/setup, (OP GET /api/v3/)"


def test_requests_with_opncs_credentials_are_never_taken_for_nested_ones():
    # opnc's own concurrent requests may lie inside each other's intervals (parallel preflight)
    op = [entry("GET", "/api/v3/storages", 10, 40, user="apikey")]
    nc = [entry("GET", "/ocs/v2.php/cloud/capabilities", 0, 60, user="admin"),
          entry("POST", "/index.php/apps/integration_openproject/is-valid-op-instance", 5, 80, user="admin")]
    result = analyse(op, nc, admin_users=("apikey", "admin"))
    assert [r.nested for r in result.requests] == [False, False, False]
    assert result.sequential_ms == 30 + 60 + 75


def test_only_opncs_writes_are_parents_of_nested_calls():
    # opnc's unauthenticated status check within a read, and its OAuth probe to OpenProject within
    # its token request to Nextcloud (client credentials, not the admin): both opnc's own.
    op = [entry("GET", "/api/v3/users/me", 0, 60), entry("POST", "/oauth/token", 110, 150, user="op-client")]
    nc = [entry("GET", "/status.php", 5, 50, user=None),
          entry("POST", "/index.php/apps/oauth2/api/v1/token", 100, 160, user="nc-client")]
    result = analyse(op, nc, admin_users=("apikey", "admin"))
    assert [r.nested for r in result.requests] == [False, False, False, False]
    assert result.sequential_ms == 60 + 45 + 60 + 40


def test_gaps_show_where_the_clients_own_time_went():
    result = analyse([entry("GET", "/a", 1010, 1050), entry("POST", "/b", 1070, 1100)], [], admin_users=("apikey",))
    assert result.gaps_ms(1000, 1125) == {"before_first_request_ms": 10, "between_rounds_ms": 20,
                                          "after_last_request_ms": 25}
