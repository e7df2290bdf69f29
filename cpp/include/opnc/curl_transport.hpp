#pragma once
// libcurl transport: keep-alive connection reuse per host, TLS verification always on (there is no
// switch to turn it off), an optional CA bundle, connect and total timeouts, a response size cap,
// no redirects followed (a 3xx comes back as a response), and an abort hook polled while waiting.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "opnc/transport.hpp"

namespace opnc {

struct TransportOptions {
    std::string ca_bundle;  // PEM file with extra trusted CAs; empty = the system's store
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds total_timeout{30'000};
    std::size_t max_response_bytes = 8u * 1024u * 1024u;
    std::string user_agent = "opnc/" OPNC_VERSION;
    // Polled at least every 100 ms while a request is in flight; returning true aborts it with
    // TransportError::Kind::aborted. The Python bindings use it to make Ctrl-C work.
    std::function<bool()> should_abort;
};

class CurlTransport final : public Transport {
public:
    explicit CurlTransport(TransportOptions options = {});
    ~CurlTransport() override;
    CurlTransport(const CurlTransport&) = delete;
    CurlTransport& operator=(const CurlTransport&) = delete;

    std::expected<HttpResponse, TransportError> send(const HttpRequest& request) override;

    const TransportOptions& options() const noexcept;
    // Number of new connections opened so far (for tests and benchmarks of connection reuse).
    long connections_opened() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace opnc
