// The journal (durable per-integration state), the state folder and the per-integration lock.
// Every test works in its own mkdtemp folder, removed afterwards.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "opnc/journal.hpp"
#include "opnc/state_dir.hpp"

namespace fs = std::filesystem;
using opnc::ErrorKind;
using opnc::IntegrationLock;
using opnc::Journal;
using opnc::JournalKey;
using opnc::JournalRecord;
using opnc::LockOptions;
using opnc::Secret;
using opnc::Url;

namespace {

class TempFolder {
public:
    TempFolder() {
        std::string pattern = (fs::temp_directory_path() / "opnc-journal-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempFolder() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Sets or unsets environment variables for one test and restores the previous values after it.
class EnvironmentOverride {
public:
    void set(const std::string& name, const std::optional<std::string>& value) {
        if (!saved_.count(name)) {
            const char* old = std::getenv(name.c_str());
            saved_.emplace(name, old ? std::optional<std::string>(old) : std::nullopt);
        }
        if (value) ::setenv(name.c_str(), value->c_str(), 1);
        else ::unsetenv(name.c_str());
    }
    ~EnvironmentOverride() {
        for (const auto& [name, value] : saved_) {
            if (value) ::setenv(name.c_str(), value->c_str(), 1);
            else ::unsetenv(name.c_str());
        }
    }

private:
    std::map<std::string, std::optional<std::string>> saved_;
};

Url url(const char* text) {
    auto parsed = Url::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

JournalKey example_key() { return JournalKey(url("https://op.example.org"), url("https://cloud.example.org")); }
JournalKey other_key() { return JournalKey(url("https://op2.example.org"), url("https://cloud.example.org")); }

unsigned mode_of(const fs::path& path) {
    struct stat info{};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_bytes(const fs::path& path, const std::string& content, mode_t mode = 0600) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    ::fchmod(fd, mode);
    ::close(fd);
}

std::vector<std::string> folder_entries(const fs::path& folder) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// A journal with every field set, saved in `folder`.
void save_full_journal(const fs::path& folder, const JournalKey& key) {
    auto journal = Journal::load(folder, key);
    REQUIRE(journal.has_value());
    auto saved = journal->update([](JournalRecord& r) {
        r.storage_name = "Nextcloud (opnc)";
        r.storage_id = 42;
        r.openproject_client_id = "op-client-id-1";
        r.openproject_client_secret = Secret("op-client-secret-value-1");
        r.nextcloud_client_id = "nc-client-id-1";
        r.nextcloud_client_secret = Secret("nc-client-secret-value-1");
        r.app_password = Secret("app-password-value-1");
        r.project_folders = true;
        r.nextcloud_configured_with = "op-client-id-1";
        r.app_password_in_openproject = true;
        r.last_step = "store_nextcloud_client";
        r.pending_step = "set_app_password";
        r.notes = {"first note", "second note"};
    });
    REQUIRE(saved.has_value());
}

}  // namespace

// ---- state folder -------------------------------------------------------------------------------

TEST_CASE("state folder: an explicit path that does not exist is created 0700 with its parents", "[journal]") {
    TempFolder temp;
    const fs::path wanted = temp.path() / "a" / "b" / "state";
    auto dir = opnc::resolve_state_dir(wanted);
    REQUIRE(dir.has_value());
    CHECK(dir->path == wanted);
    CHECK(dir->source == "explicit");
    CHECK(dir->created);
    CHECK(dir->notes.empty());
    CHECK(mode_of(wanted) == 0700);
    CHECK(mode_of(temp.path() / "a") == 0700);
    CHECK(mode_of(temp.path() / "a" / "b") == 0700);

    // A second resolution finds it and does not claim to have created it.
    auto again = opnc::resolve_state_dir(wanted);
    REQUIRE(again.has_value());
    CHECK_FALSE(again->created);
}

TEST_CASE("state folder: an existing folder with loose permissions is kept and noted", "[journal]") {
    TempFolder temp;
    const fs::path shared = temp.path() / "shared";
    REQUIRE(::mkdir(shared.c_str(), 0700) == 0);
    REQUIRE(::chmod(shared.c_str(), 0755) == 0);
    auto dir = opnc::resolve_state_dir(shared);
    REQUIRE(dir.has_value());
    CHECK_FALSE(dir->created);
    REQUIRE(dir->notes.size() == 1);
    CHECK_THAT(dir->notes[0], Catch::Contains("0755") && Catch::Contains(shared.string()));
    CHECK(mode_of(shared) == 0755);
}

TEST_CASE("state folder: a path that is a file is an error of kind journal", "[journal]") {
    TempFolder temp;
    const fs::path file = temp.path() / "not-a-folder";
    write_bytes(file, "x");
    auto dir = opnc::resolve_state_dir(file);
    REQUIRE_FALSE(dir.has_value());
    CHECK(dir.error().kind == ErrorKind::journal);
    CHECK_THAT(dir.error().message, Catch::Contains(file.string()) && Catch::Contains("not a directory"));
}

TEST_CASE("state folder: resolution order is explicit then OPNC_STATE_DIR then XDG_STATE_HOME then HOME", "[journal]") {
    TempFolder temp;
    EnvironmentOverride env;
    const fs::path home = temp.path() / "home";
    const fs::path xdg = temp.path() / "xdg";
    const fs::path chosen = temp.path() / "chosen";
    env.set("HOME", home.string());
    env.set("XDG_STATE_HOME", xdg.string());
    env.set("OPNC_STATE_DIR", chosen.string());

    SECTION("an explicit path wins over every variable") {
        auto dir = opnc::resolve_state_dir(temp.path() / "explicit");
        REQUIRE(dir.has_value());
        CHECK(dir->path == temp.path() / "explicit");
        CHECK(dir->source == "explicit");
    }
    SECTION("OPNC_STATE_DIR wins over XDG_STATE_HOME") {
        auto dir = opnc::resolve_state_dir();
        REQUIRE(dir.has_value());
        CHECK(dir->path == chosen);
        CHECK(dir->source == "OPNC_STATE_DIR");
        CHECK(mode_of(chosen) == 0700);
    }
    SECTION("XDG_STATE_HOME/opnc when OPNC_STATE_DIR is unset") {
        env.set("OPNC_STATE_DIR", std::nullopt);
        auto dir = opnc::resolve_state_dir();
        REQUIRE(dir.has_value());
        CHECK(dir->path == xdg / "opnc");
        CHECK(dir->source == "XDG_STATE_HOME");
    }
    SECTION("an empty OPNC_STATE_DIR counts as unset") {
        env.set("OPNC_STATE_DIR", "");
        auto dir = opnc::resolve_state_dir();
        REQUIRE(dir.has_value());
        CHECK(dir->path == xdg / "opnc");
    }
    SECTION("~/.local/state/opnc when XDG_STATE_HOME is unset") {
        env.set("OPNC_STATE_DIR", std::nullopt);
        env.set("XDG_STATE_HOME", std::nullopt);
        auto dir = opnc::resolve_state_dir();
        REQUIRE(dir.has_value());
        CHECK(dir->path == home / ".local" / "state" / "opnc");
        CHECK(dir->source == "HOME");
        CHECK(mode_of(home / ".local" / "state" / "opnc") == 0700);
        CHECK(mode_of(home / ".local") == 0700);
    }
    SECTION("a relative XDG_STATE_HOME is ignored, as the XDG specification requires") {
        env.set("OPNC_STATE_DIR", std::nullopt);
        env.set("XDG_STATE_HOME", "relative/state");
        auto dir = opnc::resolve_state_dir();
        REQUIRE(dir.has_value());
        CHECK(dir->path == home / ".local" / "state" / "opnc");
        CHECK(dir->source == "HOME");
    }
}

TEST_CASE("state folder and journal: modes do not depend on the umask", "[journal]") {
    TempFolder temp;
    struct UmaskOverride {
        mode_t saved;
        explicit UmaskOverride(mode_t mask) : saved(::umask(mask)) {}
        ~UmaskOverride() { ::umask(saved); }
    };
    SECTION("a permissive umask 000") {
        UmaskOverride mask(0);
        auto dir = opnc::resolve_state_dir(temp.path() / "state");
        REQUIRE(dir.has_value());
        CHECK(mode_of(dir->path) == 0700);
        save_full_journal(dir->path, example_key());
        CHECK(mode_of(dir->path / example_key().file_name()) == 0600);
        auto lock = IntegrationLock::acquire(dir->path, example_key());
        REQUIRE(lock.has_value());
        CHECK(mode_of(lock->path()) == 0600);
    }
    SECTION("a umask 777 that would leave mkdir with mode 000") {
        UmaskOverride mask(0777);
        auto dir = opnc::resolve_state_dir(temp.path() / "state");
        REQUIRE(dir.has_value());
        CHECK(mode_of(dir->path) == 0700);
        save_full_journal(dir->path, example_key());
        CHECK(mode_of(dir->path / example_key().file_name()) == 0600);
        auto lock = IntegrationLock::acquire(dir->path, example_key());
        REQUIRE(lock.has_value());
        CHECK(mode_of(lock->path()) == 0600);
    }
}

// ---- key ----------------------------------------------------------------------------------------

TEST_CASE("journal key: a readable and stable file name from the normalised URLs", "[journal]") {
    JournalKey key(url("https://op.example.org"), url("https://cloud.example.org:8443/nextcloud"));
    // 68516e758ba8: the first 12 hex digits of
    // sha256("https://op.example.org\nhttps://cloud.example.org:8443/nextcloud"), computed with
    // Python's hashlib.
    CHECK(key.stem() == "op.example.org_cloud.example.org-8443-68516e758ba8");
    CHECK(key.file_name() == "op.example.org_cloud.example.org-8443-68516e758ba8.json");
    CHECK(key.lock_file_name() == "op.example.org_cloud.example.org-8443-68516e758ba8.lock");

    // The same integration spelled differently is the same key.
    JournalKey same(url("HTTPS://OP.example.org/"), url("https://Cloud.Example.org:8443/nextcloud/"));
    CHECK(same.stem() == key.stem());
    // Another Nextcloud path under the same host is another integration.
    JournalKey other(url("https://op.example.org"), url("https://cloud.example.org:8443/nc2"));
    CHECK(other.stem() != key.stem());
    CHECK(other.stem().starts_with("op.example.org_cloud.example.org-8443-"));
}

// ---- round trip ---------------------------------------------------------------------------------

TEST_CASE("journal: a missing file gives an empty journal", "[journal]") {
    TempFolder temp;
    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());
    CHECK_FALSE(journal->on_disk());
    CHECK(journal->path() == temp.path() / example_key().file_name());
    const JournalRecord r = journal->record();
    CHECK(r.storage_name.empty());
    CHECK_FALSE(r.storage_id.has_value());
    CHECK(r.openproject_client_secret.empty());
    CHECK(r.last_step.empty());
    CHECK(r.notes.empty());
    CHECK(journal->warnings().empty());
    CHECK(folder_entries(temp.path()).empty());  // loading creates nothing
}

TEST_CASE("journal: every field survives save and load in a 0600 file with no temporary file left", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    const fs::path file = temp.path() / example_key().file_name();
    CHECK(mode_of(file) == 0600);
    CHECK(folder_entries(temp.path()) == std::vector<std::string>{example_key().file_name()});

    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE(loaded.has_value());
    CHECK(loaded->on_disk());
    CHECK(loaded->warnings().empty());
    const JournalRecord r = loaded->record();
    CHECK(r.storage_name == "Nextcloud (opnc)");
    REQUIRE(r.storage_id.has_value());
    CHECK(*r.storage_id == 42);
    CHECK(r.openproject_client_id == "op-client-id-1");
    CHECK(r.openproject_client_secret.equals("op-client-secret-value-1"));
    CHECK(r.nextcloud_client_id == "nc-client-id-1");
    CHECK(r.nextcloud_client_secret.equals("nc-client-secret-value-1"));
    CHECK(r.app_password.equals("app-password-value-1"));
    CHECK(r.project_folders == true);
    CHECK(r.nextcloud_configured_with == "op-client-id-1");
    CHECK(r.app_password_in_openproject == true);
    CHECK(r.last_step == "store_nextcloud_client");
    CHECK(r.pending_step == "set_app_password");
    CHECK(r.notes == std::vector<std::string>{"first note", "second note"});
    CHECK(std::regex_match(r.updated_at, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")));

    // The file is the documented versioned JSON, with the full URLs and the secrets as strings.
    auto doc = nlohmann::json::parse(read_bytes(file));
    CHECK(doc["format"] == 1);
    CHECK(doc["openproject_url"] == "https://op.example.org");
    CHECK(doc["nextcloud_url"] == "https://cloud.example.org");
    CHECK(doc["storage_id"] == 42);
    CHECK(doc["openproject_client_secret"] == "op-client-secret-value-1");
    CHECK(doc["app_password"] == "app-password-value-1");
    CHECK(doc["updated_at"] == r.updated_at);
    CHECK(doc["pending_step"] == "set_app_password");
    CHECK(doc["app_password_in_openproject"] == true);
    CHECK(doc.size() == 17);  // the documented keys, nothing else
}

TEST_CASE("journal: absent values are stored as null and read back as absent", "[journal]") {
    TempFolder temp;
    {
        auto journal = Journal::load(temp.path(), example_key());
        REQUIRE(journal.has_value());
        REQUIRE(journal->update([](JournalRecord& r) { r.last_step = "preflight"; }).has_value());
    }
    auto doc = nlohmann::json::parse(read_bytes(temp.path() / example_key().file_name()));
    CHECK(doc["storage_id"].is_null());
    CHECK(doc["app_password"].is_null());
    CHECK(doc["project_folders"] == false);
    CHECK(doc["app_password_in_openproject"] == false);
    CHECK(doc["pending_step"] == "");
    CHECK(doc["nextcloud_configured_with"] == "");
    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE(loaded.has_value());
    CHECK_FALSE(loaded->record().storage_id.has_value());
    CHECK(loaded->record().app_password.empty());
    CHECK(loaded->record().last_step == "preflight");
}

TEST_CASE("journal: amend changes the record in memory; the next save writes it", "[journal]") {
    TempFolder temp;
    const auto file = temp.path() / example_key().file_name();
    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());
    REQUIRE(journal->update([](JournalRecord& r) { r.last_step = "configure_nextcloud"; }).has_value());
    const std::string before = read_bytes(file);

    journal->amend([](JournalRecord& r) {
        r.last_step = "set_app_password";
        r.app_password_in_openproject = true;
    });
    CHECK(journal->record().last_step == "set_app_password");
    CHECK(journal->record().app_password_in_openproject);
    CHECK(read_bytes(file) == before);  // nothing written
    CHECK(Journal::load(temp.path(), example_key())->record().last_step == "configure_nextcloud");

    REQUIRE(journal->update([](JournalRecord& r) { r.last_step = "verify"; }).has_value());
    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE(loaded.has_value());
    CHECK(loaded->record().last_step == "verify");
    CHECK(loaded->record().app_password_in_openproject);  // the amended value went with the next save
}

TEST_CASE("journal: an unknown step name is refused and nothing is written", "[journal]") {
    TempFolder temp;
    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());
    auto saved = journal->update([](JournalRecord& r) { r.last_step = "create_storge"; });
    REQUIRE_FALSE(saved.has_value());
    CHECK(saved.error().kind == ErrorKind::internal);
    CHECK_THAT(saved.error().message, Catch::Contains("'create_storge'"));
    CHECK(folder_entries(temp.path()).empty());

    auto pending = journal->update([](JournalRecord& r) {
        r.last_step = "create_storage";
        r.pending_step = "configure";
    });
    REQUIRE_FALSE(pending.has_value());
    CHECK(pending.error().kind == ErrorKind::internal);
    CHECK_THAT(pending.error().message, Catch::Contains("'configure'"));
    CHECK(folder_entries(temp.path()).empty());
}

TEST_CASE("journal: keys written by a newer opnc of the same format survive a save", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    const fs::path file = temp.path() / example_key().file_name();
    auto doc = nlohmann::json::parse(read_bytes(file));
    doc["future_field"] = {{"kept", true}};
    write_bytes(file, doc.dump());

    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());
    REQUIRE(journal->update([](JournalRecord& r) { r.storage_id = 7; }).has_value());
    auto after = nlohmann::json::parse(read_bytes(file));
    CHECK(after["future_field"]["kept"] == true);
    CHECK(after["storage_id"] == 7);
}

TEST_CASE("journal: the redacted summary has ids but no secret", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());
    REQUIRE(journal->update([](JournalRecord& r) { r.app_password = Secret(); }).has_value());
    const auto summary = journal->redacted_summary();
    CHECK(summary["openproject_client_id"] == "op-client-id-1");
    CHECK(summary["nextcloud_client_id"] == "nc-client-id-1");
    CHECK(summary["storage_id"] == 42);
    CHECK(summary["openproject_client_secret"] == "[redacted]");
    CHECK(summary["nextcloud_client_secret"] == "[redacted]");
    CHECK(summary["app_password"].is_null());
    CHECK(summary["last_step"] == "store_nextcloud_client");
    CHECK(summary["pending_step"] == "set_app_password");
    CHECK(summary["nextcloud_configured_with"] == "op-client-id-1");
    CHECK(summary["app_password_in_openproject"] == true);
    const std::string text = summary.dump();
    CHECK_THAT(text, !Catch::Contains("secret-value") && !Catch::Contains("app-password-value"));
}

// ---- atomicity ----------------------------------------------------------------------------------

TEST_CASE("journal: a crash before the rename leaves the old journal and the leftover is cleaned", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    const fs::path file = temp.path() / example_key().file_name();
    const std::string before = read_bytes(file);

    // What a save interrupted between write and rename leaves: a partial temporary file.
    const fs::path leftover = temp.path() / ("." + example_key().file_name() + ".tmp-Ab12Cd");
    write_bytes(leftover, before.substr(0, before.size() / 2));

    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE(loaded.has_value());
    CHECK(loaded->record().storage_id == std::optional<std::int64_t>(42));
    CHECK(read_bytes(file) == before);
    CHECK(fs::exists(leftover));  // a reader never deletes: it may be a live writer's file

    auto listed = opnc::list_journals(temp.path());
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].path == file);

    REQUIRE(loaded->update([](JournalRecord& r) { r.last_step = "set_app_password"; }).has_value());
    CHECK_FALSE(fs::exists(leftover));
    CHECK(folder_entries(temp.path()) == std::vector<std::string>{example_key().file_name()});
}

TEST_CASE("journal: a concurrent reader never sees a partial journal", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    auto writer_journal = Journal::load(temp.path(), example_key());
    REQUIRE(writer_journal.has_value());

    const JournalKey key = example_key();
    std::atomic<bool> done{false};
    std::atomic<int> failed_saves{0};
    std::thread writer([&] {
        for (int i = 0; i < 40; ++i) {
            auto saved = writer_journal->update([i](JournalRecord& r) {
                r.storage_id = i;
                // Vary the size so that a torn read would show as bad JSON.
                r.notes.assign(static_cast<std::size_t>(i % 7), std::string(200, 'n'));
            });
            if (!saved) ++failed_saves;
        }
        done = true;
    });
    int reads = 0;
    int failed_loads = 0;
    int wrong_content = 0;
    while (!done || reads == 0) {
        auto loaded = Journal::load(temp.path(), key);
        if (!loaded) ++failed_loads;
        else if (loaded->record().openproject_client_id != "op-client-id-1") ++wrong_content;
        ++reads;
    }
    writer.join();
    CHECK(failed_saves == 0);
    CHECK(failed_loads == 0);
    CHECK(wrong_content == 0);
    CHECK(reads > 0);
    auto final_state = Journal::load(temp.path(), example_key());
    REQUIRE(final_state.has_value());
    CHECK(final_state->record().storage_id == std::optional<std::int64_t>(39));
}

TEST_CASE("journal: concurrent update() calls on one journal keep both changes", "[journal]") {
    TempFolder temp;
    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());
    // The exchange's last two steps run concurrently and each records its result. (Catch2's
    // assertions are not thread-safe: the threads only store their outcome.)
    bool saved_a = false;
    bool saved_b = false;
    std::thread a([&] {
        saved_a = journal->update([](JournalRecord& r) { r.nextcloud_client_id = "from-thread-a"; }).has_value();
    });
    std::thread b([&] {
        saved_b = journal->update([](JournalRecord& r) { r.app_password = Secret("from-thread-b"); }).has_value();
    });
    a.join();
    b.join();
    CHECK(saved_a);
    CHECK(saved_b);
    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE(loaded.has_value());
    CHECK(loaded->record().nextcloud_client_id == "from-thread-a");
    CHECK(loaded->record().app_password.equals("from-thread-b"));
}

TEST_CASE("journal: a failed write removes its temporary file and keeps the old journal", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    const fs::path file = temp.path() / example_key().file_name();
    const std::string before = read_bytes(file);
    auto journal = Journal::load(temp.path(), example_key());
    REQUIRE(journal.has_value());

    // A file size limit makes write() fail with EFBIG part way (root is not exempt, unlike
    // permissions); SIGXFSZ is ignored meanwhile so that the process survives it.
    rlimit saved_limit{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_limit) == 0);
    auto saved_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved_limit;
    small.rlim_cur = 64;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto saved = journal->update([](JournalRecord& r) { r.openproject_client_secret = Secret("s3cr3t-x"); });
    ::setrlimit(RLIMIT_FSIZE, &saved_limit);
    std::signal(SIGXFSZ, saved_handler);

    REQUIRE_FALSE(saved.has_value());
    CHECK(saved.error().kind == ErrorKind::journal);
    CHECK_THAT(saved.error().message, Catch::Contains(file.string()) && Catch::Contains("(writing)"));
    CHECK_THAT(saved.error().describe(), !Catch::Contains("s3cr3t-x"));
    CHECK(folder_entries(temp.path()) == std::vector<std::string>{example_key().file_name()});
    CHECK(read_bytes(file) == before);
    // The value stays in memory for the run to report or retry.
    CHECK(journal->record().openproject_client_secret.equals("s3cr3t-x"));
}

TEST_CASE("journal: a save into a folder that vanished fails with kind journal", "[journal]") {
    TempFolder temp;
    const fs::path folder = temp.path() / "state";
    REQUIRE(::mkdir(folder.c_str(), 0700) == 0);
    auto journal = Journal::load(folder, example_key());
    REQUIRE(journal.has_value());
    fs::remove(folder);
    auto saved = journal->save();
    REQUIRE_FALSE(saved.has_value());
    CHECK(saved.error().kind == ErrorKind::journal);
    CHECK_THAT(saved.error().message,
               Catch::Contains(journal->path().string()) && Catch::Contains("creating a temporary file"));
    CHECK_FALSE(fs::exists(folder));
}

// ---- unusable files -----------------------------------------------------------------------------

TEST_CASE("journal: unusable files give kind journal, name the file and stay untouched", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    const fs::path file = temp.path() / example_key().file_name();
    const std::string valid = read_bytes(file);
    auto edited = [&](const std::function<void(nlohmann::json&)>& change) {
        auto doc = nlohmann::json::parse(valid);
        change(doc);
        return doc.dump(2);
    };

    struct Case {
        std::string name;
        std::string content;
        std::string reason;  // a fragment of the message
    };
    const std::vector<Case> cases = {
        {"truncated", valid.substr(0, valid.find("op-client-secret-value-1") + 22), "truncated"},
        {"empty", "", "empty"},
        {"not JSON", "this is not json {", "not valid JSON"},
        {"a number beyond double", R"({"format": 1, "storage_id": 1e400})", "number too large"},
        {"not an object", "[1, 2]", "not a JSON object"},
        {"wrong format version", edited([](auto& d) { d["format"] = 2; }), "format 2"},
        {"format as a string", edited([](auto& d) { d["format"] = "1"; }), "'format'"},
        {"missing format", edited([](auto& d) { d.erase("format"); }), "'format' is missing"},
        {"storage_id as a string", edited([](auto& d) { d["storage_id"] = "42"; }), "'storage_id'"},
        {"secret as a number", edited([](auto& d) { d["app_password"] = 12345; }), "'app_password'"},
        {"project_folders as a string", edited([](auto& d) { d["project_folders"] = "yes"; }), "'project_folders'"},
        {"notes not a list", edited([](auto& d) { d["notes"] = "n"; }), "'notes'"},
        {"missing key", edited([](auto& d) { d.erase("nextcloud_client_id"); }), "'nextcloud_client_id' is missing"},
        {"unknown step", edited([](auto& d) { d["last_step"] = "launch"; }), "'last_step'"},
        {"unknown pending step", edited([](auto& d) { d["pending_step"] = "launch"; }), "'pending_step'"},
        {"flag as a number", edited([](auto& d) { d["app_password_in_openproject"] = 1; }),
         "'app_password_in_openproject'"},
        {"another OpenProject", edited([](auto& d) { d["openproject_url"] = "https://evil.example.org"; }),
         "https://evil.example.org"},
        {"another Nextcloud", edited([](auto& d) { d["nextcloud_url"] = "https://cloud.example.org/other"; }),
         "https://cloud.example.org/other"},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            write_bytes(file, c.content);
            auto loaded = Journal::load(temp.path(), example_key());
            REQUIRE_FALSE(loaded.has_value());
            const auto& e = loaded.error();
            CHECK(e.kind == ErrorKind::journal);
            CHECK_THAT(e.message, Catch::Contains(file.string()) && Catch::Contains("kept unchanged") &&
                                      Catch::Contains(c.reason));
            CHECK_THAT(e.hint, Catch::Contains("mv '" + file.string() + "'"));
            CHECK_THAT(e.describe(), !Catch::Contains("secret-value") && !Catch::Contains("app-password-value"));
            CHECK(read_bytes(file) == c.content);
            CHECK(mode_of(file) == 0600);
            CHECK(folder_entries(temp.path()) == std::vector<std::string>{example_key().file_name()});
        }
    }
}

TEST_CASE("journal: a journal readable by others is loaded and tightened to 0600 with a note", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    const fs::path file = temp.path() / example_key().file_name();
    REQUIRE(::chmod(file.c_str(), 0644) == 0);
    const std::string before = read_bytes(file);
    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE(loaded.has_value());
    CHECK(loaded->record().openproject_client_id == "op-client-id-1");
    REQUIRE(loaded->warnings().size() == 1);
    CHECK_THAT(loaded->warnings()[0], Catch::Contains("0644") && Catch::Contains("0600") &&
                                          Catch::Contains(file.string()));
    CHECK(mode_of(file) == 0600);
    CHECK(read_bytes(file) == before);
}

TEST_CASE("journal: a symbolic link in the journal's place is refused", "[journal]") {
    TempFolder temp;
    const fs::path elsewhere = temp.path() / "elsewhere.txt";
    write_bytes(elsewhere, "{}");
    const fs::path file = temp.path() / example_key().file_name();
    fs::create_symlink(elsewhere, file);
    auto loaded = Journal::load(temp.path(), example_key());
    REQUIRE_FALSE(loaded.has_value());
    CHECK(loaded.error().kind == ErrorKind::journal);
    CHECK_THAT(loaded.error().message, Catch::Contains("symbolic link"));
    CHECK(fs::is_symlink(file));
}

// ---- archive ------------------------------------------------------------------------------------

TEST_CASE("journal: archive renames the journal aside and leaves no active one", "[journal]") {
    TempFolder temp;
    const JournalKey key = example_key();
    save_full_journal(temp.path(), key);
    const std::string content = read_bytes(temp.path() / key.file_name());

    auto journal = Journal::load(temp.path(), key);
    REQUIRE(journal.has_value());
    auto archived = journal->archive();
    REQUIRE(archived.has_value());
    REQUIRE(archived->has_value());
    const fs::path first = **archived;
    CHECK(first.parent_path() == temp.path());
    CHECK(std::regex_match(first.filename().string(),
                           std::regex(std::regex_replace(key.stem(), std::regex(R"(\.)"), R"(\.)") +
                                      R"(\.archived-\d{8}T\d{6}Z\.json)")));
    CHECK(read_bytes(first) == content);
    CHECK(mode_of(first) == 0600);
    CHECK_FALSE(fs::exists(temp.path() / key.file_name()));
    CHECK_FALSE(journal->on_disk());
    CHECK(journal->record().openproject_client_secret.empty());

    // Nothing left to archive.
    auto nothing = journal->archive();
    REQUIRE(nothing.has_value());
    CHECK_FALSE(nothing->has_value());

    // A new journal for the same integration, archived too (maybe within the same second).
    auto fresh = Journal::load(temp.path(), key);
    REQUIRE(fresh.has_value());
    CHECK_FALSE(fresh->on_disk());
    REQUIRE(fresh->update([](JournalRecord& r) { r.storage_id = 99; }).has_value());
    auto second = fresh->archive();
    REQUIRE(second.has_value());
    REQUIRE(second->has_value());
    CHECK(**second != first);
    CHECK(fs::exists(first));
    CHECK(nlohmann::json::parse(read_bytes(**second))["storage_id"] == 99);
}

// ---- listing ------------------------------------------------------------------------------------

TEST_CASE("journal listing: active journals, archives on request, broken files with a problem", "[journal]") {
    TempFolder temp;
    save_full_journal(temp.path(), example_key());
    save_full_journal(temp.path(), other_key());
    {
        auto lock = IntegrationLock::acquire(temp.path(), example_key());  // leaves a .lock file
        REQUIRE(lock.has_value());
    }
    const JournalKey third(url("http://127.0.0.1:8080"), url("http://localhost:9090"));
    save_full_journal(temp.path(), third);
    auto third_journal = Journal::load(temp.path(), third);
    REQUIRE(third_journal.has_value());
    auto archive = third_journal->archive();
    REQUIRE(archive.has_value());
    REQUIRE(archive->has_value());
    write_bytes(temp.path() / "zz-not-a-journal.json", "{\"hello\": ");
    // A valid journal under a name that is not its key's.
    fs::copy_file(temp.path() / example_key().file_name(), temp.path() / "renamed.json");

    auto listed = opnc::list_journals(temp.path());
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 4);
    std::vector<std::string> names;
    for (const auto& item : *listed) names.push_back(item.path.filename().string());
    std::vector<std::string> expected = {example_key().file_name(), other_key().file_name(), "renamed.json",
                                         "zz-not-a-journal.json"};
    std::sort(expected.begin(), expected.end());
    CHECK(names == expected);
    for (const auto& item : *listed) {
        CHECK_FALSE(item.archived);
        const std::string name = item.path.filename().string();
        if (name == example_key().file_name()) {
            CHECK(item.problem.empty());
            CHECK(item.openproject_url == "https://op.example.org");
            CHECK(item.nextcloud_url == "https://cloud.example.org");
        } else if (name == other_key().file_name()) {
            CHECK(item.problem.empty());
            CHECK(item.openproject_url == "https://op2.example.org");
        } else if (name == "renamed.json") {
            CHECK(item.problem == "its file name does not match the URLs inside");
        } else {
            CHECK_THAT(item.problem, Catch::Contains("truncated"));
            CHECK(item.openproject_url.empty());
        }
    }

    auto with_archives = opnc::list_journals(temp.path(), true);
    REQUIRE(with_archives.has_value());
    REQUIRE(with_archives->size() == 5);
    int archived = 0;
    for (const auto& item : *with_archives) {
        if (!item.archived) continue;
        ++archived;
        CHECK(item.path == **archive);
        CHECK(item.problem.empty());
        CHECK(item.openproject_url == "http://127.0.0.1:8080");
        CHECK(item.nextcloud_url == "http://localhost:9090");
    }
    CHECK(archived == 1);

    auto missing = opnc::list_journals(temp.path() / "nope");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == ErrorKind::journal);
}

// ---- lock ---------------------------------------------------------------------------------------

TEST_CASE("lock: a second lock on the same key fails at once with in_progress naming the pid", "[journal][lock]") {
    TempFolder temp;
    auto first = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE(first.has_value());
    CHECK(first->held());
    CHECK(first->path() == temp.path() / example_key().lock_file_name());
    CHECK(mode_of(first->path()) == 0600);
    CHECK_THAT(read_bytes(first->path()), Catch::StartsWith("pid " + std::to_string(::getpid()) + "\nsince "));

    const auto started = std::chrono::steady_clock::now();
    auto second = IntegrationLock::acquire(temp.path(), example_key());
    const auto elapsed = std::chrono::steady_clock::now() - started;
    REQUIRE_FALSE(second.has_value());
    CHECK(elapsed < std::chrono::milliseconds(500));
    CHECK(second.error().kind == ErrorKind::in_progress);
    CHECK_THAT(second.error().message,
               Catch::StartsWith("another opnc run is working on this integration (pid " +
                                 std::to_string(::getpid()) + " since ") &&
                   Catch::Contains(", this process)"));
    CHECK_THAT(second.error().hint, Catch::Contains("--wait") && Catch::Contains(first->path().string()));

    SECTION("another key is independent") {
        auto other = IntegrationLock::acquire(temp.path(), other_key());
        CHECK(other.has_value());
    }
}

TEST_CASE("lock: released on destruction and by release()", "[journal][lock]") {
    TempFolder temp;
    fs::path lock_path;
    {
        auto first = IntegrationLock::acquire(temp.path(), example_key());
        REQUIRE(first.has_value());
        lock_path = first->path();
    }
    CHECK(read_bytes(lock_path).empty());  // the holder text goes with the lock
    auto again = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE(again.has_value());
    again->release();
    CHECK_FALSE(again->held());
    auto third = IntegrationLock::acquire(temp.path(), example_key());
    CHECK(third.has_value());

    // Moving keeps one holder.
    IntegrationLock moved = std::move(*third);
    CHECK(moved.held());
    auto blocked = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE_FALSE(blocked.has_value());
    CHECK(blocked.error().kind == ErrorKind::in_progress);
}

TEST_CASE("lock: wait mode acquires once the holder releases", "[journal][lock]") {
    TempFolder temp;
    auto holder = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE(holder.has_value());
    std::thread releaser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        holder->release();
    });
    LockOptions options;
    options.wait = std::chrono::seconds(10);
    const auto started = std::chrono::steady_clock::now();
    auto waited = IntegrationLock::acquire(temp.path(), example_key(), options);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    releaser.join();
    REQUIRE(waited.has_value());
    CHECK(elapsed >= std::chrono::milliseconds(250));
    CHECK(elapsed < std::chrono::seconds(5));
}

TEST_CASE("lock: wait mode gives up after the timeout or when aborted", "[journal][lock]") {
    TempFolder temp;
    auto holder = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE(holder.has_value());

    SECTION("timeout") {
        LockOptions options;
        options.wait = std::chrono::milliseconds(300);
        const auto started = std::chrono::steady_clock::now();
        auto waited = IntegrationLock::acquire(temp.path(), example_key(), options);
        const auto elapsed = std::chrono::steady_clock::now() - started;
        REQUIRE_FALSE(waited.has_value());
        CHECK(waited.error().kind == ErrorKind::in_progress);
        CHECK_THAT(waited.error().message, Catch::EndsWith("and did not finish within 0.3 s."));
        CHECK(elapsed >= std::chrono::milliseconds(300));
        CHECK(elapsed < std::chrono::seconds(3));
    }
    SECTION("abort hook") {
        LockOptions options;
        options.wait = std::chrono::seconds(30);
        int polls = 0;
        options.should_abort = [&] { return ++polls >= 3; };
        auto waited = IntegrationLock::acquire(temp.path(), example_key(), options);
        REQUIRE_FALSE(waited.has_value());
        CHECK(waited.error().kind == ErrorKind::aborted);
        CHECK(polls == 3);
    }
}

namespace {

// A forked child that takes the lock of `key`, reports whether it got it, holds it until
// finish(), then dies without releasing it (no destructors run), so the kernel must release it.
// If the test fails early, the destructor still stops and reaps the child.
class LockHoldingChild {
public:
    LockHoldingChild(const fs::path& state_dir, const JournalKey& key) {
        int ready[2];
        int finish[2];
        REQUIRE(::pipe(ready) == 0);
        REQUIRE(::pipe(finish) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(ready[0]);
            ::close(finish[1]);
            auto lock = IntegrationLock::acquire(state_dir, key);
            const char status = lock.has_value() ? 'L' : 'F';
            [[maybe_unused]] auto w = ::write(ready[1], &status, 1);
            char stop;
            [[maybe_unused]] auto r = ::read(finish[0], &stop, 1);  // returns at finish() or parent exit
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(finish[0]);
        ready_ = ready[0];
        finish_ = finish[1];
    }
    ~LockHoldingChild() { finish(); }
    pid_t pid() const { return pid_; }
    // Blocks until the child has tried to lock; true when it holds the lock.
    bool holds_lock() {
        char status = 0;
        return ::read(ready_, &status, 1) == 1 && status == 'L';
    }
    // Lets the child exit and reaps it.
    void finish() {
        if (finish_ >= 0) {
            ::close(finish_);  // end of file wakes the child
            finish_ = -1;
            ::close(ready_);
            ::waitpid(pid_, nullptr, 0);
        }
    }

private:
    pid_t pid_ = -1;
    int ready_ = -1;
    int finish_ = -1;
};

}  // namespace

TEST_CASE("lock: a forked child holding the lock blocks the parent and its death releases it", "[journal][lock]") {
    TempFolder temp;
    LockHoldingChild child(temp.path(), example_key());
    REQUIRE(child.holds_lock());

    auto blocked = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE_FALSE(blocked.has_value());
    CHECK(blocked.error().kind == ErrorKind::in_progress);
    CHECK_THAT(blocked.error().message, Catch::Contains("(pid " + std::to_string(child.pid()) + " since ") &&
                                            !Catch::Contains("this process"));

    child.finish();
    // The leftover file still names the dead child, but it is not held.
    CHECK_THAT(read_bytes(temp.path() / example_key().lock_file_name()),
               Catch::StartsWith("pid " + std::to_string(child.pid())));
    auto after = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE(after.has_value());
    CHECK_THAT(read_bytes(after->path()), Catch::StartsWith("pid " + std::to_string(::getpid())));
}

TEST_CASE("lock: holder text of a dead process is not reported as the holder", "[journal][lock]") {
    TempFolder temp;
    const pid_t dead = ::fork();
    REQUIRE(dead >= 0);
    if (dead == 0) ::_exit(0);
    REQUIRE(::waitpid(dead, nullptr, 0) == dead);

    auto holder = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE(holder.has_value());
    // As if a new holder had locked but not yet written its own pid over an old holder's text.
    write_bytes(holder->path(), "pid " + std::to_string(dead) + "\nsince 2026-01-01T00:00:00Z\n");
    auto second = IntegrationLock::acquire(temp.path(), example_key());
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().kind == ErrorKind::in_progress);
    CHECK(second.error().message == "another opnc run is working on this integration.");
}
