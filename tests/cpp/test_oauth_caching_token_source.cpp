// CachingTokenSource: one refresh however many threads ask, the leeway and its cap, rotation
// persisted before use, and a dead refresh token never retried.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "fake_transport.hpp"
#include "opnc/oauth/caching_token_source.hpp"

using namespace opnc;
using namespace opnc::oauth;
using opnc::testing::FakeTransport;
using std::chrono::seconds;

namespace {

const TimePoint t0{seconds(1'700'000'000)};

struct ManualClock {
    std::atomic<TimePoint::rep> ticks{t0.time_since_epoch().count()};
    Clock clock() {
        return [this] { return TimePoint(TimePoint::duration(ticks.load())); };
    }
    void set(TimePoint t) { ticks.store(t.time_since_epoch().count()); }
};

ClientConfig config() {
    ClientConfig c;
    c.token_endpoint = "http://127.0.0.1:8080/oauth/token";
    c.client_id = "client-1";
    c.client_secret = Secret("client-secret");
    return c;
}

Token token(std::string access, std::string refresh_token, TimePoint obtained, seconds lifetime) {
    Token t;
    t.access_token = Secret(std::move(access));
    t.refresh_token = Secret(std::move(refresh_token));
    t.token_type = "Bearer";
    t.obtained_at = obtained;
    t.expires_at = obtained + lifetime;
    return t;
}

CachingOptions options_with(ManualClock& clock, seconds leeway = seconds(60)) {
    CachingOptions o;
    o.clock = clock.clock();
    o.leeway = leeway;
    return o;
}

HttpResponse json(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = {{"Content-Type", "application/json"}};
    return r;
}

}  // namespace

TEST_CASE("a fresh token is handed out without a request", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    CachingTokenSource source(config(), fake, token("a0", "r0", t0, seconds(3600)), options_with(clock));
    auto t = source.token();
    REQUIRE(t);
    CHECK(t->access_token.expose() == "a0");
    CHECK(fake->count() == 0);
    CHECK(source.refresh_count() == 0);
}

TEST_CASE("64 threads asking for an expired token cause exactly one refresh", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    std::atomic<int> issued{0};
    fake->handler = [&](const HttpRequest& request) -> FakeTransport::Answer {
        // Slow enough that every thread arrives while the refresh is in flight.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        int n = ++issued;
        if (request.body != "grant_type=refresh_token&refresh_token=r0&client_id=client-1&client_secret=client-secret")
            return json(400, R"({"error":"invalid_request"})");
        return json(200, R"({"access_token":"a)" + std::to_string(n) + R"(","refresh_token":"r)" +
                             std::to_string(n) + R"(","expires_in":3600})");
    };
    std::atomic<int> persisted{0};
    std::string persisted_access;
    CachingOptions options;
    options.clock = clock.clock();
    options.on_rotated = [&](const Token& t) -> Result<void> {
        persisted_access = t.access_token.expose();
        ++persisted;
        return {};
    };
    CachingTokenSource source(config(), fake, token("a0", "r0", t0 - seconds(7200), seconds(3600)), options);

    constexpr int threads = 64;
    std::vector<std::string> seen(threads);
    std::vector<int> persisted_before_return(threads, -1);
    std::atomic<int> ready{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            ++ready;
            while (ready.load() < threads) std::this_thread::yield();
            auto t = source.token();
            persisted_before_return[i] = persisted.load();
            seen[i] = t ? t->access_token.expose() : "error: " + t.error().message;
        });
    }
    for (auto& th : pool) th.join();

    CHECK(fake->count() == 1);
    CHECK(source.refresh_count() == 1);
    CHECK(persisted.load() == 1);
    CHECK(persisted_access == "a1");
    for (int i = 0; i < threads; ++i) {
        CHECK(seen[i] == "a1");
        CHECK(persisted_before_return[i] == 1);  // nobody got the token before it was persisted
    }
    auto current = source.current();
    CHECK(current.refresh_token.expose() == "r1");
    REQUIRE(current.expires_at);
    CHECK(*current.expires_at == t0 + seconds(3600));  // counted on the injected clock
}

TEST_CASE("the leeway is applied and capped at half the lifetime", "[oauth][cache]") {
    SECTION("Token arithmetic") {
        Token long_lived = token("a", "r", t0, seconds(3600));
        CHECK(long_lived.effective_leeway(seconds(60)) == seconds(60));
        CHECK_FALSE(long_lived.expires_within(seconds(60), t0 + seconds(3539)));
        CHECK(long_lived.expires_within(seconds(60), t0 + seconds(3540)));
        Token short_lived = token("a", "r", t0, seconds(60));
        CHECK(short_lived.effective_leeway(seconds(300)) == seconds(30));
        CHECK_FALSE(short_lived.expires_within(seconds(300), t0 + seconds(29)));
        CHECK(short_lived.expires_within(seconds(300), t0 + seconds(30)));
        Token no_expiry;
        no_expiry.access_token = Secret("a");
        CHECK_FALSE(no_expiry.expires_within(seconds(60), t0 + seconds(1'000'000)));
        CHECK(Token{}.expires_within(seconds(0), t0));  // no access token at all
    }
    SECTION("in the source") {
        ManualClock clock;
        auto fake = std::make_shared<FakeTransport>();
        fake->push(200, R"({"access_token":"a1","refresh_token":"r1","expires_in":60})");
        CachingTokenSource source(config(), fake, token("a0", "r0", t0, seconds(60)),
                                  options_with(clock, seconds(300)));
        clock.set(t0 + seconds(29));
        REQUIRE(source.token()->access_token.expose() == "a0");
        CHECK(fake->count() == 0);
        clock.set(t0 + seconds(30));
        REQUIRE(source.token()->access_token.expose() == "a1");
        CHECK(fake->count() == 1);
    }
}

TEST_CASE("force_refresh refreshes a valid token and uses the rotated refresh token", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    fake->push(200, R"({"access_token":"a1","refresh_token":"r1","expires_in":3600})");
    fake->push(200, R"({"access_token":"a2","refresh_token":"r2","expires_in":3600})");
    CachingTokenSource source(config(), fake, token("a0", "r0", t0, seconds(3600)), options_with(clock));
    REQUIRE(source.force_refresh()->access_token.expose() == "a1");
    REQUIRE(source.force_refresh()->access_token.expose() == "a2");
    auto requests = fake->requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].body.starts_with("grant_type=refresh_token&refresh_token=r0&"));
    CHECK(requests[1].body.starts_with("grant_type=refresh_token&refresh_token=r1&"));
}

TEST_CASE("after invalid_grant the source never refreshes again until reset", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    fake->push(400, R"({"error":"invalid_grant"})");
    fake->push(200, R"({"access_token":"never","refresh_token":"never","expires_in":3600})");
    CachingTokenSource source(config(), fake, token("a0", "r0", t0 - seconds(7200), seconds(3600)),
                              options_with(clock));
    for (int i = 0; i < 3; ++i) {
        auto t = source.token();
        REQUIRE_FALSE(t);
        CHECK(t.error().kind == ErrorKind::oauth);
        CHECK(t.error().server_id == "invalid_grant");
    }
    auto forced = source.force_refresh();
    REQUIRE_FALSE(forced);
    CHECK(forced.error().server_id == "invalid_grant");
    CHECK(fake->count() == 1);
    CHECK(source.refresh_count() == 1);

    source.reset(token("b0", "s0", t0, seconds(3600)));
    REQUIRE(source.token()->access_token.expose() == "b0");
    REQUIRE(source.force_refresh()->access_token.expose() == "never");
    CHECK(fake->count() == 2);
}

TEST_CASE("a transient failure is not terminal", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    fake->push(503, "");
    fake->push(200, R"({"access_token":"a1","refresh_token":"r1","expires_in":3600})");
    CachingTokenSource source(config(), fake, token("a0", "r0", t0 - seconds(7200), seconds(3600)),
                              options_with(clock));
    auto first = source.token();
    REQUIRE_FALSE(first);
    CHECK(first.error().kind == ErrorKind::server_error);
    REQUIRE(source.token()->access_token.expose() == "a1");
    CHECK(fake->count() == 2);
}

TEST_CASE("a failed on_rotated keeps the new token and persists it before the next use", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    fake->push(200, R"({"access_token":"a1","refresh_token":"r1","expires_in":3600})");
    int calls = 0;
    CachingOptions options;
    options.clock = clock.clock();
    options.on_rotated = [&](const Token& t) -> Result<void> {
        ++calls;
        CHECK(t.refresh_token.expose() == "r1");
        if (calls == 1) return fail(ErrorKind::journal, "disk full");
        return {};
    };
    CachingTokenSource source(config(), fake, token("a0", "r0", t0 - seconds(7200), seconds(3600)), options);
    auto first = source.token();
    REQUIRE_FALSE(first);
    CHECK(first.error().kind == ErrorKind::journal);
    CHECK(source.current().refresh_token.expose() == "r1");  // the only live refresh token is kept
    auto second = source.token();
    REQUIRE(second);
    CHECK(second->access_token.expose() == "a1");
    CHECK(calls == 2);
    CHECK(fake->count() == 1);
    REQUIRE(source.token());
    CHECK(calls == 2);  // persisted once: no further calls
}

TEST_CASE("an expired token without refresh token is an input error", "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    CachingTokenSource source(config(), fake, token("a0", "", t0 - seconds(7200), seconds(3600)),
                              options_with(clock));
    auto t = source.token();
    REQUIRE_FALSE(t);
    CHECK(t.error().kind == ErrorKind::invalid_input);
    CHECK(fake->count() == 0);
}

TEST_CASE("a force_refresh waiting behind another one takes that result instead of refreshing again",
          "[oauth][cache]") {
    ManualClock clock;
    auto fake = std::make_shared<FakeTransport>();
    std::atomic<bool> second_started{false};
    std::atomic<int> issued{0};
    fake->handler = [&](const HttpRequest&) -> FakeTransport::Answer {
        // Hold the first refresh until the second caller is queued behind it.
        while (!second_started.load()) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        int n = ++issued;
        return json(200, R"({"access_token":"a)" + std::to_string(n) + R"(","refresh_token":"r)" + std::to_string(n) +
                             R"(","expires_in":3600})");
    };
    CachingTokenSource source(config(), fake, token("a0", "r0", t0, seconds(3600)), options_with(clock));
    std::string first, second;
    std::thread a([&] { first = source.force_refresh()->access_token.expose(); });
    while (fake->count() == 0) std::this_thread::yield();  // the first refresh is in flight
    std::thread b([&] {
        second_started = true;
        second = source.force_refresh()->access_token.expose();
    });
    a.join();
    b.join();
    CHECK(first == "a1");
    CHECK(second == "a1");
    CHECK(fake->count() == 1);
}
