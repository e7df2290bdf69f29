"""The test-only login of the emulators: browser sessions without a browser.

The authorization-code flow needs a user who is logged in at the authorization server (and, for the
redirect back, at the client). A real server logs users in through a web form; the emulators offer
``POST /_sandbox/login {"user": "<login>"}`` instead. It answers 200
``{"user", "cookie": "<name>=<value>"}`` with the same cookie in ``Set-Cookie``; every later request
that carries the cookie is treated as that user's browser session.

Like every route under ``/_sandbox/``, the login answers loopback clients only (the server framework
refuses others before the app sees the request), so it cannot open a door on a real network. The
session id is a secret: it is kept as a digest and recorded for leak scans, never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from opnc.sandbox.app import Request, Response

LOGIN_PATH = "/_sandbox/login"


def request_cookies(request: Request) -> dict[str, str]:
    """The cookies a request carries (every ``Cookie`` header, ``name=value`` pairs)."""
    jar: dict[str, str] = {}
    for name, value in request.headers.items():
        if name.lower() != "cookie":
            continue
        for pair in value.split(";"):
            key, sep, item = pair.strip().partition("=")
            if sep:
                jar[key] = unquote(item)
    return jar


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass
class Session:
    """A logged-in browser. `values` holds what the server keeps in its session between requests
    (e.g. Nextcloud's pending OAuth authorization)."""
    user: str
    values: dict[str, str] = field(default_factory=dict, repr=False)


class TestSessions:
    """The sessions of one emulator, keyed by the digest of their cookie value. Thread-safe."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, cookie_name: str, record_secret: Callable[[str], Any]) -> None:
        self.cookie_name = cookie_name
        self._record_secret = record_secret
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()

    def login(self, request: Request, known_user: Callable[[str], str | None]) -> Response:
        """``POST /_sandbox/login``: `known_user` maps the requested login to the user's id (None:
        no such user, 404)."""
        if request.method != "POST":
            return Response.json(405, {"error": "POST {\"user\": \"<login>\"}"})
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            return Response.json(400, {"error": "body is not JSON"})
        login = body.get("user") if isinstance(body, dict) else None
        if not isinstance(login, str) or not login:
            return Response.json(400, {"error": "user is required"})
        user = known_user(login)
        if user is None:
            return Response.json(404, {"error": f"no user {login}"})
        value = secrets.token_urlsafe(32)
        self._record_secret(value)
        with self._lock:
            self._sessions[_digest(value)] = Session(user)
        cookie = f"{self.cookie_name}={value}"
        return Response.json(200, {"user": user, "cookie": cookie},
                             headers=[("Set-Cookie", f"{cookie}; path=/; HttpOnly; SameSite=Lax")])

    def session(self, request: Request) -> Session | None:
        """The session of the request's cookie, or None (no cookie, or one this server never issued)."""
        value = request_cookies(request).get(self.cookie_name)
        if not value:
            return None
        wanted = _digest(value)
        with self._lock:
            for key, session in self._sessions.items():
                if hmac.compare_digest(key, wanted):
                    return session
        return None

    def user(self, request: Request) -> str | None:
        session = self.session(request)
        return session.user if session else None

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)
