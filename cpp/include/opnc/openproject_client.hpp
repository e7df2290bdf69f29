#pragma once
// Typed client of the OpenProject API v3 calls opnc needs (contract/openproject.md): discovery
// (root, users/me) and the file storage resource with its OAuth application and the Nextcloud
// client credentials. Every method returns a typed value or a typed Error (kind, HTTP status,
// errorIdentifier in server_id, the localised message in server_message only); no caller ever
// needs to look at raw JSON or English text.
//
// Thread safety: all methods are const and the client holds no mutable state, so one client can
// serve several threads at once (the transport must be thread-safe, as Transport requires).
// Retries are the transport's business (RetryingTransport); this client sends each request once.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "opnc/error.hpp"
#include "opnc/secret.hpp"
#include "opnc/transport.hpp"
#include "opnc/url.hpp"
#include "opnc/version.hpp"

namespace opnc {

namespace op_urn {
inline constexpr std::string_view nextcloud_provider = "urn:openproject-org:api:v3:storages:Nextcloud";
inline constexpr std::string_view two_way_oauth2 =
    "urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2";
inline constexpr std::string_view oauth2_sso = "urn:openproject-org:api:v3:storages:authenticationMethod:OAuth2SSO";
inline constexpr std::string_view error_prefix = "urn:openproject-org:api:v3:errors:";
}  // namespace op_urn

// How the API token travels (contract §1). Basic "apikey:<token>" works in every release with
// the storages API; Bearer only in newer ones.
enum class OpenProjectAuth { api_key_basic, bearer };

struct OpenProjectRoot {
    std::string instance_name;
    std::optional<Version> core_version;  // rendered for administrators only
};

// GET /api/v3/configuration (contract §2.2).
struct OpenProjectConfiguration {
    // OpenProject's configured host name ("op.example" or "op.example:8080"; newer releases). OP
    // builds the OAuth callback URL that Nextcloud redirects to from it, so it must match the
    // host of the OpenProject URL given to Nextcloud.
    std::optional<std::string> host_name;
    std::vector<std::string> active_feature_flags;  // newer releases
};

struct OpenProjectUser {
    std::int64_t id = 0;
    std::string name;
    std::optional<std::string> login;   // for the user itself and administrators
    std::optional<bool> admin;          // rendered only when the caller is an administrator
    std::optional<std::string> status;  // "active", "locked", ...
    // What storage writes need (contract §1): admin == true and status == "active".
    bool is_active_admin() const { return admin.value_or(false) && status.value_or("") == "active"; }
};

// A file storage as OpenProject renders it (contract §3.2). Secrets are never part of it.
struct Storage {
    std::int64_t id = 0;
    std::string name;
    std::optional<std::string> host;  // _links.origin.href exactly as rendered (absent when unset)
    std::string provider_type;        // URN, e.g. op_urn::nextcloud_provider
    std::optional<std::string> authentication_method;  // URN; absent in releases before 16.0
    bool configured = false;  // false too when not rendered (early releases): see the client ids below
    std::optional<bool> has_application_password;              // Nextcloud storages only
    std::optional<std::int64_t> oauth_application_id;          // OpenProject's OAuth application
    std::optional<std::string> oauth_application_client_id;    // _embedded.oauthApplication.clientId
    std::optional<std::string> oauth_client_credentials_client_id;  // the Nextcloud client stored in OP

    bool is_nextcloud() const { return provider_type == op_urn::nextcloud_provider; }
    // Releases without the authenticationMethod link only know two-way OAuth 2.0.
    bool uses_two_way_oauth2() const {
        return !authentication_method || *authentication_method == op_urn::two_way_oauth2;
    }
};

// The answer to a create: the storage and the one-time credentials of OpenProject's OAuth
// application. The secret exists nowhere else: persist it before sending anything else.
struct CreatedStorage {
    Storage storage;
    std::string openproject_client_id;
    Secret openproject_client_secret;
};

// The Nextcloud OAuth client stored in OpenProject (contract §3.4); the secret is never rendered.
struct StoredOAuthClient {
    std::optional<std::int64_t> id;
    std::string client_id;
};

// Changes for PATCH /api/v3/storages/{id}; only the fields set are sent.
struct StorageChanges {
    std::optional<std::string> name;
    std::optional<Url> host;
    // Set: a value enables automatically managed project folders, an empty Secret disables them.
    std::optional<Secret> application_password;
};

// One failed constraint of a 422 (contract §11). `attribute` is the API property name
// ("name", "host" or "origin", "password", "authenticationMethod"); `key` is the error key
// ("taken", "enterprise_plan_required", ...) when OpenProject renders one or opnc established it
// (a re-read showed the name or host in use: "taken"), else empty.
struct ConstraintViolation {
    std::string attribute;
    std::string key;
};

// The violations carried by an Error of this client (kinds validation, conflict and
// enterprise_required at HTTP 422). They travel in Error::server_id as "attribute[:key]" items
// joined by ',' (e.g. "name:taken,host:taken"); this decodes them.
std::vector<ConstraintViolation> openproject_violations(const Error& error);

class OpenProjectClient {
public:
    // `base` is OpenProject's root URL (sub-path kept). `transport` is shared and thread-safe.
    // With Basic, `basic_user` is "apikey" for an API token; a login name makes `api_token` that
    // user's password (what integration_setup.sh's OP_ADMIN_USERNAME/OP_ADMIN_PASSWORD allow).
    OpenProjectClient(std::shared_ptr<Transport> transport, Url base, Secret api_token,
                      OpenProjectAuth auth = OpenProjectAuth::api_key_basic, std::string basic_user = "apikey");

    const Url& base_url() const noexcept { return base_; }

    // GET /api/v3
    Result<OpenProjectRoot> root() const;
    // GET /api/v3/configuration
    Result<OpenProjectConfiguration> configuration() const;
    // GET /api/v3/users/me
    Result<OpenProjectUser> me() const;
    // GET /api/v3/storages (every element of the collection). Upstream renders this list as an
    // UnpaginatedCollection, so one request sees every storage and there is no page to follow.
    Result<std::vector<Storage>> list_storages() const;
    // GET /api/v3/storages/{id}; not_found when missing or invisible to the caller.
    Result<Storage> get_storage(std::int64_t id) const;

    // POST /api/v3/storages: a Nextcloud storage with Two-way OAuth 2.0 and automatically managed
    // project folders off (applicationPassword ""; set it later). A 201 without the one-time
    // clientSecret is a protocol error. On a 422 that names the name or host, the storages are
    // re-read (GET) to tell a uniqueness violation (conflict) from other failures without reading
    // localised text.
    Result<CreatedStorage> create_storage(std::string_view name, const Url& host) const;

    // PATCH /api/v3/storages/{id} with the given changes.
    Result<Storage> update_storage(std::int64_t id, const StorageChanges& changes) const;
    // PATCH applicationPassword: the Nextcloud app password of user OpenProject, or nullopt/"" to
    // turn automatically managed project folders off.
    Result<Storage> update_storage_application_password(std::int64_t id,
                                                        const std::optional<Secret>& password) const;

    // DELETE /api/v3/storages/{id} (204). Destroys file links: callers confirm first.
    Result<void> delete_storage(std::int64_t id) const;

    // POST /api/v3/storages/{id}/oauth_client_credentials: stores Nextcloud's OAuth client in
    // OpenProject (replacing any earlier one) and answers the stored client id.
    Result<StoredOAuthClient> set_oauth_client_credentials(std::int64_t id, std::string_view client_id,
                                                           const Secret& client_secret) const;

private:
    struct Answer;  // the call and its HTTP response (defined in the .cpp)
    // Sends one request below /api/v3 with the headers every call needs. A body that carries a
    // secret is zeroed after sending.
    Result<Answer> send(std::string_view method, std::string_view path, std::string body = {},
                        bool body_holds_secret = false) const;
    // The typed Error for a non-success answer (HAL error model, contract §11).
    Error answer_error(const Answer& answer) const;
    // For a 422 naming the name or host: re-reads the storages and marks the violations that a
    // storage other than `self` explains as "taken" (a uniqueness violation).
    void mark_uniqueness_violations(Error& error, std::string_view name, const std::optional<Url>& host,
                                    std::optional<std::int64_t> self) const;

    std::shared_ptr<Transport> transport_;
    Url base_;
    Secret api_token_;
    OpenProjectAuth auth_;
    std::string basic_user_;
};

}  // namespace opnc
