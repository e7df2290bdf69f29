#pragma once
// Plain request and response values. A request carries its credentials as Secrets; the transport
// builds the Authorization header at the wire, so nothing upstream ever holds it as text.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "opnc/error.hpp"
#include "opnc/secret.hpp"

namespace opnc {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive lookup of the first header with that name.
std::optional<std::string> find_header(const Headers& headers, std::string_view name);

struct BasicAuth {
    std::string user;
    Secret password;
};

struct HttpRequest {
    std::string method = "GET";  // GET, HEAD, POST, PATCH, PUT, DELETE, PROPFIND
    std::string url;             // absolute; built with Url::join, never by string concatenation
    Headers headers;             // never Authorization: use basic or bearer
    std::string body;
    std::optional<BasicAuth> basic;
    std::optional<Secret> bearer;
    // Zero means the transport's default.
    std::chrono::milliseconds timeout{0};

    // The Authorization header value this request will carry, if any ("Basic ...", "Bearer ...").
    std::optional<Secret> authorization() const;
};

struct HttpResponse {
    int status = 0;
    Headers headers;  // names as received
    std::string body;
    double elapsed_ms = 0;

    std::optional<std::string> header(std::string_view name) const { return find_header(headers, name); }
};

struct TransportError {
    enum class Kind { dns, connect, tls, timeout, too_large, aborted, other };
    Kind kind = Kind::other;
    std::string message;  // names the host, never a credential
    std::string host;
    // False only when the request certainly never reached the server (DNS, connect, TLS handshake).
    bool maybe_delivered = true;
};

std::string_view to_string(TransportError::Kind kind) noexcept;

// The Error a transport failure becomes when nothing more specific is known (kind connection_failed,
// tls, timeout, too_large or aborted; the message names the host; a hint says what to check).
// The one mapping of transport kinds to error kinds: the API clients (json_read::transport_error)
// and the OAuth engine start from it and only reword the message and hint for their call.
Error to_error(const TransportError& error);

}  // namespace opnc
