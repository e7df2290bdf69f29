#pragma once
// The decision at the heart of "converge, do not replay": from what preflight saw on both servers
// and what the journal remembers, which steps of the exchange are still missing, in which form,
// and why. A pure function without I/O, so that every case is a unit test.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "opnc/error.hpp"
#include "opnc/integration.hpp"
#include "opnc/journal.hpp"

namespace opnc {

// What preflight read, reduced to what the decision needs (no secrets).
struct Facts {
    struct StorageFacts {
        std::int64_t id = 0;
        std::string name;
        bool configured = false;
        bool has_application_password = false;
        std::string openproject_client_id;       // of OpenProject's OAuth application ("" if none)
        std::string nextcloud_client_id;         // the Nextcloud client stored in OpenProject ("" if none)
    };
    std::optional<StorageFacts> storage;         // the storage whose host is this Nextcloud
    std::optional<std::int64_t> name_taken_by;   // another storage (other host) with the wanted name
    bool nextcloud_configured = false;           // check-admin-config: config_status_without_project_folder
    bool nextcloud_app_password = false;         // check-admin-config: project_folder_setup_status
    bool project_folder_entities = false;        // project-folder-status: user, group and team folder exist
    bool nextcloud_points_here = false;          // Nextcloud's stored OpenProject URL is this OpenProject
    std::string nextcloud_openproject_url;       // as stored (for messages)
    bool app_password_rejected = false;          // Nextcloud refuses the journal's app password
};

// How configure_nextcloud talks to Nextcloud's /setup.
struct NextcloudSetupPlan {
    enum class Method { post, patch };
    Method method = Method::post;
    bool send_client = true;          // send the OpenProject URL, client id and secret
    bool setup_project_folder = false;
    bool setup_app_password = false;
    // POST with both flags false while the entities exist deletes the app password: issue a new one
    // with a PATCH {setup_app_password: true} right after (contract nextcloud.md §6 "client recipes").
    bool then_patch_app_password = false;
};

struct Decision {
    bool delete_storage_first = false;  // replace: delete the storage before creating it again
    bool create_storage = false;
    std::optional<NextcloudSetupPlan> configure_nextcloud;
    bool store_nextcloud_client = false;
    bool set_app_password = false;
    bool project_folders = false;       // effective: asked for, or already in use and kept
    std::vector<PlannedStep> steps;     // the same, for people: names, reasons, warnings
    std::vector<std::string> notes;
    bool holds_secrets = false;         // the journal holds this storage's OpenProject client secret

    bool changes() const { return !steps.empty(); }
};

struct DecisionInput {
    std::string storage_name;
    bool project_folders = false;
    bool replace_storage = false;
    std::string openproject_url;  // normalised, for messages
    std::string nextcloud_url;
};

// Errors: conflict (the storage name is taken by a storage for another host) and
// confirmation_required (a storage for this Nextcloud exists whose secret opnc does not hold and
// which is incomplete; --replace-storage allows deleting it), both in step preflight.
Result<Decision> decide(const Facts& facts, const JournalRecord& journal, const DecisionInput& input);

}  // namespace opnc
