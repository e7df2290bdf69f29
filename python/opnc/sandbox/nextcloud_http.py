"""How Nextcloud's PHP stack puts answers on the wire (contract/nextcloud.md §1.3, §1.4, §10.6).

Kept apart from the emulator's behaviour so that every route answers with the same bytes a real
Nextcloud 34 sends: PHP ``json_encode`` with ``JSON_HEX_TAG`` (``\\/``, ``\\u003C``, ``\\u003E``,
non-ASCII as ``\\uXXXX``), ``application/json; charset=utf-8``, the framework's ``{"message":…}``
dialect, the OCS envelope (v1 and v2) and the plain HTML pages of the error paths.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from opnc.sandbox.app import Request, Response

APP_JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=UTF-8"
DAV_REALM = 'Basic realm="Nextcloud", charset="UTF-8"'


def php_json(payload: Any) -> bytes:
    """Encode like PHP's json_encode(..., JSON_HEX_TAG) as used by Nextcloud's JSONResponse."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    # '/', '<' and '>' can only occur inside JSON strings, so replacing them in the encoded text is
    # the same as escaping them in every string (keys included), which is what PHP does.
    text = text.replace("/", "\\/").replace("<", "\\u003C").replace(">", "\\u003E")
    return text.encode("ascii")


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, php_json(payload), [("Content-Type", APP_JSON), *(headers or [])])


def html_response(status: int, text: str = "", headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode("utf-8"), [("Content-Type", HTML), *(headers or [])])


def wants_html(request: Request) -> bool:
    """Nextcloud's SecurityMiddleware answers JSON unless the Accept header mentions html."""
    return "html" in (request.headers.get("Accept") or "").lower()


def framework_error(request: Request, status: int, message: str, base_url: str) -> Response:
    """An exception of Nextcloud's middleware, before any app code runs (§1.3)."""
    if wants_html(request):
        if status == 401:
            # A browser is sent to the login page, which brings it back afterwards.
            target = f"{base_url}/index.php/login?redirect_url={request.path}"
            return html_response(303, "", [("Location", target)])
        return html_response(status, f"<!DOCTYPE html><html><body><h2>{xml_escape(message)}</h2></body></html>")
    return json_response(status, {"message": message})


def not_found_page() -> Response:
    return html_response(404, "<!DOCTYPE html><html><head><title>Nextcloud</title></head>"
                              "<body><h2>Page not found</h2><p>The page could not be found on the server."
                              "</p></body></html>")


def method_not_allowed() -> Response:
    return html_response(405, "")


def server_error_page() -> Response:
    """The generic page of an uncaught PHP error (e.g. a TypeError from a missing parameter)."""
    return html_response(500, "<!DOCTYPE html><html><head><title>Nextcloud</title></head>"
                              "<body><h2>Internal Server Error</h2><p>The server was unable to complete "
                              "your request.</p></body></html>")


def maintenance_page() -> Response:
    return html_response(503, "<!DOCTYPE html><html><head><title>Nextcloud</title></head><body>"
                              "<h2>Maintenance mode</h2><p>This Nextcloud instance is currently in "
                              "maintenance mode, which may take a while.</p></body></html>",
                         [("Retry-After", "120")])


# --- OCS -------------------------------------------------------------------------------------------

_OCS_V1_SUCCESS = 100


def ocs_response(request: Request, api_version: int, data: Any, status: int = 200,
                 message: str = "OK", ocs_status: int | None = None) -> Response:
    """The OCS envelope. v2 mirrors the HTTP status in ``statuscode``; v1 reports 100 on success and
    always answers HTTP 200 except for authentication failures (§10.6)."""
    ok = 200 <= status < 300
    if api_version == 1:
        code = _OCS_V1_SUCCESS if ok else (ocs_status or status)
        http_status = 200 if ok or status not in (401, 403) else status
        meta: dict[str, Any] = {"status": "ok" if ok else "failure", "statuscode": code, "message": message,
                                "totalitems": "", "itemsperpage": ""}
    else:
        code = ocs_status or status
        http_status = status
        meta = {"status": "ok" if ok else "failure", "statuscode": code, "message": message}
    envelope = {"ocs": {"meta": meta, "data": data}}
    if _ocs_wants_json(request):
        return json_response(http_status, envelope)
    xml = '<?xml version="1.0"?>\n' + _to_xml("ocs", envelope["ocs"]) + "\n"
    return Response(http_status, xml.encode("utf-8"), [("Content-Type", "application/xml; charset=utf-8")])


def _ocs_wants_json(request: Request) -> bool:
    fmt = request.query_one("format")
    if fmt is not None:
        return fmt == "json"
    return "application/json" in (request.headers.get("Accept") or "")


def _to_xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_to_xml(str(key) if not str(key).isdigit() else "element", item)
                        for key, item in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list):
        return f"<{tag}>" + "".join(_to_xml("element", item) for item in value) + f"</{tag}>"
    if value is None:
        return f"<{tag}/>"
    if isinstance(value, bool):
        return f"<{tag}>{1 if value else ''}</{tag}>"
    return f"<{tag}>{xml_escape(str(value))}</{tag}>"


# --- PHP helpers that validation depends on --------------------------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?)$")


def php_filter_validate_url(url: str) -> bool:
    """An approximation of PHP's FILTER_VALIDATE_URL: ASCII without blanks, a scheme and, for the
    schemes that need one (http, https, ftp…), a host with an optional numeric port."""
    if not url or any(ord(ch) <= 32 or ord(ch) >= 127 for ch in url):
        return False
    if ":" not in url:
        return False
    scheme, rest = url.split(":", 1)
    if not _SCHEME.match(scheme) or not rest:
        return False
    if scheme.lower() in ("mailto", "news", "file"):
        return True
    if not rest.startswith("//"):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        return False
    del port
    host = parts.netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    else:
        host = host.split(":", 1)[0]
    return bool(_HOST.match(host))


def is_valid_openproject_url(url: str) -> bool:
    """The check integration_openproject applies to an OpenProject URL: the filter plus ``^https?``."""
    return php_filter_validate_url(url) and re.match(r"^https?", url) is not None
