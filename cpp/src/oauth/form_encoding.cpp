#include "opnc/oauth/form_encoding.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <climits>
#include <stdexcept>

namespace opnc::oauth {

namespace {

// curl_easy_escape/unescape return malloc'd buffers that may hold credentials: wipe before free.
struct CurlString {
    char* data = nullptr;
    int length = 0;
    ~CurlString() {
        if (data) {
            OPENSSL_cleanse(data, static_cast<std::size_t>(length));
            curl_free(data);
        }
    }
};

int checked_length(std::string_view text) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) throw std::length_error("value too long to encode");
    return static_cast<int>(text.size());
}

}  // namespace

std::string form_escape(std::string_view value) {
    if (value.empty()) return {};
    CurlString escaped;
    // Since libcurl 7.82 the handle argument is unused; nullptr is allowed.
    escaped.data = curl_easy_escape(nullptr, value.data(), checked_length(value));
    if (!escaped.data) throw std::bad_alloc();
    escaped.length = static_cast<int>(std::char_traits<char>::length(escaped.data));
    return std::string(escaped.data, static_cast<std::size_t>(escaped.length));
}

std::string form_unescape(std::string_view value) {
    if (value.empty()) return {};
    // libcurl decodes %XX only; in a form '+' stands for a space.
    std::string plus_as_space(value);
    for (char& c : plus_as_space)
        if (c == '+') c = ' ';
    CurlString decoded;
    decoded.data = curl_easy_unescape(nullptr, plus_as_space.data(), checked_length(plus_as_space), &decoded.length);
    wipe_string(plus_as_space);
    if (!decoded.data) throw std::bad_alloc();
    return std::string(decoded.data, static_cast<std::size_t>(decoded.length));
}

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text) {
    if (auto hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
    if (!text.empty() && text.front() == '?') text.remove_prefix(1);
    std::vector<std::pair<std::string, std::string>> out;
    while (!text.empty()) {
        auto amp = text.find('&');
        std::string_view segment = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (segment.empty()) continue;
        auto eq = segment.find('=');
        if (eq == std::string_view::npos)
            out.emplace_back(form_unescape(segment), std::string{});
        else
            out.emplace_back(form_unescape(segment.substr(0, eq)), form_unescape(segment.substr(eq + 1)));
    }
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), checked_length(bytes));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string base64url_encode(std::string_view bytes) {
    std::string out = base64_encode(bytes);
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (char& c : out) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    return out;
}

void wipe_string(std::string& text) noexcept {
    if (text.capacity() > 0) OPENSSL_cleanse(text.data(), text.capacity());
    text.clear();
}

FormBody::~FormBody() { wipe_string(text_); }

void FormBody::append(std::string_view name, std::string_view value) {
    // Growing the buffer would leave copies of earlier (secret) fields in freed memory; a token
    // request is far below this size.
    if (text_.capacity() < 2048) text_.reserve(2048);
    if (!text_.empty()) text_ += '&';
    text_ += form_escape(name);
    text_ += '=';
    std::string escaped = form_escape(value);
    text_ += escaped;
    wipe_string(escaped);
}

FormBody& FormBody::add(std::string_view name, std::string_view value) {
    append(name, value);
    return *this;
}

FormBody& FormBody::add(std::string_view name, const Secret& value) {
    append(name, value.expose());
    return *this;
}

std::string FormBody::release() {
    std::string out = std::move(text_);
    wipe_string(text_);
    return out;
}

}  // namespace opnc::oauth
