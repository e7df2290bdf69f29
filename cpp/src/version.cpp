#include "opnc/version.hpp"

#include <algorithm>
#include <cctype>

namespace opnc {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::unexpected<Error> not_a_version(std::string_view text, std::string_view why) {
    return fail(ErrorKind::invalid_input,
                "\"" + std::string(text.substr(0, 64)) + "\" is not a version number (" + std::string(why) + ").",
                "Expected dot-separated numbers such as 3.1.1 or 16.0.0.");
}

// SemVer 2.0.0 §11 for pre-release identifiers: numeric ones compare numerically and sort before
// alphanumeric ones; a shorter list that is a prefix of a longer one sorts first.
std::strong_ordering compare_prerelease(std::string_view a, std::string_view b) {
    while (!a.empty() && !b.empty()) {
        auto cut = [](std::string_view& s) {
            auto dot = s.find('.');
            std::string_view part = s.substr(0, dot);
            s = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
            return part;
        };
        std::string_view x = cut(a), y = cut(b);
        const bool xn = all_digits(x), yn = all_digits(y);
        if (xn && yn) {
            // Compare as numbers without overflow: strip leading zeros, then length, then text.
            auto strip = [](std::string_view s) {
                while (s.size() > 1 && s.front() == '0') s.remove_prefix(1);
                return s;
            };
            x = strip(x);
            y = strip(y);
            if (x.size() != y.size()) return x.size() <=> y.size();
            if (auto c = x.compare(y); c != 0) return c <=> 0;
        } else if (xn != yn) {
            return xn ? std::strong_ordering::less : std::strong_ordering::greater;
        } else if (auto c = x.compare(y); c != 0) {
            return c <=> 0;
        }
    }
    if (a.empty() && b.empty()) return std::strong_ordering::equal;
    return a.empty() ? std::strong_ordering::less : std::strong_ordering::greater;
}

}  // namespace

Result<Version> Version::parse(std::string_view input) {
    const std::string_view text = trim(input);
    std::string_view rest = text;
    if (!rest.empty() && (rest.front() == 'v' || rest.front() == 'V')) rest.remove_prefix(1);
    if (auto plus = rest.find('+'); plus != std::string_view::npos) rest = rest.substr(0, plus);

    std::string_view numbers = rest, pre;
    if (auto dash = rest.find_first_of("-~"); dash != std::string_view::npos) {
        numbers = rest.substr(0, dash);
        pre = rest.substr(dash + 1);
        if (pre.empty()) return not_a_version(input, "empty pre-release");
        for (char c : pre)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-')
                return not_a_version(input, "unexpected character in the pre-release");
    }
    if (numbers.empty()) return not_a_version(input, "no number");

    Version v;
    while (true) {
        auto dot = numbers.find('.');
        std::string_view part = numbers.substr(0, dot);
        if (!all_digits(part)) return not_a_version(input, "a component is not a number");
        if (part.size() > 9) return not_a_version(input, "a component is too large");
        v.components_.push_back(static_cast<std::uint32_t>(std::stoul(std::string(part))));
        if (dot == std::string_view::npos) break;
        numbers = numbers.substr(dot + 1);
    }
    v.prerelease_ = std::string(pre);
    v.text_ = std::string(text);
    return v;
}

Version Version::of(std::uint32_t major, std::uint32_t minor, std::uint32_t patch) {
    Version v;
    v.components_ = {major, minor, patch};
    v.text_ = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    return v;
}

std::uint32_t Version::component(std::size_t index) const noexcept {
    return index < components_.size() ? components_[index] : 0;
}

std::strong_ordering operator<=>(const Version& a, const Version& b) noexcept {
    const std::size_t n = std::max(a.components_.size(), b.components_.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (auto c = a.component(i) <=> b.component(i); c != 0) return c;
    }
    // A release outranks its pre-releases.
    if (a.prerelease_.empty() || b.prerelease_.empty()) {
        if (a.prerelease_.empty() && b.prerelease_.empty()) return std::strong_ordering::equal;
        return a.prerelease_.empty() ? std::strong_ordering::greater : std::strong_ordering::less;
    }
    return compare_prerelease(a.prerelease_, b.prerelease_);
}

}  // namespace opnc
