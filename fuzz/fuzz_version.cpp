// Fuzz target: Version::parse and the version order (version.hpp), which decide the version gates
// (the authorization_method key of Nextcloud's /setup, OpenProject's minimum release). The input is
// two version texts separated by the first newline.
// Checked properties besides "no crash, no undefined behaviour, no leak":
// - a parsed version parses again from its str() to an equal version;
// - the order is a strict weak order on the pair: a == a, (a < b) == (b > a), and exactly one of
//   a < b, a == b, a > b; at_least agrees with >=.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "opnc/version.hpp"

namespace {

[[noreturn]] void property_broken(const char* what) {
    std::fprintf(stderr, "fuzz_version: property broken: %s\n", what);
    std::abort();
}

void check_one(const opnc::Version& v) {
    if (!(v == v)) property_broken("a version differs from itself");
    auto again = opnc::Version::parse(v.str());
    if (!again) property_broken("str() of a parsed version does not parse");
    if (!(*again == v)) property_broken("parsing str() again changes the version");
    (void)v.major(), (void)v.minor(), (void)v.patch(), (void)v.component(1000);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto newline = text.find('\n');
    auto a = opnc::Version::parse(text.substr(0, newline));
    auto b = opnc::Version::parse(newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1));
    if (a) check_one(*a);
    if (b) check_one(*b);
    if (a && b) {
        const auto ab = *a <=> *b;
        const auto ba = *b <=> *a;
        if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0)) property_broken("the order is not antisymmetric");
        if (a->at_least(*b) != (ab >= 0)) property_broken("at_least disagrees with the order");
    }
    return 0;
}
