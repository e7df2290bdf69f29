#pragma once
// Proof Key for Code Exchange (RFC 7636), S256 only: "plain" gives no protection and neither
// server needs it.
#include <cstddef>
#include <string>
#include <string_view>

#include "opnc/error.hpp"
#include "opnc/secret.hpp"

namespace opnc::oauth {

class Pkce {
public:
    static constexpr std::size_t min_length = 43;
    static constexpr std::size_t max_length = 128;
    static constexpr std::string_view method = "S256";

    // A fresh verifier of `length` characters (43 to 128) from OpenSSL's CSPRNG; the default gives
    // 384 bits of entropy. Throws std::invalid_argument for a length outside the range.
    static Pkce generate(std::size_t length = 64);

    // Rebuilds the pair from a stored verifier; invalid_input unless it is 43-128 characters of
    // [A-Za-z0-9-._~] (RFC 7636 section 4.1).
    static Result<Pkce> from_verifier(Secret verifier);

    // Sent only in the token request.
    const Secret& verifier() const noexcept { return verifier_; }
    // BASE64URL(SHA256(ASCII(verifier))), sent in the authorization URL; not secret.
    const std::string& challenge() const noexcept { return challenge_; }

private:
    Pkce(Secret verifier, std::string challenge) : verifier_(std::move(verifier)), challenge_(std::move(challenge)) {}
    Secret verifier_;
    std::string challenge_;
};

// BASE64URL(SHA256(verifier)) for any input (no validation); exposed for tests and servers.
std::string s256_challenge(std::string_view verifier);

}  // namespace opnc::oauth
