#pragma once
// A token that stays usable: hands out the cached token while it is fresh and refreshes it when it
// is about to expire, with exactly one refresh in flight however many threads ask at once (refresh
// tokens are single use on both servers: two concurrent refreshes would kill the chain).
// Modelled on golang/oauth2's reuseTokenSource: the lock is held across the refresh, so every
// other caller waits and then gets the new token.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "opnc/error.hpp"
#include "opnc/oauth/client_config.hpp"
#include "opnc/oauth/token.hpp"
#include "opnc/oauth/token_client.hpp"
#include "opnc/transport.hpp"

namespace opnc::oauth {

class TokenSource {
public:
    virtual ~TokenSource() = default;
    // A token whose access token is usable now.
    virtual Result<Token> token() = 0;
};

struct CachingOptions {
    Clock clock;  // default: the system clock
    // Refresh this long before expiry; capped at half the token's lifetime.
    std::chrono::seconds leeway{60};
    // Persists a newly issued token (the old refresh token is already dead when this runs). Called
    // under the source's lock before the token is returned to anyone. If it fails (error or
    // exception), the new token is kept in memory and persisting is retried on the next call; no
    // caller gets a token that was not persisted.
    std::function<Result<void>(const Token&)> on_rotated;
};

class CachingTokenSource final : public TokenSource {
public:
    using Refresher = std::function<Result<Token>(const Token& current)>;

    CachingTokenSource(Token initial, Refresher refresher, CachingOptions options = {});
    // Refreshes with oauth::refresh against `config`'s token endpoint.
    CachingTokenSource(ClientConfig config, std::shared_ptr<Transport> transport, Token initial,
                       CachingOptions options = {}, TokenRequestOptions request_options = {});

    Result<Token> token() override;

    // Refreshes now, e.g. after the resource server answered 401 to the current access token.
    // Callers that started waiting before another caller's refresh finished get that refresh's
    // result instead of refreshing again.
    Result<Token> force_refresh();

    // Installs a token obtained elsewhere (a new authorization); clears a dead chain.
    void reset(Token token);

    // The cached token as it is, without refreshing.
    Token current() const;
    // Refreshes performed (successful or not) since construction.
    std::uint64_t refresh_count() const noexcept { return refreshes_.load(); }

private:
    Result<Token> refresh_locked();
    Result<Token> deliver_locked();

    mutable std::mutex mutex_;
    Token token_;
    Refresher refresher_;
    CachingOptions options_;
    std::optional<Error> dead_;  // the refresh token was refused: no further refresh is attempted
    bool unpersisted_ = false;   // token_ was rotated but on_rotated has not succeeded yet
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<std::uint64_t> refreshes_{0};
};

}  // namespace opnc::oauth
