// opnc.Url: a parsed, normalised server base URL (the parsing is the core's, via libcurl).
#include <pybind11/pybind11.h>

#include <functional>

#include "core_error.hpp"
#include "opnc/url.hpp"

namespace py = pybind11;

void init_url(py::module_& m) {
    py::class_<opnc::Url>(m, "Url", R"doc(A server's base URL, parsed and normalised.

``Url("HTTPS://Example.org:443/nextcloud/")`` is ``https://example.org/nextcloud``: http or https
only, lowercased host, no default port, no trailing slash, sub-paths kept. User-info, query and
fragment are refused with :class:`opnc.InvalidInput`.)doc")
        .def(py::init([](std::string_view text) { return opnc::bindings::unwrap(opnc::Url::parse(text)); }), py::arg("text"))
        .def_static("parse", [](std::string_view text) { return opnc::bindings::unwrap(opnc::Url::parse(text)); },
                    py::arg("text"), "Same as the constructor.")
        .def_property_readonly("scheme", &opnc::Url::scheme)
        .def_property_readonly("host", &opnc::Url::host)
        .def_property_readonly("port", &opnc::Url::port, "0 when the scheme's default")
        .def_property_readonly("path", &opnc::Url::path, "'' or '/sub/path'")
        .def_property_readonly("authority", &opnc::Url::authority, "'host' or 'host:port'")
        .def_property_readonly("is_https", &opnc::Url::is_https)
        .def_property_readonly("is_loopback", &opnc::Url::is_loopback, "127.0.0.0/8, ::1 or localhost")
        .def("join", &opnc::Url::join, py::arg("path"),
             "The absolute URL of `path` (which may carry a query) below this base; never '//'.")
        .def("__str__", &opnc::Url::str)
        .def("__repr__", [](const opnc::Url& u) { return "Url('" + u.str() + "')"; })
        .def("__eq__", [](const opnc::Url& a, const py::object& b) -> py::object {
            if (!py::isinstance<opnc::Url>(b)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
            return py::bool_(a == b.cast<const opnc::Url&>());
        })
        .def("__hash__", [](const opnc::Url& u) { return std::hash<std::string>{}(u.str()); })
        .def(py::pickle([](const opnc::Url& u) { return py::make_tuple(u.str()); },
                        [](const py::tuple& state) {
                            return opnc::bindings::unwrap(opnc::Url::parse(state[0].cast<std::string>()));
                        }));
}
