# Stub of opnc._core.oauth, the OAuth 2.0 client engine (bindings/oauth.cpp); public as opnc.oauth.
from typing import Any, Callable, ClassVar

from . import Secret, _Pybind11Type

_Clock = Callable[[], float]  # seconds since the epoch, as time.time()

class ClientConfig(metaclass=_Pybind11Type):
    """An OAuth client of one authorization server; auth_method 'request_body', 'basic' or 'basic_raw'."""

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: Secret | str | None,
        *,
        authorize_endpoint: str = "",
        auth_method: str = "request_body",
        redirect_uri: str = "",
    ) -> None: ...
    @property
    def token_endpoint(self) -> str:
        """The token endpoint URL."""
    @property
    def authorize_endpoint(self) -> str:
        """The authorization endpoint URL ('' when not needed)."""
    @property
    def client_id(self) -> str:
        """The client id (not a secret)."""
    @property
    def redirect_uri(self) -> str:
        """The redirect URI, sent exactly as given."""
    @property
    def client_secret(self) -> Secret:
        """The client secret, as an opnc.Secret."""
    @property
    def auth_method(self) -> str:
        """'request_body', 'basic' or 'basic_raw'."""

class Pkce(metaclass=_Pybind11Type):
    """A PKCE S256 pair (RFC 7636): the verifier stays here, the challenge goes in the URL."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        """No constructor: use Pkce.generate() or Pkce.from_verifier(). (raises TypeError)"""

    method: ClassVar[str]
    """Always 'S256'."""
    @staticmethod
    def generate(length: int = 64) -> Pkce: ...
    @staticmethod
    def from_verifier(verifier: Secret | str) -> Pkce: ...
    @property
    def verifier(self) -> Secret:
        """The code verifier (an opnc.Secret): sent only with the code exchange."""
    @property
    def challenge(self) -> str:
        """The S256 challenge that goes into the authorization URL."""

class AuthorizationRequest(metaclass=_Pybind11Type):
    """The authorize URL for a user's browser, with a random state and PKCE."""

    def __init__(self, config: ClientConfig, *, scope: str = "", pkce: bool = True) -> None: ...
    @property
    def url(self) -> str:
        """The authorization URL to open in the user's browser."""
    @property
    def state(self) -> Secret:
        """The random state (an opnc.Secret) that the redirect must bring back."""
    @property
    def pkce(self) -> Pkce | None:
        """The PKCE pair, or None without PKCE."""
    def state_matches(self, state: str) -> bool: ...
    def code_from_callback(self, callback: str) -> Secret: ...

class Token(metaclass=_Pybind11Type):
    """An access token and refresh token (opnc.Secret each) with their expiry (epoch seconds)."""

    def __init__(
        self,
        access_token: Secret | str,
        refresh_token: Secret | str | None = None,
        *,
        token_type: str = "Bearer",
        scope: str = "",
        expires_at: float | None = None,
        obtained_at: float | None = None,
    ) -> None: ...
    @property
    def access_token(self) -> Secret:
        """The access token (an opnc.Secret)."""
    @property
    def refresh_token(self) -> Secret | None:
        """The refresh token (an opnc.Secret), or None."""
    @property
    def token_type(self) -> str:
        """Usually 'Bearer'."""
    @property
    def scope(self) -> str:
        """The granted scope ('' when the server named none)."""
    @property
    def obtained_at(self) -> float:
        """When the token was obtained (epoch seconds)."""
    @property
    def expires_at(self) -> float | None:
        """When the access token expires (epoch seconds), or None if unknown."""
    def expires_within(self, leeway: float = 0.0, now: float | None = None) -> bool: ...

class ProbeResult(metaclass=_Pybind11Type):
    """What probe_client found out; never holds a secret."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        """No constructor: probe_client() returns one. (raises TypeError)"""

    @property
    def outcome(self) -> str:
        """'accepted', 'rejected', 'registered', 'not_registered' or 'unknown'."""
    @property
    def detail(self) -> str:
        """One sentence for a person; never a secret."""
    @property
    def http_status(self) -> int:
        """The status of the answer that decided (0 without one)."""
    @property
    def server_error(self) -> str:
        """The OAuth error code the token endpoint sent, if any."""
    @property
    def plausible(self) -> bool:
        """True when the client id and secret may well be right."""
    def to_dict(self) -> dict[str, Any]: ...

def exchange_code(
    config: ClientConfig,
    code: Secret | str,
    code_verifier: Secret | str | None = None,
    *,
    ca_bundle: str = "",
    timeout: float = 30.0,
    clock: _Clock | None = None,
) -> Token:
    """Exchanges an authorization code for a Token (retried on transport errors, 429 and 5xx)."""

def refresh(
    config: ClientConfig, token: Token, *, ca_bundle: str = "", timeout: float = 30.0, clock: _Clock | None = None
) -> Token:
    """Refreshes a Token. Resent only when the request certainly never left: refresh tokens are single use."""

def probe_client(config: ClientConfig, *, redirect_uri: str = "", ca_bundle: str = "", timeout: float = 30.0) -> ProbeResult:
    """Whether the token endpoint accepts the client id and secret, without a user (see ProbeResult)."""

class CachingTokenSource(metaclass=_Pybind11Type):
    """A token that stays usable: refreshed shortly before expiry, one refresh for many threads."""

    def __init__(
        self,
        config: ClientConfig,
        token: Token,
        *,
        leeway: float = 60.0,
        clock: _Clock | None = None,
        on_rotated: Callable[[Token], object] | None = None,
        ca_bundle: str = "",
        timeout: float = 30.0,
    ) -> None: ...
    def token(self) -> Token: ...
    def force_refresh(self) -> Token: ...
    def reset(self, token: Token) -> None: ...
    @property
    def current(self) -> Token:
        """The token held now (no refresh)."""
    @property
    def refresh_count(self) -> int:
        """How many refreshes this source has made."""
