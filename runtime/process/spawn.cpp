// process_driver::start: fork + setsid + execve, with exec failures reported through a
// close-on-exec pipe so that a failed start leaves no process behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "runtime/logs/log_writer.hpp"
#include "runtime/process/exec_gate.hpp"
#include "runtime/process/proc_stat.hpp"
#include "runtime/process/process_driver.hpp"
#include "runtime/process/reaper.hpp"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace berth {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The inherited minimum, then the caller's entries.
status build_env(const process_spec& spec, std::map<std::string, std::string>* env) {
  for (const auto& name : process_driver::inherited_env_names())
    if (const char* v = std::getenv(name.c_str())) (*env)[name] = v;
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos)
      return status::invalid_argument(fmt::format("start: bad environment variable '{}'", k));
    (*env)[k] = v;
  }
  if (env->find("PATH") == env->end()) (*env)["PATH"] = kDefaultPath;
  return status::ok();
}

// execvp semantics with the child's PATH: the candidates, tried in order.
std::vector<std::string> exec_candidates(const std::string& prog, const std::string& path) {
  if (prog.find('/') != std::string::npos) return {prog};
  std::vector<std::string> out;
  size_t begin = 0;
  for (;;) {
    size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    out.push_back(dir.empty() ? prog : dir + "/" + prog);
    if (end == std::string::npos) return out;
    begin = end + 1;
  }
}

// Everything the child needs, prepared before fork: after it, only async-signal-safe calls.
struct exec_plan {
  std::vector<std::string> env_strings, argv_strings, candidates;
  std::vector<char*> envp, argv;
  std::vector<const char*> cand_ptrs;
  const char* cwd = nullptr;
};

void make_plan(const process_spec& spec, const std::map<std::string, std::string>& env, exec_plan* p) {
  for (const auto& [k, v] : env) p->env_strings.push_back(k + "=" + v);
  for (auto& s : p->env_strings) p->envp.push_back(s.data());
  p->envp.push_back(nullptr);
  p->argv_strings = spec.argv;
  for (auto& s : p->argv_strings) p->argv.push_back(s.data());
  p->argv.push_back(nullptr);
  p->candidates = exec_candidates(spec.argv[0], env.at("PATH"));
  for (auto& c : p->candidates) p->cand_ptrs.push_back(c.c_str());
  p->cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
}

// The log writer of a rotated log: prepared before fork, started by the child (so that it lives
// in the child's session and process group) with the pipe's read end as its stdin. The small
// berth-log-writer beside berth's binary when there is one (its exec costs ~1 ms, berth's ~20:
// one runs per app), else `berth log-writer`.
struct writer_plan {
  int small_fd = -1;  // berth-log-writer, opened O_PATH once: exec'd through the fd
  std::string exe;
  std::vector<std::string> small_strings, argv_strings;
  std::vector<char*> small_argv, argv;
  int read_fd = -1;
};

// Opened once, so that an upgrade that replaces or removes the file later changes nothing for
// berth's running image; -1 when there is none.
int small_writer_fd() {
  static const int fd = [] {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    std::string dir(self, static_cast<size_t>(n));
    dir.erase(dir.rfind('/') + 1);
    int f = ::open((dir + log_writer_binary).c_str(), O_PATH | O_CLOEXEC);
    if (f >= 0 && f < 3) {  // never 0-2: the child dup2s onto those
      int high = ::fcntl(f, F_DUPFD_CLOEXEC, 3);
      ::close(f);
      f = high;
    }
    return f;
  }();
  return fd;
}

status make_writer_plan(const process_spec& spec, writer_plan* w) {
  std::vector<std::string> args = {"--max-bytes", std::to_string(spec.log_max_bytes), "--files",
                                   std::to_string(spec.log_files), spec.stdout_path};
  w->small_fd = small_writer_fd();
  w->small_strings = {log_writer_binary};
  w->small_strings.insert(w->small_strings.end(), args.begin(), args.end());
  for (auto& a : w->small_strings) w->small_argv.push_back(a.data());
  w->small_argv.push_back(nullptr);
  // The writer is forked from berth and not yet exec'd: /proc/self/exe is berth's image, even
  // when the file was replaced by an upgrade meanwhile.
  w->exe = "/proc/self/exe";
  w->argv_strings = {"berth", "log-writer"};
  w->argv_strings.insert(w->argv_strings.end(), args.begin(), args.end());
  for (auto& a : w->argv_strings) w->argv.push_back(a.data());
  w->argv.push_back(nullptr);
  return status::ok();
}

// O_CLOEXEC and >= 3, so that dup2 onto 0/1/2 in the child never clobbers another source.
int open_high(const char* path, int flags, mode_t mode) {
  int fd = ::open(path, flags | O_CLOEXEC, mode);
  if (fd >= 0 && fd < 3) {
    int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::close(fd);
    fd = high;
  }
  return fd;
}

struct std_streams {
  int in = -1, out = -1, err = -1;
  std::vector<int> cgroups;  // cgroup.procs of the groups to join
  void close() {
    detail::close_fd(in);
    detail::close_fd(out);
    if (err != out) detail::close_fd(err);
    for (int& fd : cgroups) detail::close_fd(fd);
    cgroups.clear();
    in = out = err = -1;
  }
};

// Opened in the parent, so that errors are reported plainly. With a log writer, stdout and
// stderr are the write end of a pipe whose read end goes to w->read_fd.
status open_streams(const process_spec& spec, std_streams* s, writer_plan* w) {
  auto open_log = [](const std::string& p) {
    return p.empty() ? open_high("/dev/null", O_WRONLY, 0) : open_high(p.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  };
  auto fail = [&](const std::string& what) {
    int err = errno;
    s->close();
    return status::io_error(fmt::format("open {}: {}", what, std::strerror(err)));
  };
  if ((s->in = open_high("/dev/null", O_RDONLY, 0)) < 0) return fail("/dev/null");
  if (w != nullptr) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail("a pipe for the log writer");
    w->read_fd = ::fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
    s->out = s->err = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
    ::close(fds[0]);
    ::close(fds[1]);
    if (w->read_fd < 0 || s->out < 0) return fail("a pipe for the log writer");
  } else {
    if ((s->out = open_log(spec.stdout_path)) < 0) return fail(spec.stdout_path);
    s->err = spec.stderr_path == spec.stdout_path ? s->out : open_log(spec.stderr_path);
    if (s->err < 0) return fail(spec.stderr_path);
  }
  for (const auto& procs : spec.cgroup_join) {
    int fd = open_high(procs.c_str(), O_WRONLY, 0);
    if (fd < 0) return fail(procs);
    s->cgroups.push_back(fd);
  }
  return status::ok();
}

struct child_error {
  int stage;
  int err;
};
enum stage : int { stage_setsid = 1, stage_chdir, stage_dup, stage_exec, stage_cgroup };

const char* stage_name(int s) {
  switch (s) {
    case stage_setsid: return "setsid";
    case stage_chdir: return "chdir";
    case stage_dup: return "dup2";
    case stage_exec: return "exec";
    case stage_cgroup: return "joining its cgroup";
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
    long n;
    while ((n = ::syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<linux_dirent64*>(buf + off);
        off += d->d_reclen;
        int fd = 0;
        bool num = d->d_name[0] != '\0';
        for (const char* c = d->d_name; *c && num; ++c) {
          num = *c >= '0' && *c <= '9';
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

// In the child, after fork: a new session, cwd, streams, then exec (or report and exit).
// In the child, after setsid: forks the log writer (stdin: the pipe; stdout/stderr: /dev/null).
void start_log_writer(const writer_plan& w, const std_streams& s, int wfd) {
  pid_t pid = ::fork();
  if (pid < 0) child_fail(wfd, stage_dup);
  if (pid > 0) return;
  if (::dup2(w.read_fd, 0) < 0 || ::dup2(s.in, 1) < 0 || ::dup2(s.in, 2) < 0) ::_exit(127);
  // Not in the app's folder: it holds nothing there but its log, and is no app process.
  if (::chdir("/") != 0) ::_exit(127);
  child_cloexec_from_3();  // the pipe's write end included: end of input once the app is gone
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  char* no_env[] = {nullptr};
  if (w.small_fd >= 0) ::syscall(SYS_execveat, w.small_fd, "", w.small_argv.data(), no_env, AT_EMPTY_PATH);
  ::execve(w.exe.c_str(), w.argv.data(), no_env);
  ::_exit(127);
}

[[noreturn]] void exec_child(const exec_plan& p, const std_streams& s, int wfd, const writer_plan* w) {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);  // fails harmlessly for reserved signals
  }
  if (::setsid() < 0) child_fail(wfd, stage_setsid);
  if (p.cwd && ::chdir(p.cwd) != 0) child_fail(wfd, stage_chdir);
  // The log writer is berth's, not the app's: forked before the child joins the app's group.
  if (w != nullptr) start_log_writer(*w, s, wfd);
  // Its group before exec: everything the program does counts against its limits.
  for (int fd : s.cgroups)
    if (::write(fd, "0", 1) != 1) child_fail(wfd, stage_cgroup);
  if (::dup2(s.in, 0) < 0 || ::dup2(s.out, 1) < 0 || ::dup2(s.err, 2) < 0) child_fail(wfd, stage_dup);
  child_cloexec_from_3();
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int err = ENOENT;
  bool eacces = false;
  for (const char* c : p.cand_ptrs) {
    ::execve(c, p.argv.data(), p.envp.data());
    err = errno;
    if (err == EACCES) {
      eacces = true;
      continue;
    }
    if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV && err != ETIMEDOUT) break;
  }
  errno = (eacces && (err == ENOENT || err == ENOTDIR)) ? EACCES : err;
  child_fail(wfd, stage_exec);
}

status child_failure(const process_spec& spec, const child_error& ce) {
  std::string msg = fmt::format("start {}: {}{}: {}", spec.argv[0], stage_name(ce.stage),
                                ce.stage == stage_chdir ? " " + spec.cwd : std::string(), std::strerror(ce.err));
  if (ce.err == ENOENT || ce.err == ENOTDIR) return status::not_found(msg);
  if (ce.err == EINVAL || ce.err == ENOEXEC) return status::invalid_argument(msg);
  return status::io_error(msg);
}

}  // namespace

const std::vector<std::string>& process_driver::inherited_env_names() {
  static const std::vector<std::string> names = {"PATH", "HOME", "USER",   "LOGNAME", "SHELL", "LANG",
                                                 "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"};
  return names;
}

status process_driver::start(const process_spec& spec, process_handle* out) {
  if (spec.argv.empty() || spec.argv[0].empty()) return status::invalid_argument("start: empty argv");
  for (const auto& a : spec.argv)
    if (a.find('\0') != std::string::npos) return status::invalid_argument("start: NUL byte in argv");
  std::map<std::string, std::string> env;
  if (auto s = build_env(spec, &env); !s) return s;
  exec_plan plan;
  make_plan(spec, env, &plan);
  writer_plan writer;
  bool rotated = spec.log_max_bytes > 0 && !spec.stdout_path.empty() && spec.stderr_path == spec.stdout_path;
  if (rotated)
    if (auto s = make_writer_plan(spec, &writer); !s) return s;
  std_streams streams;
  if (auto s = open_streams(spec, &streams, rotated ? &writer : nullptr); !s) {
    detail::close_fd(writer.read_fd);
    return s;
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int err = errno;
    streams.close();
    detail::close_fd(writer.read_fd);
    return status::io_error(fmt::format("pipe: {}", std::strerror(err)));
  }

  // No file that may be exec'd is open for writing from the fork until the child has exec'd
  // (runtime/process/exec_gate.hpp).
  std::optional<exec_gate_scope> gate;
  gate.emplace(exec_gate::kind::fork);
  // All signals blocked across fork, so that no handler of berth's runs in the child.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) exec_child(plan, streams, pipe_fds[1], rotated ? &writer : nullptr);
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(pipe_fds[1]);
  streams.close();
  detail::close_fd(writer.read_fd);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    return status::io_error(fmt::format("fork: {}", std::strerror(fork_errno)));
  }

  // Not reaped until registered: its /proc entry exists, even as a zombie.
  uint64_t start_time = 0;
  if (auto st = detail::read_proc_stat(pid)) start_time = st->start_time;
  child_error ce{};
  ssize_t n;
  do n = ::read(pipe_fds[0], &ce, sizeof ce);
  while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  gate.reset();  // it has exec'd (or failed): its copies of berth's fds are closed
  if (n > 0) {  // the child failed before or at exec, and exits
    int ws;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    return child_failure(spec, ce);
  }
  detail::reaper::get().add(pid, start_time, pid);
  if (out) *out = process_handle{pid, start_time, pid};
  return status::ok();
}

}  // namespace berth
