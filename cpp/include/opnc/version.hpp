#pragma once
// A server or app version as the servers render it ("16.0.0", "34.0.1.2", "3.1.1", "2.8.1-beta1"),
// compared numerically component by component. Version gates (the `authorization_method` key of
// Nextcloud's /setup from integration_openproject 2.9.0, OpenProject's minimum release) must never
// compare strings: "10.0.0" < "9.0.0" as text.
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "opnc/error.hpp"

namespace opnc {

class Version {
public:
    // Accepts an optional leading "v", one or more dot-separated decimal components, an optional
    // pre-release after "-" or "~" ("beta1", "rc.2") and ignores build metadata after "+".
    // Anything else is an Error of kind invalid_input naming the text.
    static Result<Version> parse(std::string_view text);

    // A version from numbers, for constants such as Version::of(2, 9, 0).
    static Version of(std::uint32_t major, std::uint32_t minor = 0, std::uint32_t patch = 0);

    // Missing components read as 0: "16" has major 16, minor 0, patch 0.
    std::uint32_t major() const noexcept { return component(0); }
    std::uint32_t minor() const noexcept { return component(1); }
    std::uint32_t patch() const noexcept { return component(2); }
    std::uint32_t component(std::size_t index) const noexcept;
    const std::vector<std::uint32_t>& components() const noexcept { return components_; }
    const std::string& prerelease() const noexcept { return prerelease_; }

    // The text it was parsed from, trimmed ("34.0.1.2"); for of(): "2.9.0".
    const std::string& str() const noexcept { return text_; }

    // Numeric order; trailing zero components do not count ("16.0" == "16.0.0"); a pre-release sorts
    // before its release ("2.8.1-beta1" < "2.8.1"); pre-releases compare by SemVer identifier rules.
    friend std::strong_ordering operator<=>(const Version& a, const Version& b) noexcept;
    friend bool operator==(const Version& a, const Version& b) noexcept {
        return (a <=> b) == std::strong_ordering::equal;
    }

    bool at_least(const Version& minimum) const noexcept { return *this >= minimum; }

private:
    std::vector<std::uint32_t> components_;
    std::string prerelease_;
    std::string text_;
};

}  // namespace opnc
