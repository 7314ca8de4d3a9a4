#include "tests/common/support.hpp"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace berth::it {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<proc_info> procs_in(const std::string& dir) {
  std::vector<proc_info> out;
  std::error_code ec;
  auto root = fs::weakly_canonical(dir, ec).string();
  if (root.empty()) root = dir;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::error_code e2;
    auto cwd = fs::read_symlink(entry.path() / "cwd", e2).string();
    if (e2) continue;
    const std::string deleted = " (deleted)";
    if (cwd.size() > deleted.size() && cwd.compare(cwd.size() - deleted.size(), deleted.size(), deleted) == 0)
      cwd.resize(cwd.size() - deleted.size());
    if (cwd != root && cwd.rfind(root + "/", 0) != 0) continue;
    // Skip zombies: they hold nothing.
    auto stat = read_file(entry.path().string() + "/stat");
    auto rp = stat.rfind(')');
    if (rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z') continue;
    proc_info p;
    p.pid = static_cast<pid_t>(std::stol(name));
    p.cwd = cwd;
    p.cmdline = read_file(entry.path().string() + "/cmdline");
    for (auto& c : p.cmdline)
      if (c == '\0') c = ' ';
    out.push_back(p);
  }
  return out;
}

std::string describe(const std::vector<proc_info>& procs) {
  std::ostringstream s;
  for (auto& p : procs) s << "\n  pid " << p.pid << " cwd " << p.cwd << " cmd " << p.cmdline;
  return procs.empty() ? std::string("(none)") : s.str();
}

void kill_processes_in(const std::string& dir) {
  for (int round = 0; round < 10; ++round) {
    auto left = procs_in(dir);
    if (left.empty()) return;
    for (auto& p : left) ::kill(p.pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace berth::it
