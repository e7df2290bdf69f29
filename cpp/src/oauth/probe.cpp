#include "opnc/oauth/probe.hpp"

#include "opnc/oauth/form_encoding.hpp"
#include "opnc/oauth/token_response.hpp"

namespace opnc::oauth {

std::string_view to_string(ProbeOutcome outcome) noexcept {
    switch (outcome) {
        case ProbeOutcome::accepted: return "accepted";
        case ProbeOutcome::rejected: return "rejected";
        case ProbeOutcome::unknown: return "unknown";
        case ProbeOutcome::registered: return "registered";
        case ProbeOutcome::not_registered: return "not_registered";
    }
    return "unknown";
}

namespace {

// A URL for a message: scheme, host and path only (a query could carry anything).
std::string without_query(std::string_view url) {
    return std::string(url.substr(0, url.find_first_of("?#")));
}

ProbeResult result(ProbeOutcome outcome, int status, std::string detail, std::string server_error = {}) {
    return ProbeResult{outcome, std::move(detail), status, std::move(server_error)};
}

Result<ProbeResult> probe_authorize(const ClientConfig& config, Transport& transport, const ProbeOptions& options,
                                    std::string token_answer) {
    HttpRequest request;
    request.method = "GET";
    request.timeout = options.timeout;
    request.headers = {{"Accept", "text/html"}};
    // No redirect_uri: Nextcloud ignores it and Doorkeeper would only compare it.
    request.url = config.authorize_endpoint;
    request.url += config.authorize_endpoint.find('?') == std::string::npos ? '?' : '&';
    request.url += "response_type=code&client_id=" + form_escape(config.client_id) +
                   "&state=" + Secret::random_urlsafe(16).expose();
    auto answer = transport.send(request);
    if (!answer) return std::unexpected(transport_failure(answer.error(), "the authorize endpoint"));
    const int status = answer->status;
    const std::string prefix = "The token endpoint cannot check the secret without a real code (" + token_answer + "); ";
    if (status == 301 || status == 302 || status == 303 || status == 307) {
        std::string location = without_query(answer->header("Location").value_or(""));
        return result(ProbeOutcome::registered, status,
                      prefix + "the authorize endpoint knows the client id (redirects to " +
                          (location.empty() ? std::string("an unnamed location") : location) + ").");
    }
    if (status == 200)
        return result(ProbeOutcome::not_registered, status,
                      prefix + "the authorize endpoint does not know the client id (it shows an error page).");
    if (status == 429 || status >= 500) {
        Error e = token_endpoint_error(*answer);
        e.message = "The authorize endpoint failed (HTTP " + std::to_string(status) + ").";
        return std::unexpected(std::move(e));
    }
    return result(ProbeOutcome::unknown, status,
                  prefix + "the authorize endpoint answered HTTP " + std::to_string(status) + ", which does not tell.");
}

}  // namespace

Result<ProbeResult> probe_client(const ClientConfig& config, Transport& transport, const ProbeOptions& options) {
    if (auto valid = config.validate(); !valid) return std::unexpected(valid.error());
    if (options.registration_only && !config.authorize_endpoint.empty())
        return probe_authorize(config, transport, options, "not asked: it looks a code up before the client");

    HttpRequest request;
    request.method = "POST";
    request.url = config.token_endpoint;
    request.timeout = options.timeout;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    std::string redirect_uri = !options.redirect_uri.empty() ? options.redirect_uri
                               : !config.redirect_uri.empty() ? config.redirect_uri
                                                              : "urn:ietf:wg:oauth:2.0:oob";
    // A fresh random code: it cannot exist on the server, so no user's grant is ever touched.
    FormBody form;
    form.add("grant_type", "authorization_code")
        .add("code", Secret::random_urlsafe(32))
        .add("redirect_uri", redirect_uri);
    config.authenticate(request, form);
    request.body = form.release();
    auto answer = transport.send(request);
    wipe_string(request.body);
    if (!answer) return std::unexpected(transport_failure(answer.error(), "the token endpoint"));

    const int status = answer->status;
    auto oauth = read_oauth_error(*answer);
    const std::string code = oauth ? oauth->error : std::string{};
    if (code == "invalid_grant")
        return result(ProbeOutcome::accepted, status,
                      "The token endpoint authenticated the client and refused only the probe's made-up code.", code);
    if (code == "invalid_client")
        return result(ProbeOutcome::rejected, status, "The token endpoint refused the client id or secret.", code);
    if (!oauth && status == 401)
        return result(ProbeOutcome::rejected, status, "The token endpoint refused the client authentication (HTTP 401).");
    if (status == 429 || (status >= 500 && status <= 599) || (!oauth && status >= 300 && status <= 399) ||
        status == 404 || status == 415)
        return std::unexpected(token_endpoint_error(*answer));
    if (status >= 200 && status <= 299 && !oauth)
        return result(ProbeOutcome::unknown, status, "The token endpoint accepted a made-up code; its answers cannot be trusted.");

    std::string seen = oauth ? "it answered " + code : "it answered HTTP " + std::to_string(status);
    if (!config.authorize_endpoint.empty()) {
        auto registered = probe_authorize(config, transport, options, seen);
        if (registered) registered->server_error = code;
        return registered;
    }
    return result(ProbeOutcome::unknown, status,
                  "The token endpoint cannot check the secret without a real code (" + seen +
                      "), and no authorize endpoint is configured to check the client id.",
                  code);
}

}  // namespace opnc::oauth
