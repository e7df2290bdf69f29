// Request and response helpers: header lookup, the Authorization value built at the wire, and the
// stable names of transport error kinds.
#include "opnc/http.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace opnc {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

// Moves `text` into a Secret. A short string's "move" copies its inline bytes and leaves them
// behind, so `text` is zeroed as well.
Secret into_secret(std::string& text) {
    Secret secret(std::move(text));
    OPENSSL_cleanse(text.data(), text.capacity());
    return secret;
}

// "Basic " + base64(user ":" password) (RFC 7617). Each buffer that holds the password or its
// encoding ends in a Secret or is zeroed, so nothing readable stays behind in memory.
Secret basic_authorization(const BasicAuth& basic) {
    const std::string& password = basic.password.expose();
    std::string joined;
    joined.reserve(basic.user.size() + 1 + password.size());
    joined.append(basic.user).append(1, ':').append(password);
    const Secret plain = into_secret(joined);

    constexpr std::string_view prefix = "Basic ";
    // EVP_EncodeBlock writes 4 bytes per 3 (padded) plus a terminating NUL.
    std::string header(prefix.size() + 4 * ((plain.size() + 2) / 3) + 1, '\0');
    std::copy(prefix.begin(), prefix.end(), header.begin());
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(header.data() + prefix.size()),
                                  reinterpret_cast<const unsigned char*>(plain.expose().data()),
                                  static_cast<int>(plain.size()));
    header.resize(prefix.size() + static_cast<std::size_t>(n));
    return into_secret(header);
}

Secret bearer_authorization(const Secret& token) {
    constexpr std::string_view prefix = "Bearer ";
    std::string header;
    header.reserve(prefix.size() + token.size());
    header.append(prefix).append(token.expose());
    return into_secret(header);
}

}  // namespace

std::optional<std::string> find_header(const Headers& headers, std::string_view name) {
    for (const auto& [key, value] : headers)
        if (iequals(key, name)) return value;
    return std::nullopt;
}

std::optional<Secret> HttpRequest::authorization() const {
    if (basic) return basic_authorization(*basic);
    if (bearer) return bearer_authorization(*bearer);
    return std::nullopt;
}

std::string_view to_string(TransportError::Kind kind) noexcept {
    switch (kind) {
        case TransportError::Kind::dns: return "dns";
        case TransportError::Kind::connect: return "connect";
        case TransportError::Kind::tls: return "tls";
        case TransportError::Kind::timeout: return "timeout";
        case TransportError::Kind::too_large: return "too_large";
        case TransportError::Kind::aborted: return "aborted";
        case TransportError::Kind::other: return "other";
    }
    return "other";
}

Error to_error(const TransportError& error) {
    Error out;
    out.message = error.message;
    using K = TransportError::Kind;
    switch (error.kind) {
        case K::dns:
            out.kind = ErrorKind::connection_failed;
            out.hint = "Check the host name and this machine's DNS settings.";
            break;
        case K::connect:
            out.kind = ErrorKind::connection_failed;
            out.hint = "Check that the server is running and reachable from this machine (address, port, firewall).";
            break;
        case K::tls:
            out.kind = ErrorKind::tls;
            out.hint = "Check the server's certificate; for a private CA, pass its certificate as the CA bundle.";
            break;
        case K::timeout:
            out.kind = ErrorKind::timeout;
            out.hint = "The server did not answer in time; check its load, or raise the timeout.";
            break;
        case K::too_large:
            out.kind = ErrorKind::too_large;
            out.hint = "Check that the URL points to the right server; raise the response size limit if it does.";
            break;
        case K::aborted:
            out.kind = ErrorKind::aborted;
            break;
        case K::other:
            out.kind = ErrorKind::connection_failed;
            out.hint = "Check the URL and that the server speaks HTTP.";
            break;
    }
    return out;
}

}  // namespace opnc
