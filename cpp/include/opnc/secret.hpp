#pragma once
// A credential that never prints. There is deliberately no operator<<, no operator== and no
// implicit conversion: the only way to the bytes is expose(), used where they go on the wire.
#include <cstddef>
#include <string>
#include <string_view>

namespace opnc {

class Secret {
public:
    Secret() = default;
    // Takes the value over; what the move leaves in `value` (a short string's inline buffer) is zeroed.
    explicit Secret(std::string value);
    Secret(const Secret& other) : value_(other.value_) {}
    Secret(Secret&& other) noexcept;
    Secret& operator=(const Secret& other);
    Secret& operator=(Secret&& other) noexcept;
    ~Secret();

    // The raw value, for the wire only.
    const std::string& expose() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }
    std::size_t size() const noexcept { return value_.size(); }

    // Constant-time comparison (the time depends on the lengths only).
    bool equals(const Secret& other) const noexcept;
    bool equals(std::string_view other) const noexcept;

    // What every text rendering of a secret shows.
    static constexpr std::string_view redacted = "[redacted]";

    // Zeroes the whole buffer (including spare capacity) and empties the value.
    void wipe() noexcept;

    // A random value: `bytes` bytes from OpenSSL's CSPRNG, URL-safe base64 without padding.
    static Secret random_urlsafe(std::size_t bytes);

private:
    std::string value_;
};

bool operator==(const Secret&, const Secret&) = delete;
bool operator!=(const Secret&, const Secret&) = delete;

}  // namespace opnc
