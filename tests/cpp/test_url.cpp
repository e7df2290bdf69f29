// Url: normal form, rejected inputs with messages that name the problem, join and is_loopback.
#include <catch2/catch.hpp>

#include "opnc/url.hpp"

using opnc::ErrorKind;
using opnc::Url;

namespace {

Url must_parse(std::string_view text) {
    auto url = Url::parse(text);
    INFO("input: " << text << (url ? "" : " error: " + url.error().message));
    REQUIRE(url.has_value());
    return *url;
}

// The message of the error `text` gives; the test fails if it parses.
std::string error_of(std::string_view text) {
    auto url = Url::parse(text);
    INFO("input: " << text);
    REQUIRE_FALSE(url.has_value());
    CHECK(url.error().kind == ErrorKind::invalid_input);
    CHECK_FALSE(url.error().hint.empty());
    return url.error().message;
}

}  // namespace

TEST_CASE("Url keeps a plain https base URL as it is", "[url]") {
    Url u = must_parse("https://example.org");
    CHECK(u.scheme() == "https");
    CHECK(u.host() == "example.org");
    CHECK(u.port() == 0);
    CHECK(u.path() == "");
    CHECK(u.str() == "https://example.org");
    CHECK(u.authority() == "example.org");
    CHECK(u.is_https());
}

TEST_CASE("Url strips the trailing slash of the root", "[url]") {
    CHECK(must_parse("https://example.org/").str() == "https://example.org");
}

TEST_CASE("Url keeps a sub-path and strips its trailing slashes", "[url]") {
    Url u = must_parse("https://example.org/nextcloud/");
    CHECK(u.path() == "/nextcloud");
    CHECK(u.str() == "https://example.org/nextcloud");
    CHECK(must_parse("https://example.org/a/b///").str() == "https://example.org/a/b");
}

TEST_CASE("Url lowercases scheme and host but not the path", "[url]") {
    Url u = must_parse("HTTPS://Cloud.Example.ORG/NextCloud");
    CHECK(u.scheme() == "https");
    CHECK(u.host() == "cloud.example.org");
    CHECK(u.path() == "/NextCloud");
}

TEST_CASE("Url drops default ports", "[url]") {
    CHECK(must_parse("https://example.org:443/x").str() == "https://example.org/x");
    CHECK(must_parse("http://example.org:80").str() == "http://example.org");
    CHECK(must_parse("https://example.org:443").port() == 0);
}

TEST_CASE("Url keeps other ports", "[url]") {
    Url u = must_parse("http://127.0.0.1:8080/");
    CHECK(u.port() == 8080);
    CHECK(u.authority() == "127.0.0.1:8080");
    CHECK(u.str() == "http://127.0.0.1:8080");
    // 80 is not the default of https, nor 443 of http
    CHECK(must_parse("https://example.org:80").str() == "https://example.org:80");
    CHECK(must_parse("http://example.org:443").str() == "http://example.org:443");
}

TEST_CASE("Url resolves dot segments and collapses doubled slashes", "[url]") {
    CHECK(must_parse("https://example.org/a/../nextcloud/./").str() == "https://example.org/nextcloud");
    CHECK(must_parse("https://example.org//nextcloud//apps/").str() == "https://example.org/nextcloud/apps");
}

TEST_CASE("Url accepts IPv6 literals", "[url]") {
    Url u = must_parse("http://[::1]:3000/");
    CHECK(u.host() == "[::1]");
    CHECK(u.port() == 3000);
    CHECK(u.str() == "http://[::1]:3000");
    CHECK(u.is_loopback());
}

TEST_CASE("Url equality compares the normal form", "[url]") {
    CHECK(must_parse("https://Example.org:443/nc/") == must_parse("https://example.org/nc"));
    CHECK_FALSE(must_parse("https://example.org/nc") == must_parse("http://example.org/nc"));
    CHECK_FALSE(must_parse("https://example.org/nc") == must_parse("https://example.org/NC"));
}

TEST_CASE("Url rejects a missing scheme", "[url][invalid]") {
    const std::string message = error_of("example.org/nextcloud");
    CHECK_THAT(message, Catch::Contains("scheme is missing"));
    CHECK_THAT(message, Catch::Contains("example.org/nextcloud"));
    CHECK_THAT(error_of("//example.org"), Catch::Contains("scheme is missing"));
}

TEST_CASE("Url rejects schemes other than http and https", "[url][invalid]") {
    CHECK_THAT(error_of("ftp://example.org"), Catch::Contains("scheme 'ftp' is not supported"));
    CHECK_THAT(error_of("file:///etc/passwd"), Catch::Contains("not supported"));
    CHECK_THAT(error_of("gopher://example.org"), Catch::Contains("scheme 'gopher' is not supported"));
}

TEST_CASE("Url rejects user-info without echoing the password", "[url][invalid]") {
    const std::string message = error_of("https://admin:hunter2@example.org");
    CHECK_THAT(message, Catch::Contains("user names and passwords do not belong in the URL"));
    CHECK(message.find("hunter2") == std::string::npos);
    CHECK(message.find("admin") == std::string::npos);
    CHECK(error_of("https://admin@example.org").find("admin") == std::string::npos);
}

TEST_CASE("Url rejects a query string, also an empty one", "[url][invalid]") {
    CHECK_THAT(error_of("https://example.org/?a=b"), Catch::Contains("query string"));
    CHECK_THAT(error_of("https://example.org/nc?"), Catch::Contains("query string"));
}

TEST_CASE("Url rejects a fragment, also an empty one", "[url][invalid]") {
    CHECK_THAT(error_of("https://example.org/#top"), Catch::Contains("fragment"));
    CHECK_THAT(error_of("https://example.org#"), Catch::Contains("fragment"));
}

TEST_CASE("Url rejects an empty host", "[url][invalid]") {
    const std::string message = error_of("https://");
    CHECK_THAT(message, Catch::Contains("host") && Catch::Contains("empty"));
    CHECK_THAT(error_of("https:///nextcloud"), Catch::Contains("host"));
}

TEST_CASE("Url rejects bad ports", "[url][invalid]") {
    CHECK_THAT(error_of("https://example.org:99999"), Catch::Contains("port"));
    CHECK_THAT(error_of("https://example.org:abc"), Catch::Contains("port"));
    CHECK_THAT(error_of("https://example.org:-1"), Catch::Contains("port"));
    CHECK_THAT(error_of("https://example.org:0"), Catch::Contains("port is not a number between 1 and 65535"));
}

TEST_CASE("Url rejects spaces and control characters", "[url][invalid]") {
    CHECK_THAT(error_of("https://example.org/next cloud"), Catch::Contains("space"));
    CHECK_THAT(error_of(" https://example.org"), Catch::Contains("space"));
    CHECK_THAT(error_of("https://example.org\n"), Catch::Contains("control character"));
}

TEST_CASE("Url rejects empty input", "[url][invalid]") { CHECK_THAT(error_of(""), Catch::Contains("empty")); }

TEST_CASE("Url rejects malformed host names", "[url][invalid]") {
    CHECK_THAT(error_of("https://exa<mple>.org"), Catch::Contains("host"));
    CHECK_THAT(error_of("http://[::1"), Catch::Contains("Invalid server URL"));
    CHECK_THAT(error_of("http://[fe80::1%25eth0]:8080"), Catch::Contains("zone identifier"));
}

TEST_CASE("Url refuses a percent-encoded host whose decoded form parses differently", "[url][invalid]") {
    // Found by fuzz_url: "127.0127.0%2e1" decodes to "127.0127.0.1", which reads as 127.87.0.1.
    CHECK_THAT(error_of("http://127.0127.0%2e1"), Catch::Contains("percent-encoded"));
    CHECK_THAT(error_of("http://%2500"), Catch::Contains("host"));
    auto plain = Url::parse("http://a%2eb");
    REQUIRE(plain);
    auto again = Url::parse(plain->str());
    REQUIRE(again);
    CHECK(*again == *plain);
}

TEST_CASE("Url shortens a very long input in its message", "[url][invalid]") {
    const std::string message = error_of(std::string(500, 'x'));
    CHECK(message.size() < 300);
    CHECK_THAT(message, Catch::Contains("..."));
}

TEST_CASE("Url::join never produces a double slash", "[url][join]") {
    Url root = must_parse("https://example.org/");
    Url sub = must_parse("https://example.org/nextcloud/");
    CHECK(root.join("/api/v3") == "https://example.org/api/v3");
    CHECK(root.join("api/v3") == "https://example.org/api/v3");
    CHECK(sub.join("/index.php/apps/integration_openproject/setup") ==
          "https://example.org/nextcloud/index.php/apps/integration_openproject/setup");
    CHECK(sub.join("//status.php") == "https://example.org/nextcloud/status.php");
    CHECK(sub.join("a//b") == "https://example.org/nextcloud/a/b");
    CHECK(sub.join("") == "https://example.org/nextcloud/");
    CHECK(sub.join("/") == "https://example.org/nextcloud/");
}

TEST_CASE("Url::join keeps a query verbatim", "[url][join]") {
    Url u = must_parse("http://127.0.0.1:8080");
    CHECK(u.join("/ocs/v2.php/cloud/capabilities?format=json") ==
          "http://127.0.0.1:8080/ocs/v2.php/cloud/capabilities?format=json");
    CHECK(u.join("/x?redirect=//evil") == "http://127.0.0.1:8080/x?redirect=//evil");
}

TEST_CASE("Url::is_loopback knows 127.0.0.0/8, ::1 and localhost", "[url][loopback]") {
    CHECK(must_parse("http://127.0.0.1").is_loopback());
    CHECK(must_parse("http://127.255.3.4:9000").is_loopback());
    CHECK(must_parse("http://LOCALHOST:3000").is_loopback());
    CHECK(must_parse("http://[::1]").is_loopback());
    CHECK_FALSE(must_parse("http://128.0.0.1").is_loopback());
    CHECK_FALSE(must_parse("http://10.0.0.1").is_loopback());
    CHECK_FALSE(must_parse("http://127.0.0.1.example.org").is_loopback());
    CHECK_FALSE(must_parse("http://localhost.example.org").is_loopback());
    CHECK_FALSE(must_parse("http://[::2]").is_loopback());
    CHECK_FALSE(must_parse("https://example.org").is_loopback());
}
