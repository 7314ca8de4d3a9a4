#include "runtime/process_driver.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace berth {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

const char* to_string(process_status s) {
  switch (s) {
    case process_status::running: return "running";
    case process_status::exited: return "exited";
    case process_status::not_found: return "not_found";
  }
  return "unknown";
}

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr size_t kMaxExitedKept = 1024;            // exit statuses remembered for our children
constexpr auto kKillWait = std::chrono::milliseconds(5000);  // bound after SIGKILL
constexpr int kSweepMs = 10;                       // fallback polling period

// ---------------------------------------------------------------------------------------
// /proc

struct proc_stat {
  char state = '?';
  int pgrp = 0;
  uint64_t start_time = 0;
  int exit_code = -1;  // field 52, raw wait status; -1 if not shown
};

std::optional<proc_stat> read_proc_stat(int pid) {
  if (pid <= 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[2048];
  ssize_t n;
  do n = ::read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  char* p = static_cast<char*>(::memrchr(buf, ')', static_cast<size_t>(n)));
  if (!p) return std::nullopt;
  ++p;
  proc_stat st;
  // Tokens after ')': index 0 = field 3 (state), 2 = field 5 (pgrp), 19 = field 22
  // (starttime), 49 = field 52 (exit_code).
  int idx = 0;
  char* save = nullptr;
  for (char* tok = ::strtok_r(p, " \n", &save); tok; tok = ::strtok_r(nullptr, " \n", &save), ++idx) {
    if (idx == 0) st.state = tok[0];
    else if (idx == 2) st.pgrp = std::atoi(tok);
    else if (idx == 19) st.start_time = std::strtoull(tok, nullptr, 10);
    else if (idx == 49) { st.exit_code = std::atoi(tok); break; }
  }
  if (idx < 19) return std::nullopt;
  return st;
}

bool is_dead_state(char s) { return s == 'Z' || s == 'X' || s == 'x'; }

// Live (non-zombie) processes whose process group is pgid.
std::vector<int> scan_live_members(int pgid) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    auto st = read_proc_stat(pid);
    if (st && st->pgrp == pgid && !is_dead_state(st->state)) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

bool is_live_member(int pid, int pgid) {
  auto st = read_proc_stat(pid);
  return st && st->pgrp == pgid && !is_dead_state(st->state);
}

// kill(-pgid, 0) says whether the group has members, zombies included; zombies of another
// parent (orphans waiting for init) are not ours to wait for, so confirm through /proc.
// `known` caches the members seen alive, so /proc is scanned only when they are all gone.
bool group_has_live_members(int pgid, std::vector<int>& known) {
  if (::kill(-pgid, 0) == -1 && errno == ESRCH) return false;
  for (int p : known)
    if (is_live_member(p, pgid)) return true;
  known = scan_live_members(pgid);
  return !known.empty();
}

int pidfd_open(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

void fill_from_wait_status(int ws, process_info* info) {
  info->status = process_status::exited;
  if (WIFEXITED(ws)) {
    info->exit_code = WEXITSTATUS(ws);
    info->term_signal = 0;
  } else if (WIFSIGNALED(ws)) {
    info->exit_code = -1;
    info->term_signal = WTERMSIG(ws);
  }
}

process_info inspect_via_proc(const process_handle& h) {
  process_info info;
  auto st = read_proc_stat(h.pid);
  if (!st || st->start_time != h.start_time) return info;  // not_found
  if (is_dead_state(st->state)) {
    info.status = process_status::exited;
    if (st->exit_code >= 0) fill_from_wait_status(st->exit_code, &info);
    return info;
  }
  info.status = process_status::running;
  return info;
}

// ---------------------------------------------------------------------------------------
// The process-wide table of children started by any process_driver, and their reaper.

class child_registry {
 public:
  static child_registry& get() {
    static child_registry* r = new child_registry;  // never destroyed: the thread outlives main
    return *r;
  }

  void add(int pid, uint64_t start_time, int pgid) {
    int pidfd = epfd_ >= 0 ? pidfd_open(pid) : -1;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(pid);
    if (it != children_.end()) drop_watch_locked(it->second);  // an old, reaped generation
    entry& e = children_[pid];
    e = entry{};
    e.start_time = start_time;
    e.pgid = pgid;
    if (pidfd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<uint64_t>(pid);
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, pidfd, &ev) == 0) {
        e.pidfd = pidfd;
      } else {
        ::close(pidfd);
      }
    }
    if (e.pidfd < 0) {
      ++unwatched_live_;
      wake_locked();
    }
  }

  // True if h is a child we started (same start time); fills *info (after a non-blocking
  // reap attempt).
  bool inspect(const process_handle& h, process_info* info) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(h.pid);
    if (it == children_.end() || it->second.start_time != h.start_time) return false;
    harvest_locked(it->first, it->second);
    *info = info_of(it->second);
    return true;
  }

  // True if h is our child; then blocks until it has been reaped or the deadline passes.
  bool wait(const process_handle& h, clock_type::time_point deadline, process_info* info) {
    std::unique_lock<std::mutex> lock(mu_);
    auto mine = [&] {
      auto it = children_.find(h.pid);
      return it != children_.end() && it->second.start_time == h.start_time;
    };
    if (!mine()) return false;
    harvest_locked(h.pid, children_[h.pid]);
    cv_.wait_until(lock, deadline, [&] { return !mine() || children_[h.pid].exited; });
    if (!mine()) {  // evicted meanwhile (very old): report what /proc says
      lock.unlock();
      *info = inspect_via_proc(h);
      return true;
    }
    *info = info_of(children_[h.pid]);
    return true;
  }

  enum class liveness { not_child, alive, dead };
  liveness alive(const process_handle& h) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(h.pid);
    if (it == children_.end() || it->second.start_time != h.start_time) return liveness::not_child;
    harvest_locked(it->first, it->second);
    return it->second.exited ? liveness::dead : liveness::alive;
  }

  // Signals h if it is our child and not yet reaped. Holding the lock keeps the pid from
  // being reaped (and so reused) between the check and kill().
  liveness signal(const process_handle& h, int sig) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(h.pid);
    if (it == children_.end() || it->second.start_time != h.start_time) return liveness::not_child;
    if (it->second.exited) return liveness::dead;
    ::kill(h.pid, sig);
    return liveness::alive;
  }

  // Reaps members of a group we created that became our children (the leader, or orphans
  // when berth is a subreaper or PID 1). Never touches other children.
  void reap_group(int pgid) {
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {
      int ws = 0;
      pid_t r = ::waitpid(-pgid, &ws, WNOHANG);
      if (r <= 0) break;
      auto it = children_.find(r);
      if (it != children_.end() && !it->second.exited) record_locked(r, it->second, ws, true);
    }
  }

 private:
  struct entry {
    uint64_t start_time = 0;
    int pgid = 0;
    int pidfd = -1;
    bool exited = false;
    bool status_known = false;
    int wait_status = 0;
  };

  child_registry() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    evfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epfd_ >= 0 && evfd_ >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kWakeKey;
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0) {
        close_fd(epfd_);
        epfd_ = -1;
      }
    } else {
      close_fd(epfd_);
      epfd_ = -1;
    }
    // Probe pidfd support once (seccomp or old kernels): without it, sweep every 10 ms.
    if (epfd_ >= 0) {
      int fd = pidfd_open(::getpid());
      if (fd < 0) {
        ::close(epfd_);
        epfd_ = -1;
      } else {
        ::close(fd);
      }
    }
    std::thread([this] { loop(); }).detach();
  }

  static constexpr uint64_t kWakeKey = ~uint64_t{0};

  static process_info info_of(const entry& e) {
    process_info info;
    if (!e.exited) {
      info.status = process_status::running;
    } else if (e.status_known) {
      fill_from_wait_status(e.wait_status, &info);
    } else {
      info.status = process_status::exited;  // reaped elsewhere: code unknown
    }
    return info;
  }

  void wake_locked() {
    if (evfd_ >= 0) {
      uint64_t one = 1;
      ssize_t w = ::write(evfd_, &one, sizeof one);
      (void)w;
    }
    loop_cv_.notify_one();
  }

  void drop_watch_locked(entry& e) {
    if (e.pidfd >= 0) {
      ::epoll_ctl(epfd_, EPOLL_CTL_DEL, e.pidfd, nullptr);
      ::close(e.pidfd);
      e.pidfd = -1;
    } else if (!e.exited && unwatched_live_ > 0) {
      --unwatched_live_;
    }
  }

  void record_locked(int pid, entry& e, int ws, bool known) {
    drop_watch_locked(e);
    e.exited = true;
    e.status_known = known;
    e.wait_status = ws;
    exited_.emplace_back(pid, e.start_time);
    while (exited_.size() > kMaxExitedKept) {
      auto [old_pid, old_start] = exited_.front();
      exited_.pop_front();
      auto it = children_.find(old_pid);
      if (it != children_.end() && it->second.exited && it->second.start_time == old_start)
        children_.erase(it);
    }
    cv_.notify_all();
  }

  // Non-blocking reap of one child.
  void harvest_locked(int pid, entry& e) {
    if (e.exited) return;
    int ws = 0;
    pid_t r;
    do r = ::waitpid(pid, &ws, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == pid) record_locked(pid, e, ws, true);
    else if (r < 0 && errno == ECHILD) record_locked(pid, e, 0, false);  // someone else reaped it
  }

  void sweep_locked() {
    for (auto& [pid, e] : children_)
      if (!e.exited && e.pidfd < 0) harvest_locked(pid, e);
  }

  void loop() {
    if (epfd_ < 0) {  // no pidfd/epoll: sweep every 10 ms while we have live children
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        loop_cv_.wait(lock, [&] { return unwatched_live_ > 0; });
        sweep_locked();
        loop_cv_.wait_for(lock, std::chrono::milliseconds(kSweepMs));
      }
    }
    epoll_event evs[64];
    for (;;) {
      int timeout;
      {
        std::lock_guard<std::mutex> lock(mu_);
        timeout = unwatched_live_ > 0 ? kSweepMs : -1;
      }
      int n = ::epoll_wait(epfd_, evs, 64, timeout);
      if (n < 0 && errno != EINTR) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kSweepMs));
        continue;
      }
      bool stalled = false;
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.u64 == kWakeKey) {
          uint64_t v;
          while (::read(evfd_, &v, sizeof v) > 0) {
          }
          continue;
        }
        int pid = static_cast<int>(evs[i].data.u64);
        auto it = children_.find(pid);
        if (it == children_.end()) continue;
        harvest_locked(pid, it->second);
        if (!it->second.exited) stalled = true;  // readable but not yet reapable
      }
      if (unwatched_live_ > 0) sweep_locked();
      if (stalled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;       // a child was reaped
  std::condition_variable loop_cv_;  // fallback loop wake-up
  std::unordered_map<int, entry> children_;
  std::deque<std::pair<int, uint64_t>> exited_;
  size_t unwatched_live_ = 0;  // live children without a pidfd (swept every 10 ms)
  int epfd_ = -1;
  int evfd_ = -1;
};

// Signals the process of h (never a different process that reuses its pid). Returns false
// if it is gone.
bool signal_process(const process_handle& h, int sig) {
  auto r = child_registry::get().signal(h, sig);
  if (r != child_registry::liveness::not_child) return r == child_registry::liveness::alive;
  int fd = pidfd_open(h.pid);
  if (fd >= 0) {  // pin the process, then check it is the one of the handle
    auto st = read_proc_stat(h.pid);
    bool ok = st && st->start_time == h.start_time && !is_dead_state(st->state);
    if (ok) ::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
    ::close(fd);
    return ok;
  }
  auto st = read_proc_stat(h.pid);
  if (!st || st->start_time != h.start_time || is_dead_state(st->state)) return false;
  ::kill(h.pid, sig);
  return true;
}

bool leader_alive(const process_handle& h) {
  auto r = child_registry::get().alive(h);
  if (r != child_registry::liveness::not_child) return r == child_registry::liveness::alive;
  return inspect_via_proc(h).status == process_status::running;
}

// ---------------------------------------------------------------------------------------
// start() helpers

// Opens with O_CLOEXEC and makes sure the fd is >= 3, so that dup2 onto 0/1/2 in the child
// never clobbers another source fd.
int open_high(const char* path, int flags, mode_t mode) {
  int fd = ::open(path, flags | O_CLOEXEC, mode);
  if (fd >= 0 && fd < 3) {
    int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::close(fd);
    fd = high;
  }
  return fd;
}

struct child_error {
  int stage;
  int err;
};
enum stage : int { stage_setsid = 1, stage_chdir, stage_dup, stage_exec };

const char* stage_name(int s) {
  switch (s) {
    case stage_setsid: return "setsid";
    case stage_chdir: return "chdir";
    case stage_dup: return "dup2";
    case stage_exec: return "exec";
  }
  return "child setup";
}

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// In the child (async-signal-safe only): marks every fd >= 3 close-on-exec.
void child_cloexec_from_3() {
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  int dfd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    alignas(8) char buf[4096];
    for (;;) {
      long n = ::syscall(SYS_getdents64, dfd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<linux_dirent64*>(buf + off);
        off += d->d_reclen;
        int fd = 0;
        bool num = d->d_name[0] != '\0';
        for (const char* c = d->d_name; *c; ++c) {
          if (*c < '0' || *c > '9') { num = false; break; }
          fd = fd * 10 + (*c - '0');
        }
        if (num && fd >= 3 && fd != dfd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    ::close(dfd);
    return;
  }
  rlimit rl{};
  long max = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<long>(rl.rlim_cur) : 1024;
  if (max > 65536 || max < 0) max = 65536;
  for (int fd = 3; fd < max; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

[[noreturn]] void child_fail(int pipe_fd, int stage) {
  child_error e{stage, errno};
  ssize_t w = ::write(pipe_fd, &e, sizeof e);
  (void)w;
  ::_exit(127);
}

}  // namespace

const std::vector<std::string>& process_driver::inherited_env_names() {
  static const std::vector<std::string> names = {"PATH",   "HOME", "USER",     "LOGNAME",
                                                 "SHELL",  "LANG", "LANGUAGE", "LC_ALL",
                                                 "LC_CTYPE", "TZ", "TMPDIR"};
  return names;
}

// ---------------------------------------------------------------------------------------

status process_driver::start(const process_spec& spec, process_handle* out) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return status::invalid_argument("start: empty argv");
  for (const auto& a : spec.argv)
    if (a.find('\0') != std::string::npos)
      return status::invalid_argument("start: NUL byte in argv");

  // Environment: the inherited minimum, then the caller's entries.
  std::map<std::string, std::string> env;
  for (const auto& name : inherited_env_names())
    if (const char* v = std::getenv(name.c_str())) env[name] = v;
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos)
      return status::invalid_argument(fmt::format("start: bad environment variable '{}'", k));
    env[k] = v;
  }
  if (env.find("PATH") == env.end()) env["PATH"] = kDefaultPath;

  // Everything the child needs is prepared now: after fork only async-signal-safe calls.
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  std::vector<char*> argv;
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  // execvp semantics, with the child's PATH: candidates tried in order.
  std::vector<std::string> candidates;
  const std::string& prog = spec.argv[0];
  if (prog.find('/') != std::string::npos) {
    candidates.push_back(prog);
  } else {
    const std::string& path = env["PATH"];
    size_t begin = 0;
    for (;;) {
      size_t end = path.find(':', begin);
      std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
      candidates.push_back(dir.empty() ? prog : dir + "/" + prog);
      if (end == std::string::npos) break;
      begin = end + 1;
    }
  }
  std::vector<const char*> cand_ptrs;
  for (auto& c : candidates) cand_ptrs.push_back(c.c_str());

  // Standard streams, opened here so that errors are reported plainly.
  int in_fd = open_high("/dev/null", O_RDONLY, 0);
  if (in_fd < 0) return status::io_error(fmt::format("open /dev/null: {}", std::strerror(errno)));
  auto open_log = [](const std::string& p) {
    return p.empty() ? open_high("/dev/null", O_WRONLY, 0)
                     : open_high(p.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  };
  int out_fd = open_log(spec.stdout_path);
  if (out_fd < 0) {
    int err = errno;
    ::close(in_fd);
    return status::io_error(fmt::format("open {}: {}", spec.stdout_path, std::strerror(err)));
  }
  int err_fd = spec.stderr_path == spec.stdout_path ? out_fd : open_log(spec.stderr_path);
  if (err_fd < 0) {
    int err = errno;
    ::close(in_fd);
    ::close(out_fd);
    return status::io_error(fmt::format("open {}: {}", spec.stderr_path, std::strerror(err)));
  }
  auto close_streams = [&] {
    ::close(in_fd);
    ::close(out_fd);
    if (err_fd != out_fd) ::close(err_fd);
  };

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int err = errno;
    close_streams();
    return status::io_error(fmt::format("pipe: {}", std::strerror(err)));
  }
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  // Block all signals across fork so that no handler of berth's runs in the child.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Child.
    const int wfd = pipe_fds[1];
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      struct sigaction sa {};
      sa.sa_handler = SIG_DFL;
      ::sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);  // fails harmlessly for reserved signals
    }
    if (::setsid() < 0) child_fail(wfd, stage_setsid);
    if (cwd && ::chdir(cwd) != 0) child_fail(wfd, stage_chdir);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
      child_fail(wfd, stage_dup);
    child_cloexec_from_3();
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int err = ENOENT;
    bool eacces = false;
    for (const char* c : cand_ptrs) {
      ::execve(c, argv.data(), envp.data());
      err = errno;
      if (err == EACCES) {
        eacces = true;
        continue;
      }
      if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT)
        continue;
      break;
    }
    errno = (eacces && (err == ENOENT || err == ENOTDIR)) ? EACCES : err;
    child_fail(wfd, stage_exec);
  }
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(pipe_fds[1]);
  close_streams();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    return status::io_error(fmt::format("fork: {}", std::strerror(fork_errno)));
  }

  // The child is not reaped until we say so: its /proc entry exists, even as a zombie.
  uint64_t start_time = 0;
  if (auto st = read_proc_stat(pid)) start_time = st->start_time;

  child_error ce{};
  ssize_t n;
  do n = ::read(pipe_fds[0], &ce, sizeof ce);
  while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n > 0) {  // the child reported a failure before or at exec, and exits
    int ws;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    std::string msg = fmt::format("start {}: {}{}: {}", prog, stage_name(ce.stage),
                                  ce.stage == stage_chdir ? " " + spec.cwd : std::string(),
                                  std::strerror(ce.err));
    if (ce.err == ENOENT || ce.err == ENOTDIR) return status::not_found(msg);
    if (ce.err == EINVAL || ce.err == ENOEXEC) return status::invalid_argument(msg);
    return status::io_error(msg);
  }

  child_registry::get().add(pid, start_time, pid);
  if (out) {
    out->pid = pid;
    out->start_time = start_time;
    out->pgid = pid;
  }
  return status::ok();
}

process_info process_driver::inspect(const process_handle& h) const {
  process_info info;
  if (h.pid <= 0) return info;
  if (child_registry::get().inspect(h, &info)) return info;
  return inspect_via_proc(h);
}

bool process_driver::is_ours(const process_handle& h) const {
  auto st = read_proc_stat(h.pid);
  return st && st->start_time == h.start_time;
}

process_info process_driver::wait(const process_handle& h, std::chrono::milliseconds timeout) const {
  process_info info;
  if (h.pid <= 0) return info;
  const auto deadline = clock_type::now() + std::max(timeout, std::chrono::milliseconds(0));
  if (child_registry::get().wait(h, deadline, &info)) return info;

  // Not our child (adopted after a restart): pidfd if possible, else poll /proc.
  int fd = pidfd_open(h.pid);
  if (fd >= 0) {
    info = inspect_via_proc(h);  // checked after pinning the pid with the pidfd
    if (info.status == process_status::running) {
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
        if (r > 0 || (r < 0 && errno != EINTR)) break;
      }
      info = inspect_via_proc(h);
    }
    ::close(fd);
    return info;
  }
  for (;;) {
    info = inspect_via_proc(h);
    if (info.status != process_status::running || clock_type::now() >= deadline) return info;
    std::this_thread::sleep_for(std::chrono::milliseconds(kSweepMs));
  }
}

status process_driver::stop(const process_handle& h, std::chrono::milliseconds grace) {
  if (h.pid <= 0) return status::invalid_argument("stop: no pid");
  const int pgid = h.pgid > 0 ? h.pgid : h.pid;
  if (auto st = read_proc_stat(h.pid); st && st->start_time != h.start_time)
    return status::ok();  // the pid belongs to another process now: ours is long gone

  auto& reg = child_registry::get();
  // Only a group created by start() in this process may hold children of ours; never
  // waitpid() in the group of a process we did not start (it may be someone else's child).
  const bool our_group = reg.alive(h) != child_registry::liveness::not_child;
  std::vector<int> known;
  auto anything_alive = [&] {
    if (our_group) reg.reap_group(pgid);
    bool leader = leader_alive(h);
    return group_has_live_members(pgid, known) || leader;
  };
  auto send = [&](int sig) {
    ::kill(-pgid, sig);
    signal_process(h, sig);  // the leader too, should it have left its group
  };
  auto wait_gone = [&](clock_type::time_point deadline) {
    auto nap = std::chrono::milliseconds(1);
    for (;;) {
      if (!anything_alive()) return true;
      auto now = clock_type::now();
      if (now >= deadline) return false;
      std::this_thread::sleep_for(std::min<clock_type::duration>(nap, deadline - now));
      nap = std::min(nap * 2, std::chrono::milliseconds(20));
    }
  };

  if (!anything_alive()) return status::ok();
  send(SIGTERM);
  if (grace.count() > 0 && wait_gone(clock_type::now() + grace)) return status::ok();
  send(SIGKILL);
  if (wait_gone(clock_type::now() + kKillWait)) return status::ok();
  return status::io_error(fmt::format("stop {}: process group {} still alive after SIGKILL", h.pid, pgid));
}

status process_driver::run(const process_spec& spec, std::chrono::milliseconds timeout, int* exit_code,
                           bool* timed_out, std::chrono::milliseconds kill_grace,
                           const std::function<bool()>& cancelled) {
  if (timed_out) *timed_out = false;
  if (exit_code) *exit_code = -1;
  process_handle h;
  if (auto s = start(spec, &h); !s) return s;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  process_info info;
  for (;;) {  // waits in slices so that a cancel is seen within 100 ms
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto slice = cancelled ? std::min(left, std::chrono::milliseconds(100)) : left;
    info = wait(h, std::max(std::chrono::milliseconds(0), slice));
    if (info.status != process_status::running || left.count() <= 0) break;
    if (cancelled && cancelled()) {
      stop(h, kill_grace);
      return status::io_error(fmt::format("cancelled: {} was stopped", spec.argv[0]));
    }
  }
  if (info.status == process_status::running) {
    stop(h, kill_grace);
    if (timed_out) *timed_out = true;
    return status::io_error(fmt::format("timeout: {} still running after {} ms", spec.argv[0], timeout.count()));
  }
  // Stray background children left in the group by a finished command.
  std::vector<int> known;
  if (group_has_live_members(h.pgid, known)) stop(h, kill_grace);
  if (exit_code) {
    if (info.term_signal > 0) *exit_code = 128 + info.term_signal;
    else *exit_code = info.exit_code;
  }
  return status::ok();
}

std::vector<std::string> process_driver::tail(const std::string& path, size_t n) {
  std::vector<std::string> lines;
  if (n == 0) return lines;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lines;
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || sb.st_size <= 0) {
    ::close(fd);
    return lines;
  }
  constexpr off_t kChunk = 64 * 1024;
  constexpr off_t kMaxScan = 8 * 1024 * 1024;
  const off_t size = sb.st_size;
  off_t pos = size;
  std::string data;  // the bytes [pos, size)
  size_t newlines = 0;
  bool skip_last = true;  // a '\n' ending the file terminates the last line, no new line
  while (pos > 0 && size - pos < kMaxScan) {
    off_t len = std::min<off_t>(kChunk, pos);
    pos -= len;
    std::string chunk(static_cast<size_t>(len), '\0');
    off_t got = 0;
    while (got < len) {
      ssize_t r = ::pread(fd, chunk.data() + got, static_cast<size_t>(len - got), pos + got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += r;
    }
    if (got < len) {  // the file shrank or failed: use what was read so far
      pos += len;
      break;
    }
    for (off_t i = len - 1; i >= 0; --i) {
      if (chunk[static_cast<size_t>(i)] != '\n') continue;
      if (skip_last && pos + i == size - 1) continue;
      ++newlines;
    }
    data.insert(0, chunk);
    if (newlines >= n) break;
  }
  ::close(fd);
  if (!data.empty() && data.back() == '\n') data.pop_back();
  // Split from the end, keeping at most n lines; a line cut by the scan limit stays partial.
  size_t end = data.size();
  while (lines.size() < n) {
    size_t nl = end == 0 ? std::string::npos : data.rfind('\n', end - 1);
    if (nl == std::string::npos) {
      if (pos == 0 || !data.empty()) lines.push_back(data.substr(0, end));
      break;
    }
    lines.push_back(data.substr(nl + 1, end - nl - 1));
    end = nl;
  }
  std::reverse(lines.begin(), lines.end());
  return lines;
}

}  // namespace berth
