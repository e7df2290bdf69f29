#include "opnc/convergence.hpp"

#include <fmt/format.h>

namespace opnc {

namespace {

Error preflight_error(ErrorKind kind, std::string message, std::string hint) {
    return make_error(kind, std::move(message), std::move(hint), step::preflight);
}

}  // namespace

Result<Decision> decide(const Facts& facts, const JournalRecord& journal, const DecisionInput& input) {
    Decision d;
    const auto& s = facts.storage;

    // Project folders already in use (OpenProject holds an app password that Nextcloud has) are kept
    // even when not asked for: a POST /setup with both flags false would delete the app password and
    // silently break them (contract nextcloud.md §5.1 step 6).
    d.project_folders = input.project_folders;
    if (!input.project_folders && s && s->has_application_password && facts.nextcloud_app_password) {
        d.project_folders = true;
        d.notes.push_back("automatically managed project folders are in use on this storage; opnc keeps them");
    }

    auto add = [&](const char* name, std::string reason, std::vector<std::string> warnings = {}) {
        d.steps.push_back(PlannedStep{name, std::move(reason), std::move(warnings)});
    };

    bool storage_is_new = false;
    if (!s) {
        if (facts.name_taken_by) {
            return std::unexpected(preflight_error(
                ErrorKind::conflict,
                fmt::format("OpenProject already has a storage named \"{}\" (id {}) for another host.",
                            input.storage_name, *facts.name_taken_by),
                "choose another name with --storage-name, or rename or remove the other storage in OpenProject"));
        }
        d.create_storage = true;
        storage_is_new = true;
        add(step::create_storage, fmt::format("OpenProject has no storage for {} yet", input.nextcloud_url));
    } else {
        d.holds_secrets = journal.storage_id == s->id && !s->openproject_client_id.empty() &&
                          journal.openproject_client_id == s->openproject_client_id &&
                          !journal.openproject_client_secret.empty();
        if (!d.holds_secrets) {
            const bool complete = s->configured && facts.nextcloud_configured && facts.nextcloud_points_here;
            // A create whose answer was lost: the journal says opnc sent it, and the storage it finds
            // has that name and is still unconfigured, so nobody can have linked files to it yet.
            const bool own_orphan = journal.pending_step == step::create_storage &&
                                    journal.storage_name == s->name && !s->configured &&
                                    s->nextcloud_client_id.empty();
            if (own_orphan) {
                d.delete_storage_first = d.create_storage = storage_is_new = true;
                add(step::create_storage,
                    fmt::format("storage {} was created by an earlier run whose answer was lost; OpenProject shows "
                                "its client secret only once, so it is created again",
                                s->id));
            } else if (input.replace_storage) {
                d.delete_storage_first = d.create_storage = storage_is_new = true;
                add(step::create_storage,
                    fmt::format("--replace-storage: storage \"{}\" (id {}) is deleted and created again", s->name, s->id),
                    {fmt::format("deleting storage {} removes its file links and its project settings in OpenProject",
                                 s->id)});
            } else if (complete) {
                d.notes.push_back(fmt::format(
                    "storage \"{}\" (id {}) is complete and consistent but was set up outside opnc: opnc does not hold "
                    "its secrets (OpenProject shows them only once)",
                    s->name, s->id));
            } else {
                return std::unexpected(preflight_error(
                    ErrorKind::confirmation_required,
                    fmt::format("OpenProject already has storage \"{}\" (id {}) for {}, set up outside opnc and "
                                "incomplete; opnc cannot finish it because OpenProject showed its OAuth client secret "
                                "only once.",
                                s->name, s->id, input.nextcloud_url),
                    fmt::format("rerun with --replace-storage to delete and recreate it (this deletes its file links "
                                "and project settings), or finish or remove it in OpenProject's administration "
                                "(Files → {})",
                                s->name)));
            }
        }
    }

    const bool nc_has_our_client_secret = !journal.nextcloud_client_id.empty() && !journal.nextcloud_client_secret.empty();
    const bool op_holds_journal_client =
        s && !storage_is_new && !s->nextcloud_client_id.empty() && s->nextcloud_client_id == journal.nextcloud_client_id;

    // configure_nextcloud: Nextcloud must hold this storage's OpenProject client and point here.
    bool nextcloud_ok;
    if (storage_is_new) {
        nextcloud_ok = false;
    } else if (d.holds_secrets) {
        nextcloud_ok = journal.nextcloud_configured_with == journal.openproject_client_id &&
                       facts.nextcloud_configured && facts.nextcloud_points_here && nc_has_our_client_secret &&
                       journal.pending_step != step::configure_nextcloud;
    } else {
        nextcloud_ok = true;  // complete but set up outside opnc: its client cannot be checked without the secret
    }

    const bool want_pf = d.project_folders;
    // A new app password is needed when project folders are wanted and Nextcloud has none, or
    // opnc does not know the one Nextcloud has (its value was shown once, to someone else).
    bool need_app_password = false;
    if (want_pf) {
        need_app_password = !facts.project_folder_entities || !facts.nextcloud_app_password ||
                            facts.app_password_rejected ||
                            (journal.app_password.empty() && !(s && s->has_application_password && !d.holds_secrets));
    }
    const bool need_entities = want_pf && !facts.project_folder_entities;

    if (!nextcloud_ok) {
        NextcloudSetupPlan p;
        // PATCH keeps Nextcloud's OAuth client (no user re-authorizes); it is only possible when that
        // client is the one OpenProject holds and opnc knows its secret. After a POST whose answer was
        // lost, Nextcloud's client is unknown: only a POST gives a secret again.
        const bool can_patch = facts.nextcloud_configured && op_holds_journal_client && nc_has_our_client_secret &&
                               journal.pending_step != step::configure_nextcloud;
        p.method = can_patch ? NextcloudSetupPlan::Method::patch : NextcloudSetupPlan::Method::post;
        p.send_client = true;
        if (p.method == NextcloudSetupPlan::Method::post) {
            // POST needs both flags equal (pair rule). With the entities present, true would be 409.
            if (want_pf && !facts.project_folder_entities) {
                p.setup_project_folder = p.setup_app_password = true;
            } else if (want_pf) {
                p.then_patch_app_password = true;
            }
        } else {
            p.setup_project_folder = need_entities;
            p.setup_app_password = need_app_password;
        }
        std::vector<std::string> warnings;
        std::string reason;
        if (p.method == NextcloudSetupPlan::Method::post) {
            reason = storage_is_new ? "Nextcloud needs the new storage's OpenProject client, and creates its own client"
                                    : "Nextcloud is not configured with this storage's OpenProject client";
            if (s && !storage_is_new && !s->nextcloud_client_id.empty())
                warnings.push_back("Nextcloud creates a new OAuth client: every OpenProject user reconnects to Nextcloud once");
            if (facts.nextcloud_configured && !facts.nextcloud_points_here && !facts.nextcloud_openproject_url.empty())
                warnings.push_back(fmt::format("Nextcloud now points to {}; it will point to {}",
                                               facts.nextcloud_openproject_url, input.openproject_url));
        } else {
            reason = "Nextcloud's OpenProject settings are updated in place (its OAuth client is kept)";
        }
        if (want_pf && (p.setup_project_folder || p.then_patch_app_password || p.setup_app_password))
            reason += "; project folders: " + std::string(need_entities ? "user, group and team folder created, " : "") +
                      "new app password";
        d.configure_nextcloud = p;
        add(step::configure_nextcloud, std::move(reason), std::move(warnings));
    } else if (need_app_password || need_entities) {
        NextcloudSetupPlan p;
        p.method = NextcloudSetupPlan::Method::patch;
        p.send_client = false;
        p.setup_project_folder = need_entities;
        p.setup_app_password = true;
        d.configure_nextcloud = p;
        add(step::configure_nextcloud,
            need_entities ? "project folders: Nextcloud creates the OpenProject user, group and team folder and an app password"
                          : "project folders: Nextcloud issues a new app password for user OpenProject",
            s && s->has_application_password
                ? std::vector<std::string>{"the app password OpenProject holds now stops working until it is replaced"}
                : std::vector<std::string>{});
    }

    // store_nextcloud_client: OpenProject must hold the Nextcloud client opnc knows.
    const bool nextcloud_client_changes =
        d.configure_nextcloud && d.configure_nextcloud->method == NextcloudSetupPlan::Method::post;
    if (storage_is_new || nextcloud_client_changes || (d.holds_secrets && !op_holds_journal_client)) {
        d.store_nextcloud_client = true;
        add(step::store_nextcloud_client, storage_is_new || nextcloud_client_changes
                                              ? "OpenProject needs Nextcloud's new OAuth client"
                                              : "OpenProject does not hold Nextcloud's current OAuth client");
    }

    // set_app_password: OpenProject must hold the app password Nextcloud issued.
    if (want_pf) {
        const bool new_password = d.configure_nextcloud &&
                                  (d.configure_nextcloud->setup_app_password || d.configure_nextcloud->then_patch_app_password);
        const bool op_lacks = !(s && !storage_is_new && s->has_application_password && journal.app_password_in_openproject);
        if (new_password || (op_lacks && !journal.app_password.empty() && !(s && !d.holds_secrets && s->has_application_password))) {
            d.set_app_password = true;
            add(step::set_app_password, new_password ? "OpenProject needs the new app password of user OpenProject"
                                                     : "OpenProject does not hold the current app password");
        }
    }
    return d;
}

}  // namespace opnc
