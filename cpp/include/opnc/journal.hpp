#pragma once
// The journal: the durable state of one integration (one OpenProject and one Nextcloud), so that
// nothing shown once is ever lost. The exchange writes every one-time secret into it and save()s
// before the next request leaves; a later run reads it back and converges from there.
//
// On disk: one JSON file per integration in the state folder (see state_dir.hpp), named
//   <op authority>_<nc authority>-<first 12 hex of sha256(op_url + "\n" + nc_url)>.json
// (readable, stable, and unique through the hash of the full normalised URLs, which are also
// stored inside). The file is the vault: secrets are plain JSON strings in it, so it is always
// mode 0600 in a 0700 folder. In memory they are opnc::Secret and never printed.
//
// Writes are atomic and durable: a temporary file in the same folder (created 0600 with O_EXCL,
// never readable by others even briefly), write, fsync, rename over the journal, fsync of the
// folder. A crash at any point leaves either the old or the new journal, never a partial one.
//
// One writer at a time: a run holds the IntegrationLock (below) for the key before it saves.
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "opnc/error.hpp"
#include "opnc/secret.hpp"
#include "opnc/url.hpp"

namespace opnc {

// The exchange's step names (design.md), the only values `last_step` and `pending_step` may take
// besides "".
inline constexpr std::array<std::string_view, 6> journal_step_names = {
    "preflight", "create_storage", "configure_nextcloud", "store_nextcloud_client", "set_app_password", "verify",
};

// Identifies an integration: the normalised OpenProject and Nextcloud base URLs.
class JournalKey {
public:
    JournalKey(Url openproject, Url nextcloud);

    const Url& openproject() const noexcept { return openproject_; }
    const Url& nextcloud() const noexcept { return nextcloud_; }
    // "<op authority>_<nc authority>-<12 hex>", file-name safe ([a-z0-9.-] and the separators).
    const std::string& stem() const noexcept { return stem_; }
    std::string file_name() const { return stem_ + ".json"; }
    std::string lock_file_name() const { return stem_ + ".lock"; }

private:
    Url openproject_;
    Url nextcloud_;
    std::string stem_;
};

// What the journal remembers. Empty strings, empty Secrets and nullopt mean "not known yet".
struct JournalRecord {
    std::string storage_name;
    std::optional<std::int64_t> storage_id;
    std::string openproject_client_id;
    Secret openproject_client_secret;
    std::string nextcloud_client_id;
    Secret nextcloud_client_secret;
    Secret app_password;
    bool project_folders = false;
    // The OpenProject client id that Nextcloud was last configured with ("" when not yet).
    std::string nextcloud_configured_with;
    // Whether the app_password above has been stored in OpenProject.
    bool app_password_in_openproject = false;
    std::string last_step;   // one of journal_step_names, or "" before the first completed step
    // A step whose request may have reached the server without its answer being recorded (set
    // before the request leaves, cleared when the result is saved): the next run re-reads
    // instead of guessing. One of journal_step_names, or "".
    std::string pending_step;
    std::string updated_at;  // ISO 8601 UTC ("2026-11-28T13:11:08Z") of the last save; set by save()
    std::vector<std::string> notes;  // free remarks for the operator; never put a secret here
};

class Journal {
public:
    static constexpr int format_version = 1;

    // Reads the journal of `key` from `state_dir` (an existing folder, see resolve_state_dir).
    // A missing file gives an empty journal. A file that cannot be used (truncated, not JSON,
    // wrong types, another format version, URLs inside that are not the key's, not a regular
    // file) gives an Error of kind journal that names the file; the file is never touched then.
    // A journal file readable by others (mode looser than 0600) is tightened to 0600 and a note
    // says so in warnings(): the file holds secrets, and it is opnc's own file. Loading never
    // removes anything (not even leftover temporary files: a reader holds no lock, and such a
    // file may belong to a live writer); save() cleans them up.
    static Result<Journal> load(const std::filesystem::path& state_dir, JournalKey key);

    Journal(Journal&&) noexcept;
    Journal& operator=(Journal&&) noexcept;
    ~Journal();

    const JournalKey& key() const noexcept { return key_; }
    const std::filesystem::path& path() const noexcept { return path_; }
    // Whether the active journal file exists (as of the last load, save or archive).
    bool on_disk() const;
    // Notes from load() for the operator (e.g. the permissions that were tightened).
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }

    // A copy of the current state (safe while other threads update()).
    JournalRecord record() const;

    // Applies `change` and saves, as one step under the journal's mutex, so that steps running
    // concurrently can each record their results. If the save fails the change stays
    // in memory (it may hold a one-time secret) and the error is returned. `change` must not call
    // back into this Journal (its mutex is not recursive).
    Result<void> update(const std::function<void(JournalRecord&)>& change);
    // Applies `change` in memory only, under the same mutex; the next save() or update() writes
    // it. For what a later run can read back from the servers (that a step which returned no
    // secret is done): lost in a crash, it costs that run a check or an idempotent write again,
    // never a secret, and the exchange saves one durable write per such step.
    void amend(const std::function<void(JournalRecord&)>& change);
    // Writes the current state atomically and durably (see above); sets updated_at.
    // Errors: kind journal (I/O, with the file and the reason), or internal for a last_step that is
    // not a step name. Leftover temporary files of this journal from a crashed run are removed.
    Result<void> save();

    // Teardown: renames the journal to "<stem>.archived-<UTC yyyymmddThhmmssZ>.json" (mode 0600;
    // "-2", "-3"... appended if that name exists), so no active journal is left, and empties the
    // in-memory state. Returns the archive's path, or nullopt when there was no journal file.
    Result<std::optional<std::filesystem::path>> archive();

    // For status and reports: URLs, ids, step, time and notes; each secret as "[redacted]" when
    // present and null when absent. Never contains a secret.
    nlohmann::ordered_json redacted_summary() const;

private:
    Journal(std::filesystem::path state_dir, JournalKey key);
    Result<void> save_locked();

    std::filesystem::path state_dir_;
    JournalKey key_;
    std::filesystem::path path_;
    JournalRecord record_;
    bool on_disk_ = false;
    // Leftover temporary files of this journal are removed once, at the first save: the caller
    // holds the integration's lock, so any found then are a crashed writer's, and this object's own
    // saves never leave one behind. Scanning the folder at every save cost a directory listing per
    // save, which grows with the number of integrations sharing the state folder.
    bool leftovers_removed_ = false;
    std::vector<std::string> warnings_;
    // Top-level keys this version does not know (written by a newer opnc with the same format):
    // kept and written back so that a save never drops them.
    std::unique_ptr<nlohmann::ordered_json> unknown_keys_;
    std::unique_ptr<std::mutex> mutex_;
};

// One journal file found in a state folder.
struct JournalListing {
    std::filesystem::path path;
    std::string openproject_url;  // as stored inside ("" when unreadable)
    std::string nextcloud_url;
    bool archived = false;
    std::string problem;  // why the file cannot be used; empty when it is a valid journal
};

// The journals in `state_dir`, sorted by file name: active ones, and archived ones too when asked.
// Files that look like journals but cannot be used are listed with a `problem`, not skipped.
// Temporary files and lock files are ignored. Error (kind journal) when the folder cannot be read.
Result<std::vector<JournalListing>> list_journals(const std::filesystem::path& state_dir,
                                                  bool include_archived = false);

struct LockOptions {
    // How long to wait for another run to finish; zero fails at once with kind in_progress.
    std::chrono::milliseconds wait{0};
    std::chrono::milliseconds poll_interval{100};
    // Polled while waiting; returning true gives up with kind aborted (Ctrl-C from Python).
    std::function<bool()> should_abort;
};

// One run per integration at a time: an exclusive flock() on "<stem>.lock" beside the journal,
// released when this object is destroyed (or the process dies: the kernel releases flocks, so a
// leftover lock file is never mistaken for a held lock). The holder writes its pid and start time
// into the file for the other side's message. flock belongs to the open file description, so two
// IntegrationLocks on the same key conflict even inside one process. The lock file is never
// deleted: unlinking a flock()ed file lets two runs lock two different files.
class IntegrationLock {
public:
    // Errors: in_progress "another opnc run is working on this integration (pid N since T)" when
    // held (after the wait, if any); aborted when should_abort said so; journal on I/O failure.
    static Result<IntegrationLock> acquire(const std::filesystem::path& state_dir, const JournalKey& key,
                                           const LockOptions& options = {});

    IntegrationLock(IntegrationLock&& other) noexcept;
    IntegrationLock& operator=(IntegrationLock&& other) noexcept;
    IntegrationLock(const IntegrationLock&) = delete;
    IntegrationLock& operator=(const IntegrationLock&) = delete;
    ~IntegrationLock();

    const std::filesystem::path& path() const noexcept { return path_; }
    bool held() const noexcept { return fd_ >= 0; }
    // Releases early; the destructor then does nothing.
    void release() noexcept;

private:
    IntegrationLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
    int fd_ = -1;
    std::filesystem::path path_;
};

}  // namespace opnc
