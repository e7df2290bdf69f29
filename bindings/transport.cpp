// opnc._core.CurlTransport: the real transport, for diagnostics and tests of the network layer.
// Thin: the request is built from the arguments, sent without the GIL, and the answer or error
// handed back. Higher-level bindings take a CurlTransport (shared_ptr holder) as their transport.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <optional>

#include "core_error.hpp"
#include "gil.hpp"
#include "opnc/curl_transport.hpp"

namespace py = pybind11;

namespace {

// A timeout in seconds as milliseconds; a day at most, which also keeps the conversion in range.
std::chrono::milliseconds seconds_to_ms(double seconds, const char* name) {
    constexpr double max_seconds = 86'400;
    if (!std::isfinite(seconds) || seconds <= 0 || seconds > max_seconds) {
        opnc::Error e;
        e.kind = opnc::ErrorKind::invalid_input;
        e.message = std::string(name) + " must be a positive number of seconds, at most 86400.";
        throw opnc::bindings::CoreError(std::move(e));
    }
    return std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000.0)));
}

// Headers from a mapping or an iterable of (name, value) pairs, in the given order.
opnc::Headers to_headers(const py::object& headers) {
    opnc::Headers out;
    if (headers.is_none()) return out;
    py::object items = py::isinstance<py::dict>(headers) || py::hasattr(headers, "items") ? headers.attr("items")() : headers;
    for (py::handle item : items) {
        auto pair = item.cast<std::pair<std::string, std::string>>();
        out.push_back(std::move(pair));
    }
    return out;
}

// The arguments of request() are taken as plain objects and converted here, each with its own
// message: pybind11's "incompatible function arguments" error would print every argument's value,
// and the body or a password given as a str instead of a Secret may be a credential.
template <class T>
T argument(const py::object& value, const char* message) {
    try {
        return value.cast<T>();
    } catch (const py::cast_error&) {
        throw py::type_error(message);
    }
}

std::optional<opnc::BasicAuth> to_basic(const py::object& basic) {
    if (basic.is_none()) return std::nullopt;
    const char* message = "basic must be a (user: str, password: opnc.Secret) pair";
    if (!py::isinstance<py::tuple>(basic) || py::len(basic) != 2) throw py::type_error(message);
    auto pair = basic.cast<py::tuple>();
    if (!py::isinstance<py::str>(pair[0]) || !py::isinstance<opnc::Secret>(pair[1])) throw py::type_error(message);
    return opnc::BasicAuth{pair[0].cast<std::string>(), pair[1].cast<opnc::Secret>()};
}

std::optional<opnc::Secret> to_bearer(const py::object& bearer) {
    if (bearer.is_none()) return std::nullopt;
    if (!py::isinstance<opnc::Secret>(bearer)) throw py::type_error("bearer must be an opnc.Secret");
    return bearer.cast<opnc::Secret>();
}

std::string to_body(const py::object& body) {
    if (!py::isinstance<py::bytes>(body) && !py::isinstance<py::str>(body))
        throw py::type_error("body must be bytes or str");
    return body.cast<std::string>();
}

}  // namespace

void init_transport(py::module_& m) {
    // The GIL/Ctrl-C glue (gil.hpp) needs to know Python's main thread before any call is made.
    opnc::bindings::remember_main_thread();

    py::class_<opnc::HttpResponse>(m, "HttpResponse", "An HTTP answer: status, headers (as received), body, elapsed time.")
        .def_readonly("status", &opnc::HttpResponse::status)
        .def_readonly("headers", &opnc::HttpResponse::headers, "list of (name, value) pairs, names as received")
        .def_property_readonly("body", [](const opnc::HttpResponse& r) { return py::bytes(r.body); })
        .def_readonly("elapsed_ms", &opnc::HttpResponse::elapsed_ms)
        .def("header", &opnc::HttpResponse::header, py::arg("name"), "The first header of that name (case-insensitive), or None.")
        .def("__repr__", [](const opnc::HttpResponse& r) {
            return "HttpResponse(status=" + std::to_string(r.status) + ", " + std::to_string(r.body.size()) + " bytes)";
        });

    py::class_<opnc::CurlTransport, std::shared_ptr<opnc::CurlTransport>>(
        m, "CurlTransport",
        R"doc(The libcurl transport: keep-alive, TLS verification always on, timeouts, a response size cap,
no redirects followed. Safe to share between threads; the GIL is released while it waits, and
Ctrl-C interrupts a request (KeyboardInterrupt).)doc")
        .def(py::init([](std::optional<std::string> ca_bundle, double connect_timeout, double timeout,
                         std::size_t max_response_bytes) {
                 opnc::TransportOptions options;
                 if (ca_bundle) options.ca_bundle = *ca_bundle;
                 options.connect_timeout = seconds_to_ms(connect_timeout, "connect_timeout");
                 options.total_timeout = seconds_to_ms(timeout, "timeout");
                 if (max_response_bytes == 0) {
                     opnc::Error e;
                     e.kind = opnc::ErrorKind::invalid_input;
                     e.message = "max_response_bytes must be positive.";
                     throw opnc::bindings::CoreError(std::move(e));
                 }
                 options.max_response_bytes = max_response_bytes;
                 options.should_abort = opnc::bindings::python_abort_hook();
                 return std::make_shared<opnc::CurlTransport>(std::move(options));
             }),
             py::kw_only(), py::arg("ca_bundle") = py::none(), py::arg("connect_timeout") = 10.0,
             py::arg("timeout") = 30.0, py::arg("max_response_bytes") = opnc::TransportOptions{}.max_response_bytes)
        .def(
            "request",
            [](opnc::CurlTransport& transport, const py::object& method, const py::object& url,
               const py::object& headers, const py::object& body, const py::object& basic, const py::object& bearer,
               const py::object& timeout) {
                opnc::HttpRequest request;
                request.method = argument<std::string>(method, "method must be a str");
                request.url = argument<std::string>(url, "url must be a str");
                try {
                    request.headers = to_headers(headers);
                } catch (const py::cast_error&) {
                    throw py::type_error("headers must be a mapping or an iterable of (name, value) str pairs");
                }
                request.body = to_body(body);
                request.basic = to_basic(basic);
                request.bearer = to_bearer(bearer);
                if (!timeout.is_none())
                    request.timeout = seconds_to_ms(argument<double>(timeout, "timeout must be a number of seconds"), "timeout");
                auto result = opnc::bindings::without_gil([&] { return transport.send(request); });
                if (!result) throw opnc::bindings::CoreError(opnc::to_error(result.error()));
                return std::move(*result);
            },
            py::arg("method"), py::arg("url"), py::arg("headers") = py::none(), py::arg("body") = py::bytes(""),
            py::kw_only(), py::arg("basic") = py::none(), py::arg("bearer") = py::none(), py::arg("timeout") = py::none(),
            "Sends one request and returns the HttpResponse; a transport failure raises the fitting opnc error.")
        .def_property_readonly("connections_opened", &opnc::CurlTransport::connections_opened,
                               "New connections opened so far (keep-alive reuse shows as a small number).")
        .def("__repr__", [](const opnc::CurlTransport& t) {
            return "CurlTransport(connect_timeout=" + std::to_string(t.options().connect_timeout.count() / 1000.0) +
                   ", timeout=" + std::to_string(t.options().total_timeout.count() / 1000.0) + ")";
        });
}
