#include "opnc/integration.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fstream>
#include <future>

#include <fmt/format.h>
#include <mutex>

#include "opnc/convergence.hpp"
#include "opnc/curl_transport.hpp"
#include "opnc/journal.hpp"
#include "opnc/nextcloud_client.hpp"
#include "opnc/oauth/probe.hpp"
#include "opnc/openproject_client.hpp"
#include "opnc/retrying_transport.hpp"
#include "opnc/state_dir.hpp"
#include "opnc/url.hpp"
#include "opnc/version.hpp"

namespace opnc {

std::string_view to_string(StepOutcome::Status status) noexcept {
    switch (status) {
        case StepOutcome::Status::done: return "done";
        case StepOutcome::Status::skipped: return "skipped";
        case StepOutcome::Status::failed: return "failed";
    }
    return "failed";
}

std::string_view to_string(Event::Type type) noexcept {
    switch (type) {
        case Event::Type::step_started: return "step_started";
        case Event::Type::step_finished: return "step_finished";
        case Event::Type::step_skipped: return "step_skipped";
        case Event::Type::step_failed: return "step_failed";
        case Event::Type::note: return "note";
    }
    return "note";
}

bool VerifyResult::ok() const {
    return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; });
}

namespace {

using Clock = std::chrono::steady_clock;

// The oldest releases opnc drives: integration_openproject 2.7.0 has /check-admin-config, which
// preflight needs; OpenProject 13.0 takes the application password through the API.
const Version kMinimumAppVersion = Version::of(2, 7, 0);
const Version kMinimumOpenProjectVersion = Version::of(13, 0, 0);

Error with_step(Error e, std::string_view step_name) {
    if (e.step.empty()) e.step = std::string(step_name);
    return e;
}

Error preflight_failure(ErrorKind kind, std::string message, std::string hint) {
    return make_error(kind, std::move(message), std::move(hint), step::preflight);
}

// Two URLs name the same server when their normalised forms agree ("https://x/" == "https://x").
bool same_url(std::string_view a, const Url& b) {
    auto parsed = Url::parse(a);
    return parsed && parsed->str() == b.str();
}

// Everything preflight reads, each as the client returned it (value or error).
struct Snapshot {
    Result<OpenProjectRoot> root = fail(ErrorKind::internal, "not read");
    Result<OpenProjectUser> me = fail(ErrorKind::internal, "not read");
    Result<std::vector<Storage>> storages = fail(ErrorKind::internal, "not read");
    Result<NextcloudStatus> status = fail(ErrorKind::internal, "not read");
    Result<NextcloudCapabilities> capabilities = fail(ErrorKind::internal, "not read");
    Result<CheckConfigResult> check_config = fail(ErrorKind::internal, "not read");
    Result<AdminConfigStatus> admin_config = fail(ErrorKind::internal, "not read");
    Result<bool> project_folder_status = fail(ErrorKind::internal, "not read");
    Result<std::string> openproject_url_on_nextcloud = fail(ErrorKind::internal, "not read");
    std::optional<Result<DavLogin>> app_password_login;  // the journal's app password, when there is one
};

}  // namespace

struct Integration::Impl {
    OpenProjectEndpoint op;
    NextcloudEndpoint nc;
    IntegrationOptions options;
    Url op_url;
    Url nc_url;
    std::shared_ptr<Transport> transport;  // retrying, shared by both clients
    OpenProjectClient op_client;
    NextcloudClient nc_client;
    std::filesystem::path state_dir;
    std::vector<std::string> state_notes;  // about the state folder (e.g. readable by others)

    // Per run.
    EventSink sink;
    Clock::time_point started;
    std::mutex event_mutex;

    Impl(OpenProjectEndpoint o, NextcloudEndpoint n, IntegrationOptions opt, Url ou, Url nu,
         std::shared_ptr<Transport> t)
        : op(std::move(o)),
          nc(std::move(n)),
          options(std::move(opt)),
          op_url(std::move(ou)),
          nc_url(std::move(nu)),
          transport(std::move(t)),
          op_client(transport, op_url, op.api_token, OpenProjectAuth::api_key_basic, op.user),
          nc_client(transport, nc_url, nc.user, nc.password, options.setup_timeout) {}

    // Waits for a worker's result while polling the abort hook: the hook is what notices Ctrl-C,
    // and the workers' transports follow what this thread sees.
    template <class T>
    T await(std::future<T>& f) {
        while (f.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
            if (options.should_abort) (void)options.should_abort();
        }
        return f.get();
    }

    double elapsed_ms() const {
        return std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    }

    void emit(Event::Type type, std::string_view step_name, std::string detail = {}) {
        if (!sink) return;
        Event e{type, std::string(step_name), std::move(detail), elapsed_ms()};
        std::lock_guard lock(event_mutex);  // one event at a time, in order, even from parallel steps
        sink(e);
    }

    Result<std::filesystem::path> resolve_state() {
        if (!state_dir.empty()) return state_dir;
        auto dir = resolve_state_dir(options.state_dir);
        if (!dir) return std::unexpected(dir.error());
        state_dir = dir->path;
        state_notes = dir->notes;
        return state_dir;
    }

    JournalKey key() const { return JournalKey(op_url, nc_url); }

    // ---- preflight -------------------------------------------------------------------------

    Snapshot read_both_sides(bool project_folders, const Secret* app_password = nullptr) {
        Snapshot s;
        // Every read in parallel: the preflight costs one round trip of the slower server.
        auto root = std::async(std::launch::async, [&] { return op_client.root(); });
        auto me = std::async(std::launch::async, [&] { return op_client.me(); });
        auto storages = std::async(std::launch::async, [&] { return op_client.list_storages(); });
        auto status = std::async(std::launch::async, [&] { return nc_client.status(); });
        auto caps = std::async(std::launch::async, [&] { return nc_client.capabilities(); });
        auto check = std::async(std::launch::async, [&] { return nc_client.check_config(); });
        auto admin = std::async(std::launch::async, [&] { return nc_client.check_admin_config(); });
        auto url = std::async(std::launch::async, [&] { return nc_client.openproject_url(); });
        std::future<Result<bool>> folders;
        if (project_folders) folders = std::async(std::launch::async, [&] { return nc_client.project_folder_status(); });
        std::future<Result<DavLogin>> dav;
        if (app_password && !app_password->empty())
            dav = std::async(std::launch::async, [&] { return nc_client.dav_check("OpenProject", *app_password); });
        s.root = await(root);
        s.me = await(me);
        s.storages = await(storages);
        s.status = await(status);
        s.capabilities = await(caps);
        s.check_config = await(check);
        s.admin_config = await(admin);
        s.openproject_url_on_nextcloud = await(url);
        if (project_folders) s.project_folder_status = await(folders);
        if (dav.valid()) s.app_password_login = await(dav);
        return s;
    }

    // The checks of preflight, most fundamental first: the first failure is the one reported.
    Result<void> judge(const Snapshot& s, bool project_folders) {
        // OpenProject: reachable, token valid, an active admin, a version that has what opnc needs.
        if (!s.root) return std::unexpected(with_step(s.root.error(), step::preflight));
        if (!s.me) {
            Error e = with_step(s.me.error(), step::preflight);
            if (e.kind == ErrorKind::unauthenticated) {
                e.message = "OpenProject refused the API token.";
                e.hint = "check the token (OpenProject: My account → Access tokens); it must belong to an administrator";
            }
            return std::unexpected(e);
        }
        if (!s.me->is_active_admin()) {
            return std::unexpected(preflight_failure(
                ErrorKind::forbidden,
                fmt::format("the OpenProject API token belongs to \"{}\", who is not an active administrator.", s.me->name),
                "use an API token of an active OpenProject administrator (storages can only be set up by admins)"));
        }
        if (s.root->core_version && !s.root->core_version->at_least(kMinimumOpenProjectVersion)) {
            Error e = preflight_failure(ErrorKind::unsupported_version,
                                        fmt::format("OpenProject {} is too old for opnc.", s.root->core_version->str()),
                                        fmt::format("upgrade OpenProject to {} or later", kMinimumOpenProjectVersion.str()));
            return std::unexpected(e);
        }
        if (!s.storages) return std::unexpected(with_step(s.storages.error(), step::preflight));

        // Nextcloud: installed, not in maintenance, the app present and recent enough.
        if (!s.status) return std::unexpected(with_step(s.status.error(), step::preflight));
        if (!s.status->installed)
            return std::unexpected(preflight_failure(ErrorKind::preflight_failed, "Nextcloud is not installed yet.",
                                                     "finish Nextcloud's installation first"));
        if (s.status->maintenance)
            return std::unexpected(preflight_failure(ErrorKind::preflight_failed, "Nextcloud is in maintenance mode.",
                                                     "wait for the maintenance to end, or turn it off with "
                                                     "`occ maintenance:mode --off`, then run opnc again"));
        if (s.status->needs_db_upgrade)
            return std::unexpected(preflight_failure(ErrorKind::preflight_failed, "Nextcloud needs a database upgrade.",
                                                     "run `occ upgrade` on the Nextcloud server first"));
        if (!s.capabilities) return std::unexpected(with_step(s.capabilities.error(), step::preflight));
        if (!s.capabilities->app_version)
            return std::unexpected(preflight_failure(
                ErrorKind::preflight_failed,
                "the Nextcloud app integration_openproject (\"OpenProject Integration\") is not installed or not enabled.",
                "install and enable it: `occ app:install integration_openproject` or `occ app:enable "
                "integration_openproject`"));
        if (!s.capabilities->app_version->at_least(kMinimumAppVersion))
            return std::unexpected(preflight_failure(
                ErrorKind::unsupported_version,
                fmt::format("integration_openproject {} on Nextcloud is too old for opnc.", s.capabilities->app_version->str()),
                fmt::format("update the app to {} or later (`occ app:update integration_openproject`)", kMinimumAppVersion.str())));

        // The Authorization header first: a web server that strips it also breaks the admin's Basic
        // login below, and this is the cause to report.
        if (!s.check_config) return std::unexpected(with_step(s.check_config.error(), step::preflight));
        if (s.check_config->authorization_header != AuthorizationHeaderEcho::unchanged) {
            return std::unexpected(preflight_failure(
                ErrorKind::preflight_failed,
                fmt::format("Nextcloud's web server does not pass the Authorization header to Nextcloud ({}); OpenProject "
                            "refuses such a host.",
                            to_string(s.check_config->authorization_header)),
                "configure the web server to pass the Authorization header (Apache: `SetEnvIf Authorization \"(.*)\" "
                "HTTP_AUTHORIZATION=$1`; nginx with PHP-FPM: `fastcgi_param HTTP_AUTHORIZATION $http_authorization;`)"));
        }
        // Admin credentials on Nextcloud (check-admin-config needs an admin).
        if (!s.admin_config) {
            Error e = with_step(s.admin_config.error(), step::preflight);
            if (e.kind == ErrorKind::unauthenticated) {
                e.message = fmt::format("Nextcloud refused the password of user \"{}\".", nc.user);
                e.hint = "check the Nextcloud admin user and password (an app password is best: Personal settings → "
                         "Security → Devices & sessions)";
            } else if (e.kind == ErrorKind::forbidden) {
                e.message = fmt::format("Nextcloud user \"{}\" is not an administrator.", nc.user);
                e.hint = "use a member of Nextcloud's admin group";
            }
            return std::unexpected(e);
        }
        if (project_folders && !s.capabilities->groupfolders_enabled.value_or(false))
            return std::unexpected(preflight_failure(
                ErrorKind::preflight_failed,
                "automatically managed project folders need the Nextcloud app groupfolders (Team folders), which is not "
                "enabled.",
                "enable it (`occ app:enable groupfolders`) or run without --project-folders"));
        if (project_folders && !s.project_folder_status)
            return std::unexpected(with_step(s.project_folder_status.error(), step::preflight));
        if (!s.openproject_url_on_nextcloud)
            return std::unexpected(with_step(s.openproject_url_on_nextcloud.error(), step::preflight));
        return {};
    }

    // Input-level checks that need no request: OpenProject's rule for the Nextcloud host.
    Result<void> check_urls() const {
        if (!nc_url.is_https() && !nc_url.is_loopback())
            return std::unexpected(preflight_failure(
                ErrorKind::preflight_failed,
                fmt::format("OpenProject only accepts a Nextcloud URL with https (or a loopback address); {} is plain "
                            "http.",
                            nc_url.str()),
                "use Nextcloud's https URL"));
        return {};
    }

    Facts facts_from(const Snapshot& s, bool project_folders) const {
        Facts f;
        for (const auto& storage : *s.storages) {
            if (!storage.is_nextcloud()) continue;
            const bool same_host = storage.host && same_url(*storage.host, nc_url);
            if (same_host && !f.storage) {
                Facts::StorageFacts sf;
                sf.id = storage.id;
                sf.name = storage.name;
                sf.configured = storage.configured;
                sf.has_application_password = storage.has_application_password.value_or(false);
                sf.openproject_client_id = storage.oauth_application_client_id.value_or("");
                sf.nextcloud_client_id = storage.oauth_client_credentials_client_id.value_or("");
                f.storage = sf;
            } else if (!same_host && storage.name == options.storage_name) {
                f.name_taken_by = storage.id;
            }
        }
        f.nextcloud_configured = s.admin_config->config_without_project_folder;
        f.nextcloud_app_password = s.admin_config->project_folder_setup;
        f.project_folder_entities = project_folders && s.project_folder_status && *s.project_folder_status;
        f.nextcloud_openproject_url = *s.openproject_url_on_nextcloud;
        f.nextcloud_points_here = same_url(f.nextcloud_openproject_url, op_url);
        f.app_password_rejected = s.app_password_login && *s.app_password_login &&
                                  **s.app_password_login == DavLogin::rejected;
        return f;
    }

    Observation observation_from(const Snapshot& s, const Facts& f, const Decision& d) const {
        Observation o;
        if (s.root && s.root->core_version) o.openproject_version = s.root->core_version->str();
        if (s.capabilities) {
            o.nextcloud_version = s.capabilities->server_version_string;
            if (s.capabilities->app_version) o.integration_app_version = s.capabilities->app_version->str();
        }
        if (f.storage) {
            o.storage_id = static_cast<int>(f.storage->id);
            o.storage_configured = f.storage->configured;
            o.storage_has_application_password = f.storage->has_application_password;
            o.openproject_client_id = f.storage->openproject_client_id;
            o.nextcloud_client_id_in_openproject = f.storage->nextcloud_client_id;
        }
        o.nextcloud_configured = f.nextcloud_configured;
        o.nextcloud_app_password = f.nextcloud_app_password;
        o.project_folder_entities = f.project_folder_entities;
        o.nextcloud_openproject_url = f.nextcloud_openproject_url;
        o.journal_holds_secrets = d.holds_secrets;
        return o;
    }

    struct Preflight {
        Snapshot snapshot;
        Facts facts;
        Decision decision;
        Version app_version;
    };

    Result<Preflight> preflight(const Journal& journal) {
        if (auto ok = check_urls(); !ok) return std::unexpected(ok.error());
        Preflight p;
        const JournalRecord known = journal.record();
        // The journal's app password is checked too: one rotated outside opnc is drift to repair.
        p.snapshot = read_both_sides(true, known.project_folders ? &known.app_password : nullptr);
        if (auto ok = judge(p.snapshot, options.project_folders); !ok) return std::unexpected(ok.error());
        p.app_version = *p.snapshot.capabilities->app_version;
        p.facts = facts_from(p.snapshot, true);
        const JournalRecord record = journal.record();
        DecisionInput in{options.storage_name, options.project_folders, options.replace_storage, op_url.str(), nc_url.str()};
        auto decision = decide(p.facts, record, in);
        if (!decision) return std::unexpected(decision.error());
        p.decision = std::move(*decision);
        // Kept project folders need groupfolders like asked-for ones.
        if (p.decision.project_folders && !options.project_folders) {
            if (auto ok = judge(p.snapshot, true); !ok) return std::unexpected(ok.error());
        }
        return p;
    }

    // ---- the steps ---------------------------------------------------------------------------

    // The journal is saved before the next request leaves; a failed save stops the run.
    static Result<void> record(Journal& journal, const std::function<void(JournalRecord&)>& change,
                               std::string_view step_name) {
        auto saved = journal.update(change);
        if (!saved) return std::unexpected(with_step(saved.error(), step_name));
        return {};
    }

    // Whether the server certainly did not apply a request that failed with `e` (it answered
    // with a refusal), so the pending marker can go.
    static bool certainly_not_applied(const Error& e) {
        return e.http_status >= 400 && e.http_status < 500;
    }

    Result<std::string> create_storage(Journal& journal, const Preflight& p, const Decision& d) {
        if (d.delete_storage_first && p.facts.storage) {
            auto deleted = op_client.delete_storage(p.facts.storage->id);
            if (!deleted && deleted.error().kind != ErrorKind::not_found)
                return std::unexpected(with_step(deleted.error(), step::create_storage));
        }
        if (auto ok = record(journal, [&](JournalRecord& r) {
                r.pending_step = step::create_storage;
                r.storage_name = options.storage_name;
                r.project_folders = d.project_folders;
            }, step::create_storage); !ok)
            return std::unexpected(ok.error());
        auto created = op_client.create_storage(options.storage_name, nc_url);
        if (!created) {
            Error e = with_step(created.error(), step::create_storage);
            if (certainly_not_applied(e)) (void)journal.update([](JournalRecord& r) { r.pending_step.clear(); });
            return std::unexpected(e);
        }
        // The one-time secret goes to disk before anything else happens.
        if (auto ok = record(journal, [&](JournalRecord& r) {
                r.storage_id = created->storage.id;
                r.storage_name = created->storage.name;
                r.openproject_client_id = created->openproject_client_id;
                r.openproject_client_secret = created->openproject_client_secret;
                r.nextcloud_configured_with.clear();
                r.app_password_in_openproject = false;
                // The next step's marker goes in the same durable write: one fsync round fewer on
                // the critical path (configure_nextcloud then finds it already set).
                r.pending_step = d.configure_nextcloud ? step::configure_nextcloud : "";
                r.last_step = step::create_storage;
            }, step::create_storage); !ok)
            return std::unexpected(ok.error());
        return fmt::format("storage {} \"{}\"", created->storage.id, created->storage.name);
    }

    Result<std::string> configure_nextcloud(Journal& journal, const Preflight& p, const Decision& d) {
        const NextcloudSetupPlan plan = *d.configure_nextcloud;
        const JournalRecord before = journal.record();
        SetupValues v;
        if (plan.send_client) {
            v.openproject_url = op_url;
            v.openproject_client_id = before.openproject_client_id;
            v.openproject_client_secret = before.openproject_client_secret;
        }
        const auto method = plan.method == NextcloudSetupPlan::Method::post ? SetupMethod::post : SetupMethod::patch;
        if (method == SetupMethod::post) {
            v.default_enable_navigation = false;
            v.default_enable_unified_search = false;
            v.setup_project_folder = plan.setup_project_folder;
            v.setup_app_password = plan.setup_app_password;
        } else {
            if (plan.setup_project_folder) v.setup_project_folder = true;
            if (plan.setup_app_password) v.setup_app_password = true;
        }
        if (before.pending_step != step::configure_nextcloud) {
            if (auto ok = record(journal, [](JournalRecord& r) { r.pending_step = step::configure_nextcloud; },
                                 step::configure_nextcloud); !ok)
                return std::unexpected(ok.error());
        }

        auto answer = nc_client.setup(method, v, p.app_version);
        if (!answer) {
            Error e = with_step(answer.error(), step::configure_nextcloud);
            if (certainly_not_applied(e)) (void)journal.update([](JournalRecord& r) { r.pending_step.clear(); });
            return std::unexpected(e);
        }
        // A PATCH that finds another Nextcloud client than the one opnc knows cannot give its
        // secret: only a POST can (OpenProject's copy of the old client is stale anyway).
        if (method == SetupMethod::patch && plan.send_client && answer->nextcloud_client_id &&
            *answer->nextcloud_client_id != before.nextcloud_client_id && !answer->nextcloud_client_secret) {
            return std::unexpected(with_step(
                preflight_failure(ErrorKind::conflict,
                                  "Nextcloud's OAuth client is not the one opnc set up; it was replaced outside opnc.",
                                  "run opnc apply again: it will create a new Nextcloud client and store it in OpenProject"),
                step::configure_nextcloud));
        }
        if (auto ok = record(journal, [&](JournalRecord& r) {
                if (answer->nextcloud_client_id) r.nextcloud_client_id = *answer->nextcloud_client_id;
                if (answer->nextcloud_client_secret) r.nextcloud_client_secret = *answer->nextcloud_client_secret;
                if (answer->app_password) {
                    r.app_password = *answer->app_password;
                    r.app_password_in_openproject = false;
                }
                if (plan.send_client) r.nextcloud_configured_with = r.openproject_client_id;
                r.project_folders = d.project_folders;
                r.pending_step = plan.then_patch_app_password ? step::configure_nextcloud : "";
                r.last_step = step::configure_nextcloud;
            }, step::configure_nextcloud); !ok)
            return std::unexpected(ok.error());

        std::string detail = method == SetupMethod::post ? "POST /setup" : "PATCH /setup";
        if (answer->nextcloud_client_id) detail += ", Nextcloud client " + *answer->nextcloud_client_id;

        if (plan.then_patch_app_password) {
            // POST with both flags false deleted the app password: issue a new one.
            SetupValues pw;
            pw.setup_app_password = true;
            auto again = nc_client.setup(SetupMethod::patch, pw, p.app_version);
            if (!again) {
                Error e = with_step(again.error(), step::configure_nextcloud);
                if (certainly_not_applied(e)) (void)journal.update([](JournalRecord& r) { r.pending_step.clear(); });
                return std::unexpected(e);
            }
            if (!again->app_password)
                return std::unexpected(with_step(
                    preflight_failure(ErrorKind::protocol, "Nextcloud did not return the new app password of user OpenProject.",
                                      "check the integration_openproject app's log; run opnc apply again"),
                    step::configure_nextcloud));
            if (auto ok = record(journal, [&](JournalRecord& r) {
                    r.app_password = *again->app_password;
                    r.app_password_in_openproject = false;
                    r.pending_step.clear();
                }, step::configure_nextcloud); !ok)
                return std::unexpected(ok.error());
            detail += ", new app password";
        } else if (answer->app_password) {
            detail += ", new app password";
        }
        return detail;
    }

    Result<std::string> store_nextcloud_client(Journal& journal) {
        const JournalRecord r = journal.record();
        if (!r.storage_id || r.nextcloud_client_id.empty() || r.nextcloud_client_secret.empty())
            return std::unexpected(with_step(
                preflight_failure(ErrorKind::internal, "the journal holds no Nextcloud client to store.",
                                  "run opnc apply again"),
                step::store_nextcloud_client));
        auto stored = op_client.set_oauth_client_credentials(*r.storage_id, r.nextcloud_client_id, r.nextcloud_client_secret);
        if (!stored) return std::unexpected(with_step(stored.error(), step::store_nextcloud_client));
        // No secret came back: saved with the run's last write (run_steps), not on its own.
        journal.amend([](JournalRecord& rec) { rec.last_step = step::store_nextcloud_client; });
        return "Nextcloud client " + stored->client_id;
    }

    Result<std::string> set_app_password(Journal& journal) {
        const JournalRecord r = journal.record();
        if (!r.storage_id || r.app_password.empty())
            return std::unexpected(with_step(
                preflight_failure(ErrorKind::internal, "the journal holds no app password to store.", "run opnc apply again"),
                step::set_app_password));
        auto updated = op_client.update_storage_application_password(*r.storage_id, r.app_password);
        if (!updated) return std::unexpected(with_step(updated.error(), step::set_app_password));
        // No secret came back: saved with the run's last write (run_steps), not on its own. Lost
        // in a crash, the next run sends the same app password again (OpenProject cannot say
        // which one it holds).
        journal.amend([](JournalRecord& rec) {
            rec.app_password_in_openproject = true;
            rec.last_step = step::set_app_password;
        });
        return "automatically managed project folders on";
    }

    // ---- verify ------------------------------------------------------------------------------

    VerifyResult verify_with(const JournalRecord& r, bool project_folders) {
        VerifyResult out;
        std::optional<std::int64_t> storage_id = r.storage_id;

        auto storages = std::async(std::launch::async, [&] { return op_client.list_storages(); });
        auto admin = std::async(std::launch::async, [&] { return nc_client.check_admin_config(); });
        auto url = std::async(std::launch::async, [&] { return nc_client.openproject_url(); });
        std::future<Result<bool>> folders;
        if (project_folders) folders = std::async(std::launch::async, [&] { return nc_client.project_folder_status(); });
        std::future<Result<oauth::ProbeResult>> op_probe;
        if (!r.openproject_client_id.empty() && !r.openproject_client_secret.empty()) {
            op_probe = std::async(std::launch::async, [&] {
                oauth::ClientConfig c;
                c.token_endpoint = op_url.join("/oauth/token");
                c.authorize_endpoint = op_url.join("/oauth/authorize");
                c.client_id = r.openproject_client_id;
                c.client_secret = r.openproject_client_secret;
                c.redirect_uri = nc_url.join("/index.php/apps/integration_openproject/oauth-redirect");
                return oauth::probe_client(c, *transport);
            });
        }
        std::future<Result<oauth::ProbeResult>> nc_probe;
        if (!r.nextcloud_client_id.empty()) {
            nc_probe = std::async(std::launch::async, [&] {
                oauth::ClientConfig c;
                c.token_endpoint = nc_url.join("/index.php/apps/oauth2/api/v1/token");
                c.authorize_endpoint = nc_url.join("/index.php/apps/oauth2/authorize");
                c.client_id = r.nextcloud_client_id;
                c.client_secret = r.nextcloud_client_secret;
                oauth::ProbeOptions o;
                o.registration_only = true;  // Nextcloud's token endpoint cannot tell (contract §11.4)
                return oauth::probe_client(c, *transport, o);
            });
        }
        std::future<Result<DavLogin>> dav;
        if (project_folders && !r.app_password.empty())
            dav = std::async(std::launch::async, [&] { return nc_client.dav_check("OpenProject", r.app_password); });

        auto add = [&](std::string name, bool ok, std::string detail, std::string hint = {}) {
            out.checks.push_back(Check{std::move(name), ok, std::move(detail), ok ? std::string() : std::move(hint)});
        };
        auto describe = [](const Error& e) { return e.message; };

        // OpenProject's storage.
        auto list = await(storages);
        std::optional<Storage> storage;
        if (list) {
            for (auto& st : *list) {
                if (st.is_nextcloud() && st.host && same_url(*st.host, nc_url)) {
                    storage = st;
                    break;
                }
            }
        }
        if (!list) {
            add("openproject_storage", false, describe(list.error()), list.error().hint);
        } else if (!storage) {
            add("openproject_storage", false, "OpenProject has no storage for " + nc_url.str(), "run opnc apply");
        } else {
            add("openproject_storage", storage->configured,
                fmt::format("storage {} \"{}\" {}", storage->id, storage->name,
                            storage->configured ? "is configured" : "is not configured"),
                "run opnc apply to complete it");
            if (storage_id && storage->id != *storage_id)
                add("openproject_storage_matches_journal", false,
                    fmt::format("the journal names storage {}, OpenProject has {}", *storage_id, storage->id),
                    "the storage was replaced outside opnc; run opnc apply --replace-storage to take it over");
            if (project_folders)
                add("openproject_app_password", storage->has_application_password.value_or(false),
                    storage->has_application_password.value_or(false) ? "OpenProject holds an app password"
                                                                      : "OpenProject holds no app password",
                    "run opnc apply --project-folders");
            if (!r.openproject_client_id.empty()) {
                const auto have = storage->oauth_application_client_id.value_or("");
                add("openproject_client_matches_journal", have == r.openproject_client_id,
                    have == r.openproject_client_id ? "OpenProject's OAuth application is the journal's"
                                                    : "OpenProject's OAuth application differs from the journal's",
                    "its OAuth values were replaced in OpenProject's UI; pass the new ones in or use --replace-storage");
            }
            if (!r.nextcloud_client_id.empty()) {
                const auto have = storage->oauth_client_credentials_client_id.value_or("");
                add("nextcloud_client_in_openproject", have == r.nextcloud_client_id,
                    have == r.nextcloud_client_id ? "OpenProject holds the journal's Nextcloud client"
                                                  : "OpenProject holds another Nextcloud client than the journal's",
                    "run opnc apply");
            }
        }

        // Nextcloud's side.
        auto admin_config = await(admin);
        if (!admin_config) {
            add("nextcloud_admin_config", false, describe(admin_config.error()), admin_config.error().hint);
        } else {
            add("nextcloud_admin_config", admin_config->config_without_project_folder,
                admin_config->config_without_project_folder ? "Nextcloud's OpenProject integration is configured"
                                                            : "Nextcloud's OpenProject integration is not configured",
                "run opnc apply");
            if (project_folders)
                add("nextcloud_app_password", admin_config->project_folder_setup,
                    admin_config->project_folder_setup ? "user OpenProject has an app password"
                                                       : "user OpenProject has no app password",
                    "run opnc apply --project-folders");
        }
        auto stored_url = await(url);
        if (!stored_url) {
            add("nextcloud_openproject_url", false, describe(stored_url.error()), stored_url.error().hint);
        } else {
            const bool here = same_url(*stored_url, op_url);
            add("nextcloud_openproject_url", here,
                here ? "Nextcloud points to " + op_url.str()
                     : fmt::format("Nextcloud points to \"{}\", not {}", *stored_url, op_url.str()),
                "run opnc apply");
        }
        if (project_folders) {
            auto entities = await(folders);
            if (!entities)
                add("nextcloud_project_folder", false, describe(entities.error()), entities.error().hint);
            else
                add("nextcloud_project_folder", *entities,
                    *entities ? "user, group and team folder OpenProject are in place"
                              : "the OpenProject user, group or team folder is missing or changed",
                    "run opnc apply --project-folders");
        }

        // Credentials.
        if (op_probe.valid()) {
            auto probe = await(op_probe);
            if (!probe)
                add("openproject_client_secret", false, describe(probe.error()), probe.error().hint);
            else
                add("openproject_client_secret", probe->outcome == oauth::ProbeOutcome::accepted, probe->detail,
                    "OpenProject no longer accepts the client secret opnc holds; its OAuth values were replaced");
        }
        if (nc_probe.valid()) {
            auto probe = await(nc_probe);
            if (!probe)
                add("nextcloud_client_registered", false, describe(probe.error()), probe.error().hint);
            else
                add("nextcloud_client_registered", probe->plausible(), probe->detail,
                    "Nextcloud no longer knows this client; run opnc apply");
        }
        if (dav.valid()) {
            auto login = await(dav);
            if (!login)
                add("app_password_accepted", false, describe(login.error()), login.error().hint);
            else
                add("app_password_accepted", *login == DavLogin::accepted,
                    *login == DavLogin::accepted ? "Nextcloud accepts the app password of user OpenProject"
                                                 : "Nextcloud refuses the app password of user OpenProject",
                    "run opnc apply --project-folders to issue a new one");
        }
        return out;
    }
};

Integration::Integration(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Integration::Integration(Integration&&) noexcept = default;
Integration& Integration::operator=(Integration&&) noexcept = default;
Integration::~Integration() = default;

Result<Integration> Integration::create(OpenProjectEndpoint openproject, NextcloudEndpoint nextcloud,
                                        IntegrationOptions options, std::shared_ptr<Transport> transport) {
    auto op_url = Url::parse(openproject.url);
    if (!op_url) {
        Error e = op_url.error();
        e.message = "OpenProject URL: " + e.message;
        return std::unexpected(e);
    }
    auto nc_url = Url::parse(nextcloud.url);
    if (!nc_url) {
        Error e = nc_url.error();
        e.message = "Nextcloud URL: " + e.message;
        return std::unexpected(e);
    }
    const auto& name = options.storage_name;
    if (name.find_first_not_of(" \t") == std::string::npos)
        return fail(ErrorKind::invalid_input, "the storage name is empty.", "give a name with --storage-name");
    if (name.size() > 255)
        return fail(ErrorKind::invalid_input,
                    fmt::format("the storage name has {} characters; OpenProject allows at most 255.", name.size()),
                    "choose a shorter --storage-name");
    if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        return fail(ErrorKind::invalid_input, "the storage name contains control characters.",
                    "choose a name of printable characters");
    if (nextcloud.user.empty())
        return fail(ErrorKind::invalid_input, "the Nextcloud admin user is empty.", "give it with --nextcloud-user");
    // RFC 7617: a Basic-auth user-id cannot hold a colon (the server would split the user there),
    // and a control character is never part of a login name (and would garble logs and messages).
    if (nextcloud.user.find(':') != std::string::npos)
        return fail(ErrorKind::invalid_input,
                    "the Nextcloud admin user contains a colon, which HTTP Basic authentication cannot carry.",
                    "give the login name without ':' with --nextcloud-user");
    if (std::any_of(nextcloud.user.begin(), nextcloud.user.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        return fail(ErrorKind::invalid_input, "the Nextcloud admin user contains control characters.",
                    "give the login name exactly as Nextcloud shows it with --nextcloud-user");
    if (op_url->str() == nc_url->str())
        return fail(ErrorKind::invalid_input,
                    "OpenProject and Nextcloud have the same URL (" + op_url->str() + ").",
                    "give each server's own base URL with --openproject-url and --nextcloud-url");
    if (openproject.api_token.empty())
        return fail(ErrorKind::invalid_input, "the OpenProject API token is empty.",
                    "pass it with --openproject-token-file or OPNC_OPENPROJECT_TOKEN");
    if (nextcloud.password.empty())
        return fail(ErrorKind::invalid_input, "the Nextcloud password is empty.",
                    "pass it with --nextcloud-password-file or OPNC_NEXTCLOUD_PASSWORD");

    if (!options.ca_bundle.empty() && !std::ifstream(options.ca_bundle).good())
        return fail(ErrorKind::invalid_input, "the CA bundle file \"" + options.ca_bundle + "\" cannot be read.",
                    "give the path of a readable PEM file with --ca-bundle (or OPNC_CA_BUNDLE)");
    if (!transport) {
        TransportOptions t;
        t.ca_bundle = options.ca_bundle;
        t.total_timeout = options.timeout;
        t.should_abort = options.should_abort;
        transport = std::make_shared<CurlTransport>(std::move(t));
    }
    auto retrying = std::make_shared<RetryingTransport>(std::move(transport));
    auto impl = std::make_unique<Impl>(std::move(openproject), std::move(nextcloud), std::move(options),
                                       std::move(*op_url), std::move(*nc_url), std::move(retrying));
    return Integration(std::move(impl));
}

std::string Integration::journal_path() const {
    auto dir = impl_->resolve_state();
    if (!dir) return {};
    return (*dir / impl_->key().file_name()).string();
}

Result<Plan> Integration::plan() {
    auto dir = impl_->resolve_state();
    if (!dir) return std::unexpected(with_step(dir.error(), step::preflight));
    auto journal = Journal::load(*dir, impl_->key());
    if (!journal) return std::unexpected(with_step(journal.error(), step::preflight));
    auto p = impl_->preflight(*journal);
    if (!p) return std::unexpected(p.error());
    Plan plan;
    plan.steps = p->decision.steps;
    plan.notes = p->decision.notes;
    for (const auto& w : journal->warnings()) plan.notes.push_back(w);
    plan.observed = impl_->observation_from(p->snapshot, p->facts, p->decision);
    return plan;
}

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// What a mutating run holds while it works: the lock, the journal and what preflight saw.
struct Session {
    IntegrationLock lock;
    Journal journal;
    Integration::Impl* impl;
};

}  // namespace

// Lock, journal, and the preflight reads; emits the preflight events. `result` receives the
// preflight step and the notes.
static Result<std::pair<Session, Integration::Impl::Preflight>> open_session(
    Integration::Impl& m, ApplyResult& result, const std::function<Result<void>(Journal&)>& before_preflight = {}) {
    const auto t = Clock::now();
    m.emit(Event::Type::step_started, step::preflight);
    auto fail_preflight = [&](Error e) -> Result<std::pair<Session, Integration::Impl::Preflight>> {
        e = with_step(std::move(e), step::preflight);
        m.emit(Event::Type::step_failed, step::preflight, e.message);
        return std::unexpected(e);
    };
    auto dir = m.resolve_state();
    if (!dir) return fail_preflight(dir.error());
    LockOptions lock_options;
    if (m.options.wait_for_lock) lock_options.wait = m.options.lock_timeout;
    lock_options.should_abort = m.options.should_abort;
    auto lock = IntegrationLock::acquire(*dir, m.key(), lock_options);
    if (!lock) return fail_preflight(lock.error());
    auto journal = Journal::load(*dir, m.key());
    if (!journal) return fail_preflight(journal.error());
    if (before_preflight) {
        if (auto ok = before_preflight(*journal); !ok) return fail_preflight(ok.error());
    }
    auto p = m.preflight(*journal);
    if (!p) return fail_preflight(p.error());
    result.notes = p->decision.notes;
    for (const auto& w : journal->warnings()) result.notes.push_back(w);
    for (const auto& n : m.state_notes) result.notes.push_back(n);
    result.steps.push_back({step::preflight, StepOutcome::Status::done, ms_since(t), ""});
    m.emit(Event::Type::step_finished, step::preflight);
    for (const auto& note : result.notes) m.emit(Event::Type::note, "", note);
    return std::pair{Session{std::move(*lock), std::move(*journal), &m}, std::move(*p)};
}

// Runs the steps of `d` in the design's order (the last two in parallel), then verifies.
static void run_steps(Integration::Impl& m, Journal& journal, const Integration::Impl::Preflight& p, const Decision& d,
                      ApplyResult& result, bool verify_anyway) {
    auto finish = [&] {
        const JournalRecord rec = journal.record();
        if (rec.storage_id) result.storage_id = static_cast<int>(*rec.storage_id);
        else if (p.facts.storage) result.storage_id = static_cast<int>(p.facts.storage->id);
        result.openproject_client_id = !rec.openproject_client_id.empty() || !p.facts.storage
                                           ? rec.openproject_client_id
                                           : p.facts.storage->openproject_client_id;
        result.nextcloud_client_id = !rec.nextcloud_client_id.empty() || !p.facts.storage
                                         ? rec.nextcloud_client_id
                                         : p.facts.storage->nextcloud_client_id;
        result.changed = std::any_of(result.steps.begin(), result.steps.end(), [](const StepOutcome& o) {
            return o.status == StepOutcome::Status::done && o.name != step::preflight && o.name != step::verify;
        });
    };
    auto record_outcome = [&](const char* name, const Result<std::string>& outcome, double ms) {
        if (outcome) {
            result.steps.push_back({name, StepOutcome::Status::done, ms, *outcome});
            m.emit(Event::Type::step_finished, name, *outcome);
            return true;
        }
        result.steps.push_back({name, StepOutcome::Status::failed, ms, outcome.error().message});
        m.emit(Event::Type::step_failed, name, outcome.error().message);
        if (!result.error) result.error = with_step(outcome.error(), name);
        return false;
    };
    auto run_step = [&](const char* name, bool wanted, auto&& body) -> bool {
        if (!wanted) {
            result.steps.push_back({name, StepOutcome::Status::skipped, 0, ""});
            m.emit(Event::Type::step_skipped, name);
            return true;
        }
        m.emit(Event::Type::step_started, name);
        const auto t = Clock::now();
        Result<std::string> outcome = body();
        return record_outcome(name, outcome, ms_since(t));
    };

    // A finished integration is one round of reads: nothing written, no probes. Only when the run
    // before did not get as far as a passing verify (its last answer was lost, say) is it verified now.
    if (!d.changes() && !verify_anyway) {
        finish();
        return;
    }

    bool ok = run_step(step::create_storage, d.create_storage, [&] { return m.create_storage(journal, p, d); });
    if (ok)
        ok = run_step(step::configure_nextcloud, d.configure_nextcloud.has_value(),
                      [&] { return m.configure_nextcloud(journal, p, d); });
    // Whether store_nextcloud_client or set_app_password ran: what they did is only in memory yet.
    const bool tail_ran = ok && (d.store_nextcloud_client || d.set_app_password);
    if (ok) {
        if (d.store_nextcloud_client && d.set_app_password) {
            // The last two steps are independent: run them at the same time.
            m.emit(Event::Type::step_started, step::store_nextcloud_client);
            m.emit(Event::Type::step_started, step::set_app_password);
            const auto t = Clock::now();
            auto store = std::async(std::launch::async, [&] { return m.store_nextcloud_client(journal); });
            auto password = std::async(std::launch::async, [&] { return m.set_app_password(journal); });
            auto store_result = m.await(store);
            const double store_ms = ms_since(t);
            auto password_result = m.await(password);
            const double password_ms = ms_since(t);
            const bool stored = record_outcome(step::store_nextcloud_client, store_result, store_ms);
            const bool password_set = record_outcome(step::set_app_password, password_result, password_ms);
            ok = stored && password_set;
        } else {
            ok = run_step(step::store_nextcloud_client, d.store_nextcloud_client,
                          [&] { return m.store_nextcloud_client(journal); }) &&
                 run_step(step::set_app_password, d.set_app_password, [&] { return m.set_app_password(journal); });
        }
    }
    finish();
    // What the last two steps amended goes to disk with the run's last write: here when a step
    // failed, else together with verify's outcome below. Losing it costs the next run a check,
    // not a secret, so a failed save is a note, not a failure of the integration.
    auto save_tail = [&] {
        auto saved = journal.save();
        if (!saved) {
            const std::string note = "the journal could not be saved (" + saved.error().message +
                                     "); the next run checks the last steps again";
            result.notes.push_back(note);
            m.emit(Event::Type::note, "", note);
        }
    };
    if (!ok) {
        if (tail_ran) save_tail();
        return;
    }

    m.emit(Event::Type::step_started, step::verify);
    const auto t = Clock::now();
    VerifyResult v = m.verify_with(journal.record(), d.project_folders);
    const auto failed = std::count_if(v.checks.begin(), v.checks.end(), [](const Check& c) { return !c.ok; });
    const std::string detail = failed == 0 ? fmt::format("{} checks passed", v.checks.size())
                                           : fmt::format("{} of {} checks failed", failed, v.checks.size());
    result.steps.push_back({step::verify, failed == 0 ? StepOutcome::Status::done : StepOutcome::Status::failed, ms_since(t), detail});
    m.emit(failed == 0 ? Event::Type::step_finished : Event::Type::step_failed, step::verify, detail);
    if (failed == 0) journal.amend([](JournalRecord& r) { r.last_step = step::verify; });
    if (failed == 0 || tail_ran) save_tail();
    result.verify = std::move(v);
}

namespace {
// Installs the run's event sink and clock; removes the sink when the run ends.
struct RunScope {
    Integration::Impl& m;
    RunScope(Integration::Impl& impl, const EventSink& sink) : m(impl) {
        m.sink = sink;
        m.started = Clock::now();
    }
    ~RunScope() { m.sink = nullptr; }
};
}  // namespace

Result<ApplyResult> Integration::apply(const EventSink& on_event) {
    auto& m = *impl_;
    RunScope scope(m, on_event);
    ApplyResult result;
    auto session = open_session(m, result);
    if (!session) return std::unexpected(session.error());
    auto& [s, p] = *session;
    const bool unverified = p.decision.holds_secrets && s.journal.record().last_step != step::verify;
    run_steps(m, s.journal, p, p.decision, result, unverified);
    return result;
}

Result<ApplyResult> Integration::rotate(const RotateOptions& options, const EventSink& on_event) {
    auto& m = *impl_;
    if (!options.nextcloud_client && !options.app_password && !options.replace_storage &&
        options.openproject_client_id.empty())
        return fail(ErrorKind::invalid_input, "nothing to rotate was chosen.",
                    "choose --nextcloud-client, --app-password, --replace-storage or --openproject-client-id");
    if (options.openproject_client_id.empty() != options.openproject_client_secret.empty())
        return fail(ErrorKind::invalid_input, "the OpenProject client id and secret are given together or not at all.",
                    "pass both --openproject-client-id and --openproject-client-secret-file");
    RunScope scope(m, on_event);
    ApplyResult result;
    // Values an admin generated with "Replace OAuth values" in OpenProject's UI: the journal takes
    // them in before preflight, so that the decision sees a storage whose secret opnc holds.
    std::function<Result<void>(Journal&)> take_in;
    if (!options.openproject_client_id.empty()) {
        take_in = [&](Journal& journal) -> Result<void> {
            auto storages = m.op_client.list_storages();
            if (!storages) return std::unexpected(storages.error());
            for (const auto& st : *storages) {
                if (!st.is_nextcloud() || !st.host || !same_url(*st.host, m.nc_url)) continue;
                if (st.oauth_application_client_id.value_or("") != options.openproject_client_id)
                    return fail(ErrorKind::invalid_input,
                                fmt::format("storage {} has OpenProject client id \"{}\", not the one given.", st.id,
                                            st.oauth_application_client_id.value_or("")),
                                "copy the client id and secret shown by \"Replace OAuth values\" in OpenProject's "
                                "storage settings");
                return journal.update([&](JournalRecord& r) {
                    r.storage_id = st.id;
                    r.storage_name = st.name;
                    r.openproject_client_id = options.openproject_client_id;
                    r.openproject_client_secret = options.openproject_client_secret;
                    r.nextcloud_configured_with.clear();
                });
            }
            return fail(ErrorKind::preflight_failed, "OpenProject has no storage for " + m.nc_url.str() + ".",
                        "run opnc apply to set the integration up");
        };
    }
    auto session = open_session(m, result, take_in);
    if (!session) return std::unexpected(session.error());
    auto& [s, p] = *session;
    Decision d = p.decision;
    auto fail_rotate = [](ErrorKind kind, std::string message, std::string hint) -> Result<ApplyResult> {
        return fail(kind, std::move(message), std::move(hint), step::preflight);
    };
    if ((options.nextcloud_client || options.app_password) && !d.holds_secrets && !options.replace_storage)
        return fail_rotate(ErrorKind::confirmation_required,
                           "opnc does not hold this integration's OpenProject client secret, so it cannot push a new "
                           "Nextcloud client or app password through a consistent setup.",
                           "take the storage over first: generate new OAuth values in OpenProject (storage settings → "
                           "\"Replace OAuth values\") and pass them with --openproject-client-id and "
                           "--openproject-client-secret-file, or use --replace-storage --yes");
    if (options.replace_storage) {
        if (!p.facts.storage)
            return fail_rotate(ErrorKind::preflight_failed, "OpenProject has no storage for " + m.nc_url.str() + ".",
                               "run opnc apply to set the integration up");
        DecisionInput in{m.options.storage_name, d.project_folders, true, m.op_url.str(), m.nc_url.str()};
        Facts facts = p.facts;
        facts.storage.reset();  // decide as for a fresh pair, then delete first
        auto fresh = decide(facts, JournalRecord{}, in);
        if (!fresh) return std::unexpected(fresh.error());
        d = std::move(*fresh);
        d.delete_storage_first = true;
        d.steps.front().reason = fmt::format("storage {} is deleted and created again with new OAuth values",
                                             p.facts.storage->id);
        d.steps.front().warnings.push_back(
            fmt::format("deleting storage {} removes its file links and project settings", p.facts.storage->id));
    } else {
        if (options.nextcloud_client) {
            NextcloudSetupPlan plan;
            plan.method = NextcloudSetupPlan::Method::post;
            plan.send_client = true;
            // POST with both flags false (the entities exist) deletes the app password: issue a new one.
            if (d.project_folders) plan.then_patch_app_password = true;
            d.configure_nextcloud = plan;
            d.store_nextcloud_client = true;
            d.set_app_password = d.project_folders;
        } else if (options.app_password) {
            if (!d.project_folders)
                return fail_rotate(ErrorKind::invalid_input,
                                   "this integration has no automatically managed project folders, so it has no app "
                                   "password.",
                                   "set project folders up with opnc apply --project-folders");
            NextcloudSetupPlan plan = d.configure_nextcloud.value_or(NextcloudSetupPlan{});
            if (!d.configure_nextcloud) {
                plan.method = NextcloudSetupPlan::Method::patch;
                plan.send_client = false;
            }
            if (plan.method == NextcloudSetupPlan::Method::patch) plan.setup_app_password = true;
            else plan.then_patch_app_password = !plan.setup_app_password;
            d.configure_nextcloud = plan;
            d.set_app_password = true;
        }
        d.steps.clear();
        if (d.configure_nextcloud) d.steps.push_back({step::configure_nextcloud, "rotate", {}});
        if (d.store_nextcloud_client) d.steps.push_back({step::store_nextcloud_client, "rotate", {}});
        if (d.set_app_password) d.steps.push_back({step::set_app_password, "rotate", {}});
    }
    run_steps(m, s.journal, p, d, result, true);
    return result;
}

Result<VerifyResult> Integration::verify() {
    auto& m = *impl_;
    auto dir = m.resolve_state();
    if (!dir) return std::unexpected(with_step(dir.error(), step::verify));
    auto journal = Journal::load(*dir, m.key());
    if (!journal) return std::unexpected(with_step(journal.error(), step::verify));
    const JournalRecord r = journal->record();
    return m.verify_with(r, r.project_folders || m.options.project_folders);
}

bool Status::healthy() const {
    return std::none_of(lines.begin(), lines.end(), [](const StatusLine& l) { return l.level == "problem"; });
}

Result<Status> Integration::status() {
    auto& m = *impl_;
    auto dir = m.resolve_state();
    if (!dir) return std::unexpected(with_step(dir.error(), "status"));
    auto journal = Journal::load(*dir, m.key());
    if (!journal) return std::unexpected(with_step(journal.error(), "status"));
    const JournalRecord r = journal->record();

    Status out;
    auto line = [&](const char* area, std::string name, std::string level, std::string detail, std::string hint = {}) {
        out.lines.push_back({area, std::move(name), std::move(level), std::move(detail), std::move(hint)});
    };

    Snapshot s = m.read_both_sides(true);
    // Reachability and versions of both sides.
    if (s.root)
        line("openproject", "reachable", "ok",
             fmt::format("OpenProject {} at {}", s.root->core_version ? s.root->core_version->str() : "(version hidden)",
                         m.op_url.str()));
    else
        line("openproject", "reachable", "problem", s.root.error().message, s.root.error().hint);
    if (s.me && !s.me->is_active_admin())
        line("openproject", "admin_token", "problem", "the API token's user is not an active administrator",
             "use an API token of an active OpenProject administrator");
    else if (!s.me)
        line("openproject", "admin_token", "problem", s.me.error().message, s.me.error().hint);
    if (s.status && s.capabilities) {
        line("nextcloud", "reachable", s.status->ready() ? "ok" : "problem",
             fmt::format("Nextcloud {} at {}{}", s.capabilities->server_version_string, m.nc_url.str(),
                         s.status->maintenance ? " (maintenance mode)" : ""),
             s.status->maintenance ? "wait for the maintenance to end" : "");
        if (s.capabilities->app_version)
            line("nextcloud", "integration_app", "ok", "integration_openproject " + s.capabilities->app_version->str());
        else
            line("nextcloud", "integration_app", "problem", "integration_openproject is not installed or not enabled",
                 "`occ app:enable integration_openproject`");
        const bool gf = s.capabilities->groupfolders_enabled.value_or(false);
        line("nextcloud", "groupfolders", gf ? "ok" : (r.project_folders ? "problem" : "ok"),
             gf ? "groupfolders (Team folders) enabled" : "groupfolders (Team folders) not enabled",
             "`occ app:enable groupfolders`");
    } else {
        const Error& e = !s.status ? s.status.error() : s.capabilities.error();
        line("nextcloud", "reachable", "problem", e.message, e.hint);
    }
    if (s.check_config && s.check_config->authorization_header != AuthorizationHeaderEcho::unchanged)
        line("nextcloud", "authorization_header", "problem",
             "the web server does not pass the Authorization header to Nextcloud",
             "configure the web server to pass it (see opnc apply's preflight hint)");

    // The journal.
    if (!journal->on_disk())
        line("journal", "journal", "warning", "no journal for this pair: opnc does not hold the integration's secrets",
             "opnc apply sets it up (or takes it over with --replace-storage)");
    else
        line("journal", "journal", "ok",
             fmt::format("{}: storage {}, last step {}", journal->path().string(),
                         r.storage_id ? std::to_string(*r.storage_id) : "-", r.last_step.empty() ? "-" : r.last_step));
    for (const auto& w : journal->warnings()) line("journal", "permissions", "warning", w);

    // The storage, found by host; and a storage of the journal that moved to another host.
    if (s.storages) {
        std::optional<Storage> here;
        std::optional<Storage> journal_storage;
        for (const auto& st : *s.storages) {
            if (st.is_nextcloud() && st.host && same_url(*st.host, m.nc_url) && !here) here = st;
            if (r.storage_id && st.id == *r.storage_id) journal_storage = st;
        }
        if (here) {
            line("openproject", "storage", "ok",
                 fmt::format("storage {} \"{}\" for {}", here->id, here->name, here->host.value_or("")));
            line("openproject", "configured", here->configured ? "ok" : "problem",
                 here->configured ? "configured" : "not configured (the exchange is incomplete)", "run opnc apply");
            line("openproject", "authentication_method", here->uses_two_way_oauth2() ? "ok" : "problem",
                 here->authentication_method.value_or("two-way OAuth 2.0 (the only method of this release)"),
                 "opnc sets up Two-way OAuth 2.0; this storage uses another method");
            const bool pw = here->has_application_password.value_or(false);
            line("openproject", "application_password", pw || !r.project_folders ? "ok" : "problem",
                 pw ? "automatically managed project folders on" : "automatically managed project folders off",
                 "run opnc apply --project-folders");
        } else if (journal_storage && journal_storage->host) {
            line("openproject", "storage", "problem",
                 fmt::format("storage {} of the journal now points to {}, not {}", journal_storage->id,
                             *journal_storage->host, m.nc_url.str()),
                 "its host was changed in OpenProject; change it back there (opnc does not move a storage between "
                 "hosts, which would break its file links), or tear down and set up again");
        } else {
            line("openproject", "storage", "problem", "OpenProject has no storage for " + m.nc_url.str(), "run opnc apply");
        }
    } else {
        line("openproject", "storage", "problem", s.storages.error().message, s.storages.error().hint);
    }

    // Both sides' agreement and the credentials: the verify checks (they cover the drift).
    VerifyResult v = m.verify_with(r, r.project_folders || m.options.project_folders);
    for (auto& c : v.checks) {
        if (c.name == "openproject_storage" || c.name == "openproject_app_password") continue;  // reported above
        // Which side holds the thing checked (the Nextcloud client stored in OpenProject is OpenProject's).
        const bool nextcloud_side = (c.name.rfind("nextcloud", 0) == 0 && c.name != "nextcloud_client_in_openproject") ||
                                    c.name == "app_password_accepted";
        const char* area = nextcloud_side ? "nextcloud" : "openproject";
        line(area, c.name, c.ok ? "ok" : "problem", c.detail, c.hint);
    }
    return out;
}

Result<TeardownResult> Integration::teardown(const TeardownOptions& options, const EventSink& on_event) {
    auto& m = *impl_;
    RunScope scope(m, on_event);
    TeardownResult out;
    auto dir = m.resolve_state();
    if (!dir) return std::unexpected(with_step(dir.error(), "teardown"));
    LockOptions lock_options;
    if (m.options.wait_for_lock) lock_options.wait = m.options.lock_timeout;
    lock_options.should_abort = m.options.should_abort;
    auto lock = IntegrationLock::acquire(*dir, m.key(), lock_options);
    if (!lock) return std::unexpected(with_step(lock.error(), "teardown"));
    auto journal = Journal::load(*dir, m.key());
    if (!journal) return std::unexpected(with_step(journal.error(), "teardown"));

    auto storages = std::async(std::launch::async, [&] { return m.op_client.list_storages(); });
    auto admin = std::async(std::launch::async, [&] { return m.nc_client.check_admin_config(); });
    auto url = std::async(std::launch::async, [&] { return m.nc_client.openproject_url(); });
    auto folders = std::async(std::launch::async, [&] { return m.nc_client.project_folder_status(); });
    auto list = m.await(storages);
    auto admin_config = m.await(admin);
    auto stored_url = m.await(url);
    auto entities = m.await(folders);
    for (auto* e : {list ? nullptr : &list.error(), admin_config ? nullptr : &admin_config.error(),
                    stored_url ? nullptr : &stored_url.error()})
        if (e) return std::unexpected(with_step(*e, "teardown"));

    std::optional<Storage> storage;
    for (const auto& st : *list)
        if (st.is_nextcloud() && st.host && same_url(*st.host, m.nc_url)) storage = st;

    if (storage && !options.delete_storage)
        return fail(ErrorKind::confirmation_required,
                    fmt::format("teardown deletes storage {} \"{}\" in OpenProject, and with it every file link and the "
                                "project settings of that storage.",
                                storage->id, storage->name),
                    "confirm with --yes (Python: teardown(confirm=True))");

    if (storage) {
        m.emit(Event::Type::step_started, "delete_storage");
        auto deleted = m.op_client.delete_storage(storage->id);
        if (!deleted && deleted.error().kind != ErrorKind::not_found) {
            m.emit(Event::Type::step_failed, "delete_storage", deleted.error().message);
            return std::unexpected(with_step(deleted.error(), "teardown"));
        }
        out.removed.push_back(fmt::format("OpenProject storage {} \"{}\" with its OAuth application and file links",
                                          storage->id, storage->name));
        m.emit(Event::Type::step_finished, "delete_storage");
    }
    // Nextcloud's settings are reset only when they point to this OpenProject: a Nextcloud that
    // serves another OpenProject is not this integration's to reset.
    const bool points_here = same_url(*stored_url, m.op_url);
    if (points_here || (admin_config->config_without_project_folder && stored_url->empty())) {
        m.emit(Event::Type::step_started, "reset_nextcloud");
        auto reset = m.nc_client.reset();
        if (!reset) {
            m.emit(Event::Type::step_failed, "reset_nextcloud", reset.error().message);
            return std::unexpected(with_step(reset.error(), "teardown"));
        }
        out.removed.push_back("Nextcloud's OpenProject integration settings and its OAuth client (DELETE /setup)");
        m.emit(Event::Type::step_finished, "reset_nextcloud");
    } else if (!stored_url->empty()) {
        out.notes.push_back(fmt::format("Nextcloud points to another OpenProject ({}); its settings were left alone",
                                        *stored_url));
    }
    out.changed = !out.removed.empty();

    // What stays: upstream keeps the project-folder entities (and, from app 2.9, the app password).
    if (entities && *entities) {
        out.remaining.push_back(
            "Nextcloud user, group and team folder \"OpenProject\" (automatically managed project folders): to remove "
            "them, disable the app (`occ app:disable integration_openproject`), delete the user and the groups "
            "\"OpenProject\" and \"OpenProjectNoAutomaticProjectFolders\" and the team folder, then enable the app again");
    }
    auto after = m.nc_client.check_admin_config();
    if (after && after->project_folder_setup)
        out.remaining.push_back(
            "the app password \"OpenProject\" of Nextcloud user OpenProject: delete it under that user's Security "
            "settings, or with the user (see above)");

    auto archived = journal->archive();
    if (!archived) return std::unexpected(with_step(archived.error(), "teardown"));
    if (*archived) out.archived_journal = (*archived)->string();
    return out;
}

}  // namespace opnc
