// Fuzz target: the journal loader (journal.hpp). The input becomes the journal file of a fixed
// integration in a private folder (made with mkdtemp under $TMPDIR, removed at exit; the target
// writes nowhere else), which is then loaded and listed.
// Checked properties besides "no crash, no undefined behaviour, no leak":
// - no secret of the file (openproject_client_secret, nextcloud_client_secret, app_password)
//   appears in a load error, its hint, a warning, the redacted summary or a listing problem (a
//   secret that also appears when the secrets are masked is opnc's own text or another value);
// - a journal that loads survives save() and a second load unchanged (a save never loses or
//   alters what the journal remembers).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "opnc/journal.hpp"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void property_broken(const char* what) {
    std::fprintf(stderr, "fuzz_journal: property broken: %s\n", what);
    std::abort();
}

fs::path& state_dir() {
    static fs::path dir;
    return dir;
}

void remove_state_dir() {
    std::error_code ignored;
    if (!state_dir().empty()) fs::remove_all(state_dir(), ignored);
}

const opnc::JournalKey& journal_key() {
    static const opnc::JournalKey key(*opnc::Url::parse("https://op.example"),
                                      *opnc::Url::parse("https://nc.example/nextcloud"));
    return key;
}

void write_file(const fs::path& path, const std::uint8_t* data, std::size_t size) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) property_broken("cannot write the journal file into the private folder");
    std::size_t written = 0;
    while (written < size) {
        const ssize_t n = ::write(fd, data + written, size - written);
        if (n <= 0) property_broken("cannot write the journal file into the private folder");
        written += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

constexpr std::string_view secret_keys[] = {"openproject_client_secret", "nextcloud_client_secret", "app_password"};

// The values of the secret keys when the input is a JSON object, if long enough (8 bytes) to be
// searched for without chance matches.
std::vector<std::string> secrets_in(const nlohmann::ordered_json& doc) {
    std::vector<std::string> secrets;
    if (!doc.is_object()) return secrets;
    for (auto key : secret_keys) {
        auto it = doc.find(std::string(key));
        if (it != doc.end() && it->is_string() && it->get_ref<const std::string&>().size() >= 8)
            secrets.push_back(it->get<std::string>());
    }
    return secrets;
}

// Everything a load shows a person: the error's message and hint, or the warnings and the redacted
// summary; and the problems list_journals reports for the folder.
std::string shown_by_load() {
    std::string shown;
    auto loaded = opnc::Journal::load(state_dir(), journal_key());
    if (!loaded) {
        if (loaded.error().kind != opnc::ErrorKind::journal) property_broken("a load error not of kind journal");
        shown += loaded.error().message + "\n" + loaded.error().hint + "\n";
    } else {
        for (const auto& warning : loaded->warnings()) shown += warning + "\n";
        shown += loaded->redacted_summary().dump() + "\n";
    }
    if (auto listing = opnc::list_journals(state_dir(), /*include_archived=*/true))
        for (const auto& entry : *listing) shown += entry.problem + "\n";
    return shown;
}

// A secret found in what a load shows may just coincide with opnc's own text or with another value
// of the file (a URL, a note). It is a leak only if it disappears when the secrets are replaced by
// fillers of the same length, all else unchanged.
void check_no_secret_shown(const nlohmann::ordered_json& doc, const fs::path& file) {
    const std::vector<std::string> secrets = secrets_in(doc);
    if (secrets.empty()) return;
    const std::string shown = shown_by_load();
    std::vector<std::string> suspects;
    for (const auto& secret : secrets)
        if (shown.find(secret) != std::string::npos) suspects.push_back(secret);
    if (suspects.empty()) return;

    nlohmann::ordered_json masked = doc;
    for (auto key : secret_keys) {
        auto it = masked.find(std::string(key));
        if (it != masked.end() && it->is_string()) *it = std::string(it->get_ref<const std::string&>().size(), '\x01');
    }
    const std::string text = masked.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    write_file(file, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    const std::string shown_masked = shown_by_load();
    for (const auto& secret : suspects)
        if (shown_masked.find(secret) == std::string::npos) property_broken("a secret of the journal is shown");
}

bool same_record(const opnc::JournalRecord& a, const opnc::JournalRecord& b) {
    return a.storage_name == b.storage_name && a.storage_id == b.storage_id &&
           a.openproject_client_id == b.openproject_client_id &&
           a.openproject_client_secret.equals(b.openproject_client_secret) &&
           a.nextcloud_client_id == b.nextcloud_client_id &&
           a.nextcloud_client_secret.equals(b.nextcloud_client_secret) && a.app_password.equals(b.app_password) &&
           a.project_folders == b.project_folders && a.nextcloud_configured_with == b.nextcloud_configured_with &&
           a.app_password_in_openproject == b.app_password_in_openproject && a.last_step == b.last_step &&
           a.pending_step == b.pending_step && a.notes == b.notes;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/opnc-fuzz-journal-XXXXXX";
    if (!::mkdtemp(pattern.data())) property_broken("cannot create the private folder");
    state_dir() = pattern;
    std::atexit(remove_state_dir);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fs::path file = state_dir() / journal_key().file_name();
    write_file(file, data, size);

    auto loaded = opnc::Journal::load(state_dir(), journal_key());
    if (loaded) {
        const opnc::JournalRecord before = loaded->record();
        if (auto saved = loaded->save(); !saved) property_broken("a loaded journal cannot be saved");
        auto reloaded = opnc::Journal::load(state_dir(), journal_key());
        if (!reloaded) property_broken("a saved journal does not load");
        if (!same_record(before, reloaded->record())) property_broken("save() and load() changed the record");
    } else if (loaded.error().kind != opnc::ErrorKind::journal) {
        property_broken("a load error not of kind journal");
    }

    const auto doc = nlohmann::ordered_json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object()) {
        write_file(file, data, size);
        check_no_secret_shown(doc, file);
    }
    std::error_code ignored;
    fs::remove(file, ignored);
    return 0;
}
