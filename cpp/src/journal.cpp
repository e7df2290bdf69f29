#include "opnc/journal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <utility>

namespace opnc {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

// A journal is a few hundred bytes; anything far larger is not one (and is not read into memory).
constexpr off_t max_journal_bytes = 1 << 20;

// Closes a file descriptor on every path out of a function.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd = -1) noexcept : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
    FileDescriptor& operator=(FileDescriptor&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    ~FileDescriptor() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes now; returns close()'s errno (0 on success), which matters after writes.
    int reset() noexcept {
        int err = 0;
        if (fd_ >= 0 && ::close(fd_) != 0) err = errno;
        fd_ = -1;
        return err;
    }

private:
    int fd_;
};

Error journal_error(std::string message, std::string hint) {
    Error e;
    e.kind = ErrorKind::journal;
    e.message = std::move(message);
    e.hint = std::move(hint);
    return e;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string utc_time(const char* format) {
    std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[32];
    std::strftime(text, sizeof text, format, &parts);
    return text;
}

std::string utc_now_iso8601() { return utc_time("%Y-%m-%dT%H:%M:%SZ"); }
// For file names: no colons.
std::string utc_now_compact() { return utc_time("%Y%m%dT%H%M%SZ"); }

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// Quotes a path for the shell command shown in a hint.
std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL's SHA-256 failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0x0f];
    }
    return out;
}

// Keeps [a-z0-9.-] of a normalised authority, replaces the rest (":" of a port, IPv6 brackets,
// "_", non-ASCII) with "-", and bounds the length so that the whole name stays under 255 bytes.
std::string file_name_part(std::string_view authority) {
    std::string out;
    for (char c : authority.substr(0, 100)) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
        out += keep ? c : '-';
    }
    return out;
}

// Overwrites every string in a parsed or built document: they may be secrets.
void wipe_strings(ordered_json& value) {
    if (value.is_string()) {
        auto& text = value.get_ref<std::string&>();
        if (text.capacity() > 0) OPENSSL_cleanse(text.data(), text.capacity());
        text.clear();
    } else if (value.is_structured()) {
        for (auto& item : value) wipe_strings(item);
    }
}

void wipe(std::string& text) {
    if (text.capacity() > 0) OPENSSL_cleanse(text.data(), text.capacity());
    text.clear();
}

bool is_step_name(std::string_view step) {
    return step.empty() ||
           std::find(journal_step_names.begin(), journal_step_names.end(), step) != journal_step_names.end();
}

// ---- reading ------------------------------------------------------------------------------------

struct OpenedFile {
    FileDescriptor fd;
    mode_t mode = 0;
    std::string content;
};

// Reads a journal file. nullopt when it does not exist; the error string says why it cannot be
// read (never a byte of its content).
std::expected<std::optional<OpenedFile>, std::string> read_journal_file(const fs::path& path) {
    // O_NOFOLLOW: a journal is opnc's own regular file, never a link planted in its place.
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::optional<OpenedFile>{};
        if (errno == ELOOP) return std::unexpected(std::string("it is a symbolic link"));
        return std::unexpected("it cannot be opened: " + errno_text(errno));
    }
    struct stat info{};
    if (::fstat(fd.get(), &info) != 0) return std::unexpected("it cannot be inspected: " + errno_text(errno));
    if (!S_ISREG(info.st_mode)) return std::unexpected(std::string("it is not a regular file"));
    if (info.st_size > max_journal_bytes)
        return std::unexpected("it is " + std::to_string(info.st_size) + " bytes long, far too large for a journal");
    OpenedFile file;
    file.mode = info.st_mode;
    file.content.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < file.content.size()) {
        ssize_t n = ::read(fd.get(), file.content.data() + done, file.content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            wipe(file.content);
            return std::unexpected("it cannot be read: " + errno_text(errno));
        }
        if (n == 0) break;  // shrank while reading; the parser will tell whether what is there is whole
        done += static_cast<std::size_t>(n);
    }
    file.content.resize(done);
    file.fd = std::move(fd);
    return std::optional<OpenedFile>(std::move(file));
}

struct ParsedJournal {
    std::string openproject_url;
    std::string nextcloud_url;
    JournalRecord record;
    ordered_json unknown_keys = ordered_json::object();
};

const std::array<std::string_view, 17> known_keys = {
    "format", "openproject_url", "nextcloud_url", "storage_name", "storage_id", "openproject_client_id",
    "openproject_client_secret", "nextcloud_client_id", "nextcloud_client_secret", "app_password",
    "project_folders", "nextcloud_configured_with", "app_password_in_openproject", "last_step", "pending_step",
    "updated_at", "notes",
};

// The messages name keys and JSON types, never values: a value may be a secret.
std::expected<std::string, std::string> take_string(ordered_json& doc, const char* key) {
    auto it = doc.find(key);
    if (it == doc.end()) return std::unexpected(std::string("the key '") + key + "' is missing");
    if (!it->is_string())
        return std::unexpected(std::string("'") + key + "' is " + it->type_name() + ", expected a string");
    return std::move(it->get_ref<std::string&>());
}

std::expected<Secret, std::string> take_secret(ordered_json& doc, const char* key) {
    auto it = doc.find(key);
    if (it == doc.end()) return std::unexpected(std::string("the key '") + key + "' is missing");
    if (it->is_null()) return Secret();
    if (!it->is_string())
        return std::unexpected(std::string("'") + key + "' is " + it->type_name() + ", expected a string or null");
    return Secret(std::move(it->get_ref<std::string&>()));
}

// Parses and checks a journal document, consuming (and wiping) `text`.
std::expected<ParsedJournal, std::string> parse_journal(std::string& text) {
    ordered_json doc;
    try {
        doc = ordered_json::parse(text);
    } catch (const ordered_json::parse_error& e) {
        // The exception's own text quotes the bytes it read last, which may be a secret: only the
        // position is used.
        const bool at_end = e.byte >= text.size();
        const std::size_t size = text.size();
        wipe(text);
        if (size == 0) return std::unexpected(std::string("it is empty"));
        if (at_end) return std::unexpected(std::string("it ends in the middle of the JSON document (truncated)"));
        return std::unexpected("it is not valid JSON (error at byte " + std::to_string(e.byte) + ")");
    } catch (const ordered_json::exception&) {
        // Valid syntax that nlohmann cannot represent, e.g. a number beyond double ("1e400"):
        // out_of_range, which must not escape and terminate the process.
        wipe(text);
        return std::unexpected(std::string("it holds a number too large to read"));
    }
    wipe(text);

    struct WipeOnExit {
        ordered_json& doc;
        ~WipeOnExit() { wipe_strings(doc); }
    } wipe_on_exit{doc};

    if (!doc.is_object()) return std::unexpected(std::string("it is ") + doc.type_name() + ", not a JSON object");
    auto format = doc.find("format");
    if (format == doc.end()) return std::unexpected(std::string("the key 'format' is missing"));
    if (!format->is_number_integer())
        return std::unexpected(std::string("'format' is ") + format->type_name() + ", expected an integer");
    if (format->get<std::int64_t>() != Journal::format_version)
        return std::unexpected("it has format " + std::to_string(format->get<std::int64_t>()) +
                               ", this opnc reads format " + std::to_string(Journal::format_version));

    ParsedJournal out;
    JournalRecord& r = out.record;
    auto text_field = [&](const char* key, std::string& into) -> std::optional<std::string> {
        auto v = take_string(doc, key);
        if (!v) return v.error();
        into = std::move(*v);
        return std::nullopt;
    };
    auto secret_field = [&](const char* key, Secret& into) -> std::optional<std::string> {
        auto v = take_secret(doc, key);
        if (!v) return v.error();
        into = std::move(*v);
        return std::nullopt;
    };
    for (auto problem : {text_field("openproject_url", out.openproject_url),
                         text_field("nextcloud_url", out.nextcloud_url),
                         text_field("storage_name", r.storage_name),
                         text_field("openproject_client_id", r.openproject_client_id),
                         secret_field("openproject_client_secret", r.openproject_client_secret),
                         text_field("nextcloud_client_id", r.nextcloud_client_id),
                         secret_field("nextcloud_client_secret", r.nextcloud_client_secret),
                         secret_field("app_password", r.app_password),
                         text_field("nextcloud_configured_with", r.nextcloud_configured_with),
                         text_field("last_step", r.last_step),
                         text_field("pending_step", r.pending_step),
                         text_field("updated_at", r.updated_at)}) {
        if (problem) return std::unexpected(*problem);
    }
    if (!is_step_name(r.last_step))
        return std::unexpected(std::string("'last_step' is not one of the exchange's step names"));
    if (!is_step_name(r.pending_step))
        return std::unexpected(std::string("'pending_step' is not one of the exchange's step names"));

    auto storage_id = doc.find("storage_id");
    if (storage_id == doc.end()) return std::unexpected(std::string("the key 'storage_id' is missing"));
    if (storage_id->is_number_unsigned()) {
        if (storage_id->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return std::unexpected(std::string("'storage_id' is out of range"));
        r.storage_id = static_cast<std::int64_t>(storage_id->get<std::uint64_t>());
    } else if (storage_id->is_number_integer()) {
        r.storage_id = storage_id->get<std::int64_t>();
    } else if (!storage_id->is_null()) {
        return std::unexpected(std::string("'storage_id' is ") + storage_id->type_name() +
                               ", expected an integer or null");
    }

    for (auto [key, into] : {std::pair<const char*, bool*>{"project_folders", &r.project_folders},
                             std::pair<const char*, bool*>{"app_password_in_openproject",
                                                           &r.app_password_in_openproject}}) {
        auto flag = doc.find(key);
        if (flag == doc.end()) return std::unexpected(std::string("the key '") + key + "' is missing");
        if (!flag->is_boolean())
            return std::unexpected(std::string("'") + key + "' is " + flag->type_name() + ", expected true or false");
        *into = flag->get<bool>();
    }

    auto notes = doc.find("notes");
    if (notes == doc.end()) return std::unexpected(std::string("the key 'notes' is missing"));
    if (!notes->is_array())
        return std::unexpected(std::string("'notes' is ") + notes->type_name() + ", expected a list of strings");
    for (auto& note : *notes) {
        if (!note.is_string()) return std::unexpected(std::string("'notes' holds a value that is not a string"));
        r.notes.push_back(note.get<std::string>());
    }

    for (auto it = doc.begin(); it != doc.end(); ++it) {
        if (std::find(known_keys.begin(), known_keys.end(), it.key()) == known_keys.end())
            out.unknown_keys[it.key()] = it.value();
    }
    return out;
}

Error unusable_journal(const fs::path& path, const std::string& problem) {
    return journal_error("the journal " + path.string() + " cannot be used: " + problem +
                             ". It was kept unchanged.",
                         "It may hold one-time secrets of this integration: look at it (it is JSON) and keep a "
                         "copy if it does, then move it aside, e.g. mv " +
                             shell_quote(path.string()) + " " + shell_quote(path.string() + ".broken") +
                             ", and run again; opnc then starts a new journal from both servers' state.");
}

// ---- writing ------------------------------------------------------------------------------------

std::string serialize(const JournalKey& key, const JournalRecord& r, const ordered_json* unknown_keys) {
    ordered_json doc = ordered_json::object();
    doc["format"] = Journal::format_version;
    doc["openproject_url"] = key.openproject().str();
    doc["nextcloud_url"] = key.nextcloud().str();
    doc["storage_name"] = r.storage_name;
    doc["storage_id"] = r.storage_id ? ordered_json(*r.storage_id) : ordered_json(nullptr);
    auto secret = [](const Secret& s) { return s.empty() ? ordered_json(nullptr) : ordered_json(s.expose()); };
    doc["openproject_client_id"] = r.openproject_client_id;
    doc["openproject_client_secret"] = secret(r.openproject_client_secret);
    doc["nextcloud_client_id"] = r.nextcloud_client_id;
    doc["nextcloud_client_secret"] = secret(r.nextcloud_client_secret);
    doc["app_password"] = secret(r.app_password);
    doc["project_folders"] = r.project_folders;
    doc["nextcloud_configured_with"] = r.nextcloud_configured_with;
    doc["app_password_in_openproject"] = r.app_password_in_openproject;
    doc["last_step"] = r.last_step;
    doc["pending_step"] = r.pending_step;
    doc["updated_at"] = r.updated_at;
    doc["notes"] = r.notes;
    if (unknown_keys != nullptr)
        for (auto it = unknown_keys->begin(); it != unknown_keys->end(); ++it) doc[it.key()] = it.value();
    std::string text = doc.dump(2);
    text += '\n';
    wipe_strings(doc);
    return text;
}

std::string temporary_prefix(const std::string& file_name) { return "." + file_name + ".tmp-"; }

// Removes temporary files a crashed save of this journal left behind (they may hold secrets).
void remove_leftover_temporaries(const fs::path& folder, const std::string& file_name) {
    const std::string prefix = temporary_prefix(file_name);
    DIR* dir = ::opendir(folder.c_str());
    if (dir == nullptr) return;
    while (dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name.starts_with(prefix)) ::unlinkat(::dirfd(dir), entry->d_name, 0);
    }
    ::closedir(dir);
}

Error write_error(const fs::path& path, const char* stage, int err) {
    std::string hint = err == ENOSPC || err == EDQUOT
                           ? "Free space in the state folder's file system, then run again."
                           : "Check that the state folder is writable by this user, then run again.";
    hint += " The next run converges from both servers' state.";
    return journal_error("cannot save the journal " + path.string() + " (" + stage + "): " + errno_text(err) + ".",
                         std::move(hint));
}

Result<void> fsync_folder(const fs::path& folder, const fs::path& journal_path) {
    FileDescriptor dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) return std::unexpected(write_error(journal_path, "opening the folder to flush it", errno));
    if (::fsync(dir.get()) != 0) return std::unexpected(write_error(journal_path, "flushing the folder", errno));
    return {};
}

// Temporary file (0600, O_EXCL), write, fsync, rename, fsync of the folder. The temporary file is
// removed on every failure before the rename.
Result<void> write_durably(const fs::path& folder, const fs::path& target, const std::string& content) {
    std::string name_template = (folder / (temporary_prefix(target.filename().string()) + "XXXXXX")).string();
    // mkostemp opens with O_RDWR|O_CREAT|O_EXCL and mode 0600: never readable by others.
    FileDescriptor fd(::mkostemp(name_template.data(), O_CLOEXEC));
    if (fd.get() < 0) return std::unexpected(write_error(target, "creating a temporary file", errno));
    const fs::path temporary = name_template;
    auto fail_with = [&](const char* stage, int err) {
        fd.reset();
        ::unlink(temporary.c_str());
        return std::unexpected(write_error(target, stage, err));
    };
    // The umask can only have removed bits (a umask of 077x would leave 0000, unreadable for the
    // next run): set exactly 0600.
    if (::fchmod(fd.get(), 0600) != 0) return fail_with("setting the temporary file's mode", errno);
    std::size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_with("writing", errno);
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return fail_with("flushing to disk", errno);
    if (int err = fd.reset(); err != 0) return fail_with("closing", err);
    if (::rename(temporary.c_str(), target.c_str()) != 0) return fail_with("replacing the journal", errno);
    return fsync_folder(folder, target);
}

// rename() that never replaces an existing file; EEXIST when the target exists.
int rename_no_replace(const fs::path& from, const fs::path& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return errno;
    // File systems without RENAME_NOREPLACE: link() fails with EEXIST just the same.
    if (::link(from.c_str(), to.c_str()) != 0) return errno;
    if (::unlink(from.c_str()) != 0) return errno;
    return 0;
}

// ---- lock ---------------------------------------------------------------------------------------

struct LockHolder {
    long pid = 0;
    std::string since;
};

// Reads what the holder wrote ("pid N\nsince T\n"). A pid that no longer runs is stale text (a
// new holder has not written yet), so it is not reported.
std::optional<LockHolder> read_lock_holder(int fd) {
    char buffer[256];
    ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    if (n <= 0) return std::nullopt;
    buffer[n] = '\0';
    LockHolder holder;
    char since[64] = {0};
    if (std::sscanf(buffer, "pid %ld\nsince %63s", &holder.pid, since) < 1 || holder.pid <= 0) return std::nullopt;
    holder.since = since;
    if (::kill(static_cast<pid_t>(holder.pid), 0) != 0 && errno == ESRCH) return std::nullopt;
    return holder;
}

std::string seconds_text(std::chrono::milliseconds d) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(d.count()) / 1000.0);
    return text;
}

}  // namespace

// ---- JournalKey ---------------------------------------------------------------------------------

JournalKey::JournalKey(Url openproject, Url nextcloud)
    : openproject_(std::move(openproject)), nextcloud_(std::move(nextcloud)) {
    const std::string digest = sha256_hex(openproject_.str() + "\n" + nextcloud_.str());
    stem_ = file_name_part(openproject_.authority()) + "_" + file_name_part(nextcloud_.authority()) + "-" +
            digest.substr(0, 12);
}

// ---- Journal ------------------------------------------------------------------------------------

Journal::Journal(fs::path state_dir, JournalKey key)
    : state_dir_(std::move(state_dir)),
      key_(std::move(key)),
      path_(state_dir_ / key_.file_name()),
      mutex_(std::make_unique<std::mutex>()) {}

Journal::Journal(Journal&&) noexcept = default;
Journal& Journal::operator=(Journal&&) noexcept = default;
Journal::~Journal() = default;

Result<Journal> Journal::load(const fs::path& state_dir, JournalKey key) {
    Journal journal(state_dir, std::move(key));
    auto file = read_journal_file(journal.path_);
    if (!file) return std::unexpected(unusable_journal(journal.path_, file.error()));
    if (!file->has_value()) return journal;

    OpenedFile& opened = **file;
    auto parsed = parse_journal(opened.content);
    if (!parsed) return std::unexpected(unusable_journal(journal.path_, parsed.error()));
    const std::string expected_op = journal.key_.openproject().str();
    const std::string expected_nc = journal.key_.nextcloud().str();
    if (parsed->openproject_url != expected_op || parsed->nextcloud_url != expected_nc)
        return std::unexpected(unusable_journal(
            journal.path_, "it belongs to OpenProject " + parsed->openproject_url + " and Nextcloud " +
                               parsed->nextcloud_url + ", not to " + expected_op + " and " + expected_nc));

    if ((opened.mode & 077) != 0) {
        // The file holds secrets and is opnc's own: tighten it rather than only warn.
        if (::fchmod(opened.fd.get(), 0600) == 0)
            journal.warnings_.push_back("the journal " + journal.path_.string() + " had mode " +
                                        octal_mode(opened.mode) + "; opnc set it to 0600");
        else
            journal.warnings_.push_back("the journal " + journal.path_.string() + " has mode " +
                                        octal_mode(opened.mode) + " and could not be set to 0600: " +
                                        errno_text(errno));
    }
    journal.record_ = std::move(parsed->record);
    if (!parsed->unknown_keys.empty())
        journal.unknown_keys_ = std::make_unique<ordered_json>(std::move(parsed->unknown_keys));
    journal.on_disk_ = true;
    return journal;
}

bool Journal::on_disk() const {
    std::lock_guard guard(*mutex_);
    return on_disk_;
}

JournalRecord Journal::record() const {
    std::lock_guard guard(*mutex_);
    return record_;
}

Result<void> Journal::update(const std::function<void(JournalRecord&)>& change) {
    std::lock_guard guard(*mutex_);
    change(record_);
    return save_locked();
}

void Journal::amend(const std::function<void(JournalRecord&)>& change) {
    std::lock_guard guard(*mutex_);
    change(record_);
}

Result<void> Journal::save() {
    std::lock_guard guard(*mutex_);
    return save_locked();
}

Result<void> Journal::save_locked() {
    for (const std::string* step : {&record_.last_step, &record_.pending_step}) {
        if (is_step_name(*step)) continue;
        Error e;
        e.kind = ErrorKind::internal;
        e.message = "the journal was asked to record the unknown step '" + *step + "'.";
        e.hint = "This is a bug in opnc; please report it.";
        return std::unexpected(std::move(e));
    }
    if (!leftovers_removed_) {
        remove_leftover_temporaries(state_dir_, key_.file_name());
        leftovers_removed_ = true;
    }
    record_.updated_at = utc_now_iso8601();
    std::string content = serialize(key_, record_, unknown_keys_.get());
    auto written = write_durably(state_dir_, path_, content);
    wipe(content);
    if (!written) return written;
    on_disk_ = true;
    return {};
}

Result<std::optional<fs::path>> Journal::archive() {
    std::lock_guard guard(*mutex_);
    struct stat info{};
    if (::lstat(path_.c_str(), &info) != 0) {
        if (errno != ENOENT)
            return std::unexpected(journal_error("cannot inspect the journal " + path_.string() + ": " +
                                                     errno_text(errno) + ".",
                                                 "Check the state folder's permissions."));
        on_disk_ = false;
        return std::optional<fs::path>{};
    }
    const std::string base = key_.stem() + ".archived-" + utc_now_compact();
    fs::path target;
    for (int attempt = 1;; ++attempt) {
        target = state_dir_ / (base + (attempt > 1 ? "-" + std::to_string(attempt) : std::string()) + ".json");
        int err = rename_no_replace(path_, target);
        if (err == 0) break;
        if (err != EEXIST || attempt >= 100)
            return std::unexpected(journal_error("cannot archive the journal " + path_.string() + " as " +
                                                     target.string() + ": " + errno_text(err) + ".",
                                                 "Check that the state folder is writable, then run again."));
    }
    ::chmod(target.c_str(), 0600);
    if (auto flushed = fsync_folder(state_dir_, target); !flushed) return std::unexpected(flushed.error());
    record_ = JournalRecord{};
    unknown_keys_.reset();
    on_disk_ = false;
    return std::optional<fs::path>(target);
}

nlohmann::ordered_json Journal::redacted_summary() const {
    std::lock_guard guard(*mutex_);
    auto secret = [](const Secret& s) {
        return s.empty() ? ordered_json(nullptr) : ordered_json(std::string(Secret::redacted));
    };
    ordered_json out = ordered_json::object();
    out["path"] = path_.string();
    out["on_disk"] = on_disk_;
    out["openproject_url"] = key_.openproject().str();
    out["nextcloud_url"] = key_.nextcloud().str();
    out["storage_name"] = record_.storage_name;
    out["storage_id"] = record_.storage_id ? ordered_json(*record_.storage_id) : ordered_json(nullptr);
    out["openproject_client_id"] = record_.openproject_client_id;
    out["openproject_client_secret"] = secret(record_.openproject_client_secret);
    out["nextcloud_client_id"] = record_.nextcloud_client_id;
    out["nextcloud_client_secret"] = secret(record_.nextcloud_client_secret);
    out["app_password"] = secret(record_.app_password);
    out["project_folders"] = record_.project_folders;
    out["nextcloud_configured_with"] = record_.nextcloud_configured_with;
    out["app_password_in_openproject"] = record_.app_password_in_openproject;
    out["last_step"] = record_.last_step;
    out["pending_step"] = record_.pending_step;
    out["updated_at"] = record_.updated_at;
    out["notes"] = record_.notes;
    return out;
}

// ---- listing ------------------------------------------------------------------------------------

Result<std::vector<JournalListing>> list_journals(const fs::path& state_dir, bool include_archived) {
    std::vector<JournalListing> out;
    DIR* dir = ::opendir(state_dir.c_str());
    if (dir == nullptr)
        return std::unexpected(journal_error("cannot list the state folder " + state_dir.string() + ": " +
                                                 errno_text(errno) + ".",
                                             "Check that it exists and is readable."));
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        // Dot files are temporaries (and "." / ".."); lock files do not end in ".json".
        if (name.starts_with(".") || !name.ends_with(".json")) continue;
        names.emplace_back(name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());

    for (const std::string& name : names) {
        JournalListing item;
        item.path = state_dir / name;
        std::string stem = name.substr(0, name.size() - 5);
        if (auto at = stem.find(".archived-"); at != std::string::npos) {
            item.archived = true;
            stem.resize(at);
        }
        if (item.archived && !include_archived) continue;

        auto file = read_journal_file(item.path);
        if (!file) {
            item.problem = file.error();
        } else if (!file->has_value()) {
            continue;  // removed since the folder was read
        } else if (auto parsed = parse_journal((*file)->content); !parsed) {
            item.problem = parsed.error();
        } else {
            item.openproject_url = parsed->openproject_url;
            item.nextcloud_url = parsed->nextcloud_url;
            auto op = Url::parse(item.openproject_url);
            auto nc = Url::parse(item.nextcloud_url);
            if (!op || !nc)
                item.problem = "the URLs inside are not valid base URLs";
            else if (JournalKey(*op, *nc).stem() != stem)
                item.problem = "its file name does not match the URLs inside";
        }
        out.push_back(std::move(item));
    }
    return out;
}

// ---- IntegrationLock ----------------------------------------------------------------------------

Result<IntegrationLock> IntegrationLock::acquire(const fs::path& state_dir, const JournalKey& key,
                                                 const LockOptions& options) {
    fs::path path = state_dir / key.lock_file_name();
    FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0)
        return std::unexpected(journal_error("cannot open the lock file " + path.string() + ": " +
                                                 errno_text(errno) + ".",
                                             "Check that the state folder is writable by this user."));
    // Exactly 0600 whatever the umask; failing (a file of another user) does not affect locking.
    [[maybe_unused]] int mode_set = ::fchmod(fd.get(), 0600);
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + options.wait;
    const auto poll = std::max(options.poll_interval, std::chrono::milliseconds(1));
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK)
            return std::unexpected(journal_error("cannot lock " + path.string() + ": " + errno_text(errno) + ".",
                                                 "The state folder's file system must support flock()."));
        const auto now = std::chrono::steady_clock::now();
        if (options.should_abort && options.should_abort()) {
            Error e;
            e.kind = ErrorKind::aborted;
            e.message = "interrupted while waiting for another opnc run on this integration to finish.";
            return std::unexpected(std::move(e));
        }
        if (now >= deadline) {
            Error e;
            e.kind = ErrorKind::in_progress;
            e.message = "another opnc run is working on this integration";
            if (auto holder = read_lock_holder(fd.get())) {
                e.message += " (pid " + std::to_string(holder->pid);
                if (!holder->since.empty()) e.message += " since " + holder->since;
                if (holder->pid == static_cast<long>(::getpid())) e.message += ", this process";
                e.message += ")";
            }
            if (options.wait.count() > 0)
                e.message += " and did not finish within " + seconds_text(options.wait);
            e.message += ".";
            e.hint = "Wait for it to finish and run again, or use --wait to wait for it. The lock (" +
                     path.string() + ") is released when that run ends, also if it crashes.";
            return std::unexpected(std::move(e));
        }
        std::this_thread::sleep_for(
            std::min(poll, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
    }
    // Held: tell a second run who holds it. Failing to write this only makes its message vaguer.
    const std::string holder = "pid " + std::to_string(::getpid()) + "\nsince " + utc_now_iso8601() + "\n";
    if (::ftruncate(fd.get(), 0) == 0) {
        [[maybe_unused]] ssize_t n = ::pwrite(fd.get(), holder.data(), holder.size(), 0);
    }
    return IntegrationLock(fd.release(), std::move(path));
}

IntegrationLock::IntegrationLock(IntegrationLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

IntegrationLock& IntegrationLock::operator=(IntegrationLock&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
    }
    return *this;
}

IntegrationLock::~IntegrationLock() { release(); }

void IntegrationLock::release() noexcept {
    if (fd_ < 0) return;
    // Clear the holder text while still holding, so no one reads this pid after release.
    [[maybe_unused]] int truncated = ::ftruncate(fd_, 0);
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
    fd_ = -1;
}

}  // namespace opnc
