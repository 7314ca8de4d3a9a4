#include "runtime/process/sandbox.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "runtime/process/process_driver.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

bool is_under(const fs::path& p, const fs::path& root) {
  auto rel = p.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

// Folders the sandbox has already (its own mounts, the host's read-only /usr and /etc): never
// made again on the way to a bound path. Under /tmp (a fresh tmpfs) they are made.
bool sandbox_has(const fs::path& p) {
  if (p == "/tmp" || p == "/dev" || p == "/proc") return true;
  for (const char* m : {"/usr", "/etc", "/dev", "/proc"})
    if (p == m || is_under(p, m)) return true;
  return false;
}

fs::path absolute_of(const fs::path& p) {
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal();
}

// The folders bound into the sandbox, in the order they are mounted.
std::vector<fs::path> bound_paths(const sandbox_spec& s) {
  std::vector<fs::path> out;
  if (!s.read_only.empty()) out.push_back(absolute_of(s.read_only));
  for (auto& w : s.writable) out.push_back(absolute_of(w));
  if (!s.data.empty()) out.push_back(absolute_of(s.data));
  return out;
}

bool executable_file(const fs::path& p, bool* exists) {
  struct stat st {};
  *exists = ::stat(p.c_str(), &st) == 0;
  return *exists && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}

bool visible_in(const sandbox_options& o, const sandbox_spec& s, const fs::path& p) {
  for (auto& [path, link] : o.system)
    if (is_under(p, path)) return true;
  for (const char* m : {"/usr", "/etc"})
    if (is_under(p, m)) return true;
  for (auto& b : bound_paths(s))
    if (p == b || is_under(p, b)) return true;
  return false;
}

// lchown of one entry unless it is s.id's already; a regular file with several hard links is
// left alone (it may be a link to a file outside what the sandbox is given).
status hand_over(const fs::path& p, const sandbox_identity& id) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return status::ok();  // gone meanwhile
  if (st.st_uid == id.uid && st.st_gid == id.gid) return status::ok();
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) return status::ok();
  if (::lchown(p.c_str(), id.uid, id.gid) != 0)
    return status::io_error(fmt::format("chown {}: {}", p.string(), std::strerror(errno)));
  return status::ok();
}

// Everything below `root`, then `root` itself: a root that is id's says the whole tree was
// handed over (an interrupted pass leaves the root as it was, so the next one walks again).
status hand_over_tree(const fs::path& root, const sandbox_identity& id) {
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return status::io_error(fmt::format("read {}: {}", root.string(), ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) return status::io_error(fmt::format("read {}: {}", root.string(), ec.message()));
    if (auto s = hand_over(it->path(), id); !s) return s;
  }
  return hand_over(root, id);
}

bool owned_by(const fs::path& p, const sandbox_identity& id) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && st.st_uid == id.uid && st.st_gid == id.gid;
}

}  // namespace

sandbox_options make_sandbox_options(bool enabled, std::string bwrap) {
  sandbox_options o;
  o.enabled = enabled;
  o.bwrap = std::move(bwrap);
  o.as_root = ::geteuid() == 0;
  o.system.push_back({"/usr", ""});
  o.system.push_back({"/etc", ""});
  // Debian 12 has merged /usr: /bin and /lib* are links into it; older layouts are folders.
  for (const char* p : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    auto st = fs::symlink_status(p, ec);
    if (ec) continue;
    if (fs::is_symlink(st)) {
      auto target = fs::read_symlink(p, ec);
      if (!ec) o.system.push_back({p, target.string()});
    } else if (fs::is_directory(st)) {
      o.system.push_back({p, ""});
    }
  }
  return o;
}

bool sandbox_available(const sandbox_options& o) {
  bool exists = false;
  if (o.bwrap.find('/') != std::string::npos) return executable_file(o.bwrap, &exists);
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t begin = 0;
  for (;;) {
    size_t end = dirs.find(':', begin);
    auto dir = dirs.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (!dir.empty() && executable_file(fs::path(dir) / o.bwrap, &exists)) return true;
    if (end == std::string::npos) return false;
    begin = end + 1;
  }
}

status check_sandbox(const sandbox_options& o, uint32_t probe_uid) {
  if (!sandbox_available(o)) return status::not_found(fmt::format("bubblewrap ('{}') is not installed", o.bwrap));
  sandbox_spec s;
  s.enabled = true;
  s.id = {probe_uid, probe_uid};
  process_spec ps;
  ps.argv = sandbox_argv(o, s, "/", {"/usr/bin/true"});
  int code = -1;
  process_driver driver;
  if (auto st = driver.run(ps, std::chrono::seconds(10), &code); !st) return st;
  if (code != 0) return status::io_error(fmt::format("'{} ... true' exited with code {}", o.bwrap, code));
  return status::ok();
}

std::vector<std::string> sandbox_argv(const sandbox_options& o, const sandbox_spec& s, const fs::path& cwd,
                                      const std::vector<std::string>& command) {
  // No --die-with-parent: its PR_SET_PDEATHSIG fires when the *thread* that forked bwrap ends,
  // and apps outlive berth's worker threads (and berth). The runtime ends what outlives bwrap.
  std::vector<std::string> a{o.bwrap, "--unshare-pid", "--unshare-ipc"};
  if (!o.as_root) a.push_back("--unshare-user");  // berth's own ids, mapped
  for (auto& [path, link] : o.system) {
    if (link.empty())
      a.insert(a.end(), {"--ro-bind", path, path});
    else
      a.insert(a.end(), {"--symlink", link, path});
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--perms",
                     "1777", "--tmpfs", "/tmp"});
  // The folders on the way to a bound path: traversable, empty (bwrap would make them 0700).
  auto bound = bound_paths(s);
  std::set<std::string> parents;
  for (auto& b : bound)
    for (auto p = b.parent_path(); p != p.root_path() && !p.empty(); p = p.parent_path())
      if (!sandbox_has(p)) parents.insert(p.string());
  for (auto& p : parents) a.insert(a.end(), {"--perms", "0755", "--dir", p});  // sorted: parents first
  if (!s.read_only.empty()) a.insert(a.end(), {"--ro-bind", bound.front().string(), bound.front().string()});
  for (size_t i = s.read_only.empty() ? 0 : 1; i < bound.size(); ++i)
    a.insert(a.end(), {"--bind", bound[i].string(), bound[i].string()});
  a.insert(a.end(), {"--chdir", absolute_of(cwd).string(), "--"});
  if (o.as_root && s.id.uid != 0)
    a.insert(a.end(), {o.setpriv, fmt::format("--reuid={}", s.id.uid), fmt::format("--regid={}", s.id.gid),
                       "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"});
  a.insert(a.end(), command.begin(), command.end());
  return a;
}

std::map<std::string, std::string> sandbox_env(const sandbox_spec& s) {
  std::map<std::string, std::string> env{{"TMPDIR", "/tmp"}};
  if (!s.data.empty()) {
    env["HOME"] = absolute_of(s.data).string();
    env["BERTH_APP_DATA"] = absolute_of(s.data).string();
  }
  return env;
}

status find_sandboxed_program(const sandbox_options& o, const sandbox_spec& s, const std::string& program,
                              const fs::path& cwd, const std::string& path) {
  std::vector<fs::path> candidates;
  if (program.find('/') != std::string::npos) {
    candidates.push_back(fs::path(program).is_absolute() ? fs::path(program) : absolute_of(cwd) / program);
  } else {
    size_t begin = 0;
    for (;;) {
      size_t end = path.find(':', begin);
      auto dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
      candidates.push_back((dir.empty() ? absolute_of(cwd) : fs::path(dir)) / program);
      if (end == std::string::npos) break;
      begin = end + 1;
    }
  }
  bool seen = false;
  for (auto& c : candidates) {
    auto p = c.lexically_normal();
    if (!visible_in(o, s, p)) continue;
    bool exists = false;
    if (executable_file(p, &exists)) return status::ok();
    seen |= exists;
  }
  auto msg = fmt::format("start {}: exec: {}", program,
                         seen ? "Permission denied (not an executable file)"
                              : "No such file or directory (in the sandbox: the system's /usr and the app's folders)");
  return seen ? status::invalid_argument(msg) : status::not_found(msg);
}

status prepare_sandbox_dirs(const sandbox_spec& s) {
  std::error_code ec;
  if (!s.data.empty()) {
    fs::create_directories(s.data, ec);
    if (ec) return status::io_error(fmt::format("mkdir {}: {}", s.data.string(), ec.message()));
  }
  for (auto& b : bound_paths(s))
    if (!fs::is_directory(b, ec)) return status::not_found(fmt::format("sandbox: no folder {}", b.string()));
  if (s.id.uid == 0) return status::ok();
  for (auto& b : bound_paths(s)) {
    // A release never changes once packaged: handed over once, not walked at every start.
    // Writable trees are walked each time (berth copies new files into a preview's src).
    if (!s.read_only.empty() && b == absolute_of(s.read_only) && owned_by(b, s.id)) continue;
    if (auto st = hand_over_tree(b, s.id); !st) return st;
  }
  return status::ok();
}

}  // namespace berth
