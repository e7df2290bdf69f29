// Url: parsing is libcurl's (curl_url); this file only adds opnc's policy on top of it: which
// schemes and parts a server base URL may have, and the normal form it is compared and joined in.
#include "opnc/url.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <memory>
#include <optional>

namespace opnc {
namespace {

struct CurlUrlDeleter {
    void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
using CurlUrlPtr = std::unique_ptr<CURLU, CurlUrlDeleter>;

struct CurlStringDeleter {
    void operator()(char* s) const noexcept { curl_free(s); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

// Reads one part; std::nullopt when the URL does not have it (CURLUE_NO_*).
std::optional<std::string> get_part(CURLU* url, CURLUPart part, unsigned flags = 0) {
    char* raw = nullptr;
    if (curl_url_get(url, part, &raw, flags) != CURLUE_OK || raw == nullptr) return std::nullopt;
    CurlString owned(raw);
    return std::string(raw);
}

// The input as it may appear in a message. A URL with user-info may carry a password, so such
// input is never echoed; long input is shortened so that a pasted document does not flood the log.
std::string quoted_for_message(std::string_view text) {
    if (text.find('@') != std::string_view::npos) return "the URL";
    constexpr std::size_t max_shown = 120;
    std::string shown(text.substr(0, max_shown));
    if (text.size() > max_shown) shown += "...";
    return "'" + shown + "'";
}

std::unexpected<Error> invalid(std::string_view text, std::string_view problem, std::string hint) {
    std::string message = "Invalid server URL " + quoted_for_message(text) + ": " + std::string(problem) + ".";
    return fail(ErrorKind::invalid_input, std::move(message), std::move(hint));
}

constexpr const char* kExampleHint = "Give the server's base URL, e.g. https://cloud.example.org or https://example.org/nextcloud.";

std::string to_lower_ascii(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Collapses runs of '/' into one. A base path with "//" is a typo, and keeping it would make
// every joined URL carry it too.
std::string collapse_slashes(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (char c : path) {
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out.push_back(c);
    }
    return out;
}

// The problem curl found, in words an operator understands.
std::string_view describe_curl_error(CURLUcode code) {
    switch (code) {
        case CURLUE_BAD_PORT_NUMBER: return "the port is not a number between 1 and 65535";
        case CURLUE_NO_HOST: return "the host is empty";
        case CURLUE_BAD_HOSTNAME: return "the host name contains characters that are not allowed";
        case CURLUE_BAD_IPV6: return "the IPv6 address is malformed";
        case CURLUE_BAD_LOGIN:
        case CURLUE_BAD_USER:
        case CURLUE_BAD_PASSWORD:
        case CURLUE_USER_NOT_ALLOWED: return "user names and passwords do not belong in the URL";
        case CURLUE_BAD_SCHEME:
        case CURLUE_UNSUPPORTED_SCHEME:
        case CURLUE_NO_SCHEME: return "the scheme is missing or malformed (use http:// or https://)";
        case CURLUE_BAD_SLASHES: return "the scheme must be followed by '//'";
        case CURLUE_BAD_PATH: return "the path is malformed";
        case CURLUE_BAD_QUERY: return "a query string is not allowed";
        case CURLUE_BAD_FRAGMENT: return "a fragment is not allowed";
        case CURLUE_LACKS_IDN: return "international domain names are not supported by this build; use the punycode form";
        default: return "it is not a valid URL";
    }
}

// True when `s` is a dotted quad a.b.c.d with each part 0..255 and a == 127.
bool is_ipv4_loopback(std::string_view s) {
    std::array<int, 4> parts{};
    const char* p = s.data();
    const char* end = s.data() + s.size();
    for (int i = 0; i < 4; ++i) {
        if (i > 0) {
            if (p == end || *p != '.') return false;
            ++p;
        }
        auto [next, ec] = std::from_chars(p, end, parts[i]);
        if (ec != std::errc{} || next == p || parts[i] < 0 || parts[i] > 255) return false;
        p = next;
    }
    return p == end && parts[0] == 127;
}

}  // namespace

Result<Url> Url::parse(std::string_view text) {
    if (text.empty()) return invalid(text, "it is empty", kExampleHint);
    if (std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); }))
        return invalid(text, "it contains a space or a control character", kExampleHint);
    // curl would report a missing scheme as a generic malformed URL; say what is wrong instead.
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos)
        return invalid(text, "the scheme is missing (it must start with https:// or http://)", kExampleHint);

    CurlUrlPtr handle(curl_url());
    if (!handle) return fail(ErrorKind::internal, "Out of memory while parsing a URL.");
    const std::string input(text);
    // NON_SUPPORT_SCHEME: let curl parse any scheme, so that "ftp://" gets opnc's own message.
    const CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, input.c_str(), CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) return invalid(text, describe_curl_error(rc), kExampleHint);

    Url url;
    url.scheme_ = to_lower_ascii(get_part(handle.get(), CURLUPART_SCHEME).value_or(""));
    if (url.scheme_ != "http" && url.scheme_ != "https")
        return invalid(text, "the scheme '" + url.scheme_ + "' is not supported (use https:// or http://)", kExampleHint);
    // curl reads "https:///x" leniently as host "x"; a third slash means the host was left out.
    if (text.substr(scheme_end + 3).starts_with('/')) return invalid(text, "the host is empty", kExampleHint);

    if (get_part(handle.get(), CURLUPART_USER) || get_part(handle.get(), CURLUPART_PASSWORD) ||
        get_part(handle.get(), CURLUPART_OPTIONS))
        return invalid(text, "user names and passwords do not belong in the URL",
                       "Remove the 'user:password@' part; credentials are given separately.");
    // An empty "?" or "#" is not reported by curl as a part, so the raw text is checked as well.
    if (get_part(handle.get(), CURLUPART_QUERY) || text.find('?') != std::string_view::npos)
        return invalid(text, "a query string ('?...') is not allowed in a server's base URL", kExampleHint);
    if (get_part(handle.get(), CURLUPART_FRAGMENT) || text.find('#') != std::string_view::npos)
        return invalid(text, "a fragment ('#...') is not allowed in a server's base URL", kExampleHint);

    // curl hands an IPv6 zone ("%25eth0") out separately; dropping it would change the address.
    if (get_part(handle.get(), CURLUPART_ZONEID))
        return invalid(text, "an IPv6 zone identifier is not supported", kExampleHint);
    url.host_ = to_lower_ascii(get_part(handle.get(), CURLUPART_HOST).value_or(""));
    if (url.host_.empty()) return invalid(text, "the host is empty", kExampleHint);
    // curl decodes a percent-encoded host ("127.0127.0%2e1" becomes "127.0127.0.1"), and the decoded
    // name can read as another address when it is parsed again ("0127" is octal). Refuse a host that
    // is not already in its final form, so that parse(str()) always gives the same Url (and the same
    // journal key).
    if (text.find('%') != std::string_view::npos) {
        CurlUrlPtr again(curl_url());
        const std::string host_only = url.scheme_ + "://" + url.host_;
        if (!again || curl_url_set(again.get(), CURLUPART_URL, host_only.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
            to_lower_ascii(get_part(again.get(), CURLUPART_HOST).value_or("")) != url.host_)
            return invalid(text, "the host name is percent-encoded", kExampleHint);
    }

    // NO_DEFAULT_PORT: curl reports an explicit :443 on https (or :80 on http) as no port.
    if (auto port = get_part(handle.get(), CURLUPART_PORT, CURLU_NO_DEFAULT_PORT)) {
        int value = 0;
        auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), value);
        if (ec != std::errc{} || end != port->data() + port->size() || value < 1 || value > 65535)
            return invalid(text, "the port is not a number between 1 and 65535", kExampleHint);
        url.port_ = value;
    }

    // curl has already resolved "." and ".." segments; keep the sub-path, drop trailing slashes.
    std::string path = collapse_slashes(get_part(handle.get(), CURLUPART_PATH).value_or(""));
    while (!path.empty() && path.back() == '/') path.pop_back();
    url.path_ = std::move(path);
    return url;
}

std::string Url::authority() const {
    if (port_ == 0) return host_;
    return host_ + ":" + std::to_string(port_);
}

std::string Url::str() const { return scheme_ + "://" + authority() + path_; }

std::string Url::join(std::string_view path_and_query) const {
    const auto query_at = path_and_query.find_first_of("?#");
    std::string_view path = path_and_query.substr(0, query_at);
    std::string_view rest = query_at == std::string_view::npos ? std::string_view{} : path_and_query.substr(query_at);
    std::string joined = str();
    joined += '/';
    // The base never ends in '/', and the appended path is collapsed, so no "//" can appear.
    std::string tail = collapse_slashes(path);
    if (!tail.empty() && tail.front() == '/') tail.erase(0, 1);
    joined += tail;
    joined += rest;
    return joined;
}

bool Url::is_loopback() const noexcept {
    if (host_ == "localhost") return true;
    if (host_ == "[::1]" || host_ == "::1") return true;
    return is_ipv4_loopback(host_);
}

}  // namespace opnc
