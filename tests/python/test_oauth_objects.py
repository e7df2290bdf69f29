"""opnc.oauth without a server: the RFC 7636 vector, and no secret in any repr, str or error."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

import opnc
from opnc import oauth

SECRET = "client-secret-+/=!$%&-value"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def config(token_endpoint: str = "http://127.0.0.1:9/oauth/token") -> oauth.ClientConfig:
    return oauth.ClientConfig(token_endpoint, "client-1", SECRET,
                              authorize_endpoint="http://127.0.0.1:9/oauth/authorize",
                              redirect_uri="http://127.0.0.1:9/cb/")


def test_pkce_reproduces_rfc7636_appendix_b() -> None:
    pkce = oauth.Pkce.from_verifier(VERIFIER)
    assert pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.verifier.expose() == VERIFIER
    assert oauth.Pkce.method == "S256"
    assert VERIFIER not in repr(pkce) and VERIFIER not in str(pkce)


def test_generated_pkce_is_valid_and_random() -> None:
    first, second = oauth.Pkce.generate(), oauth.Pkce.generate(43)
    assert len(first.verifier) == 64 and len(second.verifier) == 43
    assert not first.verifier.equals(second.verifier)
    assert oauth.Pkce.from_verifier(first.verifier).challenge == first.challenge
    with pytest.raises(ValueError):
        oauth.Pkce.generate(42)


def test_invalid_verifier_is_refused_without_echo() -> None:
    bad = "x" * 50 + "+"
    with pytest.raises(opnc.InvalidInput) as caught:
        oauth.Pkce.from_verifier(bad)
    assert caught.value.kind == "invalid_input"
    assert bad not in str(caught.value) and bad not in repr(caught.value)


def test_reprs_show_no_secret() -> None:
    c = config()
    request = oauth.AuthorizationRequest(c, scope="api_v3")
    token = oauth.Token("access-value-123", "refresh-value-456", scope="api_v3", expires_at=2000.0, obtained_at=1000.0)
    source = oauth.CachingTokenSource(c, token)
    texts = [repr(c), str(c), repr(c.client_secret), repr(request), str(request), repr(request.pkce),
             repr(request.state), repr(token), str(token), repr(token.access_token), repr(source)]
    for text in texts:
        for secret in (SECRET, "access-value-123", "refresh-value-456", request.state.expose(),
                       request.pkce.verifier.expose()):
            assert secret not in text, text
    assert repr(c) == ("ClientConfig(token_endpoint='http://127.0.0.1:9/oauth/token', client_id='client-1', "
                       "client_secret=[redacted], auth_method='request_body')")
    assert repr(token) == ("Token(token_type='Bearer', scope='api_v3', expires_at=2000.0, "
                           "access_token=[redacted], refresh_token=[redacted])")
    assert repr(request) == ("AuthorizationRequest(authorize_endpoint='http://127.0.0.1:9/oauth/authorize', "
                             "state=[redacted], pkce=True)")


def test_authorization_url_and_callback() -> None:
    request = oauth.AuthorizationRequest(config(), scope="api_v3")
    state = request.state.expose()
    assert request.url == ("http://127.0.0.1:9/oauth/authorize?response_type=code&client_id=client-1"
                           "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2F&scope=api_v3&state=" + state
                           + "&code_challenge=" + request.pkce.challenge + "&code_challenge_method=S256")
    assert request.state_matches(state) and not request.state_matches(state[:-1])
    code = request.code_from_callback(f"http://127.0.0.1:9/cb/?state={state}&code=the%2Bcode")
    assert isinstance(code, opnc.Secret) and code.expose() == "the+code"
    with pytest.raises(opnc.InvalidInput) as caught:
        request.code_from_callback("http://127.0.0.1:9/cb/?state=forged&code=stolen")
    assert "stolen" not in str(caught.value)
    with pytest.raises(opnc.OAuthError) as denied:
        request.code_from_callback(f"?state={state}&error=access_denied")
    assert denied.value.server_id == "access_denied"


def test_token_expiry_and_leeway_cap() -> None:
    token = oauth.Token("a", "r", expires_at=1060.0, obtained_at=1000.0)
    # 60 s lifetime: a 300 s leeway is capped at 30 s.
    assert not token.expires_within(300, now=1029.0)
    assert token.expires_within(300, now=1030.0)
    assert oauth.Token("a").refresh_token is None
    assert oauth.Token("a").expires_at is None


def test_credentials_must_be_str_or_secret() -> None:
    with pytest.raises(TypeError):
        oauth.ClientConfig("http://127.0.0.1:9/token", "id", 12345)  # type: ignore[arg-type]
    c = oauth.ClientConfig("http://127.0.0.1:9/token", "id", opnc.Secret(SECRET))
    assert c.client_secret.expose() == SECRET
    with pytest.raises(opnc.InvalidInput):
        oauth.ClientConfig("ftp://127.0.0.1/token", "id", SECRET)
    with pytest.raises(ValueError):
        oauth.ClientConfig("http://127.0.0.1:9/token", "id", SECRET, auth_method="digest")


class _EchoingTokenEndpoint(http.server.BaseHTTPRequestHandler):
    """A token endpoint that answers every POST with an error that quotes the request body."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        payload = json.dumps({"error": "invalid_grant", "error_description": f"bad request: {body}"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def echoing_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingTokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oauth/token"
    server.shutdown()
    server.server_close()


def test_errors_never_carry_a_secret(echoing_endpoint: str) -> None:
    c = oauth.ClientConfig(echoing_endpoint, "client-1", "plainsecretvalue")
    with pytest.raises(opnc.OAuthError) as caught:
        oauth.exchange_code(c, "the-authorization-code", "v" * 43)
    error = caught.value
    assert error.server_id == "invalid_grant" and error.http_status == 400
    rendered = [str(error), repr(error), repr(error.args), json.dumps(error.to_dict()), error.server_message,
                error.hint]
    for text in rendered:
        for secret in ("plainsecretvalue", "the-authorization-code", "v" * 43):
            assert secret not in text, text
    assert "[redacted]" in error.server_message

    token = oauth.Token("access-token-value", "refresh-token-value")
    with pytest.raises(opnc.OAuthError) as refreshed:
        oauth.refresh(c, token)
    for text in (str(refreshed.value), refreshed.value.server_message):
        assert "refresh-token-value" not in text and "plainsecretvalue" not in text


def test_connection_errors_are_typed() -> None:
    with pytest.raises(opnc.ConnectionFailed) as caught:
        oauth.probe_client(config("http://127.0.0.1:9/oauth/token"), timeout=5)
    assert SECRET not in str(caught.value)
