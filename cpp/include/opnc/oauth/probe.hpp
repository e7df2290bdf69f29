#pragma once
// Does an authorization server accept this client id and secret? Answered without a user: the
// token endpoint is sent an authorization_code grant with a random, certainly unknown code.
// - Doorkeeper (OpenProject) authenticates the client before it looks at the code: invalid_grant
//   means the credentials were accepted, invalid_client (401) that they were refused.
// - Nextcloud's oauth2 app looks the code up first and answers invalid_request whatever the
//   client: the secret cannot be checked without a real code. The probe then asks the authorize
//   endpoint whether the client id is registered: an unknown id gets a 200 HTML error page, a
//   known one a 303 redirect (to the login flow, or to the registered redirect URI).
#include <chrono>
#include <string>
#include <string_view>

#include "opnc/error.hpp"
#include "opnc/oauth/client_config.hpp"
#include "opnc/oauth/token_client.hpp"
#include "opnc/transport.hpp"

namespace opnc::oauth {

enum class ProbeOutcome {
    accepted,        // the token endpoint authenticated the client
    rejected,        // the token endpoint refused the client id or secret
    unknown,         // the answers do not tell
    registered,      // the secret could not be checked, but the client id is registered
    not_registered,  // the secret could not be checked, and the client id is not registered
};

std::string_view to_string(ProbeOutcome outcome) noexcept;

struct ProbeResult {
    ProbeOutcome outcome = ProbeOutcome::unknown;
    std::string detail;        // one sentence for a person; never a secret
    int http_status = 0;       // of the answer that decided
    std::string server_error;  // the token endpoint's OAuth error code as received, if any

    // True for accepted and registered: nothing speaks against the credentials.
    bool plausible() const noexcept {
        return outcome == ProbeOutcome::accepted || outcome == ProbeOutcome::registered;
    }
};

struct ProbeOptions {
    // Sent with the bogus code because Doorkeeper answers invalid_request without one (it is
    // checked for presence only, before the client). Empty: config.redirect_uri, else a placeholder.
    std::string redirect_uri;
    std::chrono::milliseconds timeout{0};
    // For a server known to look a code up before it checks the client (Nextcloud's oauth2 app):
    // skip the token endpoint and only ask the authorize endpoint whether the client id is
    // registered. One request instead of two (so verify stays one round), and no failed attempt for
    // the server's brute-force protection to count.
    bool registration_only = false;
};

// Errors (connection failures, 5xx, 429) are values: only an answer that was obtained can be
// judged. Sends one POST to the token endpoint and, for Nextcloud-like answers with an authorize
// endpoint configured, one GET to the authorize endpoint. Never retried: a probe is cheap to repeat
// and each failure counts for Nextcloud's brute-force protection.
Result<ProbeResult> probe_client(const ClientConfig& config, Transport& transport, const ProbeOptions& options = {});

}  // namespace opnc::oauth
