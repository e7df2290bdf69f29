#pragma once
// Shared helpers of the two API clients for reading an HTTP answer: tolerant JSON field access
// (a missing or mistyped field is "absent", never an exception), and the Errors for answers that
// do not follow the contract (HTML or broken JSON, redirects, transport failures). Every message
// names the server, its host and the call, so a person knows where to look; none holds a secret.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "opnc/error.hpp"
#include "opnc/http.hpp"

namespace opnc::json_read {

using Json = nlohmann::json;

// The call an answer belongs to, for messages: "Nextcloud at nc.example: POST /index.php/...".
struct Call {
    std::string server;  // "OpenProject" or "Nextcloud"
    std::string host;    // "host" or "host:port"
    std::string method;
    std::string path;    // as sent, below the base URL's host (query string included)

    std::string describe() const;  // "Nextcloud at nc.example (POST /index.php/apps/...)"
};

// Kind protocol; the message says what was wrong with the answer to `call`.
Error protocol_error(const Call& call, int http_status, std::string what, std::string hint = {});

// A failure below HTTP: connection_failed, tls, timeout, too_large or aborted, with a hint.
Error transport_error(const Call& call, const TransportError& error);

// A 3xx on an API call: protocol, naming the Location (a misconfigured URL or a login redirect).
Error redirect_error(const Call& call, const HttpResponse& response, std::string hint = {});

// The body as JSON. An HTML page, an empty body or broken JSON is a protocol error that says so;
// the error never quotes the body (it may hold a secret).
Result<Json> parse_body(const Call& call, const HttpResponse& response);

// True when the answer is evidently an HTML page (Content-Type or the first character).
bool looks_like_html(const HttpResponse& response);

// Tolerant access. Each returns nullptr / nullopt when a step of the path is missing or has
// another type. int_at also accepts a string of decimal digits (some serializers quote ids).
const Json* at(const Json& value, std::initializer_list<std::string_view> path);
std::optional<std::string> string_at(const Json& value, std::initializer_list<std::string_view> path);
std::optional<bool> bool_at(const Json& value, std::initializer_list<std::string_view> path);
std::optional<std::int64_t> int_at(const Json& value, std::initializer_list<std::string_view> path);

// The value at `path` when it is a non-empty string; otherwise a protocol error naming `field`.
Result<std::string> required_string(const Call& call, int http_status, const Json& value,
                                    std::initializer_list<std::string_view> path, std::string_view field);

// A request body as compact JSON. A string that is not valid UTF-8 (JSON cannot carry it) is an
// Error of kind invalid_input that names no value, so nothing is sent and no secret is quoted.
Result<std::string> serialize(const nlohmann::ordered_json& body);

// Zero the bytes of a buffer, or of every string inside a JSON value, that held a secret.
void scrub(std::string& buffer) noexcept;
void scrub(Json& value) noexcept;

}  // namespace opnc::json_read
