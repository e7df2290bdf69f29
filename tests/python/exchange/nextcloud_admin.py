"""Direct calls to the sandbox servers, as an administrator would make them by hand (UI, curl):
the tests use them to create drift and foreign setups that opnc must notice."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

NC_SETUP = "/index.php/apps/integration_openproject/setup"


def _call(url: str, method: str, auth: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def openproject(sb: Any, method: str, path: str, body: Any = None) -> Any:
    return _call(sb.openproject.url + path, method, f"apikey:{sb.openproject.token}", body)


def nextcloud_setup(sb: Any, method: str, values: dict[str, Any] | None = None) -> Any:
    body = {"values": values} if values is not None else None
    return _call(sb.nextcloud.url + NC_SETUP, method, f"{sb.nextcloud.user}:{sb.nextcloud.password}", body,
                 {"OCS-APIRequest": "true"})
