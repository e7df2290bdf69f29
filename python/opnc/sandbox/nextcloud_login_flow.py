"""Nextcloud's client login flow: the page where a logged-in user grants an OAuth client
(contract/nextcloud.md §11.2).

``/index.php/apps/oauth2/authorize`` remembers the client and its ``state`` in the user's session and
sends the browser (303) to ``GET /index.php/login/flow?clientIdentifier=<id>``. That page shows a
"Grant access" form carrying a one-time ``stateToken``; submitting it (``POST /index.php/login/flow``
with ``stateToken`` and ``clientIdentifier``) creates the grant (:meth:`OAuth2.grant`) and answers
303 to the client's registered redirect URI with ``state`` and a fresh code.

A browser session comes from the test login (``/_sandbox/login``). Upstream splits the page into
more steps (login, grant page, app-password generation); the emulator keeps the two that matter to
a client: the page, whose form a user agent must submit, and the grant.
"""

from __future__ import annotations

import hmac
import html
import secrets
from urllib.parse import quote

from opnc.sandbox.app import Request, Response
from opnc.sandbox.login import Session
from opnc.sandbox.nextcloud_http import html_response
from opnc.sandbox.nextcloud_oauth2 import OAuth2

LOGIN_FLOW_PATH = "/index.php/login/flow"
# Session keys, as the upstream controllers name them.
OAUTH_STATE = "oauth.state"
OAUTH_CLIENT = "oauth.client"
STATE_TOKEN = "client.flow.state.token"
STATE_MISMATCH_PAGE = ("<!DOCTYPE html><html><head><title>Nextcloud</title></head><body><h2>State token does "
                       "not match</h2><p>You tried to log in using the login flow, but the state token does not "
                       "match. Please start the flow again.</p></body></html>")


def remember_authorization(session: Session, client_identifier: str, state: str) -> None:
    """What the authorize endpoint keeps in the session before it redirects to the login flow."""
    session.values[OAUTH_CLIENT] = client_identifier
    session.values[OAUTH_STATE] = state


def handle(request: Request, session: Session | None, oauth2: OAuth2, base_url: str) -> Response:
    if session is None:
        target = f"{base_url}/index.php/login?redirect_url={quote(request.raw_target or request.path, safe='')}"
        return html_response(303, "", [("Location", target)])
    if request.method in ("GET", "HEAD"):
        return _grant_page(request, session, oauth2)
    if request.method == "POST":
        return _grant(request, session, oauth2)
    return html_response(405, "")


def _grant_page(request: Request, session: Session, oauth2: OAuth2) -> Response:
    identifier = request.query_one("clientIdentifier") or ""
    client = oauth2.client_by_identifier(identifier)
    if client is None or session.values.get(OAUTH_CLIENT) != identifier:
        return html_response(403, STATE_MISMATCH_PAGE)
    token = secrets.token_urlsafe(24)
    session.values[STATE_TOKEN] = token
    page = ("<!DOCTYPE html><html><head><title>Nextcloud</title></head><body>"
            f"<h2>Connect to your account</h2><p>{html.escape(client.name)} wants to access your account "
            f"{html.escape(session.user)}.</p>"
            f'<form method="post" action="{LOGIN_FLOW_PATH}">'
            f'<input type="hidden" name="clientIdentifier" value="{html.escape(identifier)}">'
            f'<input type="hidden" name="stateToken" value="{html.escape(token)}">'
            '<button type="submit">Grant access</button></form></body></html>')
    return html_response(200, page)


def _grant(request: Request, session: Session, oauth2: OAuth2) -> Response:
    form = request.form()
    token = (form.get("stateToken") or [""])[0]
    expected = session.values.pop(STATE_TOKEN, "")
    identifier = (form.get("clientIdentifier") or [""])[0]
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()) \
            or session.values.get(OAUTH_CLIENT) != identifier:
        return html_response(403, STATE_MISMATCH_PAGE)
    client = oauth2.client_by_identifier(identifier)
    if client is None:  # deleted since the page was shown
        return html_response(403, STATE_MISMATCH_PAGE)
    state = session.values.pop(OAUTH_STATE, "")
    session.values.pop(OAUTH_CLIENT, None)
    return html_response(303, "", [("Location", oauth2.grant(client, session.user, state))])
