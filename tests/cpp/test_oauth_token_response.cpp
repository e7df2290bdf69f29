// A table of token endpoint answers (standard, quirky, malformed) and what the parser makes of
// them. Bodies are the shapes of contract/openproject.md 12.2 and contract/nextcloud.md 11.3-11.4.
#include <catch2/catch.hpp>

#include <optional>

#include "opnc/oauth/token_response.hpp"

using namespace opnc;
using namespace opnc::oauth;

namespace {

const TimePoint sent_at{std::chrono::seconds(1'700'000'000)};

struct Case {
    const char* name = "";
    int status = 0;
    std::string body;
    Headers headers;
    bool with_previous = false;
    // expected success
    bool ok = false;
    std::string access, refresh, type, scope;
    std::optional<long> expires_in;
    // expected failure
    ErrorKind kind = ErrorKind::internal;
    std::string server_id;
};

const Headers json_type = {{"Content-Type", "application/json; charset=utf-8"}};
const Headers html_type = {{"Content-Type", "text/html; charset=UTF-8"}};

Case success(const char* name, std::string body, std::string access, std::string refresh, std::string type,
             std::string scope, std::optional<long> expires_in, Headers headers = json_type, bool previous = false) {
    Case c;
    c.name = name;
    c.status = 200;
    c.body = std::move(body);
    c.headers = std::move(headers);
    c.with_previous = previous;
    c.ok = true;
    c.access = std::move(access);
    c.refresh = std::move(refresh);
    c.type = std::move(type);
    c.scope = std::move(scope);
    c.expires_in = expires_in;
    return c;
}

Case failure(const char* name, int status, std::string body, ErrorKind kind, std::string server_id,
             Headers headers = json_type) {
    Case c;
    c.name = name;
    c.status = status;
    c.body = std::move(body);
    c.headers = std::move(headers);
    c.kind = kind;
    c.server_id = std::move(server_id);
    return c;
}

}  // namespace

TEST_CASE("token responses are parsed tolerantly and errors are typed", "[oauth][parse]") {
    const std::vector<Case> cases = {
        success("Doorkeeper success",
                R"({"access_token":"a1","token_type":"Bearer","expires_in":7200,"refresh_token":"r1","scope":"api_v3","created_at":1748772000})",
                "a1", "r1", "Bearer", "api_v3", 7200),
        success("Nextcloud success",
                R"({"access_token":"a2","token_type":"Bearer","expires_in":3600,"refresh_token":"r2","user_id":"admin"})",
                "a2", "r2", "Bearer", "", 3600),
        success("expires_in as a string", R"({"access_token":"a","token_type":"Bearer","expires_in":"3600"})",
                "a", "", "Bearer", "", 3600),
        success("expires_in as a padded string", R"({"access_token":"a","expires_in":" 120 "})", "a", "", "Bearer",
                "", 120),
        success("expires_in as a fraction", R"({"access_token":"a","expires_in":59.9})", "a", "", "Bearer", "", 59),
        success("expires_in null", R"({"access_token":"a","expires_in":null})", "a", "", "Bearer", "", std::nullopt),
        success("token_type lowercase", R"({"access_token":"a","token_type":"bearer","expires_in":10})", "a", "",
                "bearer", "", 10),
        success("token_type upper case", R"({"access_token":"a","token_type":"BEARER"})", "a", "", "BEARER", "",
                std::nullopt),
        success("token_type absent", R"({"access_token":"a","expires_in":10})", "a", "", "Bearer", "", 10),
        success("refresh without refresh_token keeps the old one and the scope",
                R"({"access_token":"a3","token_type":"Bearer","expires_in":60})", "a3", "old-refresh", "Bearer",
                "old scope", 60, json_type, true),
        success("refresh_token null without a previous token", R"({"access_token":"a","refresh_token":null})", "a",
                "", "Bearer", "", std::nullopt),
        success("rotated refresh token replaces the old one", R"({"access_token":"a","refresh_token":"new","scope":"x"})",
                "a", "new", "Bearer", "x", std::nullopt, json_type, true),
        success("scope as a list", R"({"access_token":"a","scope":["api_v3","scim_v2"]})", "a", "", "Bearer",
                "api_v3 scim_v2", std::nullopt),
        success("JSON labelled text/plain", R"({"access_token":"a","expires_in":5})", "a", "", "Bearer", "", 5,
                {{"Content-Type", "text/plain"}}),
        success("form-encoded answer", "access_token=a%2Bb&token_type=bearer&expires_in=60&refresh_token=r",
                "a+b", "r", "bearer", "", 60, {{"Content-Type", "application/x-www-form-urlencoded"}}),
        success("expires_in zero", R"({"access_token":"a","expires_in":0})", "a", "", "Bearer", "", 0),

        failure("error inside a 200", 200, R"({"error":"invalid_grant","error_description":"Grant revoked"})",
                ErrorKind::oauth, "invalid_grant"),
        failure("Nextcloud unknown code: bare invalid_request means invalid_grant", 400, R"({"error":"invalid_request"})",
                ErrorKind::oauth, "invalid_grant"),
        failure("Nextcloud wrong secret: 400 invalid_client", 400, R"({"error":"invalid_client"})", ErrorKind::oauth,
                "invalid_client"),
        failure("Nextcloud unsupported grant type is invalid_grant", 400, R"({"error":"invalid_grant"})",
                ErrorKind::oauth, "invalid_grant"),
        failure("Doorkeeper invalid_client: 401 with WWW-Authenticate", 401,
                R"({"error":"invalid_client","error_description":"Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."})",
                ErrorKind::oauth, "invalid_client",
                {{"Content-Type", "application/json"},
                 {"WWW-Authenticate", R"(Bearer realm="Doorkeeper", error="invalid_client", error_description="Client authentication failed")"}}),
        failure("401 with the error only in WWW-Authenticate", 401, "", ErrorKind::oauth, "invalid_client",
                {{"WWW-Authenticate", R"(Bearer realm="OpenProject", error="invalid_client")"}}),
        failure("Doorkeeper invalid_request with a description stays invalid_request", 400,
                R"({"error":"invalid_request","error_description":"Missing required parameter: code."})",
                ErrorKind::oauth, "invalid_request"),
        failure("Doorkeeper unsupported_grant_type", 400,
                R"({"error":"unsupported_grant_type","error_description":"The authorization grant type is not supported by the authorization server."})",
                ErrorKind::oauth, "unsupported_grant_type"),
        failure("Doorkeeper 415 with {}", 415, "{}", ErrorKind::protocol, ""),
        failure("Nextcloud empty text/html 400", 400, "", ErrorKind::oauth, "invalid_request", html_type),
        failure("Nextcloud 500 HTML page for a missing code", 500, "<html><body>Internal Server Error</body></html>",
                ErrorKind::server_error, "", html_type),
        failure("Nextcloud 405 for GET", 405, "", ErrorKind::protocol, "", html_type),
        failure("rate limited", 429, "", ErrorKind::server_error, "", html_type),
        failure("redirect to a login page", 302, "", ErrorKind::protocol, "", {{"Location", "https://sso.example/login"}}),
        failure("404", 404, "<html></html>", ErrorKind::not_found, "", html_type),
        failure("401 without any OAuth error", 401, "", ErrorKind::unauthenticated, "",
                {{"WWW-Authenticate", R"(Basic realm="proxy")"}}),
        failure("200 HTML page", 200, "<html><body>Log in</body></html>", ErrorKind::protocol, "", html_type),
        failure("200 JSON array", 200, R"([{"access_token":"a"}])", ErrorKind::protocol, ""),
        failure("200 without access_token", 200, R"({"token_type":"Bearer","expires_in":3600})", ErrorKind::protocol, ""),
        failure("200 with an empty access_token", 200, R"({"access_token":""})", ErrorKind::protocol, ""),
        failure("200 with a numeric access_token", 200, R"({"access_token":12345})", ErrorKind::protocol, ""),
        failure("unsupported token type", 200, R"({"access_token":"a","token_type":"mac"})", ErrorKind::protocol, ""),
        failure("expires_in not a number", 200, R"({"access_token":"a","expires_in":"soon"})", ErrorKind::protocol, ""),
        failure("expires_in negative", 200, R"({"access_token":"a","expires_in":-5})", ErrorKind::protocol, ""),
        failure("refresh_token not a string", 200, R"({"access_token":"a","refresh_token":42})", ErrorKind::protocol, ""),
        failure("empty 200", 200, "", ErrorKind::protocol, ""),
    };
    REQUIRE(cases.size() >= 15);

    Token previous;
    previous.access_token = Secret("old-access");
    previous.refresh_token = Secret("old-refresh");
    previous.scope = "old scope";

    for (const Case& c : cases) {
        INFO(c.name);
        HttpResponse response;
        response.status = c.status;
        response.body = c.body;
        response.headers = c.headers;
        auto result = parse_token_response(response, sent_at, c.with_previous ? &previous : nullptr);
        if (c.ok) {
            REQUIRE(result.has_value());
            CHECK(result->access_token.expose() == c.access);
            CHECK(result->refresh_token.expose() == c.refresh);
            CHECK(result->token_type == c.type);
            CHECK(result->scope == c.scope);
            CHECK(result->obtained_at == sent_at);
            if (c.expires_in) {
                REQUIRE(result->expires_at.has_value());
                CHECK(*result->expires_at - sent_at == std::chrono::seconds(*c.expires_in));
            } else {
                CHECK_FALSE(result->expires_at.has_value());
            }
        } else {
            REQUIRE_FALSE(result.has_value());
            CHECK(result.error().kind == c.kind);
            CHECK(result.error().server_id == c.server_id);
            CHECK(result.error().http_status == c.status);
            CHECK_FALSE(result.error().message.empty());
        }
    }
}

TEST_CASE("OAuth error messages come from the description, hints from the code", "[oauth][parse]") {
    HttpResponse response;
    response.status = 401;
    response.body = R"({"error":"invalid_client","error_description":"Client authentication failed."})";
    Error e = token_endpoint_error(response);
    CHECK(e.message == "The token endpoint answered invalid_client: Client authentication failed.");
    CHECK(e.server_message == "Client authentication failed.");
    CHECK(e.hint.find("client credentials") != std::string::npos);

    response.status = 400;
    response.body = R"({"error":"invalid_request"})";
    e = token_endpoint_error(response);
    CHECK(e.server_id == "invalid_grant");
    CHECK(e.message ==
          "The authorization code or refresh token was refused: it is unknown, expired, already used or revoked.");
    CHECK(e.hint.find("invalid_request without a description") != std::string::npos);

    response.status = 400;
    response.body = "{\"error\":\"weird_code\",\"error_description\":\"line\\nbreak\"}";
    e = token_endpoint_error(response);
    CHECK(e.server_id == "weird_code");
    CHECK(e.message == "The token endpoint answered weird_code: line break");  // control characters removed
}

TEST_CASE("read_oauth_error reports the error as the server sent it", "[oauth][parse]") {
    HttpResponse response;
    response.status = 400;
    response.body = R"({"error":"invalid_request"})";
    auto raw = read_oauth_error(response);
    REQUIRE(raw);
    CHECK(raw->error == "invalid_request");  // unmapped: the probe needs the raw answer
    CHECK(raw->description.empty());
    CHECK_FALSE(raw->from_www_authenticate);

    response.body.clear();
    response.headers = {{"www-authenticate", R"(Bearer realm="x", error="invalid_client", error_description="a \"quoted\" text")"}};
    raw = read_oauth_error(response);
    REQUIRE(raw);
    CHECK(raw->error == "invalid_client");
    CHECK(raw->description == "a \"quoted\" text");
    CHECK(raw->from_www_authenticate);

    response.headers = {{"WWW-Authenticate", R"(Bearer realm="x")"}};
    CHECK_FALSE(read_oauth_error(response));
}
