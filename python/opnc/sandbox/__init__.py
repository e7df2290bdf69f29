"""Local emulators of OpenProject and Nextcloud that follow ``contract/``, for tests and demos.

In-process use::

    from opnc.sandbox import Sandbox

    with Sandbox() as sb:
        sb.openproject.url, sb.openproject.token        # admin API token
        sb.nextcloud.url, sb.nextcloud.user, sb.nextcloud.password
        sb.nextcloud.faults([{"method": "POST", "path": "/index.php/apps/integration_openproject/setup",
                              "when": "after", "action": "reset", "times": 1}])
        sb.nextcloud.requests()                          # the request log
        sb.env()                                         # the OPNC_* variables

From the shell: ``opnc sandbox --env-file sandbox.env``. In pytest: the ``opnc_sandbox`` fixture
(``opnc.sandbox.pytest_plugin``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import ssl
from typing import Any

from opnc.sandbox.app import Headers, Request
from opnc.sandbox.faults import FaultRule
from opnc.sandbox.server import EmulatorServer

__all__ = ["Sandbox", "SandboxPair", "SandboxControlError", "Endpoint", "OpenProjectEndpoint", "NextcloudEndpoint",
           "OpenProjectConfig", "NextcloudConfig", "EmulatorServer", "FaultRule"]

# The apps are imported on first use, so the framework works (and starts fast) on its own.
_LAZY = {
    "OpenProjectConfig": "opnc.sandbox.openproject",
    "OpenProjectApp": "opnc.sandbox.openproject",
    "NextcloudConfig": "opnc.sandbox.nextcloud",
    "NextcloudApp": "opnc.sandbox.nextcloud",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opnc.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


class SandboxControlError(RuntimeError):
    """A control route of the sandbox refused the request."""


class Endpoint:
    """One running emulator: its URL, app and server, and helpers over its control API.

    The helpers call the same operations as ``/_sandbox/...`` and return the same JSON data.
    """

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.app = server.app
        self.url = server.url

    @property
    def config(self) -> Any:
        return self.app.config

    def state(self) -> dict[str, Any]:
        return _json_roundtrip(self.server.state())

    def requests(self, method: str | None = None, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """The request log, oldest first; `path` may use ``*`` for one segment; `since` a ``seq``."""
        return self.server.requests(method, path, since)

    def clear_requests(self) -> None:
        self.server.clear_requests()

    def faults(self, rules: list[dict[str, Any]] | dict[str, Any] | FaultRule | list[FaultRule]) -> list[dict[str, Any]]:
        """Adds fault rules (see ``faults.py``); returns every active rule."""
        self.server.add_faults(rules)
        return self.active_faults()

    def active_faults(self) -> list[dict[str, Any]]:
        return [rule.to_json() for rule in self.server.faults.rules()]

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def latency(self, ms: int) -> None:
        """Delays every answer by `ms` milliseconds from now on (0 to stop)."""
        self.server.set_latency(ms)

    def configure(self, **changes: Any) -> None:
        self.server.configure(**changes)

    def reset(self) -> None:
        """State, request log, faults and latency as at start; credentials are kept."""
        self.server.reset()

    def control(self, path: str, payload: Any = None, method: str = "POST") -> Any:
        """Calls a control route of the app (``/_sandbox/...``) in process; returns its JSON answer.

        Raises :class:`SandboxControlError` when the route answers with an error status.
        """
        if not path.startswith("/_sandbox/"):
            path = "/_sandbox/" + path.lstrip("/")
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        headers = Headers([("Content-Type", "application/json")] if payload is not None else [])
        response = self.server.dispatch(Request(method=method, path=path, headers=headers, body=body,
                                                client_host="127.0.0.1", raw_target=path))
        assert response is not None  # control routes are never faulted
        data = json.loads(response.body) if response.body else None
        if response.status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise SandboxControlError(f"{method} {path} answered {response.status}: {message or data}")
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"


class OpenProjectEndpoint(Endpoint):
    @property
    def token(self) -> str:
        """The API token of an admin user."""
        return self.app.config.admin_token

    @property
    def user_token(self) -> str:
        """The API token of a user without admin rights."""
        return self.app.config.user_token


class NextcloudEndpoint(Endpoint):
    @property
    def user(self) -> str:
        """The login of an admin user."""
        return self.app.config.admin_user

    @property
    def password(self) -> str:
        return self.app.config.admin_password

    def app_password(self, user: str | None = None, name: str = "opnc") -> str:
        """Mints an app password for `user` (default: the admin), usable for Basic auth at once."""
        return self.control("/_sandbox/nextcloud/app-password", {"user": user or self.user, "name": name})["app_password"]


@dataclasses.dataclass(repr=False)
class SandboxPair:
    index: int
    openproject: OpenProjectEndpoint
    nextcloud: NextcloudEndpoint

    def __repr__(self) -> str:
        return f"SandboxPair({self.index}, openproject={self.openproject.url}, nextcloud={self.nextcloud.url})"


class Sandbox:
    """`pairs` OpenProject and Nextcloud emulators on 127.0.0.1, each pair independent of the others.

    `openproject` and `nextcloud` are a config object or a dict of overrides of the defaults; with a
    dict, every pair gets its own random credentials. With `tls=True` a throwaway CA signs the
    servers' certificates; its file is :attr:`ca_bundle`, which the emulators also trust for their
    calls to each other.
    """

    def __init__(self, pairs: int = 1, tls: bool = False, latency_ms: int = 0,
                 openproject: Any = None, nextcloud: Any = None, host: str = "127.0.0.1",
                 openproject_port: int = 0, nextcloud_port: int = 0) -> None:
        if not isinstance(pairs, int) or pairs < 1:
            raise ValueError("pairs must be an integer >= 1")
        self._pair_count = pairs
        self._tls_enabled = tls
        self._latency_ms = latency_ms
        self._openproject = openproject
        self._nextcloud = nextcloud
        self._host = host
        self._ports = (openproject_port, nextcloud_port)
        self._tls: Any = None
        self.pairs: list[SandboxPair] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        if self.pairs:
            return self
        from opnc.sandbox import nextcloud, openproject

        servers: list[EmulatorServer] = []
        try:
            if self._tls_enabled:
                from opnc.sandbox import tls

                self._tls = tls.generate()
            for index in range(self._pair_count):
                op_app = openproject.OpenProjectApp(_config(openproject.OpenProjectConfig, self._openproject))
                nc_app = nextcloud.NextcloudApp(_config(nextcloud.NextcloudConfig, self._nextcloud))
                op_server = EmulatorServer(op_app, self._host, _port(self._ports[0], index), self._tls, self._latency_ms)
                servers.append(op_server)
                nc_server = EmulatorServer(nc_app, self._host, _port(self._ports[1], index), self._tls, self._latency_ms)
                servers.append(nc_server)
                self.pairs.append(SandboxPair(index, OpenProjectEndpoint(op_server), NextcloudEndpoint(nc_server)))
            for server in servers:
                server.start()
        except BaseException:
            for server in servers:
                server.stop()
            self.pairs = []
            if self._tls is not None:
                self._tls.cleanup()
                self._tls = None
            raise
        return self

    def stop(self) -> None:
        for pair in self.pairs:
            pair.openproject.server.stop()
            pair.nextcloud.server.stop()
        self.pairs = []
        if self._tls is not None:
            self._tls.cleanup()
            self._tls = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------------

    @property
    def openproject(self) -> OpenProjectEndpoint:
        return self._pair(0).openproject

    @property
    def nextcloud(self) -> NextcloudEndpoint:
        return self._pair(0).nextcloud

    @property
    def ca_bundle(self) -> str | None:
        """Path of the CA certificate to trust (None without TLS)."""
        return self._tls.ca_bundle if self._tls is not None else None

    def endpoints(self) -> list[Endpoint]:
        """Every emulator of every pair."""
        return [endpoint for pair in self.pairs for endpoint in (pair.openproject, pair.nextcloud)]

    def latency(self, ms: int) -> None:
        """Delays every answer of every emulator by `ms` milliseconds from now on (0 to stop)."""
        for endpoint in self.endpoints():
            endpoint.latency(ms)

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the sandbox's CA (the system's CAs without TLS)."""
        return ssl.create_default_context(cafile=self.ca_bundle)

    def env(self, pair: int = 0) -> dict[str, str]:
        """The ``OPNC_*`` variables of one pair, as read by the opnc CLI and the examples."""
        selected = self._pair(pair)
        variables = {
            "OPNC_OPENPROJECT_URL": selected.openproject.url,
            "OPNC_OPENPROJECT_TOKEN": selected.openproject.token,
            "OPNC_NEXTCLOUD_URL": selected.nextcloud.url,
            "OPNC_NEXTCLOUD_USER": selected.nextcloud.user,
            "OPNC_NEXTCLOUD_PASSWORD": selected.nextcloud.password,
        }
        if self.ca_bundle is not None:
            variables["OPNC_CA_BUNDLE"] = self.ca_bundle
        return variables

    def secrets(self) -> list[str]:
        """Every secret value the sandbox knows or has issued so far, for leak-scanning tests."""
        found: list[str] = []
        for pair in self.pairs:
            found += [pair.openproject.token, pair.openproject.user_token, pair.nextcloud.password]
            for endpoint in (pair.openproject, pair.nextcloud):
                issued = getattr(endpoint.app, "issued_secrets", None)
                if issued is not None:
                    found += list(issued())
        unique: dict[str, None] = {}
        for value in found:
            if value:
                unique.setdefault(value, None)
        return list(unique)

    def _pair(self, index: int) -> SandboxPair:
        if not self.pairs:
            raise RuntimeError("the sandbox is not running: use it as a context manager or call start()")
        return self.pairs[index]

    def __repr__(self) -> str:
        if not self.pairs:
            return "Sandbox(stopped)"
        return f"Sandbox({', '.join(repr(pair) for pair in self.pairs)}{', tls' if self._tls else ''})"


def _config(config_class: Any, given: Any) -> Any:
    if given is None:
        return config_class()
    if isinstance(given, dict):
        return config_class(**given)
    if isinstance(given, config_class):
        return dataclasses.replace(given)  # each pair its own copy
    raise TypeError(f"expected a {config_class.__name__} or a dict of its fields, got {type(given).__name__}")


def _port(base: int, index: int) -> int:
    return base + index if base else 0


def _json_roundtrip(data: Any) -> Any:
    return json.loads(json.dumps(data))
