#pragma once
// The core's diagnostics: one process-wide log sink (level, component, message).
//
// Why a single global sink: log lines come from deep inside the transport and from worker threads
// the core starts itself; threading a logger object through every constructor would touch every
// concept for a cross-cutting concern. The Python bindings install a sink that forwards to
// Python's `logging` (logger "opnc.<component>"); C++ programs may install their own.
//
// Cost when nobody listens: log_enabled() is one relaxed atomic load, so callers guard the
// formatting of a message with it and pay nothing else.
//
// Rules for callers: never put a secret, a header value or a body into a message (a URL only
// without its query: it may hold `code=` or `state=`); never log while holding a mutex that a
// thread holding the Python GIL might wait for (the Python sink takes the GIL per record).
#include <functional>
#include <memory>
#include <string_view>

namespace opnc {

// The values are Python's logging levels, so a sink can pass them on unchanged.
enum class LogLevel : int { debug = 10, info = 20, warning = 30, error = 40 };

// Receives one record. Called on whatever thread logged, possibly on several threads at once.
using LogSink = std::function<void(LogLevel level, std::string_view component, std::string_view message)>;

// Installs `sink` (an empty function removes it) and the lowest level it wants. Thread-safe;
// a record already being delivered to the previous sink finishes there (never waits for it).
void set_log_sink(LogSink sink, LogLevel minimum = LogLevel::debug);

// Changes the lowest level delivered to the installed sink.
void set_log_level(LogLevel minimum);

// True when a sink is installed and wants records of this level.
bool log_enabled(LogLevel level) noexcept;

// Delivers one record to the sink, if any wants it. An exception thrown by the sink is swallowed:
// a diagnostics problem must never change the outcome of an operation.
void log(LogLevel level, std::string_view component, std::string_view message) noexcept;

}  // namespace opnc
