#include <catch2/catch.hpp>

#include "opnc/version.hpp"

using opnc::Version;

namespace {
Version v(const char* text) {
    auto parsed = Version::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}
}  // namespace

TEST_CASE("Version parses the forms both servers render", "[version]") {
    auto op = v("16.0.0");
    CHECK(op.components() == std::vector<std::uint32_t>{16, 0, 0});
    CHECK(op.str() == "16.0.0");

    auto nc = v("34.0.1.2");
    CHECK(nc.components() == std::vector<std::uint32_t>{34, 0, 1, 2});
    CHECK(nc.major() == 34);
    CHECK(nc.minor() == 0);
    CHECK(nc.patch() == 1);
    CHECK(nc.component(3) == 2);
    CHECK(nc.component(4) == 0);

    auto beta = v("2.8.1-beta1");
    CHECK(beta.components() == std::vector<std::uint32_t>{2, 8, 1});
    CHECK(beta.prerelease() == "beta1");

    auto short_form = v("16");
    CHECK(short_form.major() == 16);
    CHECK(short_form.minor() == 0);

    CHECK(v(" v3.1.1 ").str() == "v3.1.1");
    CHECK(v("v3.1.1").components() == std::vector<std::uint32_t>{3, 1, 1});
    CHECK(v("1.2.3+build.5").prerelease().empty());
    CHECK(v("1.2.3-rc.1+build.5").prerelease() == "rc.1");
}

TEST_CASE("Version refuses text that is not a version", "[version]") {
    for (const char* bad : {"", "  ", "abc", "1..2", "1.2.", ".1", "1.x", "1.2.3-", "1.2.3-be ta", "1234567890.0", "v"}) {
        INFO(bad);
        auto parsed = Version::parse(bad);
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().kind == opnc::ErrorKind::invalid_input);
        CHECK(parsed.error().message.find("is not a version number") != std::string::npos);
    }
}

TEST_CASE("Version compares numerically, not as text", "[version]") {
    CHECK(v("10.0.0") > v("9.0.0"));
    CHECK(v("2.10.0") > v("2.9.0"));
    CHECK(v("2.9.0") > v("2.8.1"));
    CHECK(v("3.1.1") > v("3.1.0"));
    CHECK(v("34.0.1.2") > v("34.0.1"));
    CHECK(v("34.0.1.2") < v("34.0.2"));
    CHECK(v("16.0") == v("16.0.0"));
    CHECK(v("16") == v("16.0.0.0"));
    CHECK(v("v16.0.0") == v("16.0.0"));
    CHECK(v("1.2.3+a") == v("1.2.3+b"));
    CHECK(v("2.9.0").at_least(Version::of(2, 9, 0)));
    CHECK_FALSE(v("2.8.1").at_least(Version::of(2, 9, 0)));
}

TEST_CASE("Version sorts pre-releases before their release (SemVer rules)", "[version]") {
    CHECK(v("2.8.1-beta1") < v("2.8.1"));
    CHECK(v("2.8.1-beta1") > v("2.8.0"));
    CHECK(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
    CHECK(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
    CHECK(v("1.0.0-alpha.beta") < v("1.0.0-beta"));
    CHECK(v("1.0.0-beta.2") < v("1.0.0-beta.11"));
    CHECK(v("1.0.0-beta.11") < v("1.0.0-rc.1"));
    CHECK(v("1.0.0-rc.1") < v("1.0.0"));
    CHECK(v("1.0.0-rc.01") == v("1.0.0-rc.1"));
    CHECK_FALSE(v("2.9.0-beta1").at_least(Version::of(2, 9, 0)));
}

TEST_CASE("Version::of builds constants", "[version]") {
    auto c = Version::of(2, 9);
    CHECK(c.str() == "2.9.0");
    CHECK(c == v("2.9.0"));
    CHECK(c.prerelease().empty());
}
