#pragma once
// Only safe retries (design principle): a decorator that resends a request after a transport
// error, 429 or 5xx with bounded exponential backoff, but only when resending cannot do harm:
// idempotent methods (GET, HEAD, DELETE, PROPFIND) always; any other method only when the transport
// proves the request never reached the server (and only if allow_undelivered_resend is set).
// A POST or PATCH whose fate is unknown is never resent: the next converge decides.
#include <chrono>
#include <functional>
#include <memory>

#include "opnc/transport.hpp"

namespace opnc {

struct RetryPolicy {
    int max_attempts = 3;  // including the first
    std::chrono::milliseconds initial_backoff{200};
    std::chrono::milliseconds max_backoff{2'000};
    // Resend a non-idempotent request when it certainly never left (DNS, connect, TLS handshake).
    bool allow_undelivered_resend = true;
    // Injectable for tests; defaults to std::this_thread::sleep_for.
    std::function<void(std::chrono::milliseconds)> sleep;
};

class RetryingTransport final : public Transport {
public:
    RetryingTransport(std::shared_ptr<Transport> inner, RetryPolicy policy = {});
    std::expected<HttpResponse, TransportError> send(const HttpRequest& request) override;

    static bool is_idempotent(const std::string& method) noexcept;

private:
    std::shared_ptr<Transport> inner_;
    RetryPolicy policy_;
};

}  // namespace opnc
