// The verbs on one instance's group: join, limits, usage, OOM kills, kill, remove.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "runtime/process/cgroup.hpp"
#include "runtime/process/cgroup_files.hpp"

namespace berth {

namespace fs = std::filesystem;
using namespace detail;

namespace detail {

status write_limits(const cgroup& g, const resource_limits& l) {
  if (g.v2) {
    auto& d = g.dirs[0];
    if (l.memory_mb > 0) {
      if (auto s = write_text(d + "/memory.max", std::to_string(uint64_t(l.memory_mb) << 20)); !s) return s;
      if (fs::exists(d + "/memory.swap.max"))
        if (auto s = write_text(d + "/memory.swap.max", "0"); !s) return s;
    }
    if (l.cpu > 0)
      if (auto s = write_text(d + "/cpu.max", fmt::format("{} {}", std::llround(l.cpu * kCpuPeriodUs), kCpuPeriodUs)); !s)
        return s;
    if (l.pids > 0)
      if (auto s = write_text(d + "/pids.max", std::to_string(l.pids)); !s) return s;
    return status::ok();
  }
  for (auto& d : g.dirs) {
    auto has = [&](const char* file) { return fs::exists(d + "/" + file); };
    if (l.memory_mb > 0 && has("memory.limit_in_bytes")) {
      auto bytes = std::to_string(uint64_t(l.memory_mb) << 20);
      if (auto s = write_text(d + "/memory.limit_in_bytes", bytes); !s) return s;
      if (has("memory.memsw.limit_in_bytes"))  // no swapping past the limit either
        if (auto s = write_text(d + "/memory.memsw.limit_in_bytes", bytes); !s) return s;
    }
    if (l.cpu > 0 && has("cpu.cfs_quota_us")) {
      if (auto s = write_text(d + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs)); !s) return s;
      if (auto s = write_text(d + "/cpu.cfs_quota_us", std::to_string(std::llround(l.cpu * kCpuPeriodUs))); !s)
        return s;
    }
    if (l.pids > 0 && has("pids.max"))
      if (auto s = write_text(d + "/pids.max", std::to_string(l.pids)); !s) return s;
  }
  return status::ok();
}


std::vector<int> members(const cgroup& g) {
  std::vector<int> out;
  if (g.empty()) return out;
  std::istringstream in(read_text(g.dirs[0] + "/cgroup.procs"));
  for (int pid; in >> pid;) out.push_back(pid);
  return out;
}

}  // namespace detail

std::vector<std::string> join_files(const cgroup& g) {
  std::vector<std::string> out;
  for (auto& d : g.dirs) out.push_back(d + "/cgroup.procs");
  return out;
}

bool group_of_process(int pid, const std::string& must_contain, cgroup* out) {
  if (pid <= 0 || must_contain.empty()) return false;
  std::istringstream in(read_text(fmt::format("/proc/{}/cgroup", pid)));
  cgroup v1, v2;
  v2.v2 = true;
  for (std::string line; std::getline(in, line);) {
    // "<id>:<controllers>:<path>"; the unified hierarchy is "0::<path>".
    auto a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    auto controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (path.find(must_contain) == std::string::npos) continue;
    if (controllers.empty()) {
      if (fs::exists("/sys/fs/cgroup" + path + "/memory.current")) v2.dirs.push_back("/sys/fs/cgroup" + path);
    } else if (controllers == "memory" || controllers == "pids" || controllers == "cpu" ||
               controllers.find("cpuacct") != std::string::npos) {
      auto dir = "/sys/fs/cgroup/" + controllers + path;
      if (fs::exists(dir + "/cgroup.procs")) v1.dirs.push_back(dir);
    }
  }
  // A hybrid host lists the unified hierarchy too, without controllers: v1 is what counts.
  auto& g = v1.empty() ? v2 : v1;
  if (g.empty()) return false;
  if (out) *out = g;
  return true;
}

status read_usage(const cgroup& g, resource_usage* out) {
  if (g.empty()) return status::not_found("no cgroup");
  resource_usage u;
  u.from_cgroup = true;
  bool found = false;
  for (auto& d : g.dirs) {
    auto at = [&](const char* file) { return d + "/" + file; };
    if (!fs::exists(at("cgroup.procs"))) continue;
    found = true;
    if (g.v2) {
      u.rss_bytes = read_number(at("memory.current"));
      u.cpu_seconds = read_key(at("cpu.stat"), "usage_usec") / 1e6;
      u.processes = static_cast<uint32_t>(read_number(at("pids.current")));
      u.limits.memory_mb = static_cast<int>(read_number(at("memory.max")) >> 20);
      std::istringstream cpu(read_text(at("cpu.max")));
      std::string quota;
      double period = 0;
      if (cpu >> quota >> period && quota != "max" && period > 0) u.limits.cpu = std::stod(quota) / period;
      u.limits.pids = static_cast<int>(read_number(at("pids.max")));
      continue;
    }
    if (fs::exists(at("memory.usage_in_bytes"))) {
      u.rss_bytes = read_number(at("memory.usage_in_bytes"));
      u.limits.memory_mb = static_cast<int>(read_number(at("memory.limit_in_bytes")) >> 20);
    }
    if (fs::exists(at("cpuacct.usage"))) u.cpu_seconds = read_number(at("cpuacct.usage")) / 1e9;
    if (fs::exists(at("cpu.cfs_quota_us"))) {
      auto text = read_text(at("cpu.cfs_quota_us"));
      double quota = text.empty() || text[0] == '-' ? 0 : std::stod(text);
      double period = static_cast<double>(read_number(at("cpu.cfs_period_us")));
      if (quota > 0 && period > 0) u.limits.cpu = quota / period;
    }
    if (fs::exists(at("pids.current"))) {
      u.processes = static_cast<uint32_t>(read_number(at("pids.current")));
      u.limits.pids = static_cast<int>(read_number(at("pids.max")));
    }
  }
  if (!found) return status::not_found("the cgroup is gone");
  if (out) *out = u;
  return status::ok();
}

uint64_t oom_kills(const cgroup& g) {
  for (auto& d : g.dirs) {
    if (g.v2) return read_key(d + "/memory.events", "oom_kill");
    if (fs::exists(d + "/memory.oom_control")) return read_key(d + "/memory.oom_control", "oom_kill");
  }
  return 0;
}

status kill_all(const cgroup& g) {
  if (g.empty() || !fs::exists(g.dirs[0])) return status::ok();
  if (g.v2 && fs::exists(g.dirs[0] + "/cgroup.kill")) write_text(g.dirs[0] + "/cgroup.kill", "1");
  // v1 (or an older v2): a kill per member, again until none is left; new members a fork bomb
  // makes meanwhile are bounded by pids.max.
  for (int round = 0; round < 200; ++round) {
    auto pids = members(g);
    if (pids.empty()) return status::ok();
    for (int pid : pids) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status::io_error(fmt::format("processes remain in {}", g.dirs[0]));
}

status remove_group(const cgroup& g) {
  for (auto& d : g.dirs)
    if (::rmdir(d.c_str()) != 0 && errno != ENOENT)
      return status::io_error(fmt::format("rmdir {}: {}", d, std::strerror(errno)));
  return status::ok();
}

}  // namespace berth
