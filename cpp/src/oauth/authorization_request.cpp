#include "opnc/oauth/authorization_request.hpp"

#include "opnc/oauth/form_encoding.hpp"

namespace opnc::oauth {

Result<AuthorizationRequest> AuthorizationRequest::create(const ClientConfig& config,
                                                          const AuthorizationOptions& options) {
    if (config.authorize_endpoint.empty())
        return fail(ErrorKind::invalid_input, "The OAuth client has no authorize endpoint.");
    if (auto valid = config.validate(); !valid) return std::unexpected(valid.error());

    AuthorizationRequest request;
    request.state_ = Secret::random_urlsafe(32);
    if (options.use_pkce) request.pkce_ = Pkce::generate();

    std::string& url = request.url_;
    url = config.authorize_endpoint;
    url += config.authorize_endpoint.find('?') == std::string::npos ? '?' : '&';
    url += "response_type=code&client_id=" + form_escape(config.client_id);
    if (!config.redirect_uri.empty()) url += "&redirect_uri=" + form_escape(config.redirect_uri);
    if (!options.scope.empty()) url += "&scope=" + form_escape(options.scope);
    url += "&state=" + form_escape(request.state_.expose());
    if (request.pkce_) {
        url += "&code_challenge=" + request.pkce_->challenge();
        url += "&code_challenge_method=" + std::string(Pkce::method);
    }
    return request;
}

bool AuthorizationRequest::state_matches(std::string_view returned_state) const noexcept {
    return !state_.empty() && state_.equals(returned_state);
}

Result<Secret> AuthorizationRequest::code_from_callback(std::string_view callback) const {
    if (auto question = callback.find('?'); question != std::string_view::npos) callback = callback.substr(question);
    auto params = parse_form(callback);
    auto find = [&](std::string_view name) -> const std::string* {
        for (const auto& [key, value] : params)
            if (key == name) return &value;
        return nullptr;
    };
    auto wipe_all = [&] {
        for (auto& [key, value] : params) wipe_string(value);
    };

    // The state is checked first: an error or a code in a callback with a foreign state may be
    // an attacker's (RFC 6749 10.12).
    const std::string* state = find("state");
    if (!state || !state_matches(*state)) {
        wipe_all();
        return fail(ErrorKind::invalid_input,
                    state ? "The callback's state does not match this authorization request."
                          : "The callback has no state parameter.",
                    "Start the authorization again from this request's URL.");
    }
    if (const std::string* error = find("error")) {
        Error e;
        e.kind = ErrorKind::oauth;
        e.server_id = *error;
        if (const std::string* description = find("error_description")) e.server_message = *description;
        e.message = "The authorization was not granted: " + *error +
                    (e.server_message.empty() ? std::string(".") : ": " + e.server_message);
        if (*error == "access_denied") e.hint = "The user declined; ask them to approve the access.";
        wipe_all();
        return std::unexpected(std::move(e));
    }
    const std::string* code = find("code");
    if (!code || code->empty()) {
        wipe_all();
        return fail(ErrorKind::protocol, "The callback carries neither a code nor an error.");
    }
    Secret out(*code);
    wipe_all();
    return out;
}

}  // namespace opnc::oauth
