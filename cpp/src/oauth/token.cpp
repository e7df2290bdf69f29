#include "opnc/oauth/token.hpp"

#include <algorithm>

namespace opnc::oauth {

Clock system_clock() {
    return [] { return std::chrono::system_clock::now(); };
}

std::optional<std::chrono::seconds> Token::lifetime() const {
    if (!expires_at) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(*expires_at - obtained_at);
}

std::chrono::seconds Token::effective_leeway(std::chrono::seconds leeway) const {
    leeway = std::max(leeway, std::chrono::seconds{0});
    if (auto life = lifetime()) return std::min(leeway, std::max(*life, std::chrono::seconds{0}) / 2);
    return leeway;
}

bool Token::expires_within(std::chrono::seconds leeway, TimePoint now) const {
    if (access_token.empty()) return true;
    if (!expires_at) return false;  // no expiry known: valid until the server says otherwise
    return now >= *expires_at - effective_leeway(leeway);
}

}  // namespace opnc::oauth
