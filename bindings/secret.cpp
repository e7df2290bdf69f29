// opnc.Secret: a credential that never prints. Python code reads it only with expose().
#include <pybind11/pybind11.h>

#include "opnc/secret.hpp"

namespace py = pybind11;

void init_secret(py::module_& m) {
    py::class_<opnc::Secret>(m, "Secret", R"doc(A credential (token, password, client secret) that never prints.

``repr()`` and ``str()`` show ``[redacted]``; ``expose()`` returns the value. There is no ``==``
(use ``equals()``, which compares in constant time) and a Secret cannot be pickled, so it cannot
end up in a file or another process by accident.)doc")
        // Arguments are taken as plain objects and checked here: pybind11's own "incompatible
        // function arguments" message would print the rejected value, which may be the credential.
        .def(py::init([](const py::object& value) {
                 if (!py::isinstance<py::str>(value)) throw py::type_error("Secret() takes a str");
                 return opnc::Secret(value.cast<std::string>());
             }),
             py::arg("value"))
        .def("expose", [](const opnc::Secret& s) { return s.expose(); }, "The value. Use it only where it goes on the wire.")
        .def(
            "equals",
            [](const opnc::Secret& self, const py::object& other) {
                if (py::isinstance<opnc::Secret>(other)) return self.equals(other.cast<const opnc::Secret&>());
                if (py::isinstance<py::str>(other)) return self.equals(std::string_view(other.cast<std::string>()));
                throw py::type_error("Secret.equals() takes a Secret or a str");
            },
            py::arg("other"), "Constant-time comparison with another Secret or a str.")
        .def("__len__", &opnc::Secret::size)
        .def("__bool__", [](const opnc::Secret& s) { return !s.empty(); })
        .def("__repr__", [](const opnc::Secret&) { return "Secret('" + std::string(opnc::Secret::redacted) + "')"; })
        .def("__str__", [](const opnc::Secret&) { return std::string(opnc::Secret::redacted); })
        .def("__format__", [](const opnc::Secret&, const std::string&) { return std::string(opnc::Secret::redacted); })
        .def("__eq__", [](const opnc::Secret&, const py::object&) -> bool {
            throw py::type_error("Secrets are not compared with ==; use Secret.equals(), which runs in constant time");
        })
        .def("__ne__", [](const opnc::Secret&, const py::object&) -> bool {
            throw py::type_error("Secrets are not compared with !=; use Secret.equals(), which runs in constant time");
        })
        .def("__hash__", [](const opnc::Secret& s) { return reinterpret_cast<std::uintptr_t>(&s); })
        .def("__reduce_ex__", [](const opnc::Secret&, const py::object&) -> py::object {
            throw py::type_error("a Secret cannot be pickled or copied into another process");
        })
        .def("__reduce__", [](const opnc::Secret&) -> py::object {
            throw py::type_error("a Secret cannot be pickled or copied into another process");
        });
}
