// Secret: cannot be printed or compared with ==, reads only through expose(), zeroes its memory.
#include <catch2/catch.hpp>

#include <concepts>
#include <ostream>
#include <set>
#include <sstream>
#include <type_traits>

#include "opnc/secret.hpp"

using opnc::Secret;

namespace {

template <class T>
concept Streamable = requires(std::ostream& os, const T& value) { os << value; };

template <class T>
concept ImplicitlyConvertibleToText =
    std::is_convertible_v<T, std::string> || std::is_convertible_v<T, std::string_view> || std::is_convertible_v<T, const char*>;

// True when the `count` bytes at `p` are all zero.
bool all_zero(const char* p, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
        if (p[i] != '\0') return false;
    return true;
}

}  // namespace

// The compile-time half of "a Secret never prints": these would fail the build, not a test.
static_assert(!Streamable<Secret>, "a Secret must not be streamable");
static_assert(Streamable<std::string>, "the concept itself must detect streamable types");
static_assert(!std::equality_comparable<Secret>, "a Secret must have no operator==");
static_assert(!ImplicitlyConvertibleToText<Secret>, "a Secret must not convert to text implicitly");
static_assert(!std::is_convertible_v<std::string, Secret>, "a Secret is only made explicitly");

TEST_CASE("Secret gives its value only through expose()", "[secret]") {
    Secret s("s3cr3t-value");
    CHECK(s.expose() == "s3cr3t-value");
    CHECK(s.size() == 12);
    CHECK_FALSE(s.empty());
    CHECK(Secret::redacted == "[redacted]");
    CHECK(Secret().empty());
}

TEST_CASE("Secret::equals compares values, including lengths", "[secret]") {
    Secret a("token-1");
    CHECK(a.equals(Secret("token-1")));
    CHECK_FALSE(a.equals(Secret("token-2")));
    CHECK_FALSE(a.equals(Secret("token-1x")));
    CHECK(a.equals(std::string_view("token-1")));
    CHECK_FALSE(a.equals(std::string_view("")));
    CHECK(Secret().equals(std::string_view("")));
}

TEST_CASE("Secret copies are independent", "[secret]") {
    Secret a("first-value-that-is-long-enough-for-the-heap");
    Secret b(a);
    a.wipe();
    CHECK(a.empty());
    CHECK(b.expose() == "first-value-that-is-long-enough-for-the-heap");
    Secret c;
    c = b;
    CHECK(c.equals(b));
}

TEST_CASE("Secret::wipe zeroes the whole buffer, spare capacity included", "[secret][wipe]") {
    SECTION("a value on the heap") {
        Secret s(std::string(100, 'k'));
        const char* buffer = s.expose().data();
        const std::size_t capacity = s.expose().capacity();
        REQUIRE(capacity >= 100);
        s.wipe();
        CHECK(s.empty());
        // clear() keeps the allocation, so the buffer is still owned by the Secret and readable.
        REQUIRE(s.expose().data() == buffer);
        CHECK(all_zero(buffer, capacity));
    }
    SECTION("a short value in the inline buffer") {
        Secret s("abc");
        const char* buffer = s.expose().data();
        const std::size_t capacity = s.expose().capacity();
        s.wipe();
        REQUIRE(s.expose().data() == buffer);
        CHECK(all_zero(buffer, capacity));
    }
    SECTION("a value that shrank keeps nothing in its spare capacity") {
        std::string text(64, 'z');
        text.resize(8);  // the tail 'z's stay in the allocation beyond size()
        Secret s(std::move(text));
        const char* buffer = s.expose().data();
        const std::size_t capacity = s.expose().capacity();
        REQUIRE(capacity >= 64);
        s.wipe();
        CHECK(all_zero(buffer, capacity));
    }
}

TEST_CASE("A moved-from Secret is empty and its inline buffer is zeroed", "[secret][wipe]") {
    SECTION("move construction of a short value (copied by std::string, not moved)") {
        Secret from("short-pw");
        Secret to(std::move(from));
        CHECK(to.expose() == "short-pw");
        CHECK(from.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
        CHECK(all_zero(from.expose().data(), from.expose().capacity()));
    }
    SECTION("move assignment of a short value") {
        Secret from("pw-2");
        Secret to("old");
        to = std::move(from);
        CHECK(to.expose() == "pw-2");
        CHECK(from.empty());  // NOLINT(bugprone-use-after-move)
        CHECK(all_zero(from.expose().data(), from.expose().capacity()));
    }
    SECTION("move of a long value hands the buffer over") {
        Secret from(std::string(40, 'q'));
        const char* buffer = from.expose().data();
        Secret to(std::move(from));
        CHECK(to.expose().data() == buffer);
        CHECK(from.empty());  // NOLINT(bugprone-use-after-move)
    }
}

TEST_CASE("Secret::random_urlsafe gives distinct URL-safe values", "[secret]") {
    std::set<std::string> seen;
    for (int i = 0; i < 50; ++i) {
        Secret s = Secret::random_urlsafe(32);
        CHECK(s.size() == 43);  // 32 bytes = 43 base64 characters without padding
        for (char c : s.expose()) CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
        seen.insert(s.expose());
    }
    CHECK(seen.size() == 50);
    CHECK(Secret::random_urlsafe(0).empty());
}
