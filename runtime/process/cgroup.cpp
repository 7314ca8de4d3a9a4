// The cgroup tree: finding the hierarchies, berth's subtree, making, finding and sweeping groups.
#include "runtime/process/cgroup.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "runtime/eventlog/event_log.hpp"  // sha256_hex
#include "runtime/process/cgroup_files.hpp"

namespace berth {

namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr const char* kDefaultMount = "/sys/fs/cgroup";

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


std::string why_unusable(const status& failure) {
  return fmt::format("cannot create cgroups: {}{}", failure.message(),
                     ::geteuid() == 0 ? ""
                                      : " (limits need root, or a cgroup v2 group delegated to berth's user, given "
                                        "with --cgroup-root)");
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
      if (auto s = make_dir(base, v2_); !s) {  // a sweep takes it away while it has no groups
        failed = s;
        break;
      }
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

size_t cgroup_tree::sweep_abandoned(std::chrono::seconds older_than) const {
  size_t removed = 0;
  auto cutoff = ::time(nullptr) - older_than.count();
  auto old_enough = [&](const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && st.st_mtime < cutoff;  // a new child updates it
  };
  auto remove_if_old = [&](const fs::path& p) { return old_enough(p) && ::rmdir(p.c_str()) == 0; };
  std::error_code ec;
  for (auto& mine : subtree_) {
    for (auto& label : fs::directory_iterator(fs::path(mine).parent_path(), ec)) {
      if (!label.is_directory(ec) || label.path() == fs::path(mine)) continue;
      bool label_old = old_enough(label.path());  // before removals below touch its time
      for (auto& project : fs::directory_iterator(label.path(), ec)) {
        if (!project.is_directory(ec)) continue;
        bool project_old = old_enough(project.path());
        for (auto& leaf : fs::directory_iterator(project.path(), ec))
          if (leaf.is_directory(ec) && remove_if_old(leaf.path())) ++removed;
        if (project_old) ::rmdir(project.path().c_str());
      }
      if (label_old) ::rmdir(label.path().c_str());
    }
  }
  return removed / std::max<size_t>(1, subtree_.size());
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
    ::rmdir(base.c_str());  // likewise: a berth with no groups leaves no trace
  }
  return removed / std::max<size_t>(1, subtree_.size());
}

}  // namespace berth
