#include "opnc/oauth/token_response.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "opnc/oauth/form_encoding.hpp"

namespace opnc::oauth {

namespace {

using nlohmann::json;

std::string lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Server-provided text goes into messages: keep it printable and short.
std::string printable(std::string_view text, std::size_t limit = 300) {
    std::string out;
    for (unsigned char c : text) {
        if (out.size() >= limit) {
            out += "...";
            break;
        }
        out += (c >= 0x20 && c != 0x7f) ? static_cast<char>(c) : ' ';
    }
    return out;
}

// The body as a JSON value: JSON first (whatever the Content-Type says: servers mislabel it), then
// a form-encoded body when the Content-Type says so (legacy servers). Discarded when neither.
json decode_body(const HttpResponse& response) {
    json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_discarded()) return body;
    auto type = response.header("Content-Type");
    if (type && lowercase(*type).find("application/x-www-form-urlencoded") != std::string::npos) {
        json form = json::object();
        for (auto& [name, value] : parse_form(response.body)) form[name] = value;
        return form;
    }
    return json(json::value_t::discarded);
}

// One auth-param (RFC 7235: name=token or name="quoted string") of a WWW-Authenticate value.
std::optional<std::string> auth_param(std::string_view header, std::string_view name) {
    std::string lower = lowercase(header);
    std::size_t pos = 0;
    while ((pos = lower.find(name, pos)) != std::string::npos) {
        const bool starts_word = pos == 0 || lower[pos - 1] == ' ' || lower[pos - 1] == ',';
        std::size_t eq = pos + name.size();
        while (eq < header.size() && header[eq] == ' ') ++eq;
        if (!starts_word || eq >= header.size() || header[eq] != '=') {
            pos += name.size();
            continue;
        }
        std::size_t v = eq + 1;
        while (v < header.size() && header[v] == ' ') ++v;
        std::string value;
        if (v < header.size() && header[v] == '"') {
            for (++v; v < header.size() && header[v] != '"'; ++v) {
                if (header[v] == '\\' && v + 1 < header.size()) ++v;
                value += header[v];
            }
        } else {
            for (; v < header.size() && header[v] != ',' && header[v] != ' '; ++v) value += header[v];
        }
        return value;
    }
    return std::nullopt;
}

std::optional<std::chrono::seconds> parse_expires_in(const json& value, bool& malformed) {
    malformed = false;
    if (value.is_null()) return std::nullopt;
    double seconds = -1;
    if (value.is_number()) {
        seconds = value.get<double>();
    } else if (value.is_string()) {
        std::string text = value.get<std::string>();
        auto first = text.find_first_not_of(" \t");
        auto last = text.find_last_not_of(" \t");
        if (first == std::string::npos) {
            malformed = true;
            return std::nullopt;
        }
        const char* begin = text.data() + first;
        const char* end = text.data() + last + 1;
        auto [ptr, ec] = std::from_chars(begin, end, seconds, std::chars_format::fixed);
        if (ec != std::errc() || ptr != end) seconds = -1;
    }
    // A year in seconds times a thousand: anything above is garbage, and it keeps the arithmetic
    // on time points far from overflow.
    constexpr double max_seconds = 1000.0 * 366 * 24 * 3600;
    if (!std::isfinite(seconds) || seconds < 0 || seconds > max_seconds) {
        malformed = true;
        return std::nullopt;
    }
    return std::chrono::seconds(static_cast<long long>(std::floor(seconds)));
}

Error make_error(ErrorKind kind, int status, std::string message, std::string hint = {}) {
    Error e;
    e.kind = kind;
    e.http_status = status;
    e.message = std::move(message);
    e.hint = std::move(hint);
    return e;
}

Error protocol_error(int status, std::string message) {
    return make_error(ErrorKind::protocol, status, std::move(message),
                      "Check that the URL points at the server's OAuth 2.0 token endpoint.");
}

struct CodeText {
    std::string_view code;
    std::string_view message;
    std::string_view hint;
};

constexpr CodeText known_codes[] = {
    {"invalid_request", "The token endpoint refused the request as malformed.",
     "A proxy may be altering the request; otherwise this is a bug in opnc."},
    {"invalid_client", "The token endpoint refused the client id or secret.",
     "Check the client credentials: the client may have been deleted or recreated "
     "(Nextcloud's setup creates a new client on every POST)."},
    {"invalid_grant",
     "The authorization code or refresh token was refused: it is unknown, expired, already used or revoked.",
     "Authorize again. A refresh token can be used only once; always keep the newest one."},
    {"unauthorized_client", "This client is not allowed to use this grant type.",
     "Enable the grant type for the client on the server."},
    {"unsupported_grant_type", "The token endpoint does not support this grant type.", ""},
    {"invalid_scope", "The token endpoint refused the requested scope.", "Request a scope the client may use."},
};

Error oauth_error(const OAuthErrorBody& body, int status) {
    OAuthErrorBody mapped = body;
    bool nextcloud_unknown_grant = false;
    // Nextcloud's oauth2 app answers a bare {"error":"invalid_request"} (400, no description) for a
    // code or refresh token it does not know, has expired, or that was already used: that is what
    // RFC 6749 calls invalid_grant. Doorkeeper's real invalid_request always carries a description.
    if (mapped.error == "invalid_request" && mapped.description.empty() && status == 400) {
        mapped.error = "invalid_grant";
        nextcloud_unknown_grant = true;
    }
    Error e = make_error(ErrorKind::oauth, status, {});
    e.server_id = printable(mapped.error, 64);
    e.server_message = printable(body.description);
    const CodeText* known = nullptr;
    for (const auto& entry : known_codes)
        if (entry.code == mapped.error) known = &entry;
    if (!body.description.empty())
        e.message = "The token endpoint answered " + e.server_id + ": " + printable(body.description);
    else if (known)
        e.message = std::string(known->message);
    else
        e.message = "The token endpoint answered with the OAuth error " + e.server_id + ".";
    if (known) e.hint = std::string(known->hint);
    if (nextcloud_unknown_grant)
        e.hint += " (The server answered invalid_request without a description, as Nextcloud does for this case.)";
    return e;
}

// The OAuth error of a response whose body was already decoded: the body's `error` first, then a
// WWW-Authenticate challenge (Doorkeeper sends both on 401).
std::optional<OAuthErrorBody> oauth_error_in(const HttpResponse& response, const json& body) {
    if (body.is_object()) {
        auto error = body.find("error");
        if (error != body.end() && error->is_string() && !error->get<std::string>().empty()) {
            OAuthErrorBody out;
            out.error = error->get<std::string>();
            auto description = body.find("error_description");
            if (description != body.end() && description->is_string()) out.description = description->get<std::string>();
            return out;
        }
    }
    if (auto challenge = response.header("WWW-Authenticate")) {
        if (auto error = auth_param(*challenge, "error"); error && !error->empty()) {
            OAuthErrorBody out;
            out.error = *error;
            out.description = auth_param(*challenge, "error_description").value_or("");
            out.from_www_authenticate = true;
            return out;
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<OAuthErrorBody> read_oauth_error(const HttpResponse& response) {
    return oauth_error_in(response, decode_body(response));
}

Error token_endpoint_error(const HttpResponse& response) {
    const int status = response.status;
    if (auto body = read_oauth_error(response)) return oauth_error(*body, status);
    if (status == 415)
        return make_error(ErrorKind::protocol, status, "The token endpoint refused the request's content type (HTTP 415).",
                          "Doorkeeper accepts only application/x-www-form-urlencoded; a proxy may have changed it.");
    if (status == 400) {
        // Nextcloud answers a request without grant_type with an empty text/html 400.
        Error e = make_error(ErrorKind::oauth, status,
                             "The token endpoint refused the request as malformed (HTTP 400 without an OAuth error).",
                             "A proxy may be stripping the request body.");
        e.server_id = "invalid_request";
        return e;
    }
    if (status == 401)
        return make_error(ErrorKind::unauthenticated, status,
                          "The token endpoint refused the client authentication (HTTP 401).",
                          "Check the client id and secret, and whether a proxy demands its own login.");
    if (status == 403)
        return make_error(ErrorKind::forbidden, status, "The token endpoint refused access (HTTP 403).");
    if (status == 404)
        return make_error(ErrorKind::not_found, status, "There is no token endpoint at this URL (HTTP 404).",
                          "Check the server URL, including any sub-path.");
    if (status == 429)
        return make_error(ErrorKind::server_error, status, "The token endpoint is rate limiting requests (HTTP 429).",
                          "Wait and try again; Nextcloud's brute-force protection slows down repeated failures.");
    if (status >= 500 && status <= 599)
        return make_error(ErrorKind::server_error, status,
                          "The token endpoint failed (HTTP " + std::to_string(status) + ").");
    if (status >= 300 && status <= 399)
        return protocol_error(status, "The token endpoint redirected (HTTP " + std::to_string(status) +
                                          ") instead of answering; redirects are not followed for credentials.");
    return protocol_error(status, "The token endpoint gave an unexpected answer (HTTP " + std::to_string(status) + ").");
}

Result<Token> parse_token_response(const HttpResponse& response, TimePoint sent_at, const Token* previous) {
    if (response.status < 200 || response.status > 299) return std::unexpected(token_endpoint_error(response));
    const int status = response.status;
    json body = decode_body(response);
    // The decoded copy holds the tokens too: wipe them whichever way this function returns.
    struct Wipe {
        json& body;
        ~Wipe() {
            if (!body.is_object()) return;
            for (auto* key : {"access_token", "refresh_token"}) {
                auto it = body.find(key);
                if (it != body.end() && it->is_string()) wipe_string(it->get_ref<std::string&>());
            }
        }
    } wipe{body};
    // An error field wins over the status: some servers send errors with 200.
    if (auto error = oauth_error_in(response, body)) return std::unexpected(oauth_error(*error, status));
    if (!body.is_object())
        return std::unexpected(protocol_error(status, "The token endpoint's answer is not a JSON object."));

    auto access = body.find("access_token");
    if (access == body.end() || !access->is_string() || access->get_ref<const std::string&>().empty())
        return std::unexpected(protocol_error(status, "The token endpoint's answer has no access_token."));

    Token token;
    token.access_token = Secret(access->get_ref<const std::string&>());
    token.obtained_at = sent_at;

    auto type = body.find("token_type");
    if (type == body.end() || type->is_null()) {
        token.token_type = "Bearer";  // many servers omit it; Bearer is the only type anyone issues
    } else if (type->is_string() && lowercase(type->get<std::string>()) == "bearer") {
        token.token_type = type->get<std::string>();
    } else {
        // RFC 6749 7.1: a client must not use a token whose type it does not understand.
        std::string shown = type->is_string() ? printable(type->get<std::string>(), 32) : std::string(type->type_name());
        return std::unexpected(protocol_error(status, "The token endpoint issued an unsupported token type (" + shown + ")."));
    }

    if (auto expires = body.find("expires_in"); expires != body.end()) {
        bool malformed = false;
        auto seconds = parse_expires_in(*expires, malformed);
        if (malformed)
            return std::unexpected(protocol_error(status, "The token endpoint's expires_in is not a number of seconds."));
        if (seconds) token.expires_at = sent_at + *seconds;
    }

    auto refresh = body.find("refresh_token");
    if (refresh != body.end() && !refresh->is_null() && !refresh->is_string())
        return std::unexpected(protocol_error(status, "The token endpoint's refresh_token is not a string."));
    if (refresh != body.end() && refresh->is_string() && !refresh->get_ref<const std::string&>().empty())
        token.refresh_token = Secret(refresh->get_ref<const std::string&>());
    else if (previous)
        token.refresh_token = previous->refresh_token;  // RFC 6749 6: the old one stays valid

    auto scope = body.find("scope");
    if (scope != body.end() && scope->is_string()) {
        token.scope = scope->get<std::string>();
    } else if (scope != body.end() && scope->is_array()) {
        // Some servers send a list; keep the RFC's space-separated form.
        for (const auto& item : *scope) {
            if (!item.is_string()) continue;
            if (!token.scope.empty()) token.scope += ' ';
            token.scope += item.get<std::string>();
        }
    } else if (previous) {
        token.scope = previous->scope;  // RFC 6749 5.1: omitted means "as before"
    }

    return token;
}

}  // namespace opnc::oauth
