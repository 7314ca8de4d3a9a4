#include "runtime/source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

status copy_file(const fs::path& from, const fs::path& to, mode_t mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return status::io_error(fmt::format("open {}: {}", from.string(), errstr(errno)));
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return status::io_error(fmt::format("create {}: {}", to.string(), errstr(err)));
  }
  std::vector<char> buf(1 << 16);
  status result;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      result = status::io_error(fmt::format("read {}: {}", from.string(), errstr(errno)));
      break;
    }
    if (n == 0) break;
    const char* p = buf.data();
    size_t left = static_cast<size_t>(n);
    while (left > 0 && result) {
      ssize_t w = ::write(out, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        result = status::io_error(fmt::format("write {}: {}", to.string(), errstr(errno)));
        break;
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
    if (!result) break;
  }
  ::close(in);
  if (result && ::fchmod(out, mode) != 0)
    result = status::io_error(fmt::format("chmod {}: {}", to.string(), errstr(errno)));
  if (::close(out) != 0 && result)
    result = status::io_error(fmt::format("write {}: {}", to.string(), errstr(errno)));
  return result;
}

// Copies the contents of directory `from` into the existing directory `to`.
status copy_tree(const fs::path& from, const fs::path& to,
                 std::vector<std::pair<fs::path, mode_t>>* dir_modes) {
  std::error_code ec;
  fs::directory_iterator it(from, ec), end;
  if (ec) return status::io_error(fmt::format("list {}: {}", from.string(), ec.message()));
  for (; it != end; it.increment(ec)) {
    auto name = it->path().filename();
    if (name == ".git") continue;
    fs::path src = from / name, dst = to / name;
    struct stat st;
    if (::lstat(src.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // vanished meanwhile
      return status::io_error(fmt::format("stat {}: {}", src.string(), errstr(errno)));
    }
    mode_t mode = st.st_mode & 0777;
    if (S_ISLNK(st.st_mode)) {
      fs::path target = fs::read_symlink(src, ec);
      if (ec) return status::io_error(fmt::format("readlink {}: {}", src.string(), ec.message()));
      if (::symlink(target.c_str(), dst.c_str()) != 0)
        return status::io_error(fmt::format("symlink {}: {}", dst.string(), errstr(errno)));
    } else if (S_ISREG(st.st_mode)) {
      auto s = copy_file(src, dst, mode);
      if (!s) return s;
    } else if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0700) != 0)
        return status::io_error(fmt::format("mkdir {}: {}", dst.string(), errstr(errno)));
      dir_modes->emplace_back(dst, mode);
      auto s = copy_tree(src, dst, dir_modes);
      if (!s) return s;
    }
    // fifos, sockets, devices: not source, skipped.
  }
  if (ec) return status::io_error(fmt::format("list {}: {}", from.string(), ec.message()));
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

  struct stat st;
  if (::stat(src.c_str(), &st) != 0)
    return status::io_error(fmt::format("stat {}: {}", src.string(), errstr(errno)));
  fs::path tmp = temp_sibling(dest, ".tmp-");
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return status::io_error(fmt::format("mkdir {}: {}", tmp.string(), errstr(errno)));
  std::vector<std::pair<fs::path, mode_t>> dir_modes{{tmp, st.st_mode & 0777}};
  auto s = copy_tree(src, tmp, &dir_modes);
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

// https://user:token@host/x -> https://***@host/x
std::string mask_url(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto host_start = scheme + 3;
  auto slash = url.find('/', host_start);
  auto at = url.rfind('@', slash == std::string::npos ? std::string::npos : slash);
  if (at == std::string::npos || at < host_start) return url;
  return url.substr(0, host_start) + "***" + url.substr(at);
}

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
