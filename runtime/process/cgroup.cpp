#include "runtime/process/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "runtime/eventlog/event_log.hpp"  // sha256_hex

namespace berth {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultMount = "/sys/fs/cgroup";
constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC
constexpr long kCpuPeriodUs = 100000;
constexpr uint64_t kV1Unlimited = uint64_t(1) << 62;  // v1 writes "unlimited" as ~2^63 rounded to pages

std::string read_text(const std::string& path, bool* ok = nullptr) {
  std::ifstream in(path);
  if (ok) *ok = bool(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

status write_text(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return status::io_error(fmt::format("open {}: {}", path, std::strerror(errno)));
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size()))
    return status::io_error(fmt::format("write '{}' to {}: {}", value, path, std::strerror(n < 0 ? err : EIO)));
  return status::ok();
}

bool is_cgroup2(const std::string& dir) {
  struct statfs sfs {};
  return ::statfs(dir.c_str(), &sfs) == 0 && static_cast<long>(sfs.f_type) == kCgroup2Magic;
}

// A number from a cgroup file; "max" (and v1's near-2^63 "unlimited") reads as 0 = none.
uint64_t read_number(const std::string& path) {
  auto text = read_text(path);
  if (text.rfind("max", 0) == 0) return 0;
  try {
    auto v = std::stoull(text);
    return v >= kV1Unlimited ? 0 : v;
  } catch (...) {
    return 0;
  }
}

// The value of `key` in a flat-keyed file ("oom_kill 3\n…").
uint64_t read_key(const std::string& path, const std::string& key) {
  std::istringstream in(read_text(path));
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

// v1 hierarchies: controller -> (mount point, berth's own group in it), from mountinfo and
// /proc/self/cgroup.
struct v1_hierarchy {
  std::set<std::string> controllers;
  std::string mount, mount_root, own;
};

std::vector<v1_hierarchy> v1_hierarchies() {
  std::vector<v1_hierarchy> out;
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    for (std::string w; ls >> w;) f.push_back(w);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || f.end() - dash < 4 || *(dash + 1) != "cgroup") continue;
    v1_hierarchy h;
    h.mount_root = f[3];
    h.mount = f[4];
    std::istringstream opts(*(dash + 3));
    for (std::string o; std::getline(opts, o, ',');) h.controllers.insert(o);
    out.push_back(std::move(h));
  }
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::istringstream names(line.substr(a + 1, b - a - 1));
    std::string path = line.substr(b + 1);
    for (std::string n; std::getline(names, n, ',');)
      for (auto& h : out)
        if (h.controllers.count(n) && h.own.empty()) h.own = path;
  }
  return out;
}

// The folder of berth's own group in a v1 hierarchy (the mount may show only a subtree).
std::string own_folder(const v1_hierarchy& h) {
  std::string rel = h.own;
  if (h.mount_root != "/" && rel.rfind(h.mount_root, 0) == 0) rel = rel.substr(h.mount_root.size());
  auto dir = (fs::path(h.mount) / fs::path(rel).relative_path()).lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// v2: the controllers a group offers its children.
std::set<std::string> v2_controllers(const std::string& dir) {
  std::set<std::string> out;
  std::istringstream in(read_text(dir + "/cgroup.controllers"));
  for (std::string c; in >> c;) out.insert(c);
  return out;
}

bool has_v2_controllers(const std::string& dir) {
  auto c = v2_controllers(dir);
  return c.count("memory") && c.count("cpu") && c.count("pids");
}

// mkdir, ok when it exists. v2: the new folder's parent hands the controllers down first.
status make_dir(const std::string& dir, bool v2) {
  if (v2) {
    auto parent = fs::path(dir).parent_path().string();
    if (auto s = write_text(parent + "/cgroup.subtree_control", "+memory +cpu +pids"); !s) return s;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return status::io_error(fmt::format("mkdir {}: {}", dir, std::strerror(errno)));
  return status::ok();
}

std::string why_unusable(const status& failure) {
  return fmt::format("cannot create cgroups: {}{}", failure.message(),
                     ::geteuid() == 0 ? ""
                                      : " (limits need root, or a cgroup v2 group delegated to berth's user, given "
                                        "with --cgroup-root)");
}

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

// The pids in a group now.
std::vector<int> members(const cgroup& g) {
  std::vector<int> out;
  if (g.empty()) return out;
  std::istringstream in(read_text(g.dirs[0] + "/cgroup.procs"));
  for (int pid; in >> pid;) out.push_back(pid);
  return out;
}

}  // namespace

std::shared_ptr<const cgroup_tree> cgroup_tree::open(const std::string& root, const std::string& data_dir_label) {
  auto t = std::make_shared<cgroup_tree>();
  if (root.empty() || root == "off") {
    t->unavailable_ = "limits are turned off (--cgroup-root off)";
    return t;
  }
  std::vector<std::string> parents;
  if (root != "auto") {
    if (!is_cgroup2(root) || !has_v2_controllers(root)) {
      t->unavailable_ = fmt::format("--cgroup-root {} is not a cgroup v2 group offering the memory, cpu and pids "
                                    "controllers", root);
      return t;
    }
    t->v2_ = true;
    parents = {root};
  } else if (is_cgroup2(kDefaultMount) && has_v2_controllers(kDefaultMount)) {
    t->v2_ = true;
    parents = {kDefaultMount};
  } else {
    auto hierarchies = v1_hierarchies();
    std::set<std::string> seen;
    for (const char* c : {"memory", "cpu", "cpuacct", "pids"}) {
      auto it = std::find_if(hierarchies.begin(), hierarchies.end(),
                             [&](const v1_hierarchy& h) { return h.controllers.count(c) != 0; });
      if (it == hierarchies.end()) {
        t->unavailable_ = fmt::format("no cgroup hierarchy has the {} controller (cgroup v2 at {} {})", c,
                                      kDefaultMount, is_cgroup2(kDefaultMount) ? "lacks it too" : "is not mounted");
        return t;
      }
      auto dir = own_folder(*it);
      if (seen.insert(dir).second) parents.push_back(dir);
    }
  }
  auto label = sha256_hex(data_dir_label).substr(0, 12);
  for (auto& p : parents) {
    auto berth = p + "/berth", mine = berth + "/" + label;
    for (auto& dir : {berth, mine}) {
      if (auto s = make_dir(dir, t->v2_); !s) {
        t->unavailable_ = why_unusable(s);
        t->subtree_.clear();
        return t;
      }
    }
    t->subtree_.push_back(mine);
  }
  return t;
}

std::string cgroup_tree::version() const {
  if (!unavailable_.empty()) return "none";
  return v2_ ? "cgroup v2" : "cgroup v1";
}

status cgroup_tree::create(const std::string& project, const std::string& name, const resource_limits& limits,
                           cgroup* out) const {
  if (!unavailable_.empty()) return status::io_error("no cgroups: " + unavailable_);
  static std::atomic<uint64_t> counter{static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch() / std::chrono::milliseconds(1))};
  const std::string folder = project.empty() ? "_berth" : project;
  cgroup g;
  g.v2 = v2_;
  for (int attempt = 0; attempt < 16 && g.empty(); ++attempt) {
    auto leaf = fmt::format("{}/{}-{}", folder, name, counter.fetch_add(1));
    std::vector<std::string> made;
    bool taken = false;
    status failed = status::ok();
    for (auto& base : subtree_) {
      if (auto s = make_dir(base + "/" + folder, v2_); !s) {
        failed = s;
        break;
      }
      auto dir = base + "/" + leaf;
      if (v2_) {
        if (auto s = write_text(base + "/" + folder + "/cgroup.subtree_control", "+memory +cpu +pids"); !s) {
          failed = s;
          break;
        }
      }
      if (::mkdir(dir.c_str(), 0755) != 0) {
        taken = errno == EEXIST;
        if (!taken) failed = status::io_error(fmt::format("mkdir {}: {}", dir, std::strerror(errno)));
        break;
      }
      made.push_back(dir);
    }
    cgroup attempt_group{made, v2_};
    if (failed.is_ok() && !taken) {
      if (auto s = write_limits(attempt_group, limits); !s) {
        remove_group(attempt_group);
        return s;
      }
      g = attempt_group;
      break;
    }
    remove_group(attempt_group);
    if (!failed.is_ok()) return failed;
  }
  if (g.empty()) return status::io_error("cannot find a free cgroup name for " + name);
  if (out) *out = g;
  return status::ok();
}

bool cgroup_tree::find(int pid, cgroup* out) const {
  if (!unavailable_.empty() || pid <= 0) return false;
  auto text = read_text(fmt::format("/proc/{}/cgroup", pid));
  cgroup g;
  g.v2 = v2_;
  for (auto& base : subtree_) {
    // The group's path inside the hierarchy ends with <label>/<project>/<leaf>.
    auto label = fs::path(base).filename().string();
    std::istringstream in(text);
    std::string found;
    for (std::string line; std::getline(in, line) && found.empty();) {
      auto pos = line.find("/berth/" + label + "/");
      if (pos == std::string::npos) continue;
      if (v2_ != (line.rfind("0::", 0) == 0)) continue;
      found = line.substr(pos + 7 + label.size() + 1);
    }
    if (found.empty() || found.find('/') == std::string::npos) return false;
    auto dir = base + "/" + found;
    if (std::find(g.dirs.begin(), g.dirs.end(), dir) == g.dirs.end()) g.dirs.push_back(dir);
  }
  if (g.empty()) return false;
  if (out) *out = g;
  return true;
}

size_t cgroup_tree::sweep(const std::set<std::string>& keep) const {
  size_t removed = 0;
  std::error_code ec;
  for (auto& base : subtree_) {
    for (auto& project : fs::directory_iterator(base, ec)) {
      if (!project.is_directory(ec)) continue;
      for (auto& leaf : fs::directory_iterator(project.path(), ec))
        if (leaf.is_directory(ec) && !keep.count(leaf.path().string()) && ::rmdir(leaf.path().c_str()) == 0)
          ++removed;
      ::rmdir(project.path().c_str());  // fails while it has groups
    }
  }
  return removed / std::max<size_t>(1, subtree_.size());
}

std::vector<std::string> join_files(const cgroup& g) {
  std::vector<std::string> out;
  for (auto& d : g.dirs) out.push_back(d + "/cgroup.procs");
  return out;
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
