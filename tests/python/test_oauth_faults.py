"""opnc.oauth's retry rules against injected faults in the sandbox: the code exchange is resent
after a 5xx, a refresh is never resent once it may have reached the server (refresh tokens rotate:
a lost answer leaves only a dead refresh token behind), and a probe is never resent."""

from __future__ import annotations

from typing import Any

import pytest

import opnc
from opnc import oauth

from test_oauth_sandbox import nc_consent, setup_nextcloud, create_storage

TOKEN_PATH = "/index.php/apps/oauth2/api/v1/token"


@pytest.fixture
def nc_client(op: Any, nc: Any) -> oauth.ClientConfig:
    answer = setup_nextcloud(nc, op.url, create_storage(op, nc))
    return oauth.nextcloud_client(nc.url, answer["nextcloud_client_id"], answer["nextcloud_client_secret"])


def test_code_exchange_is_resent_after_a_server_error(nc: Any, nc_client: oauth.ClientConfig) -> None:
    code = nc_consent(nc, nc_client.client_id)
    nc.faults([{"method": "POST", "path": TOKEN_PATH, "when": "before", "action": "status", "status": 503,
                "times": 1}])
    token = oauth.exchange_code(nc_client, code)
    assert token.access_token
    assert len(nc.requests("POST", TOKEN_PATH)) == 2


def test_refresh_is_not_resent_after_a_server_error(nc: Any, nc_client: oauth.ClientConfig) -> None:
    token = oauth.exchange_code(nc_client, nc_consent(nc, nc_client.client_id))
    nc.clear_requests()
    nc.faults([{"method": "POST", "path": TOKEN_PATH, "when": "before", "action": "status", "status": 503,
                "times": 1}])
    with pytest.raises(opnc.ServerError) as caught:
        oauth.refresh(nc_client, token)
    assert caught.value.http_status == 503
    assert len(nc.requests("POST", TOKEN_PATH)) == 1
    # The server did not apply it ("before"), so the same refresh token still works.
    assert oauth.refresh(nc_client, token).access_token


def test_a_lost_refresh_answer_is_not_replayed(nc: Any, nc_client: oauth.ClientConfig) -> None:
    token = oauth.exchange_code(nc_client, nc_consent(nc, nc_client.client_id))
    nc.clear_requests()
    # The server rotates the refresh token, then the connection drops before the answer.
    nc.faults([{"method": "POST", "path": TOKEN_PATH, "when": "after", "action": "reset", "times": 1}])
    with pytest.raises(opnc.ConnectionFailed):
        oauth.refresh(nc_client, token)
    assert len(nc.requests("POST", TOKEN_PATH)) == 1
    # What a replay would have met: the old refresh token is dead.
    with pytest.raises(opnc.OAuthError) as dead:
        oauth.refresh(nc_client, token)
    assert dead.value.server_id == "invalid_grant"


def test_probe_is_not_resent(nc: Any, nc_client: oauth.ClientConfig) -> None:
    nc.clear_requests()
    nc.faults([{"method": "POST", "path": TOKEN_PATH, "when": "before", "action": "status", "status": 502,
                "times": 1}])
    with pytest.raises(opnc.ServerError):
        oauth.probe_client(nc_client)
    assert len(nc.requests("POST", TOKEN_PATH)) == 1
    assert oauth.probe_client(nc_client).outcome == "registered"
