#pragma once
// application/x-www-form-urlencoded and base64, the two encodings OAuth 2.0 puts on the wire.
// Percent-encoding is libcurl's (curl_easy_escape / curl_easy_unescape); base64 is OpenSSL's.
// Nothing here is specific to one server; the quirks live in token_response.cpp.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "opnc/secret.hpp"

namespace opnc::oauth {

// Percent-encodes everything except the RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~).
// A space becomes %20, which every form decoder accepts (RFC 6749 appendix B allows it).
std::string form_escape(std::string_view value);

// Decodes one form component: '+' is a space, %XX a byte. Malformed escapes are kept verbatim.
std::string form_unescape(std::string_view value);

// Splits "a=1&b=2" (a leading '?' and a trailing "#fragment" are ignored) into decoded pairs, in
// order. A name without '=' has an empty value; empty segments are skipped.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text);

// Standard base64 with padding (RFC 4648 section 4), as used by HTTP Basic.
std::string base64_encode(std::string_view bytes);
// URL-safe base64 without padding (RFC 4648 section 5), as used by PKCE.
std::string base64url_encode(std::string_view bytes);

// Overwrites a string's whole buffer (capacity included) with zeroes and empties it.
void wipe_string(std::string& text) noexcept;

// A form body under construction. Values that are credentials are appended from a Secret, and the
// whole buffer is wiped when the body is destroyed, because it ends up holding those credentials.
class FormBody {
public:
    FormBody() = default;
    FormBody(const FormBody&) = delete;
    FormBody& operator=(const FormBody&) = delete;
    ~FormBody();

    FormBody& add(std::string_view name, std::string_view value);
    FormBody& add(std::string_view name, const Secret& value);

    // The encoded body ("name=value&name=value"), moved out. The receiver (a request) must wipe it
    // once sent: see wipe_string().
    std::string release();

private:
    void append(std::string_view name, std::string_view value);
    std::string text_;
};

}  // namespace opnc::oauth
