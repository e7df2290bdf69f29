#pragma once
// Reading what a token endpoint answered (RFC 6749 sections 5.1 and 5.2), tolerantly: real servers
// differ in small ways (expires_in as a string, token_type in any case or missing, no refresh_token
// on refresh, an `error` in a 200) and in large ones (Nextcloud's invalid_request for an unknown
// code, its 400 invalid_client, Doorkeeper's 401 with WWW-Authenticate, a 415 `{}`, an empty
// text/html 400). All of that is decided here, in one place.
#include <optional>
#include <string>

#include "opnc/error.hpp"
#include "opnc/http.hpp"
#include "opnc/oauth/token.hpp"

namespace opnc::oauth {

// The error an authorization server reported, as it reported it (no mapping applied).
struct OAuthErrorBody {
    std::string error;        // the RFC 6749 code, e.g. "invalid_grant"
    std::string description;  // error_description, may be empty
    bool from_www_authenticate = false;  // found only in a WWW-Authenticate header
};

// The OAuth error in a response: from the JSON body (or a form-encoded body), else from a
// WWW-Authenticate header. Empty when the response carries none.
std::optional<OAuthErrorBody> read_oauth_error(const HttpResponse& response);

// Turns a token endpoint's answer into a Token. `sent_at` is when the request left (the expiry is
// counted from there, so it errs on the early side). On a refresh, `previous` is the token being
// refreshed: its refresh token and scope are kept when the answer omits them (RFC 6749 6).
Result<Token> parse_token_response(const HttpResponse& response, TimePoint sent_at, const Token* previous = nullptr);

// The opnc::Error for an answer that is not a usable token: kind oauth with server_id = the RFC
// code for OAuth errors, other kinds for HTTP-level failures. Quirk: a 400 `invalid_request`
// without description (Nextcloud's answer for an unknown, used, expired or revoked code or refresh
// token) is reported as `invalid_grant`, which is what it means.
Error token_endpoint_error(const HttpResponse& response);

}  // namespace opnc::oauth
