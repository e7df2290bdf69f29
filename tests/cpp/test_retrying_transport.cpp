// RetryingTransport: only safe retries, with bounded backoff (sleep injected, so no test waits).
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "fake_transport.hpp"
#include "opnc/retrying_transport.hpp"

using opnc::HttpRequest;
using opnc::RetryingTransport;
using opnc::RetryPolicy;
using opnc::TransportError;
using opnc::testing::FakeTransport;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>();
    std::vector<std::chrono::milliseconds> sleeps;

    RetryingTransport make(RetryPolicy policy = {}) {
        policy.sleep = [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
        return RetryingTransport(fake, policy);
    }
};

HttpRequest request(std::string method) {
    HttpRequest r;
    r.method = std::move(method);
    r.url = "https://op.example.org/api/v3/storages";
    return r;
}

}  // namespace

TEST_CASE("RetryingTransport retries a GET on 503 and returns the final success", "[retry]") {
    Fixture f;
    f.fake->push(503, "busy");
    f.fake->push(503, "busy");
    f.fake->push(200, "{}");
    auto t = f.make();
    auto result = t.send(request("GET"));
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(f.fake->count() == 3);
    CHECK(f.sleeps == std::vector<std::chrono::milliseconds>{200ms, 400ms});
}

TEST_CASE("RetryingTransport retries a GET on a connect error", "[retry]") {
    Fixture f;
    f.fake->push_error(TransportError::Kind::connect, false);
    f.fake->push(200, "{}");
    auto t = f.make();
    auto result = t.send(request("GET"));
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(f.fake->count() == 2);
}

TEST_CASE("RetryingTransport gives up after max_attempts and returns the last answer", "[retry]") {
    Fixture f;
    for (int i = 0; i < 5; ++i) f.fake->push(502, "bad gateway");
    RetryPolicy policy;
    policy.max_attempts = 3;
    auto t = f.make(policy);
    auto result = t.send(request("DELETE"));
    REQUIRE(result);
    CHECK(result->status == 502);
    CHECK(f.fake->count() == 3);
    CHECK(f.sleeps.size() == 2);
}

TEST_CASE("RetryingTransport never resends a POST answered with 500", "[retry]") {
    Fixture f;
    f.fake->push(500, "oops");
    f.fake->push(201, "{}");
    auto t = f.make();
    auto result = t.send(request("POST"));
    REQUIRE(result);
    CHECK(result->status == 500);
    CHECK(f.fake->count() == 1);
    CHECK(f.sleeps.empty());
}

TEST_CASE("RetryingTransport never resends a POST that may have been delivered", "[retry]") {
    Fixture f;
    f.fake->push_error(TransportError::Kind::timeout, true);
    f.fake->push(201, "{}");
    auto t = f.make();
    auto result = t.send(request("POST"));
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::timeout);
    CHECK(f.fake->count() == 1);
}

TEST_CASE("RetryingTransport resends a PATCH that certainly never left", "[retry]") {
    Fixture f;
    f.fake->push_error(TransportError::Kind::connect, false);
    f.fake->push(200, "{}");
    auto t = f.make();
    auto result = t.send(request("PATCH"));
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(f.fake->count() == 2);
}

TEST_CASE("RetryingTransport does not resend an undelivered POST when that is switched off", "[retry]") {
    Fixture f;
    f.fake->push_error(TransportError::Kind::dns, false);
    f.fake->push(201, "{}");
    RetryPolicy policy;
    policy.allow_undelivered_resend = false;
    auto t = f.make(policy);
    auto result = t.send(request("POST"));
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::dns);
    CHECK(f.fake->count() == 1);
}

TEST_CASE("RetryingTransport does not retry aborted, tls or too_large", "[retry]") {
    for (auto kind : {TransportError::Kind::aborted, TransportError::Kind::tls, TransportError::Kind::too_large}) {
        Fixture f;
        f.fake->push_error(kind, false);
        f.fake->push(200, "{}");
        auto t = f.make();
        auto result = t.send(request("GET"));
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == kind);
        CHECK(f.fake->count() == 1);
    }
}

TEST_CASE("RetryingTransport does not retry a 4xx other than 429", "[retry]") {
    Fixture f;
    f.fake->push(404, "{}");
    auto t = f.make();
    auto result = t.send(request("GET"));
    REQUIRE(result);
    CHECK(result->status == 404);
    CHECK(f.fake->count() == 1);
}

TEST_CASE("RetryingTransport backoff doubles and is bounded by max_backoff", "[retry]") {
    Fixture f;
    for (int i = 0; i < 6; ++i) f.fake->push(503, "busy");
    RetryPolicy policy;
    policy.max_attempts = 6;
    policy.initial_backoff = 100ms;
    policy.max_backoff = 300ms;
    auto t = f.make(policy);
    auto result = t.send(request("GET"));
    REQUIRE(result);
    CHECK(result->status == 503);
    CHECK(f.sleeps == std::vector<std::chrono::milliseconds>{100ms, 200ms, 300ms, 300ms, 300ms});
}

TEST_CASE("RetryingTransport honours Retry-After on 429 within max_backoff", "[retry]") {
    Fixture f;
    f.fake->push(429, "slow down", {{"Retry-After", "1"}});
    f.fake->push(429, "slow down", {{"retry-after", "60"}});
    f.fake->push(200, "{}");
    RetryPolicy policy;
    policy.max_backoff = 2'000ms;
    auto t = f.make(policy);
    auto result = t.send(request("GET"));
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(f.sleeps == std::vector<std::chrono::milliseconds>{1'000ms, 2'000ms});
}

TEST_CASE("RetryingTransport ignores a huge, negative or date Retry-After", "[retry]") {
    Fixture f;
    f.fake->push(429, "", {{"Retry-After", "99999999999999999"}});
    f.fake->push(429, "", {{"Retry-After", "-5"}});
    f.fake->push(429, "", {{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}});
    f.fake->push(200, "{}");
    RetryPolicy policy;
    policy.max_attempts = 4;
    policy.initial_backoff = 100ms;
    policy.max_backoff = 1'000ms;
    auto t = f.make(policy);
    auto result = t.send(request("GET"));
    REQUIRE(result);
    CHECK(result->status == 200);
    // huge: clamped to max_backoff; negative and date: the running backoff (200 ms, then 400 ms)
    CHECK(f.sleeps == std::vector<std::chrono::milliseconds>{1'000ms, 200ms, 400ms});
}

TEST_CASE("RetryingTransport classifies idempotent methods", "[retry]") {
    for (const char* m : {"GET", "HEAD", "DELETE", "PROPFIND", "OPTIONS"}) CHECK(RetryingTransport::is_idempotent(m));
    for (const char* m : {"POST", "PATCH", "PUT", "get"}) CHECK_FALSE(RetryingTransport::is_idempotent(m));
}
