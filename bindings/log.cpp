// opnc._core logging: forwards the core's diagnostics (opnc/log.hpp) to Python's `logging`, under
// the logger "opnc.<component>" ("opnc.http" for requests), so that they reach whatever handlers
// the application configured for "opnc".
//
// Why records from threads without the GIL go through a forwarder thread instead of taking the GIL
// themselves: a core thread may log while it holds a core lock that a Python thread holding the
// GIL waits for (CachingTokenSource refreshes under its mutex; its `current` property takes that
// mutex). Taking the GIL there would deadlock. So such a thread hands the record to the forwarder,
// which holds no core lock and is therefore always safe to block on the GIL, and waits a short
// while for it to be written: records stay in order and are in the log when the call that made
// them returns, unless the GIL is held by a thread that is itself stuck, in which case the core
// thread goes on and the record follows as soon as the GIL is free. A thread that holds the GIL
// already (core code called without releasing it) writes the record directly.
#include <pybind11/pybind11.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "opnc/log.hpp"

namespace py = pybind11;

namespace {

// How long a core thread waits for its record to be written before it goes on without waiting.
constexpr auto kMaxWaitForRecord = std::chrono::milliseconds(100);

struct Record {
    int level = 0;
    std::string component;
    std::string message;
    double created = 0;  // seconds since the epoch, as LogRecord.created
    std::uint64_t seq = 0;
};

double now_epoch_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Writes one record to Python's logging. Needs the GIL. No Python object outlives the call (the
// sink outlives the interpreter at exit); the imports are lookups in sys.modules.
void write_record(const Record& record) {
    try {
        std::string name = "opnc";
        if (!record.component.empty()) name.append(".").append(record.component);
        py::module_ logging = py::module_::import("logging");
        py::object logger = logging.attr("getLogger")(name);
        if (!logger.attr("isEnabledFor")(record.level).cast<bool>()) return;
        // "%s" keeps a '%' in a URL from being taken as a format directive.
        py::object log_record = logger.attr("makeRecord")(name, record.level, "(opnc core)", 0, "%s",
                                                          py::make_tuple(py::str(record.message)), py::none());
        // The time the core logged it, not the time it was written (a forwarded record may wait).
        log_record.attr("created") = record.created;
        log_record.attr("msecs") = (record.created - static_cast<double>(static_cast<long long>(record.created))) * 1000.0;
        log_record.attr("relativeCreated") = (record.created - logging.attr("_startTime").cast<double>()) * 1000.0;
        logger.attr("handle")(log_record);
    } catch (py::error_already_set& e) {
        // A failing handler must not break the operation that logged (log.hpp). Python's logging
        // reports handler errors itself; this is only reached by a broken logging setup.
        e.discard_as_unraisable("opnc log sink");
    }
}

// The thread that writes records of threads without the GIL (see the top of this file).
class Forwarder {
public:
    // From a thread without the GIL: queues the record and waits (bounded) until it is written.
    void submit(Record record) {
        std::unique_lock lock(mutex_);
        if (stopping_) return;
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
        record.seq = ++submitted_;
        const std::uint64_t mine = record.seq;
        queue_.push_back(std::move(record));
        work_.notify_one();
        written_.wait_for(lock, kMaxWaitForRecord, [&] { return written_seq_ >= mine || stopping_; });
    }

    // At interpreter exit, with the GIL held: writes what is queued and ends the thread.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        work_.notify_all();
        written_.notify_all();
        if (thread_.joinable()) {
            py::gil_scoped_release release;  // the forwarder needs the GIL to finish its batch
            thread_.join();
        }
    }

private:
    void run() {
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                work_.wait(lock, [&] { return !queue_.empty() || stopping_; });
                if (queue_.empty()) return;  // stopping, nothing left
            }
            // Only this thread and GIL holders write records; the GIL is taken with no lock held.
            py::gil_scoped_acquire gil;
            std::deque<Record> batch;
            {
                std::lock_guard lock(mutex_);
                batch.swap(queue_);
            }
            for (const Record& record : batch) write_record(record);
            {
                std::lock_guard lock(mutex_);
                written_seq_ = batch.back().seq;
            }
            written_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable work_;
    std::condition_variable written_;
    std::deque<Record> queue_;
    std::uint64_t submitted_ = 0;
    std::uint64_t written_seq_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

// Never destroyed: core threads may still hold the sink while the process exits. A child made by
// fork() gets a new one: the parent's forwarder thread does not exist there, and its mutex may have
// been held by another thread at the moment of the fork.
std::atomic<Forwarder*> g_forwarder{new Forwarder()};

Forwarder& forwarder() { return *g_forwarder.load(); }

void renew_forwarder_in_fork_child() { g_forwarder.store(new Forwarder()); }

void forward_to_python_logging(opnc::LogLevel level, std::string_view component, std::string_view message) {
    if (!Py_IsInitialized()) return;
    Record record{static_cast<int>(level), std::string(component), std::string(message), now_epoch_seconds(), 0};
    if (PyGILState_Check()) {
        write_record(record);
    } else {
        forwarder().submit(std::move(record));
    }
}

}  // namespace

void init_log(py::module_& m) {
    // Python decides what it wants (logger levels can change at any time), so the core delivers
    // every level by default; set_log_level() raises the floor where the round trips matter.
    opnc::set_log_sink(&forward_to_python_logging, opnc::LogLevel::debug);
    pthread_atfork(nullptr, nullptr, &renew_forwarder_in_fork_child);
    // At interpreter exit no record may reach Python any more: remove the sink, then let the
    // forwarder write what it holds and end.
    py::module_::import("atexit").attr("register")(py::cpp_function([] {
        opnc::set_log_sink(nullptr);
        forwarder().stop();
    }));

    m.def(
        "set_log_level", [](int level) { opnc::set_log_level(static_cast<opnc::LogLevel>(level)); }, py::arg("level"),
        "The lowest logging level (logging.DEBUG, logging.INFO, ...) the core delivers to Python's logging.\n"
        "Default DEBUG: Python's logger levels decide. A higher floor saves the hand-over of each record.");
    m.def(
        "log_enabled", [](int level) { return opnc::log_enabled(static_cast<opnc::LogLevel>(level)); }, py::arg("level"),
        "Whether the core delivers records of this level to Python's logging.");
}
