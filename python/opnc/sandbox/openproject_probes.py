"""The requests the emulated OpenProject sends to a Nextcloud host.

The live checks while validating a storage, contract §4.2 (``NextcloudCompatibleHostValidator``) and
§4.3 (``NextcloudApplicationCredentialsValidator``), each returning the upstream error key or None;
and the authorization-code exchange of OP as OAuth client of Nextcloud (§13).
Requests use http.client directly so that, like upstream, redirects are never followed and the
connect (5 s) and read (3 s) timeouts differ. TLS is verified against the sandbox CA when one is set.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from urllib.parse import urlencode
from dataclasses import dataclass
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 3.0
# Newer upstream code requires Nextcloud 22 (its English message still says 23).
MINIMAL_NEXTCLOUD_MAJOR = 22
TEST_AUTHORIZATION_HEADER = "Bearer TESTBEARERTOKEN"
USER_AGENT = "OpenProject sandbox"


@dataclass(frozen=True)
class ProbeAnswer:
    status: int
    content_type: str
    body: bytes


def join_path(host: str, path: str) -> str:
    """File.join(host, path): exactly one slash between the host (which may have a sub-path) and path."""
    return host.rstrip("/") + "/" + path.lstrip("/")


class NextcloudProbe:
    """Outbound requests from the emulated OpenProject to a Nextcloud host."""

    def __init__(self, ca_bundle: str | None) -> None:
        self.ca_bundle = ca_bundle

    def _request(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> ProbeAnswer | None:
        """The answer, or None on any network or TLS error (upstream rescues StandardError)."""
        parts = urlsplit(url)
        try:
            if parts.scheme == "https":
                context = ssl.create_default_context(cafile=self.ca_bundle)  # None: the system's CAs
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT_S, context=context)
            else:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT_S)
            try:
                conn.connect()
                if conn.sock is not None:
                    conn.sock.settimeout(READ_TIMEOUT_S)
                target = parts.path or "/"
                if parts.query:
                    target += "?" + parts.query
                conn.request(method, target, body=body, headers={"User-Agent": USER_AGENT, **headers})
                response = conn.getresponse()
                body = response.read()
                return ProbeAnswer(response.status, response.getheader("Content-Type") or "", body)
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def capabilities_error(self, host: str) -> str | None:
        """Probe (a): GET the OCS capabilities and read ocs.data.version.major."""
        answer = self._request("GET", join_path(host, "ocs/v2.php/cloud/capabilities"),
                               {"OCS-APIRequest": "true", "Accept": "application/json"})
        if answer is None or not 200 <= answer.status < 300:
            return "cannot_be_connected_to"
        try:
            major = json.loads(answer.body)["ocs"]["data"]["version"]["major"]
        except (ValueError, KeyError, TypeError):
            return "not_nextcloud_server"
        if major is None:
            return "not_nextcloud_server"
        try:
            if int(major) < MINIMAL_NEXTCLOUD_MAJOR:
                return "minimal_nextcloud_version_unmet"
        except (TypeError, ValueError):
            return "minimal_nextcloud_version_unmet"
        return None

    def config_check_error(self, host: str) -> str | None:
        """Probe (b): check-config must echo the test Bearer header exactly."""
        answer = self._request("GET", join_path(host, "index.php/apps/integration_openproject/check-config"),
                               {"Authorization": TEST_AUTHORIZATION_HEADER})
        if answer is None:
            return "cannot_be_connected_to"
        if 300 <= answer.status < 400:
            return "op_application_not_installed"
        if not 200 <= answer.status < 300:
            return "cannot_be_connected_to"
        try:
            echoed = json.loads(answer.body).get("authorization_header")
        except (ValueError, AttributeError):
            echoed = None
        if echoed != TEST_AUTHORIZATION_HEADER:
            return "authorization_header_missing"
        return None

    def application_password_error(self, host: str, username: str, password: str) -> str | None:
        """HEAD <host>/remote.php/dav as the storage user: 2xx fine, 401 invalid, else unknown."""
        credentials = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
        answer = self._request("HEAD", join_path(host, "remote.php/dav"), {"Authorization": f"Basic {credentials}"})
        if answer is not None and 200 <= answer.status < 300:
            return None
        if answer is not None and answer.status == 401:
            return "invalid_password"
        return "unknown_error"

    def _token_request(self, host: str, client_id: str, client_secret: str, form: dict[str, str]) -> ProbeAnswer | None:
        """POST to Nextcloud's oauth2 token endpoint with HTTP Basic client authentication
        (Rack::OAuth2's default)."""
        credentials = base64.b64encode(f"{client_id}:{client_secret}".encode("utf-8")).decode("ascii")
        return self._request("POST", join_path(host, "index.php/apps/oauth2/api/v1/token"),
                             {"Authorization": f"Basic {credentials}", "Accept": "application/json",
                              "Content-Type": "application/x-www-form-urlencoded"}, urlencode(form).encode("ascii"))

    @staticmethod
    def _tokens(answer: ProbeAnswer | None) -> dict | None:
        if answer is None or answer.status != 200:
            return None
        try:
            data = json.loads(answer.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("access_token") else None

    def refresh_tokens(self, host: str, client_id: str, client_secret: str,
                       refresh_token: str) -> tuple[bool, dict | None]:
        """(reachable, token JSON or None). Nextcloud's refresh tokens are single use and rotate, so
        the answer's refresh token replaces the stored one."""
        answer = self._token_request(host, client_id, client_secret,
                                     {"grant_type": "refresh_token", "refresh_token": refresh_token})
        return answer is not None, self._tokens(answer)

    def current_user_status(self, host: str, access_token: str) -> int | None:
        """OP's connection check: the status of GET ocs/v1.php/cloud/user as the token's user
        (None on a network error)."""
        answer = self._request("GET", join_path(host, "ocs/v1.php/cloud/user"),
                               {"Authorization": f"Bearer {access_token}", "OCS-APIRequest": "true",
                                "Accept": "application/json"})
        return answer.status if answer is not None else None
