// What an earlier incarnation of berth (or of an actor) may have left behind, and how to
// clear it: processes still running inside a project's folders that nobody owns any more
// (a candidate, a build, a release that was being replaced) and half-made folders.
// No actor code; blocking (reads /proc, waits for processes to stop).
#pragma once
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "runtime/process/process_driver.hpp"

namespace berth {

// Live (non-zombie) processes whose working directory is `dir` or inside it, as handles
// (pid, start time, process group).
std::vector<process_handle> processes_under(const std::filesystem::path& dir);

// Stops (SIGTERM to the group, `grace`, SIGKILL) every process group that has a member
// under `dir`, except the groups of `keep`; never berth's own group. Returns the groups
// stopped (one handle each: the member found).
std::vector<process_handle> stop_strays(const std::filesystem::path& dir, const std::vector<process_handle>& keep,
                                        std::chrono::milliseconds grace);

// production/: removes build workspaces (no job runs when this is called), temporary folders
// of an interrupted packaging or switch, and release folders the log does not know; points
// `current` at `current_hash` (the log's) when it differs. Returns what it removed/changed.
std::vector<std::string> tidy_production_dir(const std::filesystem::path& production_dir,
                                             const std::set<std::string>& known_releases,
                                             const std::string& current_hash);

}  // namespace berth
