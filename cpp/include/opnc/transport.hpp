#pragma once
// The seam between the protocol code and the network. CurlTransport is the real one; tests inject
// fakes. Implementations must be safe to call from several threads at once (preflight and verify
// send their requests in parallel).
#include <expected>
#include <functional>
#include <memory>

#include "opnc/http.hpp"

namespace opnc {

class Transport {
public:
    virtual ~Transport() = default;
    virtual std::expected<HttpResponse, TransportError> send(const HttpRequest& request) = 0;
};

}  // namespace opnc
