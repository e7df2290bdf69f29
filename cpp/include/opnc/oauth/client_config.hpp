#pragma once
// What a client needs to know to talk to one authorization server: its two endpoints, its
// credentials and how to present them (RFC 6749 section 2.3.1).
#include <string>
#include <string_view>

#include "opnc/error.hpp"
#include "opnc/http.hpp"
#include "opnc/oauth/form_encoding.hpp"
#include "opnc/secret.hpp"

namespace opnc::oauth {

enum class ClientAuthMethod {
    // client_id and client_secret as form fields (client_secret_post). The default: Doorkeeper and
    // Nextcloud's oauth2 app both accept it, and no encoding question arises.
    request_body,
    // HTTP Basic as RFC 6749 2.3.1 prescribes: id and secret each form-urlencoded, then base64.
    // Neither Doorkeeper (Credentials.from_basic) nor Nextcloud (PHP_AUTH_USER/PW) decodes the
    // parts; their generated credentials ([A-Za-z0-9_-]) encode to themselves, so it still works
    // with them, but not with secrets containing reserved characters.
    basic,
    // HTTP Basic over the raw id and secret: what Doorkeeper and Nextcloud actually decode.
    basic_raw,
};

std::string_view to_string(ClientAuthMethod method) noexcept;

struct ClientConfig {
    std::string authorize_endpoint;  // absolute URL; may be empty when only the token endpoint is used
    std::string token_endpoint;      // absolute URL
    std::string client_id;
    Secret client_secret;
    ClientAuthMethod auth_method = ClientAuthMethod::request_body;
    // The redirect URI registered for the client. Opaque: sent byte for byte as given, never
    // normalised (Doorkeeper compares it exactly). Empty = not sent.
    std::string redirect_uri;

    // Checks that the endpoints are absolute http(s) URLs and that the id is present.
    Result<void> validate() const;

    // Adds this client's credentials to a token-endpoint request: form fields or a Basic header.
    void authenticate(HttpRequest& request, FormBody& form) const;
};

}  // namespace opnc::oauth
