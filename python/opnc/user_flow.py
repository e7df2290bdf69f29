"""The OAuth user flow through the sandbox, in both directions: ``opnc verify --user-flow``.

``opnc verify`` checks that both servers agree and that the clients' credentials are accepted; it
never acts as a user. This module goes further on the emulators of :mod:`opnc.sandbox`: it plays
the browser of a user who connects

1. OpenProject to Nextcloud: log in at both, ``ensure_connection`` at OpenProject, Nextcloud's
   authorize page and grant, back to OpenProject's callback, which exchanges the code (with
   :mod:`opnc.oauth`) and keeps the user's token; then the user's file listing
   (``GET /api/v3/storages/{id}/files``), which OpenProject reads from Nextcloud with that token;
2. Nextcloud to OpenProject: Nextcloud's ``op-oauth-url``, OpenProject's authorize, back to
   Nextcloud's ``oauth-redirect``, which exchanges the code and reads ``/api/v3/users/me``.

Every redirect is followed by hand, with one cookie jar for both servers (as a browser has for two
ports of one host). Logging in uses the emulators' test-only login (``/_sandbox/login``), which
answers loopback clients only: real servers need a real browser and a real login, so non-loopback
URLs are refused with :class:`opnc.InvalidInput`.

No secret appears in a check's detail: codes and states travel in URLs, so only URL paths are
reported.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

from opnc.errors import InvalidInput
from opnc.results import Check, VerifyResult

LOGIN_PATH = "/_sandbox/login"
NEXTCLOUD_APP = "/index.php/apps/integration_openproject"

CHECK_LOGIN = "user_flow_login"
CHECK_OP_CONNECTS = "openproject_user_connects_to_nextcloud"
CHECK_OP_FILES = "openproject_lists_nextcloud_files"
CHECK_NC_CONNECTS = "nextcloud_user_connects_to_openproject"


class UserFlowFailed(Exception):
    """One step of a flow went wrong; the message is the check's detail (never a secret)."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class _Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _path_of(url: str) -> str:
    """The URL without its query: what a detail may show (queries carry codes and states)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


class _Browser:
    """A user agent without automatic redirects: one cookie jar for the loopback host."""

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        self.cookies: dict[str, str] = {}
        self.context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        self.timeout = timeout

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> _Answer:
        parts = urlsplit(url)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=self.timeout,
                                                     context=self.context)
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        try:
            connection.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                               body=body, headers=sent)
            response = connection.getresponse()
            answer = _Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    self._store_cookie(value)
        except (OSError, http.client.HTTPException) as error:
            raise UserFlowFailed(f"{method} {_path_of(url)} failed: {type(error).__name__}") from None
        finally:
            connection.close()
        return answer

    def _store_cookie(self, header: str) -> None:
        pair, *attributes = header.split(";")
        name, _, value = pair.strip().partition("=")
        expired = any(a.strip().lower() == "max-age=0" for a in attributes)
        if expired or not value:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value


class _HiddenForm(HTMLParser):
    """The first form of a page: its action and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def _require_loopback(url: str, what: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise InvalidInput(
            f"the user flow runs only against the sandbox, but the {what} URL {_path_of(url)} is not a loopback "
            f"address", hint="real servers need a browser and a real login: connect a user in the web interfaces "
            "(OpenProject: the storage's 'Login to Nextcloud'; Nextcloud: Settings, OpenProject)")
    return url.rstrip("/")


class UserFlow:
    """Both flows for one OpenProject and one Nextcloud emulator (see the module docstring)."""

    def __init__(self, openproject_url: str, nextcloud_url: str, *, openproject_user: str = "admin",
                 nextcloud_user: str = "admin", ca_bundle: str | None = None, timeout: float = 30.0) -> None:
        self.op = _require_loopback(openproject_url, "OpenProject")
        self.nc = _require_loopback(nextcloud_url, "Nextcloud")
        self.openproject_user = openproject_user
        self.nextcloud_user = nextcloud_user
        self.browser = _Browser(ca_bundle, timeout)

    def __repr__(self) -> str:
        return (f"UserFlow({self.op!r}, {self.nc!r}, openproject_user={self.openproject_user!r}, "
                f"nextcloud_user={self.nextcloud_user!r})")

    def run(self) -> VerifyResult:
        checks = [self._check(CHECK_LOGIN, self._login)]
        if not checks[0].ok:
            return VerifyResult(checks)
        connected = self._check(CHECK_OP_CONNECTS, self._openproject_connects)
        checks.append(connected)
        if connected.ok:
            checks.append(self._check(CHECK_OP_FILES, self._openproject_lists_files))
        else:
            checks.append(Check(CHECK_OP_FILES, False, "not tried: the user could not connect OpenProject to "
                                                       "Nextcloud", ""))
        checks.append(self._check(CHECK_NC_CONNECTS, self._nextcloud_connects))
        return VerifyResult(checks)

    @staticmethod
    def _check(name: str, step: Any) -> Check:
        try:
            return Check(name, True, step(), "")
        except UserFlowFailed as failure:
            return Check(name, False, failure.detail, failure.hint)

    # --- helpers ---

    def _control(self, base: str, path: str, payload: Any = None) -> _Answer:
        body = json.dumps(payload).encode() if payload is not None else None
        return self.browser.request("POST" if payload is not None else "GET", base + path, body,
                                    {"Content-Type": "application/json"} if body is not None else None)

    def _sandbox_state(self, base: str) -> dict[str, Any]:
        answer = self._control(base, "/_sandbox/state")
        data = answer.json()
        if answer.status != 200 or not isinstance(data, dict):
            raise UserFlowFailed(f"{base} is not a sandbox emulator: /_sandbox/state answered {answer.status}",
                                 "the user flow runs only against opnc's sandbox")
        return data

    def _follow(self, answer: _Answer, expected_prefix: str, step: str, hint: str = "") -> str:
        location = urljoin(expected_prefix, answer.location) if answer.location else ""
        if answer.status not in (302, 303) or not location.startswith(expected_prefix):
            where = f" to {_path_of(location)}" if location else ""
            raise UserFlowFailed(f"{step}: expected a redirect to {_path_of(expected_prefix)}, got {answer.status}"
                                 f"{where}", hint)
        return location

    # --- the steps ---

    def _login(self) -> str:
        for base, user in ((self.op, self.openproject_user), (self.nc, self.nextcloud_user)):
            answer = self._control(base, LOGIN_PATH, {"user": user})
            if answer.status != 200:
                raise UserFlowFailed(f"the test login of {user!r} at {base} answered {answer.status}",
                                     "the user flow needs opnc's sandbox emulators and an existing user there")
        return f"logged in as {self.openproject_user!r} at OpenProject and {self.nextcloud_user!r} at Nextcloud"

    def _storage(self) -> dict[str, Any]:
        storages = [s for s in self._sandbox_state(self.op).get("storages", [])
                    if str(s.get("host") or "").rstrip("/") == self.nc]
        if not storages:
            raise UserFlowFailed(f"OpenProject has no storage for {self.nc}", "run opnc apply first")
        return storages[0]

    def _openproject_connects(self) -> str:
        storage = self._storage()
        client_id = storage.get("oauth_client_client_id")
        if not client_id:
            raise UserFlowFailed(f"storage {storage['id']} holds no Nextcloud OAuth client", "run opnc apply")
        destination = self.op + "/"
        start = self.browser.request("GET", f"{self.op}/oauth_clients/{quote(client_id, safe='')}/ensure_connection?"
                                     + urlencode({"storage_id": storage["id"], "destination_url": destination}))
        if start.status == 302 and start.location == destination:
            return (f"the user was already connected to storage {storage['id']}; the file listing shows whether "
                    f"the token still works")
        authorize = self._follow(start, self.nc + "/index.php/apps/oauth2/authorize", "ensure_connection")
        answer = self.browser.request("GET", authorize)
        if answer.status == 200:
            raise UserFlowFailed("Nextcloud does not know the OAuth client id that OpenProject holds",
                                 "run opnc apply to store Nextcloud's current client in OpenProject")
        flow = self._follow(answer, self.nc + "/index.php/login/flow", "Nextcloud authorize")
        page = self.browser.request("GET", flow)
        form = _HiddenForm()
        form.feed(page.body.decode("utf-8", errors="replace"))
        if page.status != 200 or form.action is None:
            raise UserFlowFailed(f"Nextcloud's grant page answered {page.status} without a form")
        granted = self.browser.request("POST", urljoin(self.nc + "/", form.action), urlencode(form.fields).encode(),
                                       {"Content-Type": "application/x-www-form-urlencoded"})
        callback = self._follow(granted, f"{self.op}/oauth_clients/", "Nextcloud grant",
                                "Nextcloud's redirect URI does not point at this OpenProject: run opnc apply")
        done = self.browser.request("GET", callback)
        state = self._sandbox_state(self.op)
        flash, refusal = state.get("last_oauth_client_flash"), state.get("last_oauth_exchange_refusal")
        if done.status != 302 or flash:
            reason = f" (Nextcloud answered {refusal})" if refusal else ""
            raise UserFlowFailed(f"OpenProject's callback failed: {flash or done.status}{reason}",
                                 "the Nextcloud client id or secret stored in OpenProject is wrong or outdated: "
                                 "run opnc apply")
        return f"OpenProject exchanged the code and holds the user's Nextcloud token for storage {storage['id']}"

    def _openproject_lists_files(self) -> str:
        storage = self._storage()
        answer = self.browser.request("GET", f"{self.op}/api/v3/storages/{storage['id']}/files",
                                      headers={"Accept": "application/hal+json", "X-Requested-With": "XMLHttpRequest"})
        data = answer.json()
        if answer.status != 200 or not isinstance(data, dict) or data.get("_type") != "StorageFiles":
            message = data.get("message") if isinstance(data, dict) else ""
            raise UserFlowFailed(f"GET /api/v3/storages/{storage['id']}/files answered {answer.status}"
                                 + (f": {message}" if message else ""),
                                 "the user's Nextcloud token no longer works: reconnect, or run opnc apply if the "
                                 "Nextcloud client changed")
        names = [str(f.get("name")) for f in data.get("files", []) if isinstance(f, dict)]
        return f"the user's file listing has {len(names)} entries" + (f": {', '.join(names)}" if names else "")

    def _nextcloud_connects(self) -> str:
        answer = self.browser.request("GET", self.nc + NEXTCLOUD_APP + "/op-oauth-url",
                                      headers={"Accept": "application/json"})
        url = answer.json()
        if answer.status != 200 or not isinstance(url, str) or not url.startswith(self.op + "/oauth/authorize"):
            raise UserFlowFailed(f"Nextcloud's op-oauth-url answered {answer.status} without an authorize URL of "
                                 f"{self.op}", "run opnc apply: Nextcloud's OpenProject settings are incomplete")
        authorized = self.browser.request("GET", url)
        if authorized.status in (400, 401):
            raise UserFlowFailed(f"OpenProject refused the authorization request ({authorized.status}): it does not "
                                 "know the client id or the redirect URI Nextcloud uses",
                                 "run opnc apply to give Nextcloud OpenProject's current OAuth application")
        redirect = self._follow(authorized, self.nc + NEXTCLOUD_APP + "/oauth-redirect", "OpenProject authorize")
        error = parse_qs(urlsplit(redirect).query).get("error")
        if error:
            raise UserFlowFailed(f"OpenProject refused the authorization: {error[0]}")
        back = self.browser.request("GET", redirect)
        outcome = parse_qs(urlsplit(back.location).query)
        if back.status != 303 or outcome.get("openprojectToken") != ["success"]:
            message = (outcome.get("message") or [str(back.status)])[0]
            raise UserFlowFailed(f"Nextcloud's code exchange failed: {message}",
                                 "the OpenProject client id or secret stored in Nextcloud is wrong or outdated: "
                                 "run opnc apply")
        keys = self._sandbox_state(self.nc).get("openproject_tokens", {}).get(self.nextcloud_user, [])
        if "user_id" not in keys:
            raise UserFlowFailed("Nextcloud holds a token but GET /api/v3/users/me with it failed")
        return "Nextcloud exchanged the code, holds the user's OpenProject token and read the user with it"


def run(openproject_url: str, nextcloud_url: str, *, openproject_user: str = "admin", nextcloud_user: str = "admin",
        ca_bundle: str | None = None, timeout: float = 30.0) -> VerifyResult:
    """Runs both user flows against sandbox emulators; raises :class:`opnc.InvalidInput` for URLs that
    are not loopback addresses. The result's checks are named ``user_flow_login``,
    ``openproject_user_connects_to_nextcloud``, ``openproject_lists_nextcloud_files`` and
    ``nextcloud_user_connects_to_openproject``."""
    return UserFlow(openproject_url, nextcloud_url, openproject_user=openproject_user,
                    nextcloud_user=nextcloud_user, ca_bundle=ca_bundle, timeout=timeout).run()


def run_for(integration: Any, **options: Any) -> VerifyResult:
    """:func:`run` with the URLs and CA bundle of an :class:`opnc.Integration`."""
    ca_bundle = integration.openproject.ca_bundle or integration.nextcloud.ca_bundle
    return run(integration.openproject.url, integration.nextcloud.url, ca_bundle=ca_bundle, **options)


def run_for_cli(args: Any) -> VerifyResult:
    """What ``opnc verify --user-flow`` adds: both flows with the command's URLs, CA bundle and timeout."""
    return run(args.openproject_url, args.nextcloud_url, ca_bundle=args.ca_bundle, timeout=args.timeout)


__all__ = ["run", "run_for", "run_for_cli", "UserFlow", "CHECK_LOGIN", "CHECK_OP_CONNECTS", "CHECK_OP_FILES",
           "CHECK_NC_CONNECTS"]
