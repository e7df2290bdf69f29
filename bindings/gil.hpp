#pragma once
// GIL release and Ctrl-C for every binding that calls into the core where it may wait on the network.
//
// How to use it (the OAuth engine, the clients and the exchange bindings do the same):
//
//   1. Every transport the binding creates gets the hook:
//          opnc::TransportOptions options;
//          options.should_abort = opnc::bindings::python_abort_hook();
//      A transport built once (in a constructor) may keep it: the hook looks up the state of the
//      call that is running on the calling thread, so it is valid for every later call.
//   2. Every blocking core call goes through without_gil():
//          auto result = opnc::bindings::without_gil([&] { return integration.apply(plan); });
//          auto value = opnc::bindings::unwrap(std::move(result));
//      The GIL is released for the call (other Python threads run meanwhile). When the call
//      returns, a Python exception that a signal handler raised during it (KeyboardInterrupt on
//      Ctrl-C) is raised, and the call's own result (an "aborted" error) is dropped.
//      Never touch Python objects inside the lambda: copy arguments into C++ values before.
//   (init_transport() calls remember_main_thread() while the module is imported; nothing else to set up.)
//
// What the hook does: transports poll it at least every 100 ms. On the main thread, inside
// without_gil(), it takes the GIL for a moment and runs PyErr_CheckSignals() (only the main thread
// runs Python's signal handlers). If a handler raises, the exception is parked in the call's state
// and the hook returns true from then on, so the transfer ends with kind "aborted" and the core
// unwinds. On a thread the core started itself (no without_gil() of its own) the hook follows the
// main thread's running call: it returns true once that call was interrupted. Code in the core that
// blocks the calling thread while workers do the network work (a join, a future) should poll the
// same hook while it waits, so that the signal is seen at all.
#include <pybind11/pybind11.h>

#include <atomic>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace opnc::bindings {

namespace detail {

// One blocking call from Python into the core.
struct CallState {
    bool on_main_thread = false;
    std::atomic<bool> interrupted{false};
    // The parked Python exception; read and written only with the GIL held.
    PyObject* type = nullptr;
    PyObject* value = nullptr;
    PyObject* traceback = nullptr;
};

// The call running on this thread (nullptr on threads the core started).
inline thread_local CallState* current_call = nullptr;
// Set when the main thread's running call was interrupted; worker threads follow it.
inline std::atomic<bool> main_call_interrupted{false};

// The thread ident of Python's main thread, set by remember_main_thread() while the module is
// imported. (Asking Python lazily inside without_gil() could deadlock: a function-local static
// whose initialiser imports a module may release the GIL while other threads wait on its guard.)
inline std::atomic<unsigned long> main_thread_ident{0};


inline bool poll_python_signals() {
    CallState* call = current_call;
    if (call == nullptr) return main_call_interrupted.load();
    if (call->interrupted.load()) return true;
    if (!call->on_main_thread) return false;
    pybind11::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() == 0) return false;
    PyErr_Fetch(&call->type, &call->value, &call->traceback);
    call->interrupted = true;
    main_call_interrupted = true;
    return true;
}

// Installs a CallState for the calling thread (GIL held) and restores the previous one (a core
// call may call back into Python, which may call the core again).
class CallScope {
public:
    CallScope() : previous_(current_call) {
        state_.on_main_thread = PyThread_get_thread_ident() == main_thread_ident.load();
        if (state_.on_main_thread) main_call_interrupted = false;
        current_call = &state_;
    }
    ~CallScope() {
        current_call = previous_;
        if (state_.on_main_thread && previous_ == nullptr) main_call_interrupted = false;
        Py_XDECREF(state_.type);
        Py_XDECREF(state_.value);
        Py_XDECREF(state_.traceback);
    }
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

    // Raises the parked exception, or one for a signal that arrived after the last poll.
    void raise_if_interrupted() {
        if (state_.type != nullptr) {
            PyErr_Restore(state_.type, state_.value, state_.traceback);
            state_.type = state_.value = state_.traceback = nullptr;
            throw pybind11::error_already_set();
        }
        if (state_.on_main_thread && PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
    }

private:
    CallState state_;
    CallState* previous_;
};

}  // namespace detail

// Called once from the module's init (GIL held): records which thread is Python's main thread.
inline void remember_main_thread() {
    detail::main_thread_ident = pybind11::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
}

// The should_abort hook for core transports (see the top of this file).
inline std::function<bool()> python_abort_hook() { return &detail::poll_python_signals; }

// Runs `fn` with the GIL released; afterwards raises what a Python signal handler raised meanwhile.
// Must be called with the GIL held.
template <class Fn>
std::invoke_result_t<Fn&> without_gil(Fn&& fn) {
    using R = std::invoke_result_t<Fn&>;
    detail::CallScope scope;
    if constexpr (std::is_void_v<R>) {
        {
            pybind11::gil_scoped_release release;
            fn();
        }
        scope.raise_if_interrupted();
    } else {
        std::optional<R> result;
        {
            pybind11::gil_scoped_release release;
            result.emplace(fn());
        }
        scope.raise_if_interrupted();
        return std::move(*result);
    }
}

}  // namespace opnc::bindings
