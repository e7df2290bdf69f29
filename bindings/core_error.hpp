#pragma once
// The one way a binding reports a core Error to Python: throw CoreError (or call unwrap on a
// Result). The translator registered in errors.cpp turns it into the class that
// opnc.errors.from_core() picks for the error's kind, with every field as an attribute.
#include <exception>
#include <string>
#include <utility>

#include "opnc/error.hpp"

namespace opnc::bindings {

class CoreError : public std::exception {
public:
    explicit CoreError(Error error) : error_(std::move(error)) {}
    const Error& error() const noexcept { return error_; }
    const char* what() const noexcept override { return error_.message.c_str(); }

private:
    Error error_;
};

// The value of a Result, or CoreError with its Error.
template <class T>
T unwrap(Result<T>&& result) {
    if (!result) throw CoreError(std::move(result.error()));
    return std::move(*result);
}

inline void unwrap(Result<void>&& result) {
    if (!result) throw CoreError(std::move(result.error()));
}

}  // namespace opnc::bindings
