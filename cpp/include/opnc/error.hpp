#pragma once
// Errors are values inside the core. The bindings turn an Error into the matching class of
// python/opnc/errors.py (one translator); the CLI maps the kind and step to an exit code.
// No field of an Error may ever hold a secret.
#include <expected>
#include <string>
#include <string_view>

namespace opnc {

enum class ErrorKind {
    invalid_input,        // the caller's input is wrong; nothing was sent
    connection_failed,    // DNS, connect, reset, or an unreadable answer at transport level
    tls,                  // certificate or handshake failure
    timeout,              // connect or total timeout
    too_large,            // a response over the size cap
    aborted,              // interrupted (Ctrl-C, or an abort hook)
    unauthenticated,      // 401: credentials refused
    forbidden,            // 403: authenticated but not allowed (for example not an admin)
    not_found,            // 404
    conflict,             // 409 or a uniqueness violation
    validation,           // 400/422: the server refused the values
    server_error,         // 5xx
    protocol,             // an answer that does not follow the contract (bad JSON, missing fields, 3xx)
    unsupported_version,  // a server version opnc cannot work with
    enterprise_required,  // OpenProject needs an Enterprise token for Two-way OAuth 2.0
    preflight_failed,     // a read-only check before any change failed
    confirmation_required,// the only way forward destroys something: needs an explicit option
    in_progress,          // another run holds the integration's lock
    journal,              // the journal cannot be read or written
    verify_failed,        // the integration is set up but a check failed
    oauth,                // an OAuth 2.0 error answer (see server_id for the RFC 6749 code)
    internal,             // a bug in opnc
};

// The stable name of a kind ("invalid_input", ...), used in JSON output and by the bindings.
std::string_view to_string(ErrorKind kind) noexcept;

struct Error {
    ErrorKind kind = ErrorKind::internal;
    std::string message;         // one sentence for a person; never a secret
    std::string hint;            // what the operator should do about it
    std::string step;            // the exchange step ("preflight", "create_storage", ...) or empty
    int http_status = 0;         // 0 when no HTTP answer was involved
    std::string server_id;       // the server's error identifier (errorIdentifier, OAuth `error`, ...)
    std::string server_message;  // the server's message, for diagnostics only (localised: never branch on it)

    // "message (hint)" style text for logs and exceptions.
    std::string describe() const;
};

template <class T>
using Result = std::expected<T, Error>;

inline Error make_error(ErrorKind kind, std::string message, std::string hint = {}, std::string step = {}) {
    Error e;
    e.kind = kind;
    e.message = std::move(message);
    e.hint = std::move(hint);
    e.step = std::move(step);
    return e;
}

inline std::unexpected<Error> fail(ErrorKind kind, std::string message, std::string hint = {}, std::string step = {}) {
    return std::unexpected<Error>(make_error(kind, std::move(message), std::move(hint), std::move(step)));
}

}  // namespace opnc
