#pragma once
// A parsed, normalised base URL of a server: scheme http or https, lowercased host, no default
// port, path without trailing slash (sub-paths kept), no user-info, query or fragment.
// Parsing uses libcurl's URL API (curl_url), not a hand-written parser.
#include <string>
#include <string_view>

#include "opnc/error.hpp"

namespace opnc {

class Url {
public:
    // Parses and normalises; on bad input an Error of kind invalid_input whose message names the
    // problem (missing scheme, unsupported scheme, user-info, query, fragment, empty host, bad port...).
    static Result<Url> parse(std::string_view text);

    const std::string& scheme() const noexcept { return scheme_; }
    const std::string& host() const noexcept { return host_; }
    int port() const noexcept { return port_; }           // 0 when the scheme's default
    const std::string& path() const noexcept { return path_; }  // "" or "/sub/path"

    // The normalised form, e.g. "https://example.org/nextcloud" (never a trailing slash).
    std::string str() const;
    // "host" or "host:port", for messages.
    std::string authority() const;

    // Appends a path: join("/api/v3") and join("api/v3") both give ".../api/v3"; never "//".
    // `path_and_query` may carry a query string ("/x?a=b"), which is kept verbatim.
    std::string join(std::string_view path_and_query) const;

    bool is_https() const noexcept { return scheme_ == "https"; }
    // 127.0.0.0/8, ::1 or "localhost": what OpenProject accepts over plain http.
    bool is_loopback() const noexcept;

    friend bool operator==(const Url&, const Url&) = default;

private:
    std::string scheme_;
    std::string host_;
    int port_ = 0;
    std::string path_;
};

}  // namespace opnc
