// PKCE (RFC 7636): the appendix B vector, the verifier alphabet and length rules.
#include <catch2/catch.hpp>

#include <set>

#include "opnc/oauth/pkce.hpp"

using opnc::ErrorKind;
using opnc::Secret;
using opnc::oauth::Pkce;

TEST_CASE("Pkce reproduces RFC 7636 appendix B", "[oauth][pkce]") {
    auto pkce = Pkce::from_verifier(Secret("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
    REQUIRE(pkce);
    CHECK(pkce->challenge() == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    CHECK(pkce->verifier().expose() == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    CHECK(Pkce::method == "S256");
}

TEST_CASE("Pkce::generate makes verifiers of the asked length from the unreserved alphabet", "[oauth][pkce]") {
    for (std::size_t length : {std::size_t{43}, std::size_t{64}, std::size_t{100}, std::size_t{128}}) {
        Pkce pkce = Pkce::generate(length);
        const std::string& v = pkce.verifier().expose();
        REQUIRE(v.size() == length);
        for (char c : v) CHECK(std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_").find(c) != std::string_view::npos);
        CHECK(pkce.challenge() == opnc::oauth::s256_challenge(v));
        CHECK(pkce.challenge().size() == 43);  // 32 bytes of SHA-256, base64url without padding
        // The generated verifier must pass its own validation.
        CHECK(Pkce::from_verifier(pkce.verifier()).has_value());
    }
    CHECK(Pkce::generate().verifier().size() == 64);
    std::set<std::string> seen;
    for (int i = 0; i < 50; ++i) seen.insert(Pkce::generate().verifier().expose());
    CHECK(seen.size() == 50);
    CHECK_THROWS_AS(Pkce::generate(42), std::invalid_argument);
    CHECK_THROWS_AS(Pkce::generate(129), std::invalid_argument);
}

TEST_CASE("Pkce::from_verifier enforces RFC 7636 4.1", "[oauth][pkce]") {
    CHECK(Pkce::from_verifier(Secret(std::string(43, 'a'))).has_value());
    CHECK(Pkce::from_verifier(Secret(std::string(128, '~'))).has_value());
    CHECK(Pkce::from_verifier(Secret(std::string(42, 'a'))).error().kind == ErrorKind::invalid_input);
    CHECK(Pkce::from_verifier(Secret(std::string(129, 'a'))).error().kind == ErrorKind::invalid_input);
    auto bad = Pkce::from_verifier(Secret(std::string(50, 'a') + "+"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::invalid_input);
    CHECK(bad.error().message.find("aaaa") == std::string::npos);  // the verifier is never echoed
    CHECK(Pkce::from_verifier(Secret(std::string(43, 'a') + "/")).error().kind == ErrorKind::invalid_input);
    CHECK(Pkce::from_verifier(Secret(std::string(43, 'A') + ".-_~")).has_value());
}
