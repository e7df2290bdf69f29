#include "opnc/oauth/pkce.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "opnc/oauth/form_encoding.hpp"

namespace opnc::oauth {

namespace {

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

}  // namespace

std::string s256_challenge(std::string_view verifier) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned int digest_length = 0;
    if (EVP_Digest(verifier.data(), verifier.size(), digest, &digest_length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), digest_length));
}

Pkce Pkce::generate(std::size_t length) {
    if (length < min_length || length > max_length)
        throw std::invalid_argument("a PKCE verifier has 43 to 128 characters");
    // Base64url yields 4 characters per 3 bytes; draw enough bytes, then cut to the exact length.
    // The alphabet [A-Za-z0-9-_] is a subset of the unreserved characters the RFC allows.
    Secret random = Secret::random_urlsafe((length * 3 + 3) / 4);
    Secret verifier(random.expose().substr(0, length));
    std::string challenge = s256_challenge(verifier.expose());
    return Pkce(std::move(verifier), std::move(challenge));
}

Result<Pkce> Pkce::from_verifier(Secret verifier) {
    const std::string& v = verifier.expose();
    if (v.size() < min_length || v.size() > max_length)
        return fail(ErrorKind::invalid_input, "A PKCE code verifier must have 43 to 128 characters.");
    for (unsigned char c : v)
        if (!is_unreserved(c))
            return fail(ErrorKind::invalid_input,
                        "A PKCE code verifier may only contain letters, digits and - . _ ~ (RFC 7636 4.1).");
    std::string challenge = s256_challenge(v);
    return Pkce(std::move(verifier), std::move(challenge));
}

}  // namespace opnc::oauth
