#include "opnc/json_read.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

namespace opnc::json_read {

std::string Call::describe() const {
    std::string out = server + " at " + host;
    if (!method.empty()) out += " (" + method + " " + path + ")";
    return out;
}

Error protocol_error(const Call& call, int http_status, std::string what, std::string hint) {
    Error e;
    e.kind = ErrorKind::protocol;
    e.http_status = http_status;
    e.message = call.describe() + ": " + what;
    e.hint = hint.empty() ? "Check that the URL points at " + call.server +
                                " itself (not at a proxy, a login page or another service)."
                          : std::move(hint);
    return e;
}

Error transport_error(const Call& call, const TransportError& error) {
    // The kind comes from the one conversion of transport failures; message and hint here name
    // the server and the call, which the transport does not know.
    Error e = to_error(error);
    const std::string where = call.server + " at " + (error.host.empty() ? call.host : error.host);
    const std::string detail = error.message.empty() ? "" : " (" + error.message + ")";
    switch (error.kind) {
        case TransportError::Kind::dns:
            e.message = "Could not resolve the host name of " + where + detail + ".";
            e.hint = "Check the host name in the " + call.server + " URL and the DNS of this machine.";
            break;
        case TransportError::Kind::connect:
            e.message = "Could not connect to " + where + detail + ".";
            e.hint = "Check that " + call.server + " is running and that its port is reachable from this machine "
                     "(firewall, proxy settings).";
            break;
        case TransportError::Kind::tls:
            e.message = "The TLS connection to " + where + " failed" + detail + ".";
            e.hint = "If " + call.server + " uses a private or self-signed CA, pass the CA bundle with --ca-bundle; "
                     "otherwise check the certificate's host name and expiry.";
            break;
        case TransportError::Kind::timeout:
            e.message = call.describe() + " did not answer in time" + detail + ".";
            e.hint = "Check the load of " + call.server + " and any proxy in between, or raise the timeout.";
            break;
        case TransportError::Kind::too_large:
            e.message = call.describe() + " sent a larger answer than opnc accepts" + detail + ".";
            e.hint = "Check that the URL points at " + call.server + " and not at a file or another service.";
            break;
        case TransportError::Kind::aborted:
            e.message = "The request to " + call.describe() + " was interrupted" + detail + ".";
            e.hint = "Run again to complete the integration; finished steps are not repeated.";
            break;
        case TransportError::Kind::other:
            e.message = "The connection to " + where + " failed" + detail + ".";
            e.hint = "Check the network path to " + call.server + " and try again.";
            break;
    }
    return e;
}

Error redirect_error(const Call& call, const HttpResponse& response, std::string hint) {
    const auto location = response.header("Location");
    std::string what = "answered with a redirect (HTTP " + std::to_string(response.status) + ")";
    what += location ? " to " + *location : " without a Location";
    what += " instead of an API answer.";
    if (hint.empty())
        hint = "Use the exact base URL of " + call.server +
               " (scheme, host and sub-path; a redirect usually means http instead of https, a missing sub-path or "
               "a login page in front of the API).";
    return protocol_error(call, response.status, std::move(what), std::move(hint));
}

bool looks_like_html(const HttpResponse& response) {
    if (auto type = response.header("Content-Type")) {
        std::string lower = *type;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower.find("html") != std::string::npos) return true;
    }
    auto first = std::find_if(response.body.begin(), response.body.end(),
                              [](unsigned char c) { return !std::isspace(c); });
    return first != response.body.end() && *first == '<';
}

Result<Json> parse_body(const Call& call, const HttpResponse& response) {
    if (looks_like_html(response))
        return std::unexpected(protocol_error(call, response.status,
                                              "answered HTTP " + std::to_string(response.status) +
                                                  " with an HTML page where JSON was expected."));
    if (std::all_of(response.body.begin(), response.body.end(), [](unsigned char c) { return std::isspace(c); }))
        return std::unexpected(protocol_error(
            call, response.status, "answered HTTP " + std::to_string(response.status) + " with an empty body."));
    Json parsed = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded())
        return std::unexpected(protocol_error(call, response.status,
                                              "answered HTTP " + std::to_string(response.status) +
                                                  " with a body that is not valid JSON."));
    return parsed;
}

const Json* at(const Json& value, std::initializer_list<std::string_view> path) {
    const Json* node = &value;
    for (std::string_view key : path) {
        if (!node->is_object()) return nullptr;
        auto it = node->find(key);
        if (it == node->end()) return nullptr;
        node = &*it;
    }
    return node;
}

std::optional<std::string> string_at(const Json& value, std::initializer_list<std::string_view> path) {
    const Json* node = at(value, path);
    if (!node || !node->is_string()) return std::nullopt;
    return node->get<std::string>();
}

std::optional<bool> bool_at(const Json& value, std::initializer_list<std::string_view> path) {
    const Json* node = at(value, path);
    if (!node || !node->is_boolean()) return std::nullopt;
    return node->get<bool>();
}

std::optional<std::int64_t> int_at(const Json& value, std::initializer_list<std::string_view> path) {
    const Json* node = at(value, path);
    if (!node) return std::nullopt;
    if (node->is_number_integer()) return node->get<std::int64_t>();
    if (node->is_string()) {
        const auto& text = node->get_ref<const std::string&>();
        if (text.empty() || text.size() > 18 ||
            !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
            return std::nullopt;
        return std::stoll(text);
    }
    return std::nullopt;
}

Result<std::string> required_string(const Call& call, int http_status, const Json& value,
                                    std::initializer_list<std::string_view> path, std::string_view field) {
    auto text = string_at(value, path);
    if (!text || text->empty())
        return std::unexpected(
            protocol_error(call, http_status, "the answer lacks " + std::string(field) + " (or it is empty)."));
    return *text;
}

Result<std::string> serialize(const nlohmann::ordered_json& body) {
    try {
        return body.dump();
    } catch (const nlohmann::json::type_error&) {
        // type_error 316: invalid UTF-8. Its what() quotes the offending byte: not passed on.
        return fail(ErrorKind::invalid_input, "A value to send is not valid UTF-8 text.",
                    "Pass names, URLs, ids and secrets as UTF-8.");
    }
}

void scrub(std::string& buffer) noexcept {
    if (buffer.capacity() > 0) OPENSSL_cleanse(buffer.data(), buffer.capacity());
    buffer.clear();
}

void scrub(Json& value) noexcept {
    if (value.is_string()) {
        scrub(value.get_ref<std::string&>());
    } else if (value.is_structured()) {
        for (auto& child : value) scrub(child);
    }
}

}  // namespace opnc::json_read
