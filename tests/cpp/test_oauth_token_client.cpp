// exchange_code and refresh: retry rules, typed errors, expiry on the injected clock, and no secret
// in any error.
#include <catch2/catch.hpp>

#include "fake_transport.hpp"
#include "opnc/oauth/token_client.hpp"

using namespace opnc;
using namespace opnc::oauth;
using opnc::testing::FakeTransport;
using std::chrono::milliseconds;

namespace {

constexpr const char* ok_body = R"({"access_token":"a1","token_type":"Bearer","expires_in":3600,"refresh_token":"r1"})";

ClientConfig config() {
    ClientConfig c;
    c.token_endpoint = "http://127.0.0.1:8080/oauth/token";
    c.client_id = "client-1";
    c.client_secret = Secret("client-secret-value");
    return c;
}

struct Recorder {
    std::vector<milliseconds> sleeps;
    TokenRequestOptions options() {
        TokenRequestOptions o;
        o.retry.max_attempts = 3;
        o.retry.initial_backoff = milliseconds(200);
        o.retry.max_backoff = milliseconds(2000);
        o.retry.sleep = [this](milliseconds d) { sleeps.push_back(d); };
        return o;
    }
};

Token current_token() {
    Token t;
    t.access_token = Secret("access-0");
    t.refresh_token = Secret("refresh-0");
    t.scope = "api_v3";
    return t;
}

}  // namespace

TEST_CASE("exchange_code retries 5xx and transport errors with bounded backoff", "[oauth][retry]") {
    Recorder rec;
    FakeTransport fake;
    fake.push(503, "");
    fake.push_error(TransportError::Kind::connect, /*maybe_delivered=*/true);
    fake.push(200, ok_body);
    auto token = exchange_code(config(), fake, Secret("code"), std::nullopt, rec.options());
    REQUIRE(token);
    CHECK(token->access_token.expose() == "a1");
    CHECK(fake.count() == 3);
    CHECK(rec.sleeps == std::vector<milliseconds>{milliseconds(200), milliseconds(400)});
    // Every attempt sends the same request.
    auto requests = fake.requests();
    CHECK(requests[0].body == requests[2].body);
}

TEST_CASE("exchange_code honours Retry-After on 429, capped by the policy", "[oauth][retry]") {
    Recorder rec;
    FakeTransport fake;
    fake.push(429, "", {{"Retry-After", "1"}});
    fake.push(429, "", {{"Retry-After", "60"}});
    fake.push(200, ok_body);
    REQUIRE(exchange_code(config(), fake, Secret("code"), std::nullopt, rec.options()));
    CHECK(rec.sleeps == std::vector<milliseconds>{milliseconds(1000), milliseconds(2000)});
}

TEST_CASE("exchange_code gives up after max_attempts", "[oauth][retry]") {
    Recorder rec;
    FakeTransport fake;
    for (int i = 0; i < 5; ++i) fake.push(502, "<html>bad gateway</html>", {{"Content-Type", "text/html"}});
    auto token = exchange_code(config(), fake, Secret("code"), std::nullopt, rec.options());
    REQUIRE_FALSE(token);
    CHECK(token.error().kind == ErrorKind::server_error);
    CHECK(token.error().http_status == 502);
    CHECK(fake.count() == 3);
    CHECK(rec.sleeps.size() == 2);
}

TEST_CASE("no retry after invalid_grant or any other OAuth error", "[oauth][retry]") {
    for (const char* body : {R"({"error":"invalid_grant"})", R"({"error":"invalid_request"})", R"({"error":"invalid_client"})"}) {
        INFO(body);
        Recorder rec;
        FakeTransport fake;
        fake.push(400, body);
        fake.push(200, ok_body);
        auto token = exchange_code(config(), fake, Secret("code"), std::nullopt, rec.options());
        REQUIRE_FALSE(token);
        CHECK(token.error().kind == ErrorKind::oauth);
        CHECK(fake.count() == 1);
        CHECK(rec.sleeps.empty());
    }
    Recorder rec;
    FakeTransport fake;
    fake.push(400, R"({"error":"invalid_grant"})");
    fake.push(200, ok_body);
    auto refreshed = refresh(config(), fake, current_token(), rec.options());
    REQUIRE_FALSE(refreshed);
    CHECK(refreshed.error().server_id == "invalid_grant");
    CHECK(fake.count() == 1);
}

TEST_CASE("refresh is resent only when the request certainly never left", "[oauth][retry]") {
    SECTION("connect failure before sending: resent") {
        Recorder rec;
        FakeTransport fake;
        fake.push_error(TransportError::Kind::connect, /*maybe_delivered=*/false);
        fake.push_error(TransportError::Kind::dns, /*maybe_delivered=*/false);
        fake.push(200, ok_body);
        auto token = refresh(config(), fake, current_token(), rec.options());
        REQUIRE(token);
        CHECK(fake.count() == 3);
    }
    SECTION("a timeout may have been delivered: not resent") {
        Recorder rec;
        FakeTransport fake;
        fake.push_error(TransportError::Kind::timeout, /*maybe_delivered=*/true);
        fake.push(200, ok_body);
        auto token = refresh(config(), fake, current_token(), rec.options());
        REQUIRE_FALSE(token);
        CHECK(token.error().kind == ErrorKind::timeout);
        CHECK(fake.count() == 1);
    }
    SECTION("a 5xx or 429 is an answer: the refresh was delivered, not resent") {
        for (int status : {500, 503, 429}) {
            Recorder rec;
            FakeTransport fake;
            fake.push(status, "");
            fake.push(200, ok_body);
            auto token = refresh(config(), fake, current_token(), rec.options());
            REQUIRE_FALSE(token);
            CHECK(token.error().kind == ErrorKind::server_error);
            CHECK(fake.count() == 1);
        }
    }
    SECTION("TLS and aborts are never retried, even for the code exchange") {
        for (auto kind : {TransportError::Kind::tls, TransportError::Kind::aborted}) {
            Recorder rec;
            FakeTransport fake;
            fake.push_error(kind, false);
            fake.push(200, ok_body);
            auto token = exchange_code(config(), fake, Secret("code"), std::nullopt, rec.options());
            REQUIRE_FALSE(token);
            CHECK(token.error().kind == (kind == TransportError::Kind::tls ? ErrorKind::tls : ErrorKind::aborted));
            CHECK(fake.count() == 1);
        }
    }
}

TEST_CASE("refresh keeps what the answer omits and counts expiry from the send time", "[oauth]") {
    FakeTransport fake;
    fake.push(200, R"({"access_token":"a2","token_type":"Bearer","expires_in":"3600"})");
    TokenRequestOptions options;
    const TimePoint t0{std::chrono::seconds(1'800'000'000)};
    options.clock = [&] { return t0; };
    auto token = refresh(config(), fake, current_token(), options);
    REQUIRE(token);
    CHECK(token->access_token.expose() == "a2");
    CHECK(token->refresh_token.expose() == "refresh-0");
    CHECK(token->scope == "api_v3");
    CHECK(token->obtained_at == t0);
    REQUIRE(token->expires_at);
    CHECK(*token->expires_at == t0 + std::chrono::seconds(3600));
}

TEST_CASE("invalid input is refused before anything is sent", "[oauth]") {
    FakeTransport fake;
    CHECK(exchange_code(config(), fake, Secret("")).error().kind == ErrorKind::invalid_input);
    Token no_refresh;
    no_refresh.access_token = Secret("a");
    CHECK(refresh(config(), fake, no_refresh).error().kind == ErrorKind::invalid_input);
    ClientConfig bad = config();
    bad.token_endpoint = "ftp://example.org/token";
    CHECK(exchange_code(bad, fake, Secret("c")).error().kind == ErrorKind::invalid_input);
    bad = config();
    bad.client_id.clear();
    CHECK(exchange_code(bad, fake, Secret("c")).error().kind == ErrorKind::invalid_input);
    CHECK(fake.count() == 0);
}

TEST_CASE("a server echoing a credential in its error text does not leak it", "[oauth]") {
    FakeTransport fake;
    fake.push(400, R"({"error":"invalid_grant","error_description":"refresh token refresh-0 unknown for client-secret-value"})");
    auto token = refresh(config(), fake, current_token());
    REQUIRE_FALSE(token);
    const Error& e = token.error();
    for (const std::string* text : {&e.message, &e.server_message, &e.hint}) {
        CHECK(text->find("refresh-0") == std::string::npos);
        CHECK(text->find("client-secret-value") == std::string::npos);
    }
    CHECK(e.server_message == "refresh token [redacted] unknown for [redacted]");
}

TEST_CASE("transport failures become typed errors naming the endpoint", "[oauth]") {
    TransportError error;
    error.kind = TransportError::Kind::dns;
    error.message = "could not resolve host nc.example";
    Error e = transport_failure(error, "the token endpoint");
    CHECK(e.kind == ErrorKind::connection_failed);
    CHECK(e.message == "Could not reach the token endpoint: could not resolve host nc.example");
    error.kind = TransportError::Kind::timeout;
    CHECK(transport_failure(error, "x").kind == ErrorKind::timeout);
    error.kind = TransportError::Kind::too_large;
    CHECK(transport_failure(error, "x").kind == ErrorKind::too_large);
}
