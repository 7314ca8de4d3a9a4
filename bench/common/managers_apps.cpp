#include "bench/common/managers_apps.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

extern char** environ;

namespace berth::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

#ifndef BENCH_PYTHON_APP
#define BENCH_PYTHON_APP ""
#endif
#ifndef BENCH_NODE_APP
#define BENCH_NODE_APP ""
#endif

const char* kind_name(app_kind k) {
  switch (k) {
    case app_kind::native: return "native";
    case app_kind::python: return "python";
    case app_kind::node: return "node";
  }
  return "?";
}

std::vector<std::string> write_app(app_kind k, const app_programs& progs, const std::string& dir,
                                   const std::string& version) {
  fs::create_directories(dir);
  std::ofstream(dir + "/VERSION") << version << "\n";
  auto copy = [&](const std::string& from, const std::string& to) {
    fs::copy_file(from, dir + "/" + to, fs::copy_options::overwrite_existing);
    fs::permissions(dir + "/" + to, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                        fs::perms::others_read | fs::perms::others_exec);
  };
  switch (k) {
    case app_kind::native:
      copy(progs.tiny_http, "tiny_http");
      return {"./tiny_http", "VERSION"};
    case app_kind::python:
      copy(BENCH_PYTHON_APP, "server.py");
      return {progs.python, "server.py"};
    case app_kind::node:
      copy(BENCH_NODE_APP, "server.js");
      return {progs.node, "server.js"};
  }
  return {};
}

bool answers(uint16_t port, std::chrono::milliseconds timeout) {
  httplib::Client cli("127.0.0.1", port);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  cli.set_connection_timeout(us / 1000000, us % 1000000);
  cli.set_read_timeout(us / 1000000, us % 1000000);
  cli.set_keep_alive(false);
  auto r = cli.Get("/health");
  return r && r->status == 200;
}

namespace {

// Each thread owns ports i, i+n, i+2n...; a port leaves its list once `done(port)` holds.
template <class Done>
bool poll_ports(const std::vector<uint16_t>& ports, steady_clock::time_point deadline, Done done) {
  const size_t threads = std::min<size_t>(4, std::max<size_t>(1, ports.size()));
  std::atomic<bool> late{false};
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<size_t> mine;
      for (size_t i = t; i < ports.size(); i += threads) mine.push_back(i);
      while (!mine.empty()) {
        if (steady_clock::now() > deadline) {
          late = true;
          return;
        }
        std::vector<size_t> left;
        for (size_t i : mine)
          if (!done(i)) left.push_back(i);
        mine.swap(left);
        if (!mine.empty()) std::this_thread::sleep_for(500us);
      }
    });
  for (auto& th : pool) th.join();
  return !late;
}

}  // namespace

double wait_all_answer(const std::vector<uint16_t>& ports, steady_clock::time_point t0,
                       steady_clock::time_point deadline) {
  std::vector<double> first(ports.size(), NAN);
  bool ok = poll_ports(ports, deadline, [&](size_t i) {
    if (!answers(ports[i], 300ms)) return false;
    first[i] = std::chrono::duration<double>(steady_clock::now() - t0).count();
    return true;
  });
  if (!ok) return NAN;
  double last = 0;
  for (double f : first) last = std::max(last, f);
  return last;
}

bool wait_none_answer(const std::vector<uint16_t>& ports, steady_clock::time_point deadline) {
  return poll_ports(ports, deadline, [&](size_t i) { return !answers(ports[i], 300ms); });
}

std::vector<uint16_t> free_port_block(int count, uint16_t lo, uint16_t hi, uint32_t random) {
  auto bindable = [](uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  };
  int span = hi - lo;
  if (count <= 0 || span < count) return {};
  for (int attempt = 0; attempt < 50; ++attempt) {
    int start = lo + static_cast<int>((random + attempt * 7919u) % static_cast<uint32_t>(span - count + 1));
    std::vector<uint16_t> block;
    for (int p = start; p < start + count && bindable(static_cast<uint16_t>(p)); ++p)
      block.push_back(static_cast<uint16_t>(p));
    if (static_cast<int>(block.size()) == count) return block;
  }
  return {};
}

pid_t listener_pid(uint16_t port) {
  // /proc/net/tcp rows: "sl local_address rem_address st ... inode"; st 0A = LISTEN.
  std::string inode;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (inode.empty() && std::getline(in, line)) {
      std::istringstream row(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout, ino;
      row >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> ino;
      auto colon = local.rfind(':');
      if (st != "0A" || colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inode = ino;
    }
  }
  if (inode.empty()) return -1;
  const std::string want = "socket:[" + inode + "]";
  DIR* proc = ::opendir("/proc");
  if (!proc) return -1;
  pid_t found = -1;
  while (dirent* e = ::readdir(proc)) {
    if (found > 0) break;
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string fd_dir = std::string("/proc/") + e->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* f = ::readdir(fds)) {
      char target[64];
      ssize_t n = ::readlinkat(::dirfd(fds), f->d_name, target, sizeof target - 1);
      if (n <= 0) continue;
      if (want.compare(0, want.size(), target, static_cast<size_t>(n)) == 0 && static_cast<size_t>(n) == want.size()) {
        found = static_cast<pid_t>(pid);
        break;
      }
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return found;
}

double rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 16, '\n');
  }
  return NAN;
}

pid_t spawn_in(const std::vector<std::string>& argv, const std::string& cwd,
               const std::map<std::string, std::string>& env, const std::string& log, std::string* error) {
  std::vector<std::string> envs;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto key = kv.substr(0, kv.find('='));
    if (key.rfind("BERTH_", 0) != 0 && !env.count(key)) envs.push_back(kv);
  }
  for (auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> args, envp;
  for (auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  for (auto& s : envs) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || null_fd < 0) {
    *error = "cannot open " + log;
    if (fd >= 0) ::close(fd);
    if (null_fd >= 0) ::close(null_fd);
    return -1;
  }
  const std::string program = argv.at(0);  // absolute, or relative to cwd: execve, no PATH search
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Its own session, as berth's apps, pm2's (detached) and a daemonized supervisord have: with
    // autogroup scheduling each session gets its own CPU share on a busy machine.
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(program.c_str(), args.data(), envp.data());
    ::_exit(127);
  }
  int err = errno;
  ::close(fd);
  ::close(null_fd);
  if (pid < 0) *error = std::string("fork: ") + std::strerror(err);
  return pid;
}

int wait_child(pid_t pid, std::chrono::milliseconds limit) {
  auto until = steady_clock::now() + limit;
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0 && errno != EINTR) return -1;
    if (steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(2ms);
  }
}

void bare_apps::start(const std::vector<std::string>& dirs, const std::vector<std::vector<std::string>>& argvs,
                      const std::vector<uint16_t>& ports) {
  for (size_t i = 0; i < dirs.size(); ++i) {
    std::string error;
    pids_.push_back(spawn_in(argvs[i], dirs[i], {{"PORT", std::to_string(ports[i])}, {"HOST", "127.0.0.1"}},
                             dirs[i] + "/bare.log", &error));
  }
}

void bare_apps::stop() {
  for (pid_t p : pids_)
    if (p > 0) ::kill(p, SIGKILL);
  for (pid_t p : pids_)
    if (p > 0) {
      int st = 0;
      while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
      }
    }
  pids_.clear();
}

double boot_ms(const std::string& dir, const std::vector<std::string>& argv, uint16_t port) {
  std::string error;
  auto t0 = steady_clock::now();
  pid_t pid = spawn_in(argv, dir, {{"PORT", std::to_string(port)}, {"HOST", "127.0.0.1"}}, dir + "/boot.log", &error);
  if (pid < 0) return NAN;
  double ms = NAN;
  while (steady_clock::now() - t0 < 10s) {
    if (answers(port, 300ms)) {
      ms = std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count();
      break;
    }
    std::this_thread::sleep_for(200us);
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return ms;
}

}  // namespace berth::bench
