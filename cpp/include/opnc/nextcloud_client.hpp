#pragma once
// Typed client of the Nextcloud calls opnc needs (contract/nextcloud.md): status.php, the
// capabilities, the integration_openproject app's setup and diagnostic routes, and a WebDAV
// credential probe. Every request sends Accept: application/json and OCS-APIRequest: true (the
// app's CSRF-protected and OCS routes need it, the others ignore it); app routes always use the
// /index.php/apps/integration_openproject form, which works with and without pretty URLs.
//
// Errors key on the HTTP status only: Nextcloud's texts are translated and changed between app
// versions, so they go to Error::server_message for diagnostics and are never interpreted.
//
// Thread safety: all methods are const and the client holds no mutable state.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "opnc/error.hpp"
#include "opnc/secret.hpp"
#include "opnc/transport.hpp"
#include "opnc/url.hpp"
#include "opnc/version.hpp"

namespace opnc {

// GET /status.php (contract §10.1).
struct NextcloudStatus {
    bool installed = false;
    bool maintenance = false;
    bool needs_db_upgrade = false;
    std::string version;         // "34.0.1.2"
    std::string versionstring;   // "34.0.1"
    std::string productname;     // "Nextcloud" (branded instances differ)
    // What opnc requires before it changes anything.
    bool ready() const { return installed && !maintenance && !needs_db_upgrade; }
};

// GET /ocs/v2.php/cloud/capabilities (contract §10.2).
struct NextcloudCapabilities {
    Version server_version;              // from ocs.data.version (major.minor.micro)
    std::string server_version_string;   // ocs.data.version.string, e.g. "34.0.1"
    // integration_openproject's block; absent when the app is disabled, missing or older than 2.4.3.
    std::optional<Version> app_version;
    std::optional<bool> groupfolders_enabled;
    std::optional<std::string> groupfolder_version;  // "" or "0" may mean "not installed"
};

// How Nextcloud saw the test Authorization header of check-config (contract §10.3).
enum class AuthorizationHeaderEcho {
    unchanged,  // it arrived exactly as sent: OpenProject's host probe will pass
    missing,    // null: a proxy or PHP-FPM strips the header (OpenProject: authorization_header_missing)
    altered,    // something else arrived (a proxy rewrote it)
};
std::string_view to_string(AuthorizationHeaderEcho echo) noexcept;

struct CheckConfigResult {
    AuthorizationHeaderEcho authorization_header = AuthorizationHeaderEcho::missing;
    std::string user_id;  // "" for the anonymous probe
};

// GET /check-admin-config (contract §10.4, app 2.7.0 and later).
struct AdminConfigStatus {
    bool config_without_project_folder = false;  // the OAuth part is complete
    bool project_folder_setup = false;           // only: the OpenProject app password exists
};

// The settings of POST/PATCH /setup (contract §3). POST needs all seven; PATCH sends the ones set.
// opnc only sets up oauth2, so `authorization_method` is not a field: POST adds "oauth2" for app
// versions that know the key (2.9.0 and later) and never sends it to older ones.
struct SetupValues {
    std::optional<Url> openproject_url;  // must equal OpenProject's own root URL (contract §13)
    std::optional<std::string> openproject_client_id;
    std::optional<Secret> openproject_client_secret;
    std::optional<bool> default_enable_navigation;
    std::optional<bool> default_enable_unified_search;
    // Both true or both false on POST (the pair rule).
    std::optional<bool> setup_project_folder;
    std::optional<bool> setup_app_password;
};

enum class SetupMethod { post, patch };

// The answer of POST/PATCH /setup (contract §5.2, §6). The one-time values exist only here.
struct SetupResult {
    std::optional<bool> status;  // the admin configuration is complete (2.11.4, 3.1.1 and later)
    std::optional<std::string> nextcloud_oauth_client_name;
    std::optional<std::string> openproject_redirect_uri;
    std::optional<std::string> nextcloud_client_id;
    std::optional<Secret> nextcloud_client_secret;  // POST, or a PATCH that had to create a client
    std::optional<std::int64_t> internal_client_id;  // PATCH with an existing client; opaque
    std::optional<Secret> app_password;  // the app password of user OpenProject (setup_app_password: true)
    std::optional<std::string> revocation_status;  // "success", "connection_error", "other_error"
};

// HEAD /remote.php/dav with Basic credentials (contract §9).
enum class DavLogin { accepted, rejected };

// POST is-valid-op-instance (contract §10.7): the Nextcloud server itself sends GET <op>/api/v3/,
// so the verdict shows DNS, firewalls, TLS trust and allow_local_remote_servers as seen from the
// Nextcloud host, which OpenProject's users need for every file operation.
struct OpenProjectReachability {
    bool valid = false;   // OpenProject's API answered as OpenProject
    std::string verdict;  // "" when valid; else Nextcloud's code: "invalid", "redirected", "not_valid_body",
                          // "network_error", "client_exception", "server_exception",
                          // "local_remote_servers_not_allowed", "request_exception", "unexpected_error"
    std::string details;  // Nextcloud's details (a Location, a cURL message, "<code> <reason>"); diagnostics only
    // What an operator should do about a failed verdict ("" when valid).
    std::string hint() const;
};

class NextcloudClient {
public:
    // `base` is Nextcloud's root URL (sub-path kept); `user` an administrator, `password` its
    // password or, better, an app password. /setup and DELETE /setup get `setup_timeout`
    // because Nextcloud may revoke every user's OpenProject token inside the call.
    NextcloudClient(std::shared_ptr<Transport> transport, Url base, std::string user, Secret password,
                    std::chrono::milliseconds setup_timeout = std::chrono::minutes(2));

    const Url& base_url() const noexcept { return base_; }

    // GET /status.php (public).
    Result<NextcloudStatus> status() const;
    // GET /ocs/v2.php/cloud/capabilities?format=json.
    Result<NextcloudCapabilities> capabilities() const;
    // GET check-config with a random `Authorization: Bearer` value, without admin credentials, and
    // whether the header reached Nextcloud unchanged.
    Result<CheckConfigResult> check_config() const;
    // GET check-admin-config (admin).
    Result<AdminConfigStatus> check_admin_config() const;
    // GET project-folder-status (admin): user, group and team folder OpenProject exist and fit.
    Result<bool> project_folder_status() const;
    // GET OCS api/v1/url: the stored OpenProject URL, as stored ("" when unset; app 2.8.0+).
    Result<std::string> openproject_url() const;

    // POST or PATCH /setup. `app_version` is integration_openproject's version from capabilities():
    // it decides whether `authorization_method` is sent. POST needs every field of `values`
    // (invalid_input otherwise, nothing sent), PATCH at least one. A 200 that carries a one-time
    // value is never turned into an error, so nothing shown once is lost; a POST answer with
    // neither the Nextcloud client nor the app password is a protocol error.
    Result<SetupResult> setup(SetupMethod method, const SetupValues& values, const Version& app_version) const;

    // DELETE /setup: resets the app's OAuth configuration (the Nextcloud client is deleted).
    Result<void> reset() const;

    // POST sign-term-of-service (app 2.6.1+): signs every Terms of Service for user OpenProject.
    // /setup with setup_project_folder already does this when the terms_of_service app is
    // enabled; this is for a terms_of_service app enabled later. Answers the app's `result`.
    Result<bool> sign_terms_of_service() const;

    // POST is-valid-op-instance with {"url": openproject} (any logged-in user; app 2.0.0+).
    Result<OpenProjectReachability> probe_openproject(const Url& openproject) const;

    // HEAD /remote.php/dav as `user` (OpenProject's application password check, contract §4.3).
    Result<DavLogin> dav_check(std::string_view user, const Secret& password) const;

private:
    struct Answer;  // the call and its HTTP response (defined in the .cpp)
    // A request with the headers every call sends; `as_admin` adds the admin's Basic credentials
    // (public routes go without them, so a wrong password is not counted by brute-force protection).
    HttpRequest make_request(std::string_view method, std::string_view path, bool as_admin) const;
    // Sends it; a body that carried a secret is zeroed afterwards.
    Result<Answer> send(HttpRequest request, bool body_holds_secret = false) const;
    // The typed Error for a non-success answer; `context` says what the call was for.
    Error answer_error(const Answer& answer, std::string_view context) const;

    std::shared_ptr<Transport> transport_;
    Url base_;
    std::string user_;
    Secret password_;
    std::chrono::milliseconds setup_timeout_;
};

}  // namespace opnc
