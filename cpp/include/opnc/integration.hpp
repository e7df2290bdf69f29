#pragma once
// The exchange (design.md "The exchange"): plan, apply, verify of the Two-way OAuth 2.0 connection
// between one OpenProject and one Nextcloud. Every run reads both sides first (preflight, in
// parallel) and converges: only the missing steps run, each one-time secret is in the journal
// before the next request leaves, and a run after a failure at any point completes the setup.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "opnc/error.hpp"
#include "opnc/secret.hpp"
#include "opnc/transport.hpp"

namespace opnc {

// Step names are part of the interface (journal, events, errors, fault injection, tests).
namespace step {
inline constexpr const char* preflight = "preflight";
inline constexpr const char* create_storage = "create_storage";
inline constexpr const char* configure_nextcloud = "configure_nextcloud";
inline constexpr const char* store_nextcloud_client = "store_nextcloud_client";
inline constexpr const char* set_app_password = "set_app_password";
inline constexpr const char* verify = "verify";
}  // namespace step

struct OpenProjectEndpoint {
    std::string url;
    Secret api_token;  // an API token; or a password when `user` is a login name
    std::string user = "apikey";
};

struct NextcloudEndpoint {
    std::string url;
    std::string user;
    Secret password;
};

struct IntegrationOptions {
    std::string storage_name = "Nextcloud";
    bool project_folders = false;
    // Allows deleting a storage for the same host whose secrets opnc does not hold (its file links go).
    bool replace_storage = false;
    std::string state_dir;  // empty: OPNC_STATE_DIR, $XDG_STATE_HOME/opnc, ~/.local/state/opnc
    bool wait_for_lock = false;
    std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
    std::string ca_bundle;
    std::chrono::milliseconds timeout{30'000};          // per request
    std::chrono::milliseconds setup_timeout{120'000};   // Nextcloud's /setup may revoke many users' tokens
    // Polled while requests are in flight and while waiting for the lock; true aborts the run
    // (the Python bindings use it for Ctrl-C).
    std::function<bool()> should_abort;
};

struct PlannedStep {
    std::string name;
    std::string reason;
    std::vector<std::string> warnings;  // what this step destroys or makes users redo
};

// What preflight saw, without secrets.
struct Observation {
    std::string openproject_version;
    std::string nextcloud_version;
    std::string integration_app_version;
    std::optional<int> storage_id;
    bool storage_configured = false;
    bool storage_has_application_password = false;
    std::string openproject_client_id;        // of OpenProject's OAuth application for the storage
    std::string nextcloud_client_id_in_openproject;
    bool nextcloud_configured = false;         // check-admin-config: config_status_without_project_folder
    bool nextcloud_app_password = false;       // check-admin-config: project_folder_setup_status
    bool project_folder_entities = false;      // project-folder-status
    std::string nextcloud_openproject_url;     // OCS api/v1/url, as stored
    bool journal_holds_secrets = false;
};

struct Plan {
    std::vector<PlannedStep> steps;
    std::vector<std::string> notes;
    Observation observed;
    bool changes() const { return !steps.empty(); }
};

struct StepOutcome {
    enum class Status { done, skipped, failed };
    std::string name;
    Status status = Status::skipped;
    double duration_ms = 0;
    std::string detail;
};
std::string_view to_string(StepOutcome::Status status) noexcept;

struct Check {
    std::string name;
    bool ok = false;
    std::string detail;
    std::string hint;
};

struct VerifyResult {
    std::vector<Check> checks;
    bool ok() const;
};

struct ApplyResult {
    bool changed = false;
    std::vector<StepOutcome> steps;
    std::optional<int> storage_id;
    std::string openproject_client_id;
    std::string nextcloud_client_id;
    std::vector<std::string> notes;
    std::optional<VerifyResult> verify;
    std::optional<Error> error;  // set when a step failed; the journal is kept and a rerun resumes
};

// One line of the status report: `level` is ok, warning or problem.
struct StatusLine {
    std::string area;  // "openproject", "nextcloud", "journal"
    std::string name;
    std::string level;
    std::string detail;
    std::string hint;
};

struct Status {
    std::vector<StatusLine> lines;
    // No line is a problem (warnings are allowed).
    bool healthy() const;
};

struct TeardownOptions {
    // Deleting the OpenProject storage removes its file links: the caller confirms it explicitly.
    bool delete_storage = false;
};

struct TeardownResult {
    bool changed = false;
    std::vector<std::string> removed;    // what this run deleted or reset
    std::vector<std::string> remaining;  // what is left on the servers, each with how to remove it
    std::vector<std::string> notes;
    std::string archived_journal;        // path of the archived journal, or empty
};

// Credentials to rotate. OpenProject's own OAuth application cannot be regenerated through its
// API: either take in values an admin generated in OpenProject's UI ("Replace OAuth values"), or
// replace the whole storage (destroys its file links).
struct RotateOptions {
    bool nextcloud_client = false;  // a new Nextcloud OAuth client, pushed into OpenProject
    bool app_password = false;      // a new app password for user OpenProject, stored in OpenProject
    bool replace_storage = false;   // delete and recreate the storage (needs explicit confirmation)
    std::string openproject_client_id;  // new values from OpenProject's UI, given together
    Secret openproject_client_secret;
};

struct Event {
    enum class Type { step_started, step_finished, step_skipped, step_failed, note };
    Type type;
    std::string step;
    std::string detail;
    double elapsed_ms = 0;  // since the start of the run
};
std::string_view to_string(Event::Type type) noexcept;
using EventSink = std::function<void(const Event&)>;

class Integration {
public:
    // Validates the input (URLs, name) without sending anything: invalid_input on bad values.
    static Result<Integration> create(OpenProjectEndpoint openproject, NextcloudEndpoint nextcloud,
                                      IntegrationOptions options, std::shared_ptr<Transport> transport = nullptr);
    Integration(Integration&&) noexcept;
    Integration& operator=(Integration&&) noexcept;
    ~Integration();

    // Read-only: preflight, then the steps apply would run and why.
    Result<Plan> plan();
    // Converge: preflight, the missing steps, then verify. Errors in preflight come back as Error
    // (nothing changed); a failed step comes back inside ApplyResult::error.
    Result<ApplyResult> apply(const EventSink& on_event = {});
    // Read-only consistency and credential checks of both sides and the journal.
    Result<VerifyResult> verify();
    // Read-only report of both sides, the journal and every disagreement (drift) between them.
    Result<Status> status();
    // Removes the integration: the storage in OpenProject (only with delete_storage), Nextcloud's
    // integration settings (DELETE /setup), then archives the journal. A second run changes nothing.
    Result<TeardownResult> teardown(const TeardownOptions& options, const EventSink& on_event = {});
    // Replaces credentials (see RotateOptions), then verifies. Like apply, a failed step comes back
    // inside ApplyResult::error and the next apply resumes.
    Result<ApplyResult> rotate(const RotateOptions& options, const EventSink& on_event = {});

    // The journal file of this integration (it may not exist yet).
    std::string journal_path() const;

    struct Impl;  // opaque: defined in integration.cpp

private:
    explicit Integration(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace opnc
