"""``GET /api/v3/storages/{id}/files``: a user's files in a Nextcloud storage, read with the user's
own Nextcloud token (OpenProject as OAuth client of Nextcloud, contract/openproject.md §13).

This is what proves a user connection end to end: the listing succeeds only when the user completed
the authorization-code flow, OpenProject holds a token Nextcloud still accepts (refreshed first
when due), and Nextcloud serves the user's WebDAV tree for it. Like upstream, OpenProject learns the
user's Nextcloud id from ``ocs/v1.php/cloud/user`` and lists ``remote.php/dav/files/<id>/`` with a
``PROPFIND`` of depth 1.

Emulator choices where the contract says nothing: a user who holds no usable token gets 403
(``MissingPermission``, the message naming the reason); a Nextcloud that is unreachable or answers
unexpectedly gives 500. The representation carries the fields a client needs (``_type``, ``files``
with ``name``, ``location``, ``mimeType`` (folders: ``application/x-op-directory``), ``parent``,
``ancestors``, ``_links.self``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

from opnc.sandbox.app import Response
from opnc.sandbox.http_call import http_call
from opnc.sandbox.openproject_connections import NextcloudConnections
from opnc.sandbox.openproject_errors import HAL_JSON, hal_error, not_found
from opnc.sandbox.openproject_model import Caller
from opnc.sandbox.openproject_probes import USER_AGENT, join_path
from opnc.sandbox.openproject_storages import StorageService

TIMEOUT_S = 5.0
DIRECTORY_MIME_TYPE = "application/x-op-directory"  # what upstream renders for folders
DAV = "{DAV:}"
_REASONS = {
    "not_connected": "The user has not connected the storage (no Nextcloud token).",
    "refresh_failed": "Nextcloud refused to refresh the user's token.",
    "rejected": "Nextcloud rejected the user's token.",
}


class StorageFiles:
    def __init__(self, storages: StorageService, connections: NextcloudConnections,
                 ca_bundle: Callable[[], str | None]) -> None:
        self.storages = storages
        self.connections = connections
        self.ca_bundle = ca_bundle

    def list(self, storage_id: int, caller: Caller) -> Response:
        with self.storages.lock:
            storage = self.storages.storages.get(storage_id)
            if storage is None or caller.anonymous or not self.storages.visible(caller, storage):
                return not_found()
        access = self.connections.user_access_token(caller.id, storage_id)
        if access == "unreachable":
            return _outbound_error()
        if isinstance(access, str):
            return hal_error(403, "MissingPermission", _REASONS[access])
        host, token = access
        headers = {"Authorization": f"Bearer {token}"}
        who = self._call("GET", join_path(host, "ocs/v1.php/cloud/user?format=json"),
                         {**headers, "OCS-APIRequest": "true", "Accept": "application/json"})
        if who is not None and who[0] == 401:
            return hal_error(403, "MissingPermission", _REASONS["rejected"])
        try:
            user = json.loads(who[1])["ocs"]["data"]["id"] if who is not None and who[0] == 200 else None
        except (ValueError, KeyError, TypeError):
            user = None
        if not isinstance(user, str) or not user:
            return _outbound_error()
        root = f"remote.php/dav/files/{quote(user)}/"
        listing = self._call("PROPFIND", join_path(host, root), {**headers, "Depth": "1"})
        if listing is not None and listing[0] == 401:
            return hal_error(403, "MissingPermission", _REASONS["rejected"])
        if listing is None or listing[0] != 207:
            return _outbound_error()
        try:
            entries = [(unquote(node.findtext(DAV + "href") or ""), node.findtext(f".//{DAV}getcontenttype"))
                       for node in ElementTree.fromstring(listing[1]).iter(DAV + "response")]
        except ElementTree.ParseError:
            return _outbound_error()
        prefix = urlsplit(join_path(host, root)).path
        files = [("/" + href[len(prefix):].rstrip("/") if href.startswith(prefix) else href, content_type)
                 for href, content_type in entries]
        parent, children = (files[0], files[1:]) if files else (("/", None), [])
        body = {
            "_type": "StorageFiles",
            "files": [self._render(storage_id, *child) for child in children],
            "parent": self._render(storage_id, *parent),
            "ancestors": [],
            "_links": {"self": {"href": f"/api/v3/storages/{storage_id}/files"}},
        }
        return Response.json(200, body, content_type=HAL_JSON)

    @staticmethod
    def _render(storage_id: int, location: str, content_type: str | None) -> dict[str, Any]:
        name = location.rsplit("/", 1)[-1] or "/"
        return {"_type": "StorageFile", "name": name, "location": location or "/",
                "mimeType": content_type or DIRECTORY_MIME_TYPE,
                "_links": {"storage": {"href": f"/api/v3/storages/{storage_id}"}}}

    def _call(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, bytes] | None:
        return http_call(method, url, {"User-Agent": USER_AGENT, **headers}, ca_bundle=self.ca_bundle(),
                         timeout=TIMEOUT_S)


def _outbound_error() -> Response:
    return hal_error(500, "OutboundRequest:ConnectionError", "The storage could not be reached.")
