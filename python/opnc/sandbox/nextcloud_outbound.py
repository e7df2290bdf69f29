"""Requests the emulated Nextcloud sends to OpenProject (contract/nextcloud.md §5.3, §10.7, §12).

Real HTTP with urllib: redirects are never followed, the sandbox CA bundle is trusted when TLS is
on, timeouts are short. Failures are classified the way Guzzle/cURL report them to the app, so the
emulator's verdicts (``connection_error``, ``network_error``, ``request_exception``…) match NC's.
"""

from __future__ import annotations

import base64
import http
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

USER_AGENT = "Nextcloud OpenProject integration"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102 - urllib hook
        return None


@dataclass
class OutboundResult:
    """What came back: an HTTP answer (status, headers, body) or a transport failure."""
    url: str
    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes = b""
    failure: str | None = None  # "connect", "resolve", "timeout", "tls" or "other"
    message: str = ""  # the cURL-style message of a failure
    duration_ms: float = 0.0


class Outbound:
    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    def send(self, method: str, url: str, headers: dict[str, str], ca_bundle: str | None,
             body: bytes | None = None) -> OutboundResult:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        handlers: list[Any] = [_NoRedirects()]
        if url.lower().startswith("https"):
            context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        started = time.monotonic()
        result = OutboundResult(url)
        try:
            with opener.open(request, timeout=self.timeout_s) as answer:
                result.status = answer.status
                result.headers = {k.lower(): v for k, v in answer.headers.items()}
                result.body = answer.read()
        except urllib.error.HTTPError as answer:  # 3xx (not followed), 4xx and 5xx
            result.status = answer.code
            result.headers = {k.lower(): v for k, v in answer.headers.items()}
            result.body = answer.read() if answer.fp else b""
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            result.failure, result.message = _classify(url, reason, time.monotonic() - started)
        result.duration_ms = round((time.monotonic() - started) * 1000, 3)
        return result

    def revoke(self, op_url: str, access_token: str, client_id: str, client_secret: str,
               ca_bundle: str | None) -> OutboundResult:
        """``POST <op>/oauth/revoke?token=…`` with Basic old id:secret and an empty body (§5.3)."""
        url = op_url.rstrip("/") + "/oauth/revoke?token=" + quote(access_token, safe="")
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode("utf-8")).decode("ascii")
        return self.send("POST", url, {"Authorization": f"Basic {basic}",
                                       "Content-Type": "application/x-www-form-urlencoded",
                                       "User-Agent": USER_AGENT}, ca_bundle, body=b"")

    def probe_openproject(self, url: str, ca_bundle: str | None) -> tuple[dict[str, Any], OutboundResult]:
        """``GET rtrim(url,'/')/api/v3/`` with an empty Bearer credential, judged as §10.7 says."""
        target = url.rstrip("/") + "/api/v3/"
        result = self.send("GET", target, {"Authorization": "Bearer ", "User-Agent": USER_AGENT,
                                           "Accept": "application/json"}, ca_bundle)
        return _verdict(result), result


def _verdict(result: OutboundResult) -> dict[str, Any]:
    if result.status is None:
        if result.failure in ("connect", "resolve", "timeout"):
            return {"result": "network_error", "details": result.message}
        return {"result": "request_exception", "details": result.message}
    status = result.status
    if 300 <= status < 400:
        location = (result.headers or {}).get("location", "")
        return {"result": "redirected", "details": location.replace("api/v3/", "")}
    if 200 <= status < 300:
        body = _json(result.body)
        if isinstance(body, dict) and body.get("_type") == "Root" and body.get("instanceName"):
            return {"result": True}
        return {"result": "not_valid_body", "details": result.body.decode("utf-8", errors="replace")}
    body = _json(result.body)
    if 400 <= status < 500 and isinstance(body, dict) and body.get("_type") == "Error" \
            and body.get("errorIdentifier"):
        return {"result": True}  # an OpenProject API error proves it is OpenProject
    kind = "client_exception" if status < 500 else "server_exception"
    return {"result": kind, "details": f"{status} {_reason(status)}"}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _classify(url: str, reason: Any, elapsed_s: float) -> tuple[str, str]:
    """(failure kind, cURL-style message) for a transport error, as Guzzle would report it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ms = int(elapsed_s * 1000)
    # The query is left out: a revocation carries the user's token there, and messages get logged.
    shown = url.split("?", 1)[0]
    suffix = f" (see https://curl.haxx.se/libcurl/c/libcurl-errors.html) for {shown}"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "tls", f"cURL error 60: SSL certificate problem: {reason.verify_message}{suffix}"
    if isinstance(reason, ssl.SSLError):
        return "tls", f"cURL error 35: {reason}{suffix}"
    if isinstance(reason, socket.gaierror):
        return "resolve", f"cURL error 6: Could not resolve host: {host}{suffix}"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timeout", f"cURL error 28: Operation timed out after {ms} milliseconds with 0 bytes received{suffix}"
    if isinstance(reason, ConnectionRefusedError):
        return "connect", (f"cURL error 7: Failed to connect to {host} port {port} after {ms} ms: "
                           f"Couldn't connect to server{suffix}")
    if isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected)):
        return "other", f"cURL error 52: Empty reply from server{suffix}"
    return "other", f"cURL error 56: {reason}{suffix}"
