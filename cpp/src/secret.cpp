#include "opnc/secret.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

namespace opnc {

Secret::Secret(std::string value) : value_(std::move(value)) {
    // A short string is copied, not moved, by std::string's move: clean the parameter's buffer.
    OPENSSL_cleanse(value.data(), value.capacity());
    value.clear();
}

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }

Secret& Secret::operator=(const Secret& other) {
    if (this != &other) {
        wipe();
        value_ = other.value_;
    }
    return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
    if (this != &other) {
        wipe();
        value_ = std::move(other.value_);
        other.wipe();
    }
    return *this;
}

Secret::~Secret() { wipe(); }

void Secret::wipe() noexcept {
    // A moved-from short string keeps its bytes in the small-string buffer: clean the capacity.
    if (value_.capacity() > 0) OPENSSL_cleanse(value_.data(), value_.capacity());
    value_.clear();
}

bool Secret::equals(std::string_view other) const noexcept {
    if (other.size() != value_.size()) return false;
    return CRYPTO_memcmp(value_.data(), other.data(), value_.size()) == 0;
}

bool Secret::equals(const Secret& other) const noexcept { return equals(std::string_view(other.value_)); }

Secret Secret::random_urlsafe(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (bytes > 0 && RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1)
        throw std::runtime_error("the system's random number generator failed");
    std::string encoded(4 * ((bytes + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), raw.data(), static_cast<int>(bytes));
    OPENSSL_cleanse(raw.data(), raw.size());
    encoded.resize(static_cast<std::size_t>(n));
    while (!encoded.empty() && encoded.back() == '=') encoded.pop_back();
    for (char& c : encoded) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    Secret out(std::move(encoded));
    return out;
}

}  // namespace opnc
