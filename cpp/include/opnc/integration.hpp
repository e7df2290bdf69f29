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
    Secret api_token;
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

    // The journal file of this integration (it may not exist yet).
    std::string journal_path() const;

private:
    struct Impl;
    explicit Integration(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace opnc
