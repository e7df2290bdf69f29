#pragma once
// The two token-endpoint grants a client of opnc needs: exchanging an authorization code and
// refreshing (RFC 6749 sections 4.1.3 and 6). Both send a form-encoded POST and parse the answer
// with parse_token_response.
//
// Retries (bounded exponential backoff, RetryPolicy of retrying_transport.hpp):
// - code exchange: after a transport error, a 429 or a 5xx;
// - refresh: only after a transport error that proves the request never left (DNS, connect, TLS
//   handshake). Refresh tokens rotate: a replay of a delivered refresh kills the token chain.
// - never after an OAuth error answer (invalid_grant above all).
#include <optional>

#include "opnc/error.hpp"
#include "opnc/oauth/client_config.hpp"
#include "opnc/oauth/token.hpp"
#include "opnc/retrying_transport.hpp"
#include "opnc/secret.hpp"
#include "opnc/transport.hpp"

namespace opnc::oauth {

struct TokenRequestOptions {
    Clock clock;        // default: the system clock
    RetryPolicy retry;  // max_attempts 1 disables retries
    std::chrono::milliseconds timeout{0};  // per attempt; zero = the transport's default
};

// Exchanges an authorization code. `code_verifier` is the PKCE verifier of the authorization
// request, if one was sent. The redirect URI sent is config.redirect_uri (when not empty).
Result<Token> exchange_code(const ClientConfig& config, Transport& transport, const Secret& code,
                            const std::optional<Secret>& code_verifier = std::nullopt,
                            const TokenRequestOptions& options = {});

// Refreshes `current` (its refresh token must not be empty). The answer's missing refresh token or
// scope are taken from `current`.
Result<Token> refresh(const ClientConfig& config, Transport& transport, const Token& current,
                      const TokenRequestOptions& options = {});

// The opnc::Error for a transport failure (DNS, connect, TLS, timeout, too large, aborted).
Error transport_failure(const TransportError& error, std::string_view what);

}  // namespace opnc::oauth
