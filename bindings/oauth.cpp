// opnc._core.oauth: the OAuth 2.0 engine (cpp/include/opnc/oauth). Thin: converts arguments and
// results, releases the GIL around every network call, and keeps secrets out of every repr.
// Times cross the boundary as float seconds since the Unix epoch (what time.time() returns).
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <optional>

#include "core_error.hpp"
#include "gil.hpp"
#include "opnc/curl_transport.hpp"
#include "opnc/oauth/authorization_request.hpp"
#include "opnc/oauth/caching_token_source.hpp"
#include "opnc/oauth/client_config.hpp"
#include "opnc/oauth/pkce.hpp"
#include "opnc/oauth/probe.hpp"
#include "opnc/oauth/token.hpp"
#include "opnc/oauth/token_client.hpp"

namespace py = pybind11;
using namespace opnc;
using namespace opnc::oauth;
using opnc::bindings::unwrap;

namespace {

// A credential argument: an opnc.Secret, or a str (wrapped at once).
Secret secret_arg(const py::handle& value, const char* name) {
    if (value.is_none()) return Secret();
    if (py::isinstance<py::str>(value)) return Secret(value.cast<std::string>());
    if (py::isinstance<Secret>(value)) return value.cast<Secret>();
    throw py::type_error(std::string(name) + " must be a str or an opnc.Secret");
}

double to_epoch(TimePoint t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

TimePoint from_epoch(double seconds) {
    if (!std::isfinite(seconds)) throw py::value_error("a time must be a finite number of seconds");
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(seconds)));
}

std::chrono::seconds whole_seconds(double seconds, const char* name) {
    if (!std::isfinite(seconds) || seconds < 0) throw py::value_error(std::string(name) + " must be >= 0");
    return std::chrono::seconds(static_cast<long long>(seconds));
}

ClientAuthMethod auth_method_named(const std::string& name) {
    for (auto method : {ClientAuthMethod::request_body, ClientAuthMethod::basic, ClientAuthMethod::basic_raw})
        if (to_string(method) == name) return method;
    throw py::value_error("auth_method must be 'request_body', 'basic' or 'basic_raw'");
}

// A Python callable returning time.time()-style floats, as a core Clock. Called from threads that
// run without the GIL, so it takes the GIL for each call.
Clock python_clock(py::object callable) {
    if (callable.is_none()) return system_clock();
    auto shared = std::make_shared<py::object>(std::move(callable));
    return [shared]() {
        py::gil_scoped_acquire gil;
        return from_epoch((*shared)().cast<double>());
    };
}

// The transport of one Python-facing call: TLS verification on, Ctrl-C aborts it.
std::shared_ptr<Transport> make_transport(const std::string& ca_bundle, double timeout) {
    TransportOptions options;
    options.ca_bundle = ca_bundle;
    if (!std::isfinite(timeout) || timeout <= 0) throw py::value_error("timeout must be > 0 seconds");
    options.total_timeout = std::chrono::milliseconds(static_cast<long long>(timeout * 1000));
    options.connect_timeout = std::min(options.connect_timeout, options.total_timeout);
    options.should_abort = opnc::bindings::python_abort_hook();
    return std::make_shared<CurlTransport>(std::move(options));
}

std::string quoted(const std::string& text) { return py::repr(py::str(text)).cast<std::string>(); }

std::string token_repr(const Token& t) {
    std::string out = "Token(token_type=" + quoted(t.token_type) + ", scope=" + quoted(t.scope) + ", expires_at=";
    out += t.expires_at ? py::repr(py::float_(to_epoch(*t.expires_at))).cast<std::string>() : "None";
    out += ", access_token=" + std::string(Secret::redacted);
    out += ", refresh_token=" + std::string(t.refresh_token.empty() ? "None" : Secret::redacted) + ")";
    return out;
}

// on_rotated runs inside the core, on the calling thread, under the source's lock. A Python
// exception raised there is parked here and re-raised once the core call returned.
thread_local std::optional<py::error_already_set> pending_callback_error;

template <class F>
Token token_call(F&& call) {
    pending_callback_error.reset();
    auto result = opnc::bindings::without_gil(std::forward<F>(call));
    if (pending_callback_error) {
        py::error_already_set error = std::move(*pending_callback_error);
        pending_callback_error.reset();
        throw error;
    }
    return unwrap(std::move(result));
}

}  // namespace

void init_oauth(py::module_& m) {
    py::module_ o = m.def_submodule("oauth", "The OAuth 2.0 client engine (RFC 6749, RFC 7636). Use opnc.oauth.");

    py::class_<ClientConfig>(o, "ClientConfig", R"doc(An OAuth client of one authorization server.

auth_method: 'request_body' (client_id and client_secret as form fields; the default), 'basic'
(RFC 6749 2.3.1: each part form-urlencoded, then base64) or 'basic_raw' (Basic over the raw values).
redirect_uri is sent exactly as given, never normalised.)doc")
        .def(py::init([](std::string token_endpoint, std::string client_id, py::object client_secret,
                         std::string authorize_endpoint, std::string auth_method, std::string redirect_uri) {
                 ClientConfig c;
                 c.token_endpoint = std::move(token_endpoint);
                 c.client_id = std::move(client_id);
                 c.client_secret = secret_arg(client_secret, "client_secret");
                 c.authorize_endpoint = std::move(authorize_endpoint);
                 c.auth_method = auth_method_named(auth_method);
                 c.redirect_uri = std::move(redirect_uri);
                 unwrap(c.validate());
                 return c;
             }),
             py::arg("token_endpoint"), py::arg("client_id"), py::arg("client_secret"), py::kw_only(),
             py::arg("authorize_endpoint") = "", py::arg("auth_method") = "request_body", py::arg("redirect_uri") = "")
        .def_readonly("token_endpoint", &ClientConfig::token_endpoint)
        .def_readonly("authorize_endpoint", &ClientConfig::authorize_endpoint)
        .def_readonly("client_id", &ClientConfig::client_id)
        .def_readonly("redirect_uri", &ClientConfig::redirect_uri)
        .def_property_readonly("client_secret", [](const ClientConfig& c) { return c.client_secret; })
        .def_property_readonly("auth_method", [](const ClientConfig& c) { return std::string(to_string(c.auth_method)); })
        .def("__repr__", [](const ClientConfig& c) {
            return "ClientConfig(token_endpoint=" + quoted(c.token_endpoint) + ", client_id=" + quoted(c.client_id) +
                   ", client_secret=" + std::string(Secret::redacted) +
                   ", auth_method=" + quoted(std::string(to_string(c.auth_method))) + ")";
        });

    py::class_<Pkce>(o, "Pkce", "A PKCE S256 pair (RFC 7636): the verifier stays here, the challenge goes in the URL.")
        .def_static("generate", &Pkce::generate, py::arg("length") = 64,
                    "A random verifier of `length` (43-128) characters and its challenge.")
        .def_static("from_verifier",
                    [](py::object verifier) { return unwrap(Pkce::from_verifier(secret_arg(verifier, "verifier"))); },
                    py::arg("verifier"))
        .def_property_readonly("verifier", [](const Pkce& p) { return p.verifier(); })
        .def_property_readonly("challenge", &Pkce::challenge)
        .def_property_readonly_static("method", [](py::object) { return std::string(Pkce::method); })
        .def("__repr__", [](const Pkce& p) {
            return "Pkce(method='S256', challenge=" + quoted(p.challenge()) + ", verifier=" + std::string(Secret::redacted) + ")";
        });

    py::class_<AuthorizationRequest>(o, "AuthorizationRequest",
                                     "The authorize URL for a user's browser, with a random state and PKCE.")
        .def(py::init([](const ClientConfig& config, std::string scope, bool pkce) {
                 return unwrap(AuthorizationRequest::create(config, {std::move(scope), pkce}));
             }),
             py::arg("config"), py::kw_only(), py::arg("scope") = "", py::arg("pkce") = true)
        .def_property_readonly("url", &AuthorizationRequest::url)
        .def_property_readonly("state", [](const AuthorizationRequest& r) { return r.state(); })
        .def_property_readonly("pkce", [](const AuthorizationRequest& r) { return r.pkce(); })
        .def("state_matches", &AuthorizationRequest::state_matches, py::arg("state"),
             "Constant-time comparison with the state that came back.")
        .def("code_from_callback",
             [](const AuthorizationRequest& r, const std::string& callback) { return unwrap(r.code_from_callback(callback)); },
             py::arg("callback"), "Checks the redirect's state and returns the authorization code (an opnc.Secret).")
        .def("__repr__", [](const AuthorizationRequest& r) {
            std::string endpoint = r.url().substr(0, r.url().find('?'));
            return "AuthorizationRequest(authorize_endpoint=" + quoted(endpoint) +
                   ", state=" + std::string(Secret::redacted) + ", pkce=" + (r.pkce() ? "True" : "False") + ")";
        });

    py::class_<Token>(o, "Token", "An access token and refresh token (opnc.Secret each) with their expiry.")
        .def(py::init([](py::object access_token, py::object refresh_token, std::string token_type, std::string scope,
                         std::optional<double> expires_at, std::optional<double> obtained_at) {
                 Token t;
                 t.access_token = secret_arg(access_token, "access_token");
                 t.refresh_token = secret_arg(refresh_token, "refresh_token");
                 t.token_type = std::move(token_type);
                 t.scope = std::move(scope);
                 t.obtained_at = obtained_at ? from_epoch(*obtained_at) : std::chrono::system_clock::now();
                 if (expires_at) t.expires_at = from_epoch(*expires_at);
                 return t;
             }),
             py::arg("access_token"), py::arg("refresh_token") = py::none(), py::kw_only(),
             py::arg("token_type") = "Bearer", py::arg("scope") = "", py::arg("expires_at") = py::none(),
             py::arg("obtained_at") = py::none())
        .def_property_readonly("access_token", [](const Token& t) { return t.access_token; })
        .def_property_readonly("refresh_token",
                               [](const Token& t) -> std::optional<Secret> {
                                   if (t.refresh_token.empty()) return std::nullopt;
                                   return t.refresh_token;
                               })
        .def_readonly("token_type", &Token::token_type)
        .def_readonly("scope", &Token::scope)
        .def_property_readonly("obtained_at", [](const Token& t) { return to_epoch(t.obtained_at); })
        .def_property_readonly("expires_at",
                               [](const Token& t) -> std::optional<double> {
                                   if (!t.expires_at) return std::nullopt;
                                   return to_epoch(*t.expires_at);
                               })
        .def(
            "expires_within",
            [](const Token& t, double leeway, std::optional<double> now) {
                return t.expires_within(whole_seconds(leeway, "leeway"),
                                        now ? from_epoch(*now) : std::chrono::system_clock::now());
            },
            py::arg("leeway") = 0.0, py::arg("now") = py::none(),
            "True when the access token is expired, or will be within `leeway` seconds (capped at half its lifetime).")
        .def("__repr__", &token_repr);

    py::class_<ProbeResult>(o, "ProbeResult", "What probe_client found out; never holds a secret.")
        .def_property_readonly("outcome", [](const ProbeResult& r) { return std::string(to_string(r.outcome)); })
        .def_readonly("detail", &ProbeResult::detail)
        .def_readonly("http_status", &ProbeResult::http_status)
        .def_readonly("server_error", &ProbeResult::server_error)
        .def_property_readonly("plausible", &ProbeResult::plausible)
        .def("to_dict",
             [](const ProbeResult& r) {
                 py::dict d;
                 d["outcome"] = std::string(to_string(r.outcome));
                 d["detail"] = r.detail;
                 d["http_status"] = r.http_status;
                 d["server_error"] = r.server_error;
                 d["plausible"] = r.plausible();
                 return d;
             })
        .def("__repr__", [](const ProbeResult& r) {
            return "ProbeResult(outcome=" + quoted(std::string(to_string(r.outcome))) +
                   ", http_status=" + std::to_string(r.http_status) + ", detail=" + quoted(r.detail) + ")";
        });

    o.def(
        "exchange_code",
        [](const ClientConfig& config, py::object code, py::object code_verifier, std::string ca_bundle, double timeout,
           py::object clock) {
            Secret code_secret = secret_arg(code, "code");
            std::optional<Secret> verifier;
            if (!code_verifier.is_none()) verifier = secret_arg(code_verifier, "code_verifier");
            auto transport = make_transport(ca_bundle, timeout);
            TokenRequestOptions options;
            options.clock = python_clock(std::move(clock));
            return token_call([&] { return exchange_code(config, *transport, code_secret, verifier, options); });
        },
        py::arg("config"), py::arg("code"), py::arg("code_verifier") = py::none(), py::kw_only(),
        py::arg("ca_bundle") = "", py::arg("timeout") = 30.0, py::arg("clock") = py::none(),
        "Exchanges an authorization code for a Token (retried on transport errors, 429 and 5xx).");

    o.def(
        "refresh",
        [](const ClientConfig& config, const Token& current, std::string ca_bundle, double timeout, py::object clock) {
            auto transport = make_transport(ca_bundle, timeout);
            TokenRequestOptions options;
            options.clock = python_clock(std::move(clock));
            return token_call([&] { return refresh(config, *transport, current, options); });
        },
        py::arg("config"), py::arg("token"), py::kw_only(), py::arg("ca_bundle") = "", py::arg("timeout") = 30.0,
        py::arg("clock") = py::none(),
        "Refreshes a Token. Resent only when the request certainly never left: refresh tokens are single use.");

    o.def(
        "probe_client",
        [](const ClientConfig& config, std::string redirect_uri, std::string ca_bundle, double timeout) {
            auto transport = make_transport(ca_bundle, timeout);
            ProbeOptions options;
            options.redirect_uri = std::move(redirect_uri);
            auto result = opnc::bindings::without_gil([&] { return probe_client(config, *transport, options); });
            return unwrap(std::move(result));
        },
        py::arg("config"), py::kw_only(), py::arg("redirect_uri") = "", py::arg("ca_bundle") = "",
        py::arg("timeout") = 30.0,
        "Whether the token endpoint accepts the client id and secret, without a user (see ProbeResult).");

    py::class_<CachingTokenSource>(o, "CachingTokenSource", R"doc(A token that stays usable.

token() hands out the cached token while it is fresh and refreshes it shortly before expiry
(`leeway` seconds, capped at half the lifetime); many threads asking at once cause one refresh.
on_rotated(token) is called with every new token before anyone gets it: persist it there (the old
refresh token is already dead). After invalid_grant the source refuses to refresh again.)doc")
        .def(py::init([](ClientConfig config, Token token, double leeway, py::object clock, py::object on_rotated,
                         std::string ca_bundle, double timeout) {
                 CachingOptions options;
                 options.clock = python_clock(std::move(clock));
                 options.leeway = whole_seconds(leeway, "leeway");
                 if (!on_rotated.is_none()) {
                     auto callback = std::make_shared<py::object>(std::move(on_rotated));
                     options.on_rotated = [callback](const Token& t) -> Result<void> {
                         py::gil_scoped_acquire gil;
                         try {
                             (*callback)(t);
                             return {};
                         } catch (py::error_already_set& error) {
                             pending_callback_error.emplace(std::move(error));
                             return fail(ErrorKind::internal, "The on_rotated callback raised an exception.");
                         }
                     };
                 }
                 return std::make_unique<CachingTokenSource>(std::move(config), make_transport(ca_bundle, timeout),
                                                             std::move(token), std::move(options));
             }),
             py::arg("config"), py::arg("token"), py::kw_only(), py::arg("leeway") = 60.0, py::arg("clock") = py::none(),
             py::arg("on_rotated") = py::none(), py::arg("ca_bundle") = "", py::arg("timeout") = 30.0)
        .def("token", [](CachingTokenSource& s) { return token_call([&] { return s.token(); }); })
        .def("force_refresh", [](CachingTokenSource& s) { return token_call([&] { return s.force_refresh(); }); })
        // Both wait for the source's lock, whose holder may need the GIL (on_rotated, a Python
        // clock, a log record): they release the GIL while they wait.
        .def("reset", [](CachingTokenSource& s, Token t) { s.reset(std::move(t)); }, py::arg("token"),
             py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("current", [](const CachingTokenSource& s) {
            py::gil_scoped_release release;
            return s.current();
        })
        .def_property_readonly("refresh_count", &CachingTokenSource::refresh_count)
        .def("__repr__", [](const CachingTokenSource& s) {
            std::optional<Token> current;
            {
                py::gil_scoped_release release;
                current = s.current();
            }
            return "CachingTokenSource(refreshes=" + std::to_string(s.refresh_count()) + ", token=" + token_repr(*current) + ")";
        });
}
