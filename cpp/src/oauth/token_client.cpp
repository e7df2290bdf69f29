#include "opnc/oauth/token_client.hpp"

#include <algorithm>
#include <thread>

#include "opnc/oauth/form_encoding.hpp"
#include "opnc/oauth/token_response.hpp"

namespace opnc::oauth {

namespace {

enum class Grant { authorization_code, refresh_token };

// Wipes the request body (it holds the code or refresh token, maybe the client secret) on exit.
struct BodyWiper {
    HttpRequest& request;
    ~BodyWiper() { wipe_string(request.body); }
};

bool transient(const TransportError& error) {
    using K = TransportError::Kind;
    return error.kind != K::aborted && error.kind != K::too_large && error.kind != K::tls;
}

bool should_retry(Grant grant, const std::expected<HttpResponse, TransportError>& answer) {
    if (!answer) {
        if (!transient(answer.error())) return false;
        if (grant == Grant::refresh_token) return !answer.error().maybe_delivered;
        return true;
    }
    if (grant == Grant::refresh_token) return false;  // an answer means the refresh was delivered
    const int s = answer->status;
    return s == 429 || (s >= 500 && s <= 599);
}

std::chrono::milliseconds retry_after(const HttpResponse& response, std::chrono::milliseconds fallback) {
    if (response.status != 429) return fallback;
    auto value = response.header("Retry-After");
    if (!value) return fallback;
    try {
        return std::chrono::milliseconds(std::stol(*value) * 1000);
    } catch (...) {
        return fallback;  // an HTTP date or garbage: keep our own backoff
    }
}

// Any credential echoed by a server in an error text is masked before it can reach a log.
void redact(Error& error, std::initializer_list<const Secret*> secrets) {
    for (const Secret* secret : secrets) {
        if (!secret || secret->size() < 4) continue;
        for (std::string* text : {&error.message, &error.server_message, &error.hint}) {
            std::size_t pos;
            while ((pos = text->find(secret->expose())) != std::string::npos)
                text->replace(pos, secret->size(), Secret::redacted);
        }
    }
}

Result<Token> post_grant(Grant grant, const ClientConfig& config, Transport& transport, FormBody& form,
                         const Token* previous, const TokenRequestOptions& options,
                         std::initializer_list<const Secret*> sent_secrets) {
    if (auto valid = config.validate(); !valid) return std::unexpected(valid.error());

    HttpRequest request;
    BodyWiper wiper{request};
    request.method = "POST";
    request.url = config.token_endpoint;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    request.timeout = options.timeout;
    config.authenticate(request, form);
    request.body = form.release();

    const Clock clock = options.clock ? options.clock : system_clock();
    auto sleep = options.retry.sleep;
    if (!sleep) sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    const int max_attempts = std::max(1, options.retry.max_attempts);
    auto backoff = options.retry.initial_backoff;

    for (int attempt = 1;; ++attempt) {
        const TimePoint sent_at = clock();
        auto answer = transport.send(request);
        if (attempt < max_attempts && should_retry(grant, answer)) {
            auto wait = answer ? retry_after(*answer, backoff) : backoff;
            sleep(std::min(wait, options.retry.max_backoff));
            backoff = std::min(backoff * 2, options.retry.max_backoff);
            continue;
        }
        if (!answer) return std::unexpected(transport_failure(answer.error(), "the token endpoint"));
        auto token = parse_token_response(*answer, sent_at, previous);
        if (!token) {
            Error e = std::move(token.error());
            redact(e, sent_secrets);
            redact(e, {&config.client_secret});
            return std::unexpected(std::move(e));
        }
        return token;
    }
}

}  // namespace

Error transport_failure(const TransportError& error, std::string_view what) {
    // The kind and hint come from the one conversion of transport failures; only the message
    // says which endpoint of the OAuth exchange was out of reach.
    Error e = to_error(error);
    e.message = "Could not reach " + std::string(what) + ": " + error.message;
    return e;
}

Result<Token> exchange_code(const ClientConfig& config, Transport& transport, const Secret& code,
                            const std::optional<Secret>& code_verifier, const TokenRequestOptions& options) {
    if (code.empty()) return fail(ErrorKind::invalid_input, "The authorization code is empty.");
    FormBody form;
    form.add("grant_type", "authorization_code").add("code", code);
    if (!config.redirect_uri.empty()) form.add("redirect_uri", config.redirect_uri);
    if (code_verifier && !code_verifier->empty()) form.add("code_verifier", *code_verifier);
    return post_grant(Grant::authorization_code, config, transport, form, nullptr, options,
                      {&code, code_verifier ? &*code_verifier : nullptr});
}

Result<Token> refresh(const ClientConfig& config, Transport& transport, const Token& current,
                      const TokenRequestOptions& options) {
    if (current.refresh_token.empty())
        return fail(ErrorKind::invalid_input, "There is no refresh token to refresh with.",
                    "Authorize again to obtain a refresh token.");
    FormBody form;
    form.add("grant_type", "refresh_token").add("refresh_token", current.refresh_token);
    return post_grant(Grant::refresh_token, config, transport, form, &current, options,
                      {&current.refresh_token, &current.access_token});
}

}  // namespace opnc::oauth
