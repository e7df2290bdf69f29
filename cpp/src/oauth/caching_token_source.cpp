#include "opnc/oauth/caching_token_source.hpp"

namespace opnc::oauth {

namespace {

// The refresh token is gone for good: retrying can only fail again (and counts as abuse for
// Nextcloud's brute-force protection). invalid_client may be a configuration being repaired and
// transport errors pass; neither is terminal.
bool is_terminal(const Error& error) { return error.kind == ErrorKind::oauth && error.server_id == "invalid_grant"; }

CachingTokenSource::Refresher client_refresher(ClientConfig config, std::shared_ptr<Transport> transport,
                                               const CachingOptions& options, TokenRequestOptions request_options) {
    // Expiries must be computed on the same clock the source compares them with.
    if (!request_options.clock) request_options.clock = options.clock;
    return [config = std::move(config), transport = std::move(transport),
            request_options = std::move(request_options)](const Token& current) {
        return refresh(config, *transport, current, request_options);
    };
}

}  // namespace

CachingTokenSource::CachingTokenSource(Token initial, Refresher refresher, CachingOptions options)
    : token_(std::move(initial)), refresher_(std::move(refresher)), options_(std::move(options)) {
    if (!options_.clock) options_.clock = system_clock();
}

CachingTokenSource::CachingTokenSource(ClientConfig config, std::shared_ptr<Transport> transport, Token initial,
                                       CachingOptions options, TokenRequestOptions request_options)
    : CachingTokenSource(std::move(initial),
                         client_refresher(std::move(config), std::move(transport), options, std::move(request_options)),
                         options) {}

Result<Token> CachingTokenSource::token() {
    std::lock_guard lock(mutex_);
    if (!token_.expires_within(options_.leeway, options_.clock())) return deliver_locked();
    return refresh_locked();
}

Result<Token> CachingTokenSource::force_refresh() {
    const std::uint64_t seen = generation_.load();
    std::lock_guard lock(mutex_);
    // Someone refreshed while this caller waited for the lock: that refresh is the one it wanted.
    if (generation_.load() != seen) {
        if (dead_) return std::unexpected(*dead_);
        return deliver_locked();
    }
    return refresh_locked();
}

void CachingTokenSource::reset(Token token) {
    std::lock_guard lock(mutex_);
    token_ = std::move(token);
    dead_.reset();
    unpersisted_ = false;
    generation_.fetch_add(1);
}

Token CachingTokenSource::current() const {
    std::lock_guard lock(mutex_);
    return token_;
}

Result<Token> CachingTokenSource::deliver_locked() {
    if (unpersisted_ && options_.on_rotated) {
        if (auto saved = options_.on_rotated(token_); !saved) return std::unexpected(saved.error());
    }
    unpersisted_ = false;
    return token_;
}

Result<Token> CachingTokenSource::refresh_locked() {
    if (dead_) return std::unexpected(*dead_);
    if (token_.refresh_token.empty())
        return fail(ErrorKind::invalid_input, "The token expired and there is no refresh token.",
                    "Authorize again to obtain a refresh token.");
    refreshes_.fetch_add(1);
    auto fresh = refresher_(token_);
    generation_.fetch_add(1);
    if (!fresh) {
        if (is_terminal(fresh.error())) dead_ = fresh.error();
        return std::unexpected(fresh.error());
    }
    token_ = std::move(*fresh);
    unpersisted_ = true;
    return deliver_locked();
}

}  // namespace opnc::oauth
