#pragma once
// Where opnc keeps its durable state (the journals and their lock files).
//
// Resolution order: an explicit path given by the caller; else $OPNC_STATE_DIR; else
// $XDG_STATE_HOME/opnc; else ~/.local/state/opnc. Empty variables count as unset, and a relative
// $XDG_STATE_HOME is ignored as the XDG Base Directory specification requires.
//
// Folders opnc creates are mode 0700 (the journals hold one-time secrets). A folder that already
// exists is never changed: it may be one the user chose and shares on purpose, so looser
// permissions only produce a note for the caller to show.
#include <filesystem>
#include <string>
#include <vector>

#include "opnc/error.hpp"

namespace opnc {

struct StateDir {
    std::filesystem::path path;  // absolute
    // Which rule chose the folder: "explicit", "OPNC_STATE_DIR", "XDG_STATE_HOME" or "HOME".
    std::string source;
    bool created = false;            // true when this call created the folder itself
    std::vector<std::string> notes;  // warnings for the operator (e.g. group/world-accessible folder)
};

// Resolves the state folder and makes sure it exists and is a writable directory.
// Errors (kind journal): no way to find a home folder, the path exists but is not a directory,
// or the folder cannot be created or written.
Result<StateDir> resolve_state_dir(const std::filesystem::path& explicit_path = {});

}  // namespace opnc
