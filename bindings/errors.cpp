// The single translator from core errors to the Python exception hierarchy of opnc.errors.
#include <pybind11/pybind11.h>

#include "core_error.hpp"

namespace py = pybind11;

namespace {

// The ErrorKind whose stable name is `name` (ErrorKind::internal for an unknown name).
opnc::ErrorKind kind_named(std::string_view name) {
    for (int k = 0; k <= static_cast<int>(opnc::ErrorKind::internal); ++k) {
        const auto kind = static_cast<opnc::ErrorKind>(k);
        if (opnc::to_string(kind) == name) return kind;
    }
    return opnc::ErrorKind::internal;
}

}  // namespace

void init_errors(py::module_& m) {
    py::register_exception_translator([](std::exception_ptr thrown) {
        try {
            if (thrown) std::rethrow_exception(thrown);
        } catch (const opnc::bindings::CoreError& core) {
            const opnc::Error& e = core.error();
            try {
                // opnc.errors picks the class (and its built-in bases) for the kind; one source of truth.
                py::object from_core = py::module_::import("opnc.errors").attr("from_core");
                py::object exception = from_core(std::string(opnc::to_string(e.kind)), e.message, e.hint, e.step,
                                                 e.http_status, e.server_id, e.server_message);
                PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
            } catch (py::error_already_set& failure) {
                failure.restore();  // e.g. opnc.errors cannot be imported: report that instead
            }
        }
    });

    // Raises the Python exception for a core Error built from these fields. It exercises the same
    // translator every binding uses; the tests check each kind's class and attributes through it.
    m.def(
        "_raise_core_error",
        [](std::string_view kind, std::string message, std::string hint, std::string step, int http_status,
           std::string server_id, std::string server_message) {
            opnc::Error e;
            e.kind = kind_named(kind);
            e.message = std::move(message);
            e.hint = std::move(hint);
            e.step = std::move(step);
            e.http_status = http_status;
            e.server_id = std::move(server_id);
            e.server_message = std::move(server_message);
            throw opnc::bindings::CoreError(std::move(e));
        },
        py::arg("kind"), py::arg("message"), py::arg("hint") = "", py::arg("step") = "", py::arg("http_status") = 0,
        py::arg("server_id") = "", py::arg("server_message") = "");
}
