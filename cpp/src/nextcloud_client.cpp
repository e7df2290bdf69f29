#include "opnc/nextcloud_client.hpp"

#include <algorithm>

#include "opnc/json_read.hpp"

namespace opnc {

using json_read::Call;
using json_read::Json;

struct NextcloudClient::Answer {
    Call call;
    HttpResponse response;
};

namespace {

constexpr std::string_view app_route = "/index.php/apps/integration_openproject";
constexpr std::string_view capabilities_path = "/ocs/v2.php/cloud/capabilities?format=json";
constexpr std::string_view stored_url_path = "/ocs/v2.php/apps/integration_openproject/api/v1/url";

// integration_openproject learnt the `authorization_method` setting in 2.9.0; older versions
// reject it as an unknown key (contract §4.2).
const Version authorization_method_since = Version::of(2, 9, 0);

std::string app_path(std::string_view route) { return std::string(app_route) + std::string(route); }

bool success(int status) { return status >= 200 && status <= 299; }
bool redirect(int status) { return status >= 300 && status <= 399; }

// Nextcloud's two error dialects: the framework's {"message":...} and the app's {"error":...}.
std::string server_text(const HttpResponse& response) {
    if (json_read::looks_like_html(response)) return {};
    Json body = Json::parse(response.body, nullptr, false);
    if (body.is_discarded()) return {};
    if (auto error = json_read::string_at(body, {"error"})) return *error;
    return json_read::string_at(body, {"message"}).value_or("");
}

std::unexpected<Error> invalid(std::string message, std::string hint) {
    return fail(ErrorKind::invalid_input, std::move(message), std::move(hint));
}

}  // namespace

std::string_view to_string(AuthorizationHeaderEcho echo) noexcept {
    switch (echo) {
        case AuthorizationHeaderEcho::unchanged: return "unchanged";
        case AuthorizationHeaderEcho::missing: return "missing";
        case AuthorizationHeaderEcho::altered: return "altered";
    }
    return "missing";
}

NextcloudClient::NextcloudClient(std::shared_ptr<Transport> transport, Url base, std::string user, Secret password,
                                 std::chrono::milliseconds setup_timeout)
    : transport_(std::move(transport)),
      base_(std::move(base)),
      user_(std::move(user)),
      password_(std::move(password)),
      setup_timeout_(setup_timeout) {}

HttpRequest NextcloudClient::make_request(std::string_view method, std::string_view path, bool as_admin) const {
    HttpRequest request;
    request.method = std::string(method);
    request.url = base_.join(path);
    request.headers.emplace_back("Accept", "application/json");
    request.headers.emplace_back("OCS-APIRequest", "true");
    if (as_admin) request.basic = BasicAuth{user_, password_};
    return request;
}

Result<NextcloudClient::Answer> NextcloudClient::send(HttpRequest request, bool body_holds_secret) const {
    // Without Content-Type Nextcloud does not decode a JSON body into the controller's arguments.
    if (!request.body.empty()) request.headers.emplace_back("Content-Type", "application/json");
    std::string path = request.url.substr(std::min(request.url.size(), base_.str().size() - base_.path().size()));
    Answer answer{Call{"Nextcloud", base_.authority(), request.method, std::move(path)}, {}};
    auto result = transport_->send(request);
    if (body_holds_secret) json_read::scrub(request.body);
    if (!result) return std::unexpected(json_read::transport_error(answer.call, result.error()));
    answer.response = std::move(*result);
    return answer;
}

Error NextcloudClient::answer_error(const Answer& answer, std::string_view context) const {
    const HttpResponse& response = answer.response;
    const int status = response.status;
    if (redirect(status))
        return json_read::redirect_error(
            answer.call, response,
            "Use Nextcloud's exact base URL (scheme, host, sub-path). A redirect to the login page means the route "
            "is unknown to Nextcloud: enable the integration_openproject app (occ app:enable integration_openproject).");

    Error e;
    e.http_status = status;
    e.server_message = server_text(response);
    const std::string where = answer.call.describe();
    const std::string what = context.empty() ? std::string{} : " " + std::string(context);
    switch (status) {
        case 400:
            e.kind = ErrorKind::validation;
            e.message = where + " refused the values" + what + " (HTTP 400).";
            e.hint = "The server message names the refused value; check the OpenProject URL (http or https, as "
                     "OpenProject knows itself), client id and client secret.";
            return e;
        case 401:
            e.kind = ErrorKind::unauthenticated;
            e.message = where + " refused the credentials of user " + user_ + " (HTTP 401).";
            e.hint = "Check the Nextcloud user and password; with two-factor or token-only login use an app password "
                     "(Personal settings > Security > Devices & sessions).";
            return e;
        case 403:
            e.kind = ErrorKind::forbidden;
            e.message = where + ": user " + user_ + " is not allowed to do this (HTTP 403).";
            e.hint = "Use a member of Nextcloud's admin group.";
            return e;
        case 404:
            e.kind = ErrorKind::not_found;
            if (json_read::looks_like_html(response) || e.server_message.empty()) {
                e.message = where + ": the route does not exist (HTTP 404).";
                e.hint = "Install and enable the integration_openproject app (occ app:enable integration_openproject), "
                         "in a version that has this route, and check Nextcloud's base URL.";
            } else {
                e.message = where + " did not find what" + what + " needs (HTTP 404).";
                e.hint = "See the server message for what is missing.";
            }
            return e;
        case 405:
            e.kind = ErrorKind::protocol;
            e.message = where + " does not accept " + answer.call.method + " on this route (HTTP 405).";
            e.hint = "The integration_openproject app is probably older than this route; update it.";
            return e;
        case 409:
            e.kind = ErrorKind::conflict;
            e.message = where + " reported a conflict" + what + " (HTTP 409).";
            e.hint = "See the server message for the conflicting entity.";
            return e;
        case 412:
            e.kind = ErrorKind::protocol;
            e.message = where + " failed its CSRF check (HTTP 412).";
            e.hint = "opnc sends OCS-APIRequest: true; a proxy in front of Nextcloud removes it. Let the header pass.";
            return e;
        case 429:
            e.kind = ErrorKind::server_error;
            e.message = where + " is throttling requests from this address (HTTP 429).";
            e.hint = "Nextcloud's brute-force protection counts failed logins: fix the credentials, wait, then run "
                     "again (occ security:bruteforce:reset <ip> clears it).";
            return e;
        default:
            break;
    }
    if (status >= 500) {
        e.kind = ErrorKind::server_error;
        e.message = where + " failed" + what + " (HTTP " + std::to_string(status) + ").";
        e.hint = status == 503 ? "Nextcloud may be in maintenance mode or upgrading; run again when it is back."
                               : "Check Nextcloud's log (nextcloud.log) for the exception.";
        return e;
    }
    e.kind = ErrorKind::protocol;
    e.message = where + " answered with the unexpected HTTP status " + std::to_string(status) + ".";
    e.hint = "Check that the URL points at Nextcloud itself.";
    return e;
}

Result<NextcloudStatus> NextcloudClient::status() const {
    auto answer = send(make_request("GET", "/status.php", /*as_admin=*/false));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for status.php"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    auto installed = json_read::bool_at(*body, {"installed"});
    auto maintenance = json_read::bool_at(*body, {"maintenance"});
    if (!installed || !maintenance)
        return std::unexpected(json_read::protocol_error(answer->call, code,
                                                         "the answer is not Nextcloud's status (installed, maintenance)."));
    NextcloudStatus s;
    s.installed = *installed;
    s.maintenance = *maintenance;
    s.needs_db_upgrade = json_read::bool_at(*body, {"needsDbUpgrade"}).value_or(false);
    s.version = json_read::string_at(*body, {"version"}).value_or("");
    s.versionstring = json_read::string_at(*body, {"versionstring"}).value_or("");
    s.productname = json_read::string_at(*body, {"productname"}).value_or("");
    return s;
}

Result<NextcloudCapabilities> NextcloudClient::capabilities() const {
    auto answer = send(make_request("GET", capabilities_path, /*as_admin=*/false));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for the capabilities"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    const Json* data = json_read::at(*body, {"ocs", "data"});
    auto major = data ? json_read::int_at(*data, {"version", "major"}) : std::nullopt;
    if (!major || *major < 0)
        return std::unexpected(json_read::protocol_error(answer->call, code,
                                                         "the answer has no ocs.data.version.major: not a Nextcloud server."));
    NextcloudCapabilities caps;
    const auto minor = json_read::int_at(*data, {"version", "minor"}).value_or(0);
    const auto micro = json_read::int_at(*data, {"version", "micro"}).value_or(0);
    caps.server_version = Version::of(static_cast<std::uint32_t>(*major), static_cast<std::uint32_t>(minor),
                                      static_cast<std::uint32_t>(micro));
    caps.server_version_string = json_read::string_at(*data, {"version", "string"}).value_or(caps.server_version.str());
    if (const Json* app = json_read::at(*data, {"capabilities", "integration_openproject"}); app && app->is_object()) {
        if (auto text = json_read::string_at(*app, {"app_version"})) {
            auto version = Version::parse(*text);
            if (!version)
                return std::unexpected(json_read::protocol_error(
                    answer->call, code, "integration_openproject.app_version is not a version number."));
            caps.app_version = *version;
        }
        caps.groupfolders_enabled = json_read::bool_at(*app, {"groupfolders_enabled"});
        caps.groupfolder_version = json_read::string_at(*app, {"groupfolder_version"});
    }
    return caps;
}

Result<CheckConfigResult> NextcloudClient::check_config() const {
    // A fresh random value per call, so the echo proves this request's header went through; it
    // is no credential, and goes as Bearer like OpenProject's own probe (contract §4.2 b).
    HttpRequest request = make_request("GET", app_path("/check-config"), /*as_admin=*/false);
    const Secret probe = Secret::random_urlsafe(24);
    request.bearer = probe;
    auto answer = send(std::move(request));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for check-config"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    const Json* echoed = json_read::at(*body, {"authorization_header"});
    if (!echoed || !(echoed->is_null() || echoed->is_string()))
        return std::unexpected(json_read::protocol_error(answer->call, code, "the answer lacks authorization_header."));
    CheckConfigResult result;
    result.user_id = json_read::string_at(*body, {"user_id"}).value_or("");
    if (echoed->is_null()) {
        result.authorization_header = AuthorizationHeaderEcho::missing;
    } else {
        const Secret expected("Bearer " + probe.expose());
        result.authorization_header = expected.equals(echoed->get_ref<const std::string&>())
                                          ? AuthorizationHeaderEcho::unchanged
                                          : AuthorizationHeaderEcho::altered;
    }
    return result;
}

Result<AdminConfigStatus> NextcloudClient::check_admin_config() const {
    auto answer = send(make_request("GET", app_path("/check-admin-config"), /*as_admin=*/true));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for check-admin-config"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    auto config = json_read::bool_at(*body, {"config_status_without_project_folder"});
    auto folder = json_read::bool_at(*body, {"project_folder_setup_status"});
    if (!config || !folder)
        return std::unexpected(json_read::protocol_error(
            answer->call, code,
            "the answer lacks config_status_without_project_folder or project_folder_setup_status."));
    return AdminConfigStatus{*config, *folder};
}

Result<bool> NextcloudClient::project_folder_status() const {
    auto answer = send(make_request("GET", app_path("/project-folder-status"), /*as_admin=*/true));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for project-folder-status"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    auto result = json_read::bool_at(*body, {"result"});
    if (!result) return std::unexpected(json_read::protocol_error(answer->call, code, "the answer lacks result."));
    return *result;
}

Result<std::string> NextcloudClient::openproject_url() const {
    auto answer = send(make_request("GET", stored_url_path, /*as_admin=*/true));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for the stored OpenProject URL"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    auto url = json_read::string_at(*body, {"ocs", "data"});
    if (!url) return std::unexpected(json_read::protocol_error(answer->call, code, "the answer lacks ocs.data."));
    return *url;
}

Result<SetupResult> NextcloudClient::setup(SetupMethod method, const SetupValues& values,
                                           const Version& app_version) const {
    const bool post = method == SetupMethod::post;
    if (post) {
        const char* missing = !values.openproject_url                 ? "openproject_url"
                              : !values.openproject_client_id         ? "openproject_client_id"
                              : !values.openproject_client_secret     ? "openproject_client_secret"
                              : !values.default_enable_navigation     ? "default_enable_navigation"
                              : !values.default_enable_unified_search ? "default_enable_unified_search"
                              : !values.setup_project_folder          ? "setup_project_folder"
                              : !values.setup_app_password            ? "setup_app_password"
                                                                      : nullptr;
        if (missing)
            return invalid(std::string("The Nextcloud setup lacks ") + missing + ".",
                           "POST /setup needs all seven settings; use PATCH for a partial update.");
        if (*values.setup_project_folder != *values.setup_app_password)
            return invalid("setup_project_folder and setup_app_password must be both true or both false for POST.",
                           "To issue only a new app password, PATCH setup_app_password alone.");
    } else if (!values.openproject_url && !values.openproject_client_id && !values.openproject_client_secret &&
               !values.default_enable_navigation && !values.default_enable_unified_search &&
               !values.setup_project_folder && !values.setup_app_password) {
        return invalid("Nothing to change in the Nextcloud setup.", "Set at least one setting for PATCH.");
    }
    // Nextcloud refuses "" for every string setting ("invalid data"): catch it before sending.
    if (values.openproject_client_id && values.openproject_client_id->empty())
        return invalid("The OpenProject client id is empty.", "Pass the client id of OpenProject's OAuth application.");
    if (values.openproject_client_secret && values.openproject_client_secret->empty())
        return invalid("The OpenProject client secret is empty.",
                       "Pass the client secret of OpenProject's OAuth application.");

    // Keys in the order of contract §3; Nextcloud validates them in request order.
    nlohmann::ordered_json settings = nlohmann::ordered_json::object();
    if (values.openproject_url) settings["openproject_instance_url"] = values.openproject_url->str();
    if (post && app_version.at_least(authorization_method_since)) settings["authorization_method"] = "oauth2";
    if (values.openproject_client_id) settings["openproject_client_id"] = *values.openproject_client_id;
    if (values.openproject_client_secret)
        settings["openproject_client_secret"] = values.openproject_client_secret->expose();
    if (values.default_enable_navigation) settings["default_enable_navigation"] = *values.default_enable_navigation;
    if (values.default_enable_unified_search)
        settings["default_enable_unified_search"] = *values.default_enable_unified_search;
    if (values.setup_project_folder) settings["setup_project_folder"] = *values.setup_project_folder;
    if (values.setup_app_password) settings["setup_app_password"] = *values.setup_app_password;
    nlohmann::ordered_json payload = {{"values", std::move(settings)}};
    HttpRequest request = make_request(post ? "POST" : "PATCH", app_path("/setup"), /*as_admin=*/true);
    auto serialized = json_read::serialize(payload);
    if (values.openproject_client_secret)
        json_read::scrub(payload["values"]["openproject_client_secret"].get_ref<std::string&>());
    if (!serialized) return std::unexpected(serialized.error());
    request.body = std::move(*serialized);
    request.timeout = setup_timeout_;

    auto answer = send(std::move(request), values.openproject_client_secret.has_value());
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) {
        Error e = answer_error(*answer, "for the integration setup");
        const bool folder = values.setup_project_folder.value_or(false);
        if (code == 409) {
            e.message = answer->call.describe() +
                        ": the project-folder user, group or team folder \"OpenProject\" already exists (HTTP 409).";
            e.hint = "When project-folder-status is true they are complete: send setup_project_folder false. "
                     "Otherwise remove the partial entities (disable integration_openproject, delete user, group "
                     "and team folder OpenProject, enable the app) and run again.";
        } else if (code == 404 && !e.server_message.empty()) {
            e.message = answer->call.describe() +
                        ": user \"OpenProject\" does not exist, so no app password can be created (HTTP 404).";
            e.hint = "Set up the project folder (setup_project_folder true) together with the app password.";
        } else if (code == 500 && folder) {
            e.hint = "Project folders need the groupfolders (Team folders) app installed and enabled in Nextcloud; "
                     "otherwise see Nextcloud's log.";
        }
        return std::unexpected(std::move(e));
    }
    auto body = json_read::parse_body(answer->call, answer->response);
    json_read::scrub(answer->response.body);
    if (!body) return std::unexpected(body.error());

    SetupResult result;
    result.status = json_read::bool_at(*body, {"status"});
    result.nextcloud_oauth_client_name = json_read::string_at(*body, {"nextcloud_oauth_client_name"});
    result.openproject_redirect_uri = json_read::string_at(*body, {"openproject_redirect_uri"});
    result.nextcloud_client_id = json_read::string_at(*body, {"nextcloud_client_id"});
    if (auto secret = json_read::string_at(*body, {"nextcloud_client_secret"}); secret && !secret->empty())
        result.nextcloud_client_secret = Secret(std::move(*secret));
    result.internal_client_id = json_read::int_at(*body, {"id"});
    if (auto password = json_read::string_at(*body, {"openproject_user_app_password"}); password && !password->empty())
        result.app_password = Secret(std::move(*password));
    result.revocation_status = json_read::string_at(*body, {"openproject_revocation_status"});
    json_read::scrub(*body);

    if (post && !result.nextcloud_client_secret && !result.app_password)
        return std::unexpected(json_read::protocol_error(
            answer->call, code, "the setup answer lacks the new Nextcloud OAuth client (nextcloud_client_secret).",
            "Run again: every POST /setup creates a new client. If it persists, check that integration_openproject "
            "runs with the oauth2 method."));
    return result;
}

Result<void> NextcloudClient::reset() const {
    HttpRequest request = make_request("DELETE", app_path("/setup"), /*as_admin=*/true);
    request.timeout = setup_timeout_;
    auto answer = send(std::move(request));
    if (!answer) return std::unexpected(answer.error());
    if (answer->response.status == 200) return {};
    return std::unexpected(answer_error(*answer, "for the integration reset"));
}

Result<bool> NextcloudClient::sign_terms_of_service() const {
    auto answer = send(make_request("POST", app_path("/sign-term-of-service"), /*as_admin=*/true));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for signing the terms of service"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    auto result = json_read::bool_at(*body, {"result"});
    if (!result) return std::unexpected(json_read::protocol_error(answer->call, code, "the answer lacks result."));
    return *result;
}

std::string OpenProjectReachability::hint() const {
    if (valid) return {};
    const std::string seen = details.empty() ? std::string{} : " (" + details + ")";
    if (verdict == "invalid") return "Nextcloud does not accept the OpenProject URL: it must be an http:// or https:// URL.";
    if (verdict == "redirected")
        return "OpenProject redirects" + seen + ": give Nextcloud the URL it redirects to (scheme, host, sub-path).";
    if (verdict == "not_valid_body")
        return "The URL answers from the Nextcloud server, but not with OpenProject's API: check host and sub-path.";
    if (verdict == "network_error")
        return "The Nextcloud server cannot connect to OpenProject" + seen +
               ": check DNS, firewall and port as seen from the Nextcloud host.";
    if (verdict == "local_remote_servers_not_allowed")
        return "Nextcloud refuses local addresses: set 'allow_local_remote_servers' => true in Nextcloud's config.php.";
    if (verdict == "client_exception" || verdict == "server_exception")
        return "OpenProject answered the Nextcloud server with an error" + seen + ": check OpenProject's log.";
    return "The Nextcloud server's request to OpenProject failed" + seen +
           ": the TLS trust store of the Nextcloud host is a common cause.";
}

Result<OpenProjectReachability> NextcloudClient::probe_openproject(const Url& openproject) const {
    HttpRequest request = make_request("POST", app_path("/is-valid-op-instance"), /*as_admin=*/true);
    auto serialized = json_read::serialize(nlohmann::ordered_json{{"url", openproject.str()}});
    if (!serialized) return std::unexpected(serialized.error());
    request.body = std::move(*serialized);
    auto answer = send(std::move(request));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (code != 200) return std::unexpected(answer_error(*answer, "for the OpenProject reachability probe"));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    const Json* result = json_read::at(*body, {"result"});
    OpenProjectReachability reachability;
    if (result && result->is_boolean()) {
        reachability.valid = result->get<bool>();
        if (!reachability.valid) reachability.verdict = "false";
    } else if (result && result->is_string()) {
        reachability.verdict = result->get<std::string>();
    } else {
        return std::unexpected(json_read::protocol_error(answer->call, code, "the answer lacks result."));
    }
    if (const Json* details = json_read::at(*body, {"details"})) {
        // `details` is a string for every verdict except not_valid_body, where it may be the raw body.
        reachability.details = details->is_string() ? details->get<std::string>() : details->dump();
        // Keep diagnostics short; cut on a UTF-8 character boundary so the text stays valid.
        if (reachability.details.size() > 300) {
            std::size_t cut = 300;
            while (cut > 0 && (static_cast<unsigned char>(reachability.details[cut]) & 0xC0) == 0x80) --cut;
            reachability.details.resize(cut);
        }
    }
    return reachability;
}

Result<DavLogin> NextcloudClient::dav_check(std::string_view user, const Secret& password) const {
    HttpRequest request = make_request("HEAD", "/remote.php/dav", /*as_admin=*/false);
    request.basic = BasicAuth{std::string(user), password};
    auto answer = send(std::move(request));
    if (!answer) return std::unexpected(answer.error());
    const int code = answer->response.status;
    if (success(code)) return DavLogin::accepted;
    if (code == 401) return DavLogin::rejected;
    return std::unexpected(answer_error(*answer, "for the WebDAV login check"));
}

}  // namespace opnc
