// The convergence decision: which steps a run still needs, for every state the servers and the
// journal can be in after a fresh start, a finished run, or a failure at any point.
#include <catch2/catch.hpp>

#include "opnc/convergence.hpp"

using namespace opnc;

namespace {

DecisionInput input(bool project_folders = false, bool replace = false) {
    return DecisionInput{"Nextcloud", project_folders, replace, "https://op.example", "https://nc.example"};
}

std::vector<std::string> names(const Decision& d) {
    std::vector<std::string> out;
    for (const auto& s : d.steps) out.push_back(s.name);
    return out;
}

// A finished integration as opnc leaves it: storage 7, both clients known to the journal.
struct Finished {
    Facts facts;
    JournalRecord journal;
    explicit Finished(bool project_folders = false) {
        Facts::StorageFacts s;
        s.id = 7;
        s.name = "Nextcloud";
        s.configured = true;
        s.has_application_password = project_folders;
        s.openproject_client_id = "op-client";
        s.nextcloud_client_id = "nc-client";
        facts.storage = s;
        facts.nextcloud_configured = true;
        facts.nextcloud_app_password = project_folders;
        facts.project_folder_entities = project_folders;
        facts.nextcloud_points_here = true;
        facts.nextcloud_openproject_url = "https://op.example";
        journal.storage_name = "Nextcloud";
        journal.storage_id = 7;
        journal.openproject_client_id = "op-client";
        journal.openproject_client_secret = Secret("op-secret");
        journal.nextcloud_client_id = "nc-client";
        journal.nextcloud_client_secret = Secret("nc-secret");
        journal.nextcloud_configured_with = "op-client";
        journal.project_folders = project_folders;
        if (project_folders) {
            journal.app_password = Secret("app-password");
            journal.app_password_in_openproject = true;
        }
        journal.last_step = "verify";
    }
};

}  // namespace

TEST_CASE("a fresh pair needs every step, POST with both project-folder flags", "[convergence]") {
    for (bool pf : {false, true}) {
        auto d = decide(Facts{}, JournalRecord{}, input(pf));
        REQUIRE(d);
        CHECK(d->create_storage);
        CHECK_FALSE(d->delete_storage_first);
        REQUIRE(d->configure_nextcloud);
        CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::post);
        CHECK(d->configure_nextcloud->setup_project_folder == pf);
        CHECK(d->configure_nextcloud->setup_app_password == pf);
        CHECK_FALSE(d->configure_nextcloud->then_patch_app_password);
        CHECK(d->store_nextcloud_client);
        CHECK(d->set_app_password == pf);
        std::vector<std::string> expected{"create_storage", "configure_nextcloud", "store_nextcloud_client"};
        if (pf) expected.push_back("set_app_password");
        CHECK(names(*d) == expected);
    }
}

TEST_CASE("a finished integration needs nothing", "[convergence]") {
    for (bool pf : {false, true}) {
        Finished f(pf);
        auto d = decide(f.facts, f.journal, input(pf));
        REQUIRE(d);
        CHECK_FALSE(d->changes());
        CHECK(d->holds_secrets);
    }
}

TEST_CASE("the wanted name on a storage for another host is a conflict in preflight", "[convergence]") {
    Facts f;
    f.name_taken_by = 3;
    auto d = decide(f, JournalRecord{}, input());
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::conflict);
    CHECK(d.error().step == "preflight");
    CHECK(d.error().hint.find("--storage-name") != std::string::npos);
}

TEST_CASE("an incomplete storage made outside opnc needs --replace-storage", "[convergence]") {
    Facts f;
    Facts::StorageFacts s;
    s.id = 4;
    s.name = "Files";
    s.openproject_client_id = "theirs";
    f.storage = s;
    auto d = decide(f, JournalRecord{}, input());
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::confirmation_required);
    CHECK(d.error().step == "preflight");
    CHECK(d.error().hint.find("--replace-storage") != std::string::npos);

    auto replaced = decide(f, JournalRecord{}, input(false, true));
    REQUIRE(replaced);
    CHECK(replaced->delete_storage_first);
    CHECK(replaced->create_storage);
    REQUIRE_FALSE(replaced->steps.empty());
    REQUIRE_FALSE(replaced->steps[0].warnings.empty());
    CHECK(replaced->steps[0].warnings[0].find("file links") != std::string::npos);
}

TEST_CASE("a storage whose create answer was lost is recreated without asking", "[convergence]") {
    Facts f;
    Facts::StorageFacts s;
    s.id = 9;
    s.name = "Nextcloud";
    s.openproject_client_id = "lost";
    f.storage = s;
    JournalRecord j;
    j.pending_step = "create_storage";
    j.storage_name = "Nextcloud";
    auto d = decide(f, j, input(true));
    REQUIRE(d);
    CHECK(d->delete_storage_first);
    CHECK(d->create_storage);
    CHECK(d->store_nextcloud_client);
    CHECK(d->set_app_password);

    SECTION("but not when it is configured by now: someone may use it") {
        f.storage->configured = true;
        f.storage->nextcloud_client_id = "someone";
        auto again = decide(f, j, input(true));
        REQUIRE_FALSE(again);
        CHECK(again.error().kind == ErrorKind::confirmation_required);
    }
}

TEST_CASE("a complete storage made outside opnc is left alone with a note", "[convergence]") {
    Finished f;
    JournalRecord none;
    auto d = decide(f.facts, none, input());
    REQUIRE(d);
    CHECK_FALSE(d->changes());
    CHECK_FALSE(d->holds_secrets);
    REQUIRE(d->notes.size() == 1);
    CHECK(d->notes[0].find("does not hold its secrets") != std::string::npos);
}

TEST_CASE("after a lost /setup answer the next run POSTs again", "[convergence]") {
    Finished f;
    f.journal.pending_step = "configure_nextcloud";
    f.journal.nextcloud_configured_with.clear();
    auto d = decide(f.facts, f.journal, input());
    REQUIRE(d);
    REQUIRE(d->configure_nextcloud);
    CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::post);
    CHECK(d->store_nextcloud_client);
    REQUIRE_FALSE(d->steps.empty());
}

TEST_CASE("Nextcloud pointing elsewhere while its client is OpenProject's current one is PATCHed", "[convergence]") {
    Finished f;
    f.facts.nextcloud_points_here = false;
    f.facts.nextcloud_openproject_url = "https://old-op.example";
    auto d = decide(f.facts, f.journal, input());
    REQUIRE(d);
    REQUIRE(d->configure_nextcloud);
    CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::patch);
    CHECK(d->configure_nextcloud->send_client);
    CHECK_FALSE(d->store_nextcloud_client);  // the client is kept: no user re-authorizes
}

TEST_CASE("a reset Nextcloud gets a POST and OpenProject the new client, with a warning", "[convergence]") {
    Finished f;
    f.facts.nextcloud_configured = false;
    f.facts.nextcloud_openproject_url = "";
    f.facts.nextcloud_points_here = false;
    auto d = decide(f.facts, f.journal, input());
    REQUIRE(d);
    REQUIRE(d->configure_nextcloud);
    CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::post);
    CHECK(d->store_nextcloud_client);
    REQUIRE(d->steps[0].warnings.size() == 1);
    CHECK(d->steps[0].warnings[0].find("reconnect") != std::string::npos);
}

TEST_CASE("existing project-folder entities: POST without flags, then a new app password", "[convergence]") {
    Facts f;
    f.project_folder_entities = true;
    f.nextcloud_app_password = true;  // kept by DELETE /setup
    auto d = decide(f, JournalRecord{}, input(true));
    REQUIRE(d);
    REQUIRE(d->configure_nextcloud);
    CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::post);
    CHECK_FALSE(d->configure_nextcloud->setup_project_folder);
    CHECK_FALSE(d->configure_nextcloud->setup_app_password);
    CHECK(d->configure_nextcloud->then_patch_app_password);
    CHECK(d->set_app_password);
}

TEST_CASE("only the failed last steps are redone", "[convergence]") {
    SECTION("store_nextcloud_client failed") {
        Finished f(true);
        f.facts.storage->nextcloud_client_id.clear();
        f.facts.storage->configured = false;
        auto d = decide(f.facts, f.journal, input(true));
        REQUIRE(d);
        CHECK(names(*d) == std::vector<std::string>{"store_nextcloud_client"});
    }
    SECTION("set_app_password failed") {
        Finished f(true);
        f.facts.storage->has_application_password = false;
        f.journal.app_password_in_openproject = false;
        auto d = decide(f.facts, f.journal, input(true));
        REQUIRE(d);
        CHECK(names(*d) == std::vector<std::string>{"set_app_password"});
    }
    SECTION("set_app_password applied but its answer lost") {
        Finished f(true);
        f.journal.app_password_in_openproject = false;
        auto d = decide(f.facts, f.journal, input(true));
        REQUIRE(d);
        CHECK(names(*d) == std::vector<std::string>{"set_app_password"});
    }
}

TEST_CASE("project folders added to an existing integration", "[convergence]") {
    Finished f(false);
    auto d = decide(f.facts, f.journal, input(true));
    REQUIRE(d);
    REQUIRE(d->configure_nextcloud);
    CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::patch);
    CHECK_FALSE(d->configure_nextcloud->send_client);
    CHECK(d->configure_nextcloud->setup_project_folder);
    CHECK(d->configure_nextcloud->setup_app_password);
    CHECK(names(*d) == std::vector<std::string>{"configure_nextcloud", "set_app_password"});
}

TEST_CASE("project folders in use are kept when not asked for", "[convergence]") {
    Finished f(true);
    auto d = decide(f.facts, f.journal, input(false));
    REQUIRE(d);
    CHECK(d->project_folders);
    CHECK_FALSE(d->changes());
    REQUIRE_FALSE(d->notes.empty());
}

TEST_CASE("an app password rotated outside opnc is replaced by a new one", "[convergence]") {
    Finished f(true);
    f.facts.app_password_rejected = true;
    auto d = decide(f.facts, f.journal, input(true));
    REQUIRE(d);
    REQUIRE(d->configure_nextcloud);
    CHECK(d->configure_nextcloud->method == NextcloudSetupPlan::Method::patch);
    CHECK_FALSE(d->configure_nextcloud->send_client);
    CHECK(d->configure_nextcloud->setup_app_password);
    CHECK_FALSE(d->configure_nextcloud->setup_project_folder);
    CHECK(names(*d) == std::vector<std::string>{"configure_nextcloud", "set_app_password"});
}
