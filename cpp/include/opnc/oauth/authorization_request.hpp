#pragma once
// The first leg of the authorization code flow (RFC 6749 4.1.1 with RFC 7636): the URL the user's
// browser opens, and the check of what comes back to the redirect URI.
#include <optional>
#include <string>
#include <string_view>

#include "opnc/error.hpp"
#include "opnc/oauth/client_config.hpp"
#include "opnc/oauth/pkce.hpp"
#include "opnc/secret.hpp"

namespace opnc::oauth {

struct AuthorizationOptions {
    std::string scope;  // empty = not sent (both servers have a default)
    bool use_pkce = true;
};

class AuthorizationRequest {
public:
    // A new request with a random state (256 bits) and, unless disabled, a fresh PKCE pair.
    // invalid_input when the config has no authorize endpoint or no client id.
    static Result<AuthorizationRequest> create(const ClientConfig& config, const AuthorizationOptions& options = {});

    // authorize_endpoint?response_type=code&client_id=..&redirect_uri=..&scope=..&state=..
    // &code_challenge=..&code_challenge_method=S256 (absent parts omitted; an endpoint that already
    // has a query gets '&'). The redirect URI is percent-encoded but otherwise sent as configured.
    const std::string& url() const noexcept { return url_; }
    const Secret& state() const noexcept { return state_; }
    const std::optional<Pkce>& pkce() const noexcept { return pkce_; }

    // Constant-time comparison with the state that came back.
    bool state_matches(std::string_view returned_state) const noexcept;

    // Reads the redirect the browser was sent to (a full URL or just its query string), checks the
    // state, and returns the authorization code. Errors: invalid_input when the state is missing or
    // differs (nothing is trusted from such a callback), oauth when the server sent `error`
    // (server_id = the code), protocol when there is no code.
    Result<Secret> code_from_callback(std::string_view callback) const;

private:
    AuthorizationRequest() = default;
    std::string url_;
    Secret state_;
    std::optional<Pkce> pkce_;
};

}  // namespace opnc::oauth
