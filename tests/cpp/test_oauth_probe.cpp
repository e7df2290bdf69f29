// probe_client against the answers of Doorkeeper (OpenProject) and Nextcloud's oauth2 app.
#include <catch2/catch.hpp>

#include "fake_transport.hpp"
#include "opnc/oauth/form_encoding.hpp"
#include "opnc/oauth/probe.hpp"

using namespace opnc;
using namespace opnc::oauth;
using opnc::testing::FakeTransport;

namespace {

ClientConfig doorkeeper() {
    ClientConfig c;
    c.authorize_endpoint = "http://127.0.0.1:3000/oauth/authorize";
    c.token_endpoint = "http://127.0.0.1:3000/oauth/token";
    c.client_id = "op-client";
    c.client_secret = Secret("op-secret");
    return c;
}

ClientConfig nextcloud() {
    ClientConfig c;
    c.authorize_endpoint = "http://127.0.0.1:8080/index.php/apps/oauth2/authorize";
    c.token_endpoint = "http://127.0.0.1:8080/index.php/apps/oauth2/api/v1/token";
    c.client_id = "nc-client";
    c.client_secret = Secret("nc-secret");
    return c;
}

const Headers html = {{"Content-Type", "text/html; charset=UTF-8"}};

}  // namespace

TEST_CASE("probe: invalid_grant for a made-up code means the client was accepted", "[oauth][probe]") {
    FakeTransport fake;
    fake.push(400, R"({"error":"invalid_grant","error_description":"The provided authorization grant is invalid."})");
    auto result = probe_client(doorkeeper(), fake);
    REQUIRE(result);
    CHECK(result->outcome == ProbeOutcome::accepted);
    CHECK(result->plausible());
    CHECK(result->http_status == 400);
    CHECK(result->server_error == "invalid_grant");
    REQUIRE(fake.count() == 1);
    auto r = fake.requests()[0];
    CHECK(r.method == "POST");
    CHECK(r.url == "http://127.0.0.1:3000/oauth/token");
    CHECK(r.headers == Headers{{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}});
    auto fields = parse_form(r.body);
    REQUIRE(fields.size() == 5);
    CHECK(fields[0] == std::pair<std::string, std::string>{"grant_type", "authorization_code"});
    CHECK(fields[1].first == "code");
    CHECK(fields[1].second.size() == 43);  // random each time
    CHECK(fields[2] == std::pair<std::string, std::string>{"redirect_uri", "urn:ietf:wg:oauth:2.0:oob"});
    CHECK(fields[3] == std::pair<std::string, std::string>{"client_id", "op-client"});
    CHECK(fields[4] == std::pair<std::string, std::string>{"client_secret", "op-secret"});
}

TEST_CASE("probe: Doorkeeper's 401 invalid_client means rejected", "[oauth][probe]") {
    FakeTransport fake;
    fake.push(401, R"({"error":"invalid_client","error_description":"Client authentication failed."})",
              {{"Content-Type", "application/json"},
               {"WWW-Authenticate", R"(Bearer realm="Doorkeeper", error="invalid_client")"}});
    ClientConfig c = doorkeeper();
    c.redirect_uri = "http://127.0.0.1:8080/index.php/apps/integration_openproject/oauth-redirect";
    auto result = probe_client(c, fake);
    REQUIRE(result);
    CHECK(result->outcome == ProbeOutcome::rejected);
    CHECK_FALSE(result->plausible());
    CHECK(result->http_status == 401);
    CHECK(result->server_error == "invalid_client");
    CHECK(result->detail.find("op-secret") == std::string::npos);
    CHECK(parse_form(fake.requests()[0].body)[2].second == c.redirect_uri);  // the registered URI if known
    CHECK(fake.count() == 1);  // decided: the authorize endpoint is not asked
}

TEST_CASE("probe: Nextcloud cannot check the secret, so the authorize endpoint is asked", "[oauth][probe]") {
    SECTION("a known client id is redirected") {
        FakeTransport fake;
        fake.push(400, R"({"error":"invalid_request"})");
        fake.push(303, "", {{"Location", "http://127.0.0.1:8080/index.php/login/flow?clientIdentifier=nc-client&providedRedirectUri="}});
        auto result = probe_client(nextcloud(), fake);
        REQUIRE(result);
        CHECK(result->outcome == ProbeOutcome::registered);
        CHECK(result->plausible());
        CHECK(result->http_status == 303);
        CHECK(result->server_error == "invalid_request");
        CHECK(result->detail ==
              "The token endpoint cannot check the secret without a real code (it answered invalid_request); the "
              "authorize endpoint knows the client id (redirects to http://127.0.0.1:8080/index.php/login/flow).");
        REQUIRE(fake.count() == 2);
        auto r = fake.requests()[1];
        CHECK(r.method == "GET");
        const std::string prefix =
            "http://127.0.0.1:8080/index.php/apps/oauth2/authorize?response_type=code&client_id=nc-client&state=";
        CHECK(r.url.starts_with(prefix));
        CHECK(r.url.size() == prefix.size() + 22);  // 16 random bytes
        CHECK(r.authorization == "");  // no credentials to the authorize endpoint
    }
    SECTION("an unknown client id gets the 200 error page") {
        FakeTransport fake;
        fake.push(400, R"({"error":"invalid_request"})");
        fake.push(200, "<html>Your client is not authorized to connect.</html>", html);
        auto result = probe_client(nextcloud(), fake);
        REQUIRE(result);
        CHECK(result->outcome == ProbeOutcome::not_registered);
        CHECK_FALSE(result->plausible());
        CHECK(result->http_status == 200);
    }
    SECTION("without an authorize endpoint the answer is unknown") {
        FakeTransport fake;
        fake.push(400, R"({"error":"invalid_request"})");
        ClientConfig c = nextcloud();
        c.authorize_endpoint.clear();
        auto result = probe_client(c, fake);
        REQUIRE(result);
        CHECK(result->outcome == ProbeOutcome::unknown);
        CHECK(result->http_status == 400);
        CHECK(fake.count() == 1);
    }
    SECTION("an authorize answer that does not tell") {
        FakeTransport fake;
        fake.push(400, R"({"error":"invalid_request"})");
        fake.push(403, "", html);
        auto result = probe_client(nextcloud(), fake);
        REQUIRE(result);
        CHECK(result->outcome == ProbeOutcome::unknown);
        CHECK(result->http_status == 403);
    }
    SECTION("Nextcloud's invalid_client (a valid code only) is still a rejection") {
        FakeTransport fake;
        fake.push(400, R"({"error":"invalid_client"})");
        auto result = probe_client(nextcloud(), fake);
        REQUIRE(result);
        CHECK(result->outcome == ProbeOutcome::rejected);
    }
}

TEST_CASE("probe: failures to get an answer are errors, not verdicts", "[oauth][probe]") {
    SECTION("connection refused") {
        FakeTransport fake;
        fake.push_error(TransportError::Kind::connect, false);
        auto result = probe_client(doorkeeper(), fake);
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == ErrorKind::connection_failed);
        CHECK(fake.count() == 1);  // a probe is never retried
    }
    SECTION("server error") {
        FakeTransport fake;
        fake.push(503, "");
        auto result = probe_client(doorkeeper(), fake);
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == ErrorKind::server_error);
        CHECK(result.error().http_status == 503);
    }
    SECTION("415 means the request was mangled") {
        FakeTransport fake;
        fake.push(415, "{}");
        auto result = probe_client(doorkeeper(), fake);
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == ErrorKind::protocol);
    }
    SECTION("invalid config") {
        FakeTransport fake;
        ClientConfig c = doorkeeper();
        c.token_endpoint = "not a url";
        auto result = probe_client(c, fake);
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == ErrorKind::invalid_input);
        CHECK(fake.count() == 0);
    }
}
