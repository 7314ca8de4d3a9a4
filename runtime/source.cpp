#include "runtime/source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include "runtime/fs_util.hpp"

extern char** environ;

namespace berth {

namespace fs = std::filesystem;

namespace {

using fsutil::errstr;
using fsutil::force_remove;
using fsutil::inside;
using fsutil::random_suffix;

using steady = std::chrono::steady_clock;

constexpr size_t kMaxOutput = 16 * 1024;  // tail of git's output kept for error messages

// dest without a trailing slash, and the temp sibling the snapshot is built in.
fs::path clean_dest(const fs::path& dest) {
  fs::path d = dest.lexically_normal();
  if (!d.empty() && d.filename().empty()) d = d.parent_path();
  return d;
}
fs::path temp_sibling(const fs::path& dest, const char* tag) {
  return dest.parent_path() / (dest.filename().string() + tag + random_suffix());
}

// Replaces dest by the finished tmp: the old dest is renamed away first, then removed.
status install(const fs::path& tmp, const fs::path& dest) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(fs::symlink_status(dest, ec))) {
    old = temp_sibling(dest, ".old-");
    if (::rename(dest.c_str(), old.c_str()) != 0) {
      int err = errno;
      force_remove(tmp);
      return status::io_error(fmt::format("rename {}: {}", dest.string(), errstr(err)));
    }
  }
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    if (!old.empty()) ::rename(old.c_str(), dest.c_str());  // put the previous one back
    force_remove(tmp);
    return status::io_error(fmt::format("rename {} -> {}: {}", tmp.string(), dest.string(), errstr(err)));
  }
  if (!old.empty()) force_remove(old);
  return status::ok();
}

// ---------------------------------------------------------------------------------------------
// Local copy
//
// Everything is opened relative to the directory being copied (openat/fstatat/readlinkat with
// O_NOFOLLOW), never by a path: a symlink in the source, or a directory replaced by a symlink
// while the copy runs, can never make the copy read outside the source tree. Such a swap ends
// the snapshot with an error; links are re-created, never followed.

// What the copy needs to know about the source tree to re-create its links.
struct link_roots {
  fs::path given;      // the source path as configured (absolute, lexically normal)
  fs::path canonical;  // the same, symlinks resolved
};

// An absolute link target inside the source tree becomes relative (same place in the copy), so
// the snapshot never points back into the live source. Anything else is kept as it is.
std::string link_target(const std::string& target, const fs::path& rel_parent, const link_roots& roots) {
  fs::path t(target);
  if (!t.is_absolute()) return target;
  t = t.lexically_normal();
  for (const fs::path* root : {&roots.canonical, &roots.given}) {
    if (root->empty() || !inside(*root, t)) continue;
    fs::path from_root = t.lexically_relative(*root);
    fs::path rel = rel_parent.empty() ? from_root : from_root.lexically_relative(rel_parent);
    std::string out = rel.lexically_normal().string();
    if (!out.empty() && out.size() > 1 && out.back() == '/') out.pop_back();
    return out.empty() ? "." : out;
  }
  return target;
}

status changed(const fs::path& shown) {
  return status::io_error(fmt::format(
      "{} changed while the source was copied (it is now a symlink or another kind of file); "
      "snapshot again", shown.string()));
}

struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f) : fd(f) {}
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
};

status copy_file_at(int from_dir, int to_dir, const char* name, const fs::path& shown_from,
                    const fs::path& shown_to, mode_t mode) {
  // O_NONBLOCK: a fifo swapped in meanwhile must not block the open (fstat refuses it below).
  fd_guard in(::openat(from_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (in.fd < 0) {
    if (errno == ELOOP) return changed(shown_from);
    return status::io_error(fmt::format("open {}: {}", shown_from.string(), errstr(errno)));
  }
  struct stat st;
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) return changed(shown_from);
  fd_guard out(::openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.fd < 0) return status::io_error(fmt::format("create {}: {}", shown_to.string(), errstr(errno)));
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(in.fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return status::io_error(fmt::format("read {}: {}", shown_from.string(), errstr(errno)));
    }
    if (n == 0) break;
    const char* p = buf.data();
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      ssize_t w = ::write(out.fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return status::io_error(fmt::format("write {}: {}", shown_to.string(), errstr(errno)));
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  if (::fchmod(out.fd, mode) != 0)
    return status::io_error(fmt::format("chmod {}: {}", shown_to.string(), errstr(errno)));
  int fd = out.fd;
  out.fd = -1;
  if (::close(fd) != 0) return status::io_error(fmt::format("write {}: {}", shown_to.string(), errstr(errno)));
  return status::ok();
}

// Copies the contents of the directory open as `from_dir` (known as `from`, at `rel` in the
// source tree) into the directory open as `to_dir` (known as `to`).
status copy_tree(int from_dir, int to_dir, const fs::path& from, const fs::path& to, const fs::path& rel,
                 const link_roots& roots, std::vector<std::pair<fs::path, mode_t>>* dir_modes) {
  int list_fd = ::dup(from_dir);
  if (list_fd < 0) return status::io_error(fmt::format("list {}: {}", from.string(), errstr(errno)));
  DIR* dir = ::fdopendir(list_fd);
  if (dir == nullptr) {
    ::close(list_fd);
    return status::io_error(fmt::format("list {}: {}", from.string(), errstr(errno)));
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* d = ::readdir(dir)) {
    std::string n = d->d_name;
    if (n != "." && n != ".." && n != ".git") names.push_back(std::move(n));
    errno = 0;
  }
  int list_err = errno;
  ::closedir(dir);
  if (list_err != 0) return status::io_error(fmt::format("list {}: {}", from.string(), errstr(list_err)));

  for (auto& name : names) {
    fs::path src = from / name, dst = to / name;
    struct stat st;
    if (::fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // vanished meanwhile
      return status::io_error(fmt::format("stat {}: {}", src.string(), errstr(errno)));
    }
    mode_t mode = st.st_mode & 0777;
    if (S_ISLNK(st.st_mode)) {
      std::vector<char> buf(PATH_MAX + 1);
      ssize_t n = ::readlinkat(from_dir, name.c_str(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINVAL) return changed(src);
        return status::io_error(fmt::format("readlink {}: {}", src.string(), errstr(errno)));
      }
      if (static_cast<size_t>(n) >= buf.size())
        return status::io_error(fmt::format("readlink {}: target too long", src.string()));
      auto target = link_target(std::string(buf.data(), static_cast<size_t>(n)), rel, roots);
      if (::symlinkat(target.c_str(), to_dir, name.c_str()) != 0)
        return status::io_error(fmt::format("symlink {}: {}", dst.string(), errstr(errno)));
    } else if (S_ISREG(st.st_mode)) {
      auto s = copy_file_at(from_dir, to_dir, name.c_str(), src, dst, mode);
      if (!s) return s;
    } else if (S_ISDIR(st.st_mode)) {
      fd_guard sub_from(::openat(from_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub_from.fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR) return changed(src);
        return status::io_error(fmt::format("open {}: {}", src.string(), errstr(errno)));
      }
      if (::mkdirat(to_dir, name.c_str(), 0700) != 0)
        return status::io_error(fmt::format("mkdir {}: {}", dst.string(), errstr(errno)));
      fd_guard sub_to(::openat(to_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub_to.fd < 0) return status::io_error(fmt::format("open {}: {}", dst.string(), errstr(errno)));
      dir_modes->emplace_back(dst, mode);
      auto s = copy_tree(sub_from.fd, sub_to.fd, src, dst, rel / name, roots, dir_modes);
      if (!s) return s;
    }
    // fifos, sockets, devices: not source, skipped.
  }
  return status::ok();
}

status snapshot_local(const std::string& source_path, const fs::path& dest) {
  std::error_code ec;
  fs::path src = fs::canonical(source_path, ec);
  if (ec) return status::not_found(fmt::format("source path {} not found", source_path));
  if (!fs::is_directory(src, ec))
    return status::invalid_argument(fmt::format("source path {} is not a directory", source_path));
  fs::path d = fs::weakly_canonical(fs::absolute(dest, ec), ec);
  if (ec) return status::io_error(fmt::format("resolve {}: {}", dest.string(), ec.message()));
  if (inside(src, d) || inside(d, src))
    return status::invalid_argument(fmt::format("snapshot dest {} and source path {} overlap",
                                                dest.string(), source_path));
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", dest.parent_path().string(), ec.message()));

  fd_guard src_fd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (src_fd.fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) return changed(src);
    return status::io_error(fmt::format("open {}: {}", src.string(), errstr(errno)));
  }
  struct stat st;
  if (::fstat(src_fd.fd, &st) != 0)
    return status::io_error(fmt::format("stat {}: {}", src.string(), errstr(errno)));
  fs::path tmp = temp_sibling(dest, ".tmp-");
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return status::io_error(fmt::format("mkdir {}: {}", tmp.string(), errstr(errno)));
  fd_guard tmp_fd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (tmp_fd.fd < 0) {
    int err = errno;
    force_remove(tmp);
    return status::io_error(fmt::format("open {}: {}", tmp.string(), errstr(err)));
  }
  link_roots roots{fs::absolute(source_path, ec).lexically_normal(), src};
  if (!roots.given.empty() && roots.given.filename().empty()) roots.given = roots.given.parent_path();
  std::vector<std::pair<fs::path, mode_t>> dir_modes{{tmp, st.st_mode & 0777}};
  auto s = copy_tree(src_fd.fd, tmp_fd.fd, src, tmp, fs::path(), roots, &dir_modes);
  // Directory modes last (deepest first), so read-only directories could be filled.
  for (auto it = dir_modes.rbegin(); s && it != dir_modes.rend(); ++it)
    if (::chmod(it->first.c_str(), it->second) != 0)
      s = status::io_error(fmt::format("chmod {}: {}", it->first.string(), errstr(errno)));
  if (!s) {
    force_remove(tmp);
    return s;
  }
  return install(tmp, dest);
}

// ---------------------------------------------------------------------------------------------
// git

struct run_result {
  bool started = false;
  bool timed_out = false;
  int exit_code = -1;  // -1: killed by a signal
  std::string output;  // stdout + stderr, tail
  std::string error;   // why it could not start
};

std::string find_in_path(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  for (;;) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + prog;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    if (colon == std::string::npos) return "";
    start = colon + 1;
  }
}

// The daemon's environment minus whatever could point git at another repository or make it
// prompt, plus GIT_TERMINAL_PROMPT=0 and LC_ALL=C.
std::vector<std::string> git_environment() {
  static const char* drop[] = {"GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=",
                               "GIT_OBJECT_DIRECTORY=", "GIT_ALTERNATE_OBJECT_DIRECTORIES=",
                               "GIT_NAMESPACE=", "GIT_TERMINAL_PROMPT=", "LC_ALL=", "GIT_ASKPASS=",
                               "SSH_ASKPASS="};
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    bool skip = false;
    for (auto* d : drop)
      if (kv.rfind(d, 0) == 0) skip = true;
    if (!skip) env.push_back(std::move(kv));
  }
  env.emplace_back("GIT_TERMINAL_PROMPT=0");
  env.emplace_back("LC_ALL=C");
  if (!std::getenv("GIT_SSH_COMMAND")) env.emplace_back("GIT_SSH_COMMAND=ssh -o BatchMode=yes");
  return env;
}

run_result run_git(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  run_result r;
  std::string git = find_in_path("git");
  if (git.empty()) {
    r.error = "git not found in PATH";
    return r;
  }
  // Everything the child needs is prepared before fork (the daemon is multi-threaded).
  std::vector<std::string> argv_s{"git"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env_s = git_environment();
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int fds[2];
  if (devnull < 0 || ::pipe2(fds, O_CLOEXEC) != 0) {
    r.error = fmt::format("pipe: {}", errstr(errno));
    if (devnull >= 0) ::close(devnull);
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = fmt::format("fork: {}", errstr(errno));
    ::close(devnull);
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::setsid();  // own process group (killed as a whole), no controlling terminal
    ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(git.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  r.started = true;
  ::close(devnull);
  ::close(fds[1]);
  auto deadline = steady::now() + timeout;
  char buf[4096];
  bool eof = false, exited = false;
  int wstatus = 0;
  while (!exited) {
    if (!eof) {
      pollfd p{fds[0], POLLIN, 0};
      int pr = ::poll(&p, 1, 100);
      if (pr > 0) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
          r.output.append(buf, static_cast<size_t>(n));
          if (r.output.size() > 2 * kMaxOutput) r.output.erase(0, r.output.size() - kMaxOutput);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          eof = true;
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) exited = true;
    if (!exited && steady::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &wstatus, 0);
      r.timed_out = true;
      exited = true;
    }
  }
  // Whatever is still buffered (a helper of git may still hold the pipe: do not wait for it).
  int fl = ::fcntl(fds[0], F_GETFL);
  ::fcntl(fds[0], F_SETFL, fl | O_NONBLOCK);
  for (ssize_t n; !eof && (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    r.output.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (r.output.size() > kMaxOutput) r.output.erase(0, r.output.size() - kMaxOutput);
  r.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return r;
}

std::string mask_url(const std::string& url) { return mask_url_credentials(url); }

// The last few lines of git's output, with the URL masked, on one line.
std::string summarize(std::string out, const std::string& url) {
  std::string masked = mask_url(url);
  if (masked != url)
    for (size_t pos; (pos = out.find(url)) != std::string::npos;) out.replace(pos, url.size(), masked);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < out.size()) {
    size_t nl = out.find_first_of("\r\n", start);
    std::string line = out.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty()) lines.push_back(std::move(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::string tail;
  for (size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i)
    tail += (tail.empty() ? "" : " | ") + lines[i];
  return tail.empty() ? "(no output)" : tail;
}

status git_failure(const std::string& what, const run_result& r, const std::string& url,
                   std::chrono::seconds timeout) {
  if (!r.started) return status::io_error(fmt::format("{}: {}", what, r.error));
  if (r.timed_out) return status::io_error(fmt::format("{} timed out after {} s", what, timeout.count()));
  return status::io_error(fmt::format("{} failed (exit {}): {}", what, r.exit_code, summarize(r.output, url)));
}

bool bad_chars(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

status snapshot_git(const std::string& url, const std::string& ref, const fs::path& dest,
                    std::chrono::seconds timeout) {
  if (bad_chars(url) || url[0] == '-')
    return status::invalid_argument(fmt::format("invalid git url '{}'", mask_url(url)));
  if (!ref.empty() && (bad_chars(ref) || ref[0] == '-' || ref.find(' ') != std::string::npos))
    return status::invalid_argument(fmt::format("invalid git ref '{}'", ref));
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", dest.parent_path().string(), ec.message()));
  fs::path tmp = temp_sibling(dest, ".tmp-");
  const std::string what = "git clone " + mask_url(url);

  std::vector<std::string> shallow{"-c", "protocol.ext.allow=never", "clone", "--quiet", "--depth", "1"};
  if (!ref.empty()) shallow.insert(shallow.end(), {"--branch", ref});
  shallow.insert(shallow.end(), {"--", url, tmp.string()});
  auto r = run_git(shallow, timeout);
  if (r.started && !r.timed_out && r.exit_code == 0) return install(tmp, dest);
  force_remove(tmp);
  if (!r.started || r.timed_out || ref.empty()) return git_failure(what, r, url, timeout);

  // --branch takes branches and tags only: a commit needs the full history.
  auto full = run_git({"-c", "protocol.ext.allow=never", "clone", "--quiet", "--no-checkout", "--",
                       url, tmp.string()},
                      timeout);
  if (!(full.started && !full.timed_out && full.exit_code == 0)) {
    force_remove(tmp);
    return git_failure(what, full, url, timeout);
  }
  auto co = run_git({"-C", tmp.string(), "-c", "advice.detachedHead=false", "checkout", "--quiet",
                     "--detach", ref, "--"},
                    timeout);
  if (!(co.started && !co.timed_out && co.exit_code == 0)) {
    force_remove(tmp);
    if (co.started && !co.timed_out)
      return status::not_found(fmt::format("git ref '{}' not found in {}: {}", ref, mask_url(url),
                                           summarize(co.output, url)));
    return git_failure("git checkout " + ref, co, url, timeout);
  }
  return install(tmp, dest);
}

}  // namespace

std::string mask_url_credentials(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto host_start = scheme + 3;
  auto slash = url.find('/', host_start);
  auto at = url.rfind('@', slash == std::string::npos ? std::string::npos : slash);
  if (at == std::string::npos || at < host_start) return url;
  return url.substr(0, host_start) + "***" + url.substr(at);
}

status snapshot_source(const std::string& source_path, const std::string& git_url,
                       const std::string& git_ref, const fs::path& dest,
                       std::chrono::seconds git_timeout) {
  if (source_path.empty() == git_url.empty())
    return status::invalid_argument("a source needs exactly one of a path or a git url");
  fs::path d = clean_dest(dest);
  if (d.empty() || d == d.root_path() || d.filename() == "." || d.filename() == "..")
    return status::invalid_argument(fmt::format("invalid snapshot dest '{}'", dest.string()));
  if (!source_path.empty()) return snapshot_local(source_path, d);
  return snapshot_git(git_url, git_ref, d, git_timeout);
}

}  // namespace berth
