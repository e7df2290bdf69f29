#include "opnc/state_dir.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <system_error>

namespace opnc {
namespace {

namespace fs = std::filesystem;

// An environment variable, or nullopt when it is unset or empty (both mean "not configured").
std::optional<std::string> env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
}

std::optional<fs::path> home_folder() {
    if (auto home = env("HOME")) return fs::path(*home);
    // No $HOME (a bare service environment): ask the password database.
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::string buffer(size > 0 ? static_cast<std::size_t>(size) : 16384u, '\0');
    passwd entry{};
    passwd* found = nullptr;
    if (getpwuid_r(geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
        found->pw_dir != nullptr && *found->pw_dir != '\0')
        return fs::path(found->pw_dir);
    return std::nullopt;
}

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

Error journal_error(std::string message, std::string hint) {
    Error e;
    e.kind = ErrorKind::journal;
    e.message = std::move(message);
    e.hint = std::move(hint);
    return e;
}

// Creates `folder` and any missing parents, each with mode 0700. Returns whether `folder` itself
// was created here (false when it already existed, including when another process won a race).
Result<bool> create_private_folders(const fs::path& folder) {
    struct stat info{};
    if (::stat(folder.c_str(), &info) == 0) return false;
    if (errno != ENOENT)
        return std::unexpected(journal_error("cannot inspect the state folder " + folder.string() + ": " +
                                                 std::strerror(errno) + ".",
                                             "Check the path and its parent folders' permissions."));
    if (folder.has_parent_path() && folder.parent_path() != folder) {
        auto parent = create_private_folders(folder.parent_path());
        if (!parent) return parent;
    }
    if (::mkdir(folder.c_str(), 0700) != 0) {
        if (errno == EEXIST) return false;
        return std::unexpected(journal_error("cannot create the state folder " + folder.string() + ": " +
                                                 std::strerror(errno) + ".",
                                             "Create it yourself (mode 0700) or choose another folder with "
                                             "OPNC_STATE_DIR."));
    }
    // mkdir's mode is filtered by the umask, which can only remove bits; set it exactly so that an
    // unusual umask (e.g. 0777) does not leave opnc with a folder it cannot use.
    ::chmod(folder.c_str(), 0700);
    return true;
}

}  // namespace

Result<StateDir> resolve_state_dir(const fs::path& explicit_path) {
    StateDir out;
    fs::path chosen;
    if (!explicit_path.empty()) {
        chosen = explicit_path;
        out.source = "explicit";
    } else if (auto from_env = env("OPNC_STATE_DIR")) {
        chosen = *from_env;
        out.source = "OPNC_STATE_DIR";
    } else if (auto xdg = env("XDG_STATE_HOME"); xdg && fs::path(*xdg).is_absolute()) {
        chosen = fs::path(*xdg) / "opnc";
        out.source = "XDG_STATE_HOME";
    } else if (auto home = home_folder()) {
        chosen = *home / ".local" / "state" / "opnc";
        out.source = "HOME";
    } else {
        return std::unexpected(journal_error("cannot find a folder for opnc's state: neither OPNC_STATE_DIR, "
                                             "XDG_STATE_HOME nor a home folder is set.",
                                             "Set OPNC_STATE_DIR to a private folder (mode 0700)."));
    }
    std::error_code ec;
    fs::path absolute = fs::absolute(chosen, ec);
    if (ec)
        return std::unexpected(journal_error("cannot resolve the state folder " + chosen.string() + ": " +
                                                 ec.message() + ".",
                                             "Give an absolute path."));
    out.path = absolute.lexically_normal();
    // lexically_normal keeps a trailing separator as an empty last element; drop it for clean joins.
    if (!out.path.has_filename() && out.path.has_parent_path() && out.path != out.path.root_path())
        out.path = out.path.parent_path();

    auto created = create_private_folders(out.path);
    if (!created) return std::unexpected(created.error());
    out.created = *created;

    struct stat info{};
    if (::stat(out.path.c_str(), &info) != 0)
        return std::unexpected(journal_error("cannot inspect the state folder " + out.path.string() + ": " +
                                                 std::strerror(errno) + ".",
                                             "Check the path and its permissions."));
    if (!S_ISDIR(info.st_mode))
        return std::unexpected(journal_error("the state folder " + out.path.string() + " is not a directory.",
                                             "Point OPNC_STATE_DIR (or the state folder option) at a directory."));
    if (::access(out.path.c_str(), R_OK | W_OK | X_OK) != 0)
        return std::unexpected(journal_error("the state folder " + out.path.string() + " is not writable: " +
                                                 std::strerror(errno) + ".",
                                             "Fix its owner or permissions, or choose another folder with "
                                             "OPNC_STATE_DIR."));
    if ((info.st_mode & 077) != 0)
        out.notes.push_back("the state folder " + out.path.string() + " has mode " + octal_mode(info.st_mode) +
                            ": other users may be able to list it; opnc keeps one-time secrets there "
                            "(chmod 700 it unless that is intended)");
    if (info.st_uid != geteuid())
        out.notes.push_back("the state folder " + out.path.string() + " belongs to another user (uid " +
                            std::to_string(info.st_uid) + ")");
    return out;
}

}  // namespace opnc
