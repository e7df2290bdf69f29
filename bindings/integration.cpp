// opnc._core.Integration: the exchange. Thin: converts arguments and results, releases the GIL
// around every call that touches the network, and delivers events to Python with the GIL held.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <mutex>
#include <optional>

#include "core_error.hpp"
#include "gil.hpp"
#include "opnc/integration.hpp"

namespace py = pybind11;
using namespace opnc;

namespace {

py::dict error_dict(const Error& e) {
    py::dict d;
    d["kind"] = std::string(to_string(e.kind));
    d["step"] = e.step;
    d["message"] = e.message;
    d["hint"] = e.hint;
    d["http_status"] = e.http_status;
    d["server_id"] = e.server_id;
    return d;
}

py::dict check_dict(const Check& c) {
    py::dict d;
    d["name"] = c.name;
    d["ok"] = c.ok;
    d["detail"] = c.detail;
    d["hint"] = c.hint;
    return d;
}

py::dict verify_dict(const VerifyResult& v) {
    py::list checks;
    for (const auto& c : v.checks) checks.append(check_dict(c));
    py::dict d;
    d["checks"] = checks;
    return d;
}

py::dict observation_dict(const Observation& o) {
    py::dict d;
    d["openproject_version"] = o.openproject_version;
    d["nextcloud_version"] = o.nextcloud_version;
    d["integration_app_version"] = o.integration_app_version;
    d["storage_id"] = o.storage_id ? py::object(py::int_(*o.storage_id)) : py::object(py::none());
    d["storage_configured"] = o.storage_configured;
    d["storage_has_application_password"] = o.storage_has_application_password;
    d["openproject_client_id"] = o.openproject_client_id;
    d["nextcloud_client_id_in_openproject"] = o.nextcloud_client_id_in_openproject;
    d["nextcloud_configured"] = o.nextcloud_configured;
    d["nextcloud_app_password"] = o.nextcloud_app_password;
    d["project_folder_entities"] = o.project_folder_entities;
    d["nextcloud_openproject_url"] = o.nextcloud_openproject_url;
    d["journal_holds_secrets"] = o.journal_holds_secrets;
    return d;
}

py::dict plan_dict(const Plan& p) {
    py::list steps;
    for (const auto& s : p.steps) {
        py::dict d;
        d["name"] = s.name;
        d["reason"] = s.reason;
        d["warnings"] = s.warnings;
        steps.append(d);
    }
    py::dict d;
    d["steps"] = steps;
    d["notes"] = p.notes;
    d["observed"] = observation_dict(p.observed);
    return d;
}

py::dict apply_dict(const ApplyResult& r) {
    py::list steps;
    for (const auto& s : r.steps) {
        py::dict d;
        d["name"] = s.name;
        d["status"] = std::string(to_string(s.status));
        d["duration_ms"] = s.duration_ms;
        d["detail"] = s.detail;
        steps.append(d);
    }
    py::dict d;
    d["changed"] = r.changed;
    d["steps"] = steps;
    d["storage_id"] = r.storage_id ? py::object(py::int_(*r.storage_id)) : py::object(py::none());
    d["openproject_client_id"] = r.openproject_client_id;
    d["nextcloud_client_id"] = r.nextcloud_client_id;
    d["notes"] = r.notes;
    d["verify"] = r.verify ? py::object(verify_dict(*r.verify)) : py::object(py::none());
    d["error"] = r.error ? py::object(error_dict(*r.error)) : py::object(py::none());
    return d;
}

py::dict status_dict(const Status& st) {
    py::list lines;
    for (const auto& l : st.lines) {
        py::dict d;
        d["area"] = l.area;
        d["name"] = l.name;
        d["level"] = l.level;
        d["detail"] = l.detail;
        d["hint"] = l.hint;
        lines.append(d);
    }
    py::dict d;
    d["lines"] = lines;
    return d;
}

py::dict teardown_dict(const TeardownResult& t) {
    py::dict d;
    d["changed"] = t.changed;
    d["removed"] = t.removed;
    d["remaining"] = t.remaining;
    d["notes"] = t.notes;
    d["archived_journal"] = t.archived_journal;
    return d;
}

// An event sink that calls a Python callable with the GIL; the first exception it raises is kept
// and raised after the run (a display problem never leaves a run half-done).
struct PythonEvents {
    py::object callback;
    std::optional<py::error_already_set> error;

    EventSink sink() {
        if (callback.is_none()) return {};
        return [this](const Event& e) {
            py::gil_scoped_acquire gil;
            if (error) return;
            try {
                py::dict d;
                d["type"] = std::string(to_string(e.type));
                d["step"] = e.step;
                d["detail"] = e.detail;
                d["elapsed_ms"] = e.elapsed_ms;
                callback(d);
            } catch (py::error_already_set& err) {
                error.emplace(std::move(err));
            }
        };
    }
    void raise_if_failed() {
        if (error) throw std::move(*error);
    }
};

}  // namespace

void init_integration(py::module_& m) {
    py::class_<Integration>(m, "Integration", "The exchange of one OpenProject and one Nextcloud (see opnc.Integration).")
        .def(py::init([](const std::string& op_url, const Secret& op_token, const std::string& nc_url,
                         const std::string& nc_user, const Secret& nc_password, const std::string& storage_name,
                         bool project_folders, bool replace_storage, const std::string& state_dir,
                         const std::string& ca_bundle, double timeout, bool wait_for_lock,
                         const std::string& openproject_user, double setup_timeout) {
                 IntegrationOptions options;
                 options.storage_name = storage_name;
                 options.project_folders = project_folders;
                 options.replace_storage = replace_storage;
                 options.state_dir = state_dir;
                 options.ca_bundle = ca_bundle;
                 options.timeout = std::chrono::milliseconds(static_cast<long long>(timeout * 1000));
                 options.setup_timeout = std::chrono::milliseconds(static_cast<long long>(setup_timeout * 1000));
                 options.wait_for_lock = wait_for_lock;
                 options.should_abort = opnc::bindings::python_abort_hook();
                 return opnc::bindings::unwrap(
                     Integration::create({op_url, op_token, openproject_user}, {nc_url, nc_user, nc_password}, std::move(options)));
             }),
             py::arg("openproject_url"), py::arg("openproject_token"), py::arg("nextcloud_url"),
             py::arg("nextcloud_user"), py::arg("nextcloud_password"), py::kw_only(),
             py::arg("storage_name") = "Nextcloud", py::arg("project_folders") = false,
             py::arg("replace_storage") = false, py::arg("state_dir") = "", py::arg("ca_bundle") = "",
             py::arg("timeout") = 30.0, py::arg("wait_for_lock") = false, py::arg("openproject_user") = "apikey",
             py::arg("setup_timeout") = 120.0)
        .def("journal_path", &Integration::journal_path)
        .def("plan",
             [](Integration& self) {
                 auto plan = opnc::bindings::without_gil([&] { return self.plan(); });
                 return plan_dict(opnc::bindings::unwrap(std::move(plan)));
             })
        .def(
            "apply",
            [](Integration& self, py::object on_event) {
                PythonEvents events{std::move(on_event), std::nullopt};
                auto sink = events.sink();
                auto result = opnc::bindings::without_gil([&] { return self.apply(sink); });
                events.raise_if_failed();
                return apply_dict(opnc::bindings::unwrap(std::move(result)));
            },
            py::arg("on_event") = py::none())
        .def(
            "rotate",
            [](Integration& self, bool nextcloud_client, bool app_password, bool replace_storage,
               const std::string& openproject_client_id, std::optional<Secret> openproject_client_secret,
               py::object on_event) {
                RotateOptions options;
                options.nextcloud_client = nextcloud_client;
                options.app_password = app_password;
                options.replace_storage = replace_storage;
                options.openproject_client_id = openproject_client_id;
                if (openproject_client_secret) options.openproject_client_secret = *openproject_client_secret;
                PythonEvents events{std::move(on_event), std::nullopt};
                auto sink = events.sink();
                auto result = opnc::bindings::without_gil([&] { return self.rotate(options, sink); });
                events.raise_if_failed();
                return apply_dict(opnc::bindings::unwrap(std::move(result)));
            },
            py::kw_only(), py::arg("nextcloud_client") = false, py::arg("app_password") = false,
            py::arg("replace_storage") = false, py::arg("openproject_client_id") = "",
            py::arg("openproject_client_secret") = py::none(), py::arg("on_event") = py::none())
        .def(
            "teardown",
            [](Integration& self, bool delete_storage, py::object on_event) {
                TeardownOptions options;
                options.delete_storage = delete_storage;
                PythonEvents events{std::move(on_event), std::nullopt};
                auto sink = events.sink();
                auto result = opnc::bindings::without_gil([&] { return self.teardown(options, sink); });
                events.raise_if_failed();
                return teardown_dict(opnc::bindings::unwrap(std::move(result)));
            },
            py::kw_only(), py::arg("delete_storage") = false, py::arg("on_event") = py::none())
        .def("status",
             [](Integration& self) {
                 auto result = opnc::bindings::without_gil([&] { return self.status(); });
                 return status_dict(opnc::bindings::unwrap(std::move(result)));
             })
        .def("verify", [](Integration& self) {
            auto result = opnc::bindings::without_gil([&] { return self.verify(); });
            return verify_dict(opnc::bindings::unwrap(std::move(result)));
        });
}
