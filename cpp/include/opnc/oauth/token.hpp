#pragma once
// A token set as a client holds it: the two credentials as Secrets and an expiry computed on the
// client's own clock (a server's created_at is never trusted: clocks differ).
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "opnc/secret.hpp"

namespace opnc::oauth {

using TimePoint = std::chrono::system_clock::time_point;
// Injectable so that tests and the caching source can move time without sleeping.
using Clock = std::function<TimePoint()>;

// std::chrono::system_clock::now, as a Clock.
Clock system_clock();

struct Token {
    Secret access_token;
    Secret refresh_token;    // empty when the server issued none
    std::string token_type;  // as received ("Bearer", "bearer", ...); "Bearer" when absent
    std::string scope;       // space separated; empty when the server did not say
    TimePoint obtained_at{}; // when the request that produced it was sent
    std::optional<TimePoint> expires_at;  // none when the server gave no expires_in

    // The lifetime the server granted (expires_at - obtained_at), if known.
    std::optional<std::chrono::seconds> lifetime() const;

    // True when the access token is expired or will be within `leeway` at `now`. The leeway is
    // capped at half the lifetime, so a short-lived token is not refreshed on every use.
    bool expires_within(std::chrono::seconds leeway, TimePoint now) const;

    // The leeway actually applied: min(leeway, lifetime / 2).
    std::chrono::seconds effective_leeway(std::chrono::seconds leeway) const;
};

}  // namespace opnc::oauth
