#include "opnc/error.hpp"

namespace opnc {

std::string_view to_string(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::invalid_input: return "invalid_input";
        case ErrorKind::connection_failed: return "connection_failed";
        case ErrorKind::tls: return "tls";
        case ErrorKind::timeout: return "timeout";
        case ErrorKind::too_large: return "too_large";
        case ErrorKind::aborted: return "aborted";
        case ErrorKind::unauthenticated: return "unauthenticated";
        case ErrorKind::forbidden: return "forbidden";
        case ErrorKind::not_found: return "not_found";
        case ErrorKind::conflict: return "conflict";
        case ErrorKind::validation: return "validation";
        case ErrorKind::server_error: return "server_error";
        case ErrorKind::protocol: return "protocol";
        case ErrorKind::unsupported_version: return "unsupported_version";
        case ErrorKind::enterprise_required: return "enterprise_required";
        case ErrorKind::preflight_failed: return "preflight_failed";
        case ErrorKind::confirmation_required: return "confirmation_required";
        case ErrorKind::in_progress: return "in_progress";
        case ErrorKind::journal: return "journal";
        case ErrorKind::verify_failed: return "verify_failed";
        case ErrorKind::oauth: return "oauth";
        case ErrorKind::internal: return "internal";
    }
    return "internal";
}

std::string Error::describe() const {
    std::string out = message;
    if (!hint.empty()) out += " Hint: " + hint;
    return out;
}

}  // namespace opnc
