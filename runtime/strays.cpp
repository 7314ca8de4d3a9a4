#include "runtime/strays.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "runtime/fs_util.hpp"
#include "runtime/release.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

struct stat_fields {
  char state = '?';
  int pgid = 0;
  uint64_t start_time = 0;
};

// /proc/<pid>/stat: the command may contain spaces and ')', so fields count from the last ')'.
bool read_stat(const fs::path& proc_dir, stat_fields* out) {
  std::ifstream in(proc_dir / "stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return false;
  std::istringstream rest(line.substr(rp + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  std::string x;
  while (rest >> x && f.size() < 20) f.push_back(x);
  if (f.size() < 20) return false;
  try {
    out->state = f[0].empty() ? '?' : f[0][0];
    out->pgid = std::stoi(f[2]);            // field 5
    out->start_time = std::stoull(f[19]);   // field 22
  } catch (...) {
    return false;
  }
  return true;
}

bool under(const std::string& root, std::string cwd) {
  const std::string deleted = " (deleted)";
  if (cwd.size() > deleted.size() && cwd.compare(cwd.size() - deleted.size(), deleted.size(), deleted) == 0)
    cwd.resize(cwd.size() - deleted.size());
  return cwd == root || cwd.rfind(root + "/", 0) == 0;
}

}  // namespace

std::vector<process_handle> processes_under(const fs::path& dir) {
  std::vector<process_handle> out;
  std::error_code ec;
  auto root = fs::weakly_canonical(dir, ec).string();
  if (ec || root.empty()) return out;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::error_code e2;
    auto cwd = fs::read_symlink(entry.path() / "cwd", e2).string();
    if (e2 || !under(root, cwd)) continue;
    stat_fields st;
    if (!read_stat(entry.path(), &st) || st.state == 'Z') continue;
    out.push_back({std::stoi(name), st.start_time, st.pgid});
  }
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
