# Hand-written stub of the extension module opnc._core (bindings/*.cpp). Keep it in step with the
# bindings: tests/python/test_stubs.py runs mypy's stubtest against the built module.
# A package stub (this folder) because the module has a submodule, opnc._core.oauth.
from typing import Any, Callable, Iterable, Mapping, NoReturn, overload

from . import oauth as oauth

__version__: str

class _Pybind11Type(type):
    """pybind11's metaclass (pybind11_builtins.pybind11_type), shared by every class of the module;
    stubtest compares metaclasses, and the real one has no importable name."""

# What Integration.apply/rotate/teardown call with each event (a dict: type, step, detail, elapsed_ms).
_EventCallback = Callable[[dict[str, Any]], None]

def _raise_core_error(
    kind: str,
    message: str,
    hint: str = "",
    step: str = "",
    http_status: int = 0,
    server_id: str = "",
    server_message: str = "",
) -> NoReturn:
    """Raises the opnc.errors class for a core Error with these fields (the bindings' one translator)."""

class Secret(metaclass=_Pybind11Type):
    """A credential that never prints; read it with expose(). No ==, not picklable."""

    def __init__(self, value: str | Secret) -> None: ...
    def expose(self) -> str: ...
    @overload
    def equals(self, other: Secret) -> bool: ...
    @overload
    def equals(self, other: str) -> bool: ...
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __format__(self, spec: str) -> str: ...
    def __eq__(self, other: object) -> NoReturn: ...  # type: ignore[override]  # raises TypeError
    def __ne__(self, other: object) -> NoReturn: ...  # type: ignore[override]  # raises TypeError
    def __hash__(self) -> int: ...
    def __reduce__(self) -> NoReturn: ...  # raises TypeError: a secret is never pickled
    def __reduce_ex__(self, protocol: Any) -> NoReturn: ...  # type: ignore[override]

class Url(metaclass=_Pybind11Type):
    """A parsed, normalised server base URL; bad input raises opnc.InvalidInput."""

    def __init__(self, text: str) -> None: ...
    @staticmethod
    def parse(text: str) -> Url: ...
    @property
    def scheme(self) -> str:
        """'http' or 'https'."""
    @property
    def host(self) -> str:
        """The host name (lower case) or IP address."""
    @property
    def port(self) -> int:
        """0 when the scheme's default."""
    @property
    def path(self) -> str:
        """'' or '/sub/path' (never a trailing slash)."""
    @property
    def authority(self) -> str:
        """'host' or 'host:port'."""
    @property
    def is_https(self) -> bool:
        """True for https."""
    @property
    def is_loopback(self) -> bool:
        """127.0.0.0/8, ::1 or localhost."""
    def join(self, path: str) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __getstate__(self) -> tuple[str]: ...
    def __setstate__(self, state: tuple[str]) -> None: ...

class HttpResponse(metaclass=_Pybind11Type):
    """An HTTP answer: status, headers (as received), body, elapsed time."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        """No constructor: raises TypeError. Instances come from CurlTransport.request()."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def elapsed_ms(self) -> float: ...
    def header(self, name: str) -> str | None: ...

class CurlTransport(metaclass=_Pybind11Type):
    """libcurl transport: keep-alive, TLS always verified, no redirects followed; GIL released, Ctrl-C works.

    A failure raises opnc.ConnectionFailed, opnc.TlsError, opnc.Timeout, opnc.ResponseTooLarge
    (or KeyboardInterrupt on Ctrl-C).
    """

    def __init__(
        self,
        *,
        ca_bundle: str | None = None,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
        max_response_bytes: int = 8388608,
    ) -> None: ...
    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str = b"",
        *,
        basic: tuple[str, Secret | str] | None = None,
        bearer: Secret | str | None = None,
        timeout: float | None = None,
    ) -> HttpResponse: ...
    @property
    def connections_opened(self) -> int: ...

class Integration(metaclass=_Pybind11Type):
    """The exchange of one OpenProject and one Nextcloud (see opnc.Integration).

    Results are plain dicts; opnc.results turns them into objects.
    """

    def __init__(
        self,
        openproject_url: str,
        openproject_token: Secret,
        nextcloud_url: str,
        nextcloud_user: str,
        nextcloud_password: Secret,
        *,
        storage_name: str = "Nextcloud",
        project_folders: bool = False,
        replace_storage: bool = False,
        state_dir: str = "",
        ca_bundle: str = "",
        timeout: float = 30.0,
        wait_for_lock: bool = False,
        openproject_user: str = "apikey",
        setup_timeout: float = 120.0,
    ) -> None: ...
    def journal_path(self) -> str: ...
    def plan(self) -> dict[str, Any]: ...
    def apply(self, on_event: _EventCallback | None = None) -> dict[str, Any]: ...
    def rotate(
        self,
        *,
        nextcloud_client: bool = False,
        app_password: bool = False,
        replace_storage: bool = False,
        openproject_client_id: str = "",
        openproject_client_secret: Secret | None = None,
        on_event: _EventCallback | None = None,
    ) -> dict[str, Any]: ...
    def teardown(self, *, delete_storage: bool = False, on_event: _EventCallback | None = None) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    def verify(self) -> dict[str, Any]: ...

def set_log_level(level: int) -> None:
    """The lowest logging level the core delivers to Python's logging (default logging.DEBUG)."""

def log_enabled(level: int) -> bool:
    """Whether the core delivers records of this level to Python's logging."""
