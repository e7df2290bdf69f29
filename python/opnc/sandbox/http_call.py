"""One outbound HTTP request from an emulator to another server (the sandbox's user flow).

The emulators call each other the way servers do: no redirects followed, a short timeout, TLS
verified against the sandbox CA when one is set (the system's CAs otherwise). A network or TLS
failure is None, so callers map it to the answer their upstream gives for an unreachable peer.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

TIMEOUT_S = 10.0


def http_call(method: str, url: str, headers: dict[str, str], body: bytes | None = None,
              ca_bundle: str | None = None, timeout: float = TIMEOUT_S) -> tuple[int, bytes] | None:
    """(status, body) of the answer, or None when no answer came."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context(cafile=ca_bundle))
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        try:
            connection.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                               body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError):
        return None
