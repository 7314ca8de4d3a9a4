// What an interrupted job may have left in production/: build workspaces, temporary folders of
// a packaging or a switch, release folders the log does not know, a `current` link that points
// elsewhere than the log says. No actor code; blocking (removes trees).
#pragma once
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace berth {

// Removes build workspaces (no job runs when this is called), temporary folders and release
// folders not in `known_releases`; points `current` at `current_hash` (the log's) when it
// differs. Returns what it removed or changed.
std::vector<std::string> tidy_production_dir(const std::filesystem::path& production_dir,
                                             const std::set<std::string>& known_releases,
                                             const std::string& current_hash);

}  // namespace berth
