#include "runtime/process/strays.hpp"

#include <signal.h>
#include <unistd.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/process/proc_stat.hpp"
#include "runtime/release/release.hpp"

namespace berth {

namespace fs = std::filesystem;

std::vector<process_handle> processes_under(const fs::path& dir) {
  std::vector<process_handle> out;
  std::error_code ec;
  auto root = fs::weakly_canonical(dir, ec).string();
  if (ec || root.empty()) return out;
  detail::for_each_pid([&](int pid) {
    if (!detail::path_is_under(root, detail::read_cwd(pid))) return;
    auto st = detail::read_proc_stat(pid);
    if (st && !detail::is_dead_state(st->state)) out.push_back({pid, st->start_time, st->pgrp});
  });
  return out;
}

std::vector<process_handle> stop_strays(const fs::path& dir, const std::vector<process_handle>& keep,
                                        std::chrono::milliseconds grace) {
  std::set<int> spared{static_cast<int>(::getpgrp()), 0, 1};
  for (auto& k : keep)
    if (k.pid != 0) spared.insert(k.pgid != 0 ? k.pgid : k.pid);
  std::vector<process_handle> stopped;
  std::set<int> groups;
  for (auto& p : processes_under(dir)) {
    int group = p.pgid != 0 ? p.pgid : p.pid;
    if (spared.count(group) || !groups.insert(group).second) continue;
    stopped.push_back(p);
  }
  process_driver driver;
  for (auto& p : stopped) driver.stop(p, grace);
  return stopped;
}

std::vector<std::string> tidy_production_dir(const fs::path& production_dir, const std::set<std::string>& known,
                                             const std::string& current_hash) {
  std::vector<std::string> done;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(production_dir, ec)) {
    auto name = entry.path().filename().string();
    bool temporary = name.find(".tmp-") != std::string::npos;
    bool unknown_release = valid_release_hash(name) && known.count(name) == 0;
    if (temporary || unknown_release) {
      fsutil::force_remove(entry.path());
      done.push_back("removed " + name);
    } else if (name == "builds") {
      for (auto& b : fs::directory_iterator(entry.path(), ec)) {
        fsutil::force_remove(b.path());
        done.push_back("removed builds/" + b.path().filename().string());
      }
    }
  }
  if (!current_hash.empty() && read_current(production_dir) != current_hash && known.count(current_hash)) {
    if (switch_current(production_dir, current_hash)) done.push_back("current -> " + current_hash);
  }
  return done;
}

}  // namespace berth
