"""The OAuth 2.0 client engine of opnc (RFC 6749 and RFC 7636), implemented in the C++ core.

    from opnc import oauth

    config = oauth.ClientConfig(
        "https://op.example/oauth/token", client_id, client_secret,
        authorize_endpoint="https://op.example/oauth/authorize",
        redirect_uri="https://cloud.example/index.php/apps/integration_openproject/oauth-redirect")
    request = oauth.AuthorizationRequest(config, scope="api_v3")
    # ... the user's browser opens request.url and comes back to the redirect URI ...
    code = request.code_from_callback(redirected_to)       # checks `state` in constant time
    token = oauth.exchange_code(config, code, request.pkce.verifier)
    source = oauth.CachingTokenSource(config, token, on_rotated=save)
    bearer = source.token().access_token                   # an opnc.Secret, refreshed when due

    oauth.probe_client(config).outcome   # 'accepted', 'rejected', 'registered', 'not_registered', 'unknown'

Credentials (client secret, code, verifier, tokens) are :class:`opnc.Secret` values: their ``repr``
is ``[redacted]`` and no repr or error message of this module shows one. Functions accept a ``str``
or an ``opnc.Secret`` wherever a credential goes in. Every call that touches the network runs with
the GIL released and can be interrupted with Ctrl-C. Failures raise :mod:`opnc.errors` classes; an
OAuth error answer raises :class:`opnc.OAuthError` whose ``server_id`` is the RFC 6749 code.
Times are float seconds since the epoch, as :func:`time.time` returns.
"""

from __future__ import annotations

from opnc._core import Secret
from opnc._core import oauth as _oauth

ClientConfig = _oauth.ClientConfig
Pkce = _oauth.Pkce
AuthorizationRequest = _oauth.AuthorizationRequest
Token = _oauth.Token
ProbeResult = _oauth.ProbeResult
CachingTokenSource = _oauth.CachingTokenSource
exchange_code = _oauth.exchange_code
refresh = _oauth.refresh
probe_client = _oauth.probe_client

# Where the two servers keep their endpoints (contract/openproject.md 12, contract/nextcloud.md 11).
OPENPROJECT_AUTHORIZE_PATH = "/oauth/authorize"
OPENPROJECT_TOKEN_PATH = "/oauth/token"
NEXTCLOUD_AUTHORIZE_PATH = "/index.php/apps/oauth2/authorize"
NEXTCLOUD_TOKEN_PATH = "/index.php/apps/oauth2/api/v1/token"


def openproject_client(openproject_url: str, client_id: str, client_secret: "str | Secret", *,
                       redirect_uri: str = "", auth_method: str = "request_body") -> ClientConfig:
    """The client config of an OAuth application of OpenProject (Doorkeeper)."""
    base = openproject_url.rstrip("/")
    return ClientConfig(base + OPENPROJECT_TOKEN_PATH, client_id, client_secret,
                        authorize_endpoint=base + OPENPROJECT_AUTHORIZE_PATH, redirect_uri=redirect_uri,
                        auth_method=auth_method)


def nextcloud_client(nextcloud_url: str, client_id: str, client_secret: "str | Secret", *,
                     redirect_uri: str = "", auth_method: str = "request_body") -> ClientConfig:
    """The client config of an OAuth client of Nextcloud's oauth2 app."""
    base = nextcloud_url.rstrip("/")
    return ClientConfig(base + NEXTCLOUD_TOKEN_PATH, client_id, client_secret,
                        authorize_endpoint=base + NEXTCLOUD_AUTHORIZE_PATH, redirect_uri=redirect_uri,
                        auth_method=auth_method)


__all__ = ["ClientConfig", "Pkce", "AuthorizationRequest", "Token", "ProbeResult", "CachingTokenSource",
           "exchange_code", "refresh", "probe_client", "openproject_client", "nextcloud_client"]
