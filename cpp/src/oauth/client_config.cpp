#include "opnc/oauth/client_config.hpp"

namespace opnc::oauth {

std::string_view to_string(ClientAuthMethod method) noexcept {
    switch (method) {
        case ClientAuthMethod::request_body: return "request_body";
        case ClientAuthMethod::basic: return "basic";
        case ClientAuthMethod::basic_raw: return "basic_raw";
    }
    return "request_body";
}

namespace {

bool is_http_url(std::string_view url) {
    auto has_host_after = [&](std::string_view prefix) {
        return url.starts_with(prefix) && url.size() > prefix.size() && url[prefix.size()] != '/';
    };
    return has_host_after("http://") || has_host_after("https://");
}

}  // namespace

Result<void> ClientConfig::validate() const {
    if (!is_http_url(token_endpoint))
        return fail(ErrorKind::invalid_input, "The token endpoint must be an absolute http or https URL.");
    if (!authorize_endpoint.empty() && !is_http_url(authorize_endpoint))
        return fail(ErrorKind::invalid_input, "The authorize endpoint must be an absolute http or https URL.");
    if (client_id.empty()) return fail(ErrorKind::invalid_input, "The OAuth client id is empty.");
    // A client id goes into a Basic header and URLs: control characters there are always an error.
    for (unsigned char c : client_id)
        if (c < 0x20 || c == 0x7f)
            return fail(ErrorKind::invalid_input, "The OAuth client id contains a control character.");
    // RFC 7617: a Basic user-id cannot contain ':' (the server would split there).
    if (auth_method == ClientAuthMethod::basic_raw && client_id.find(':') != std::string::npos)
        return fail(ErrorKind::invalid_input, "A client id containing ':' cannot be sent with raw HTTP Basic.",
                    "Use the basic (form-encoded) or request_body client authentication.");
    return {};
}

void ClientConfig::authenticate(HttpRequest& request, FormBody& form) const {
    switch (auth_method) {
        case ClientAuthMethod::request_body:
            form.add("client_id", client_id);
            form.add("client_secret", client_secret);
            return;
        case ClientAuthMethod::basic: {
            // RFC 6749 2.3.1: "encoded using the application/x-www-form-urlencoded encoding
            // algorithm", then used as Basic user-id and password. The transport does the base64.
            std::string escaped_secret = form_escape(client_secret.expose());
            request.basic = BasicAuth{form_escape(client_id), Secret(std::move(escaped_secret))};
            wipe_string(escaped_secret);
            return;
        }
        case ClientAuthMethod::basic_raw:
            request.basic = BasicAuth{client_id, client_secret};
            return;
    }
}

}  // namespace opnc::oauth
