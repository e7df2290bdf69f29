// The extension module opnc._core. One file per area; each defines its init_* function.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void init_errors(py::module_& m);
void init_secret(py::module_& m);
void init_url(py::module_& m);
void init_transport(py::module_& m);
void init_integration(py::module_& m);
void init_oauth(py::module_& m);
void init_log(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "The C++ core of opnc (protocol, journal, exchange). Use the `opnc` package, not this module.";
    m.attr("__version__") = OPNC_VERSION;
    init_errors(m);
    init_secret(m);
    init_url(m);
    init_transport(m);
    init_integration(m);
    init_oauth(m);
    init_log(m);
}
