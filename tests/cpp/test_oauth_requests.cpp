// The wire format of every request the OAuth engine sends: URL, headers and form body, exactly;
// and the authorization URL and callback check.
#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include "fake_transport.hpp"
#include "opnc/oauth/authorization_request.hpp"
#include "opnc/oauth/form_encoding.hpp"
#include "opnc/oauth/token_client.hpp"

using namespace opnc;
using namespace opnc::oauth;
using opnc::testing::FakeTransport;

namespace {

const Headers form_headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
constexpr const char* ok_body = R"({"access_token":"a1","token_type":"Bearer","expires_in":3600,"refresh_token":"r1"})";

ClientConfig config(ClientAuthMethod method, std::string id = "client-1", std::string secret = "s3cr3t") {
    ClientConfig c;
    c.authorize_endpoint = "http://127.0.0.1:8080/oauth/authorize";
    c.token_endpoint = "http://127.0.0.1:8080/oauth/token";
    c.client_id = std::move(id);
    c.client_secret = Secret(std::move(secret));
    c.auth_method = method;
    return c;
}

std::string decode_base64(const std::string& text) {
    std::string out(text.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    REQUIRE(n >= 0);
    // EVP_DecodeBlock counts the bytes the '=' padding stands for; drop them.
    std::size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
    out.resize(static_cast<std::size_t>(n) - padding);
    return out;
}

}  // namespace

TEST_CASE("exchange_code sends client_secret_post form fields", "[oauth][wire]") {
    FakeTransport fake;
    fake.push(200, ok_body);
    ClientConfig c = config(ClientAuthMethod::request_body);
    c.redirect_uri = "http://127.0.0.1:9/cb/?x=1 2";  // opaque: trailing slash and query kept
    auto token = exchange_code(c, fake, Secret("the-code"), Secret("v-123"));
    REQUIRE(token);
    REQUIRE(fake.count() == 1);
    auto r = fake.requests()[0];
    CHECK(r.method == "POST");
    CHECK(r.url == "http://127.0.0.1:8080/oauth/token");
    CHECK(r.headers == form_headers);
    CHECK(r.authorization == "");
    CHECK(r.body ==
          "grant_type=authorization_code&code=the-code"
          "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2F%3Fx%3D1%202"
          "&code_verifier=v-123&client_id=client-1&client_secret=s3cr3t");
}

TEST_CASE("exchange_code without PKCE or redirect URI sends only what is set", "[oauth][wire]") {
    FakeTransport fake;
    fake.push(200, ok_body);
    auto token = exchange_code(config(ClientAuthMethod::basic_raw), fake, Secret("c"));
    REQUIRE(token);
    auto r = fake.requests()[0];
    CHECK(r.body == "grant_type=authorization_code&code=c");
    CHECK(r.authorization == "Basic " + base64_encode("client-1:s3cr3t"));
}

TEST_CASE("refresh sends the refresh grant with Basic credentials", "[oauth][wire]") {
    FakeTransport fake;
    fake.push(200, ok_body);
    Token current;
    current.access_token = Secret("a0");
    current.refresh_token = Secret("r0/+=");
    auto token = refresh(config(ClientAuthMethod::basic), fake, current);
    REQUIRE(token);
    auto r = fake.requests()[0];
    CHECK(r.method == "POST");
    CHECK(r.url == "http://127.0.0.1:8080/oauth/token");
    CHECK(r.headers == form_headers);
    CHECK(r.body == "grant_type=refresh_token&refresh_token=r0%2F%2B%3D");
    CHECK(r.authorization == "Basic Y2xpZW50LTE6czNjcjN0");  // base64("client-1:s3cr3t")
}

TEST_CASE("secrets with + / = ! $ % & survive both Basic encodings and the body", "[oauth][wire]") {
    const std::string secret = "a+b/c=d!e$f%g&h";
    SECTION("basic: RFC 6749 2.3.1, form-urlencode each part, then base64") {
        FakeTransport fake;
        fake.push(200, ok_body);
        REQUIRE(exchange_code(config(ClientAuthMethod::basic, "my client:1", secret), fake, Secret("c")));
        const std::string header = fake.requests()[0].authorization;
        CHECK(header == "Basic bXklMjBjbGllbnQlM0ExOmElMkJiJTJGYyUzRGQlMjFlJTI0ZiUyNWclMjZo");
        std::string plain = decode_base64(header.substr(6));
        CHECK(plain == "my%20client%3A1:a%2Bb%2Fc%3Dd%21e%24f%25g%26h");
        auto colon = plain.find(':');
        CHECK(form_unescape(plain.substr(0, colon)) == "my client:1");
        CHECK(form_unescape(plain.substr(colon + 1)) == secret);
        CHECK(fake.requests()[0].body == "grant_type=authorization_code&code=c");
    }
    SECTION("basic_raw: base64 of the bytes as they are") {
        FakeTransport fake;
        fake.push(200, ok_body);
        REQUIRE(exchange_code(config(ClientAuthMethod::basic_raw, "client-1", secret), fake, Secret("c")));
        const std::string header = fake.requests()[0].authorization;
        CHECK(header == "Basic Y2xpZW50LTE6YStiL2M9ZCFlJGYlZyZo");
        CHECK(decode_base64(header.substr(6)) == "client-1:" + secret);
    }
    SECTION("request_body: percent-encoded form fields that decode back") {
        FakeTransport fake;
        fake.push(200, ok_body);
        REQUIRE(exchange_code(config(ClientAuthMethod::request_body, "my client:1", secret), fake, Secret("c")));
        const std::string body = fake.requests()[0].body;
        CHECK(body ==
              "grant_type=authorization_code&code=c&client_id=my%20client%3A1"
              "&client_secret=a%2Bb%2Fc%3Dd%21e%24f%25g%26h");
        auto fields = parse_form(body);
        REQUIRE(fields.size() == 4);
        CHECK(fields[2] == std::pair<std::string, std::string>{"client_id", "my client:1"});
        CHECK(fields[3] == std::pair<std::string, std::string>{"client_secret", secret});
    }
    SECTION("raw Basic refuses a client id with a colon before sending") {
        FakeTransport fake;
        auto result = exchange_code(config(ClientAuthMethod::basic_raw, "a:b", secret), fake, Secret("c"));
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == ErrorKind::invalid_input);
        CHECK(fake.count() == 0);
    }
}

TEST_CASE("form encoding helpers", "[oauth][wire]") {
    CHECK(form_escape("AZaz09-._~") == "AZaz09-._~");
    CHECK(form_escape(" +&=%/?#\xc3\xa9") == "%20%2B%26%3D%25%2F%3F%23%C3%A9");
    CHECK(form_unescape("a+b%20c%2B") == "a b c+");
    CHECK(form_unescape("%zz") == "%zz");
    auto pairs = parse_form("?a=1&&b&c=x%3Dy#frag");
    REQUIRE(pairs.size() == 3);
    CHECK(pairs[0] == std::pair<std::string, std::string>{"a", "1"});
    CHECK(pairs[1] == std::pair<std::string, std::string>{"b", ""});
    CHECK(pairs[2] == std::pair<std::string, std::string>{"c", "x=y"});
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64url_encode("\xfb\xff") == "-_8");
}

TEST_CASE("AuthorizationRequest builds the authorize URL", "[oauth][wire]") {
    ClientConfig c = config(ClientAuthMethod::request_body, "id with space");
    c.redirect_uri = "http://127.0.0.1:9/cb/";
    SECTION("with PKCE, scope and redirect URI") {
        auto request = AuthorizationRequest::create(c, {.scope = "api_v3", .use_pkce = true});
        REQUIRE(request);
        REQUIRE(request->pkce());
        const std::string state = request->state().expose();
        CHECK(state.size() == 43);
        CHECK(request->url() ==
              "http://127.0.0.1:8080/oauth/authorize?response_type=code&client_id=id%20with%20space"
              "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2F&scope=api_v3&state=" + state +
              "&code_challenge=" + request->pkce()->challenge() + "&code_challenge_method=S256");
        auto other = AuthorizationRequest::create(c);
        REQUIRE(other);
        CHECK(other->state().expose() != state);
    }
    SECTION("without PKCE, scope or redirect URI; an endpoint with a query gets '&'") {
        c.redirect_uri.clear();
        c.authorize_endpoint = "http://127.0.0.1:8080/index.php?route=authorize";
        auto request = AuthorizationRequest::create(c, {.scope = "", .use_pkce = false});
        REQUIRE(request);
        CHECK_FALSE(request->pkce());
        CHECK(request->url() == "http://127.0.0.1:8080/index.php?route=authorize&response_type=code"
                                "&client_id=id%20with%20space&state=" + request->state().expose());
    }
    SECTION("no authorize endpoint") {
        c.authorize_endpoint.clear();
        auto request = AuthorizationRequest::create(c);
        REQUIRE_FALSE(request);
        CHECK(request.error().kind == ErrorKind::invalid_input);
    }
}

TEST_CASE("AuthorizationRequest checks the callback's state before anything else", "[oauth][wire]") {
    auto request = AuthorizationRequest::create(config(ClientAuthMethod::request_body));
    REQUIRE(request);
    const std::string state = request->state().expose();
    CHECK(request->state_matches(state));
    CHECK_FALSE(request->state_matches(state + "x"));
    CHECK_FALSE(request->state_matches(""));

    auto code = request->code_from_callback("http://127.0.0.1:9/cb?state=" + state + "&code=abc%2Bdef");
    REQUIRE(code);
    CHECK(code->expose() == "abc+def");
    auto only_query = request->code_from_callback("code=xyz&state=" + state);
    REQUIRE(only_query);
    CHECK(only_query->expose() == "xyz");

    auto foreign = request->code_from_callback("?code=abc&state=forged");
    REQUIRE_FALSE(foreign);
    CHECK(foreign.error().kind == ErrorKind::invalid_input);
    CHECK(foreign.error().message == "The callback's state does not match this authorization request.");

    auto forged_error = request->code_from_callback("?error=access_denied&state=forged");
    REQUIRE_FALSE(forged_error);
    CHECK(forged_error.error().kind == ErrorKind::invalid_input);

    auto no_state = request->code_from_callback("?code=abc");
    REQUIRE_FALSE(no_state);
    CHECK(no_state.error().message == "The callback has no state parameter.");

    auto denied = request->code_from_callback("?error=access_denied&error_description=The+user+said+no&state=" + state);
    REQUIRE_FALSE(denied);
    CHECK(denied.error().kind == ErrorKind::oauth);
    CHECK(denied.error().server_id == "access_denied");
    CHECK(denied.error().server_message == "The user said no");

    auto empty = request->code_from_callback("?state=" + state);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().kind == ErrorKind::protocol);
}
