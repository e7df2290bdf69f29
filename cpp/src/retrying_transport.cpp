#include "opnc/retrying_transport.hpp"

#include <algorithm>
#include <thread>

namespace opnc {

RetryingTransport::RetryingTransport(std::shared_ptr<Transport> inner, RetryPolicy policy)
    : inner_(std::move(inner)), policy_(std::move(policy)) {
    if (!policy_.sleep) policy_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    policy_.max_attempts = std::max(1, policy_.max_attempts);
}

bool RetryingTransport::is_idempotent(const std::string& method) noexcept {
    return method == "GET" || method == "HEAD" || method == "DELETE" || method == "PROPFIND" ||
           method == "OPTIONS";
}

std::expected<HttpResponse, TransportError> RetryingTransport::send(const HttpRequest& request) {
    const bool idempotent = is_idempotent(request.method);
    auto backoff = policy_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
        auto result = inner_->send(request);
        bool retry = false;
        if (!result) {
            const auto kind = result.error().kind;
            const bool transient = kind != TransportError::Kind::aborted && kind != TransportError::Kind::too_large &&
                                   kind != TransportError::Kind::tls;
            retry = transient && (idempotent || (policy_.allow_undelivered_resend && !result.error().maybe_delivered));
        } else {
            const int s = result->status;
            // A 429 or 5xx means the server answered: only idempotent requests may be resent.
            retry = idempotent && (s == 429 || (s >= 500 && s <= 599));
        }
        if (!retry || attempt >= policy_.max_attempts) return result;
        auto wait = backoff;
        if (result && result->status == 429) {
            if (auto after = result->header("Retry-After")) {
                // Delay-seconds only (an HTTP-date falls back to the backoff). Clamped before the
                // multiplication so that a huge value cannot overflow; max_backoff bounds it below.
                try {
                    const long seconds = std::stol(*after);
                    if (seconds >= 0) wait = std::chrono::milliseconds(std::min<long>(seconds, 86'400) * 1000);
                } catch (...) {
                }
            }
        }
        policy_.sleep(std::min(wait, policy_.max_backoff));
        backoff = std::min(backoff * 2, policy_.max_backoff);
    }
}

}  // namespace opnc
