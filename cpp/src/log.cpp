// The process-wide log sink (see log.hpp).
#include "opnc/log.hpp"

#include <atomic>
#include <mutex>

namespace opnc {
namespace {

// "Nobody listens" is a level above every real one, so log_enabled() needs a single comparison.
constexpr int kOff = 1000;

std::atomic<int> g_minimum{kOff};
std::mutex g_sink_mutex;
// Replaced as a whole under the mutex; log() copies the pointer and calls the sink outside the
// lock, so a slow sink (one waiting for the GIL) never blocks set_log_sink() or other threads.
std::shared_ptr<const LogSink> g_sink;
// The level asked for, kept while no sink is installed (g_minimum is then kOff).
int g_requested = static_cast<int>(LogLevel::debug);

}  // namespace

void set_log_sink(LogSink sink, LogLevel minimum) {
    std::shared_ptr<const LogSink> next = sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
    std::lock_guard lock(g_sink_mutex);
    g_sink = std::move(next);
    g_requested = static_cast<int>(minimum);
    g_minimum.store(g_sink ? g_requested : kOff, std::memory_order_relaxed);
}

void set_log_level(LogLevel minimum) {
    std::lock_guard lock(g_sink_mutex);
    g_requested = static_cast<int>(minimum);
    g_minimum.store(g_sink ? g_requested : kOff, std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
    return static_cast<int>(level) >= g_minimum.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view component, std::string_view message) noexcept {
    if (!log_enabled(level)) return;
    std::shared_ptr<const LogSink> sink;
    {
        std::lock_guard lock(g_sink_mutex);
        sink = g_sink;
    }
    if (!sink) return;
    try {
        (*sink)(level, component, message);
    } catch (...) {
        // Swallowed on purpose (log.hpp): diagnostics never change an operation's outcome.
    }
}

}  // namespace opnc
