# Hand-written stub of the extension module opnc._core (bindings/*.cpp). Keep in step with the
# bindings. Foundation part: errors, Secret, Url, CurlTransport.
from typing import Iterable, Mapping, NoReturn, overload

__version__: str

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

class Secret:
    """A credential that never prints; read it with expose(). No ==, not picklable."""

    def __init__(self, value: str) -> None: ...
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

class Url:
    """A parsed, normalised server base URL; bad input raises opnc.InvalidInput."""

    def __init__(self, text: str) -> None: ...
    @staticmethod
    def parse(text: str) -> Url: ...
    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str: ...
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
    def is_https(self) -> bool: ...
    @property
    def is_loopback(self) -> bool:
        """127.0.0.0/8, ::1 or localhost."""
    def join(self, path: str) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class HttpResponse:
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def elapsed_ms(self) -> float: ...
    def header(self, name: str) -> str | None: ...

class CurlTransport:
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
        basic: tuple[str, Secret] | None = None,
        bearer: Secret | None = None,
        timeout: float | None = None,
    ) -> HttpResponse: ...
    @property
    def connections_opened(self) -> int: ...
