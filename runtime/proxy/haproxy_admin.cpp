// The runtime API client of haproxy.hpp: commands on the master CLI (show proc, reload) and,
// through it, on each worker ("@!<pid> show map / add map / set map / del map").
#include "runtime/proxy/haproxy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/proxy/haproxy_files.hpp"

namespace berth {

using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr milliseconds kConnectTimeout{1000};
constexpr milliseconds kAnswerTimeout{5000};
constexpr size_t kMaxAnswer = 64u << 20;  // show map of many thousand hosts
constexpr size_t kMaxErrorText = 300;
constexpr size_t kBatch = 200;  // map commands sent on one master CLI connection

using haproxy_files::lower;
std::string ports_map_path(const std::string& dir) { return haproxy_files::ports_map(dir); }
std::string hosts_map_path(const std::string& dir) { return haproxy_files::hosts_map(dir); }
std::string canary_map_path(const std::string& dir) { return haproxy_files::canary_map(dir); }
std::string master_socket(const std::string& dir) { return haproxy_files::master_socket(dir); }

bool only_space(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

std::string short_text(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (s.size() > kMaxErrorText) s = s.substr(0, kMaxErrorText) + "...";
  return s;
}

// A map key the runtime API cannot misread: one word of [A-Za-z0-9._:-].
bool safe_key(const std::string& s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

// A canary.map value as split_value writes it: "<port>:<percent 1-100>:<0|1>".
bool valid_split_value(const std::string& s) {
  unsigned port = 0, percent = 0;
  char sticky = 0, end = 0;
  if (std::sscanf(s.c_str(), "%5u:%3u:%c%c", &port, &percent, &sticky, &end) != 3) return false;
  return port >= 1 && port <= 65535 && percent >= 1 && percent <= 100 && (sticky == '0' || sticky == '1') &&
         s == std::to_string(port) + ":" + std::to_string(percent) + ":" + sticky;
}

// One command on a runtime API socket: connect, send the line, half-close (the master CLI
// keeps a connection open until its peer's EOF), read the answer until EOF.
status run_command(const std::string& socket_path, const std::string& command, std::string* answer) {
  answer->clear();
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return status::invalid_argument("haproxy: socket path too long");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return status::io_error("haproxy: socket: " + fsutil::errstr(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_it{fd};
  // SO_SNDTIMEO bounds a unix connect() that waits for room in a full backlog, and the write.
  timeval tv{static_cast<time_t>(kConnectTimeout.count() / 1000), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return status::io_error("haproxy: cannot connect to its " +
                            std::string(socket_path.size() > 11 &&
                                                socket_path.compare(socket_path.size() - 11, 11, "master.sock") == 0
                                            ? "master"
                                            : "runtime") +
                            " socket: " + fsutil::errstr(errno));
  std::string line = command + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return status::io_error("haproxy: cannot send a command: " + fsutil::errstr(errno));
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  auto deadline = clock_type::now() + kAnswerTimeout;
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now()).count();
    if (left <= 0) return status::io_error("haproxy: no complete answer in 5 s");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return status::io_error("haproxy: poll: " + fsutil::errstr(errno));
    if (r == 0) continue;  // deadline checked above
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // The master closes its CLI connections when it re-executes itself (reload).
      if (errno == ECONNRESET) return status::ok();
      return status::io_error("haproxy: read: " + fsutil::errstr(errno));
    }
    if (n == 0) return status::ok();
    answer->append(buf, static_cast<size_t>(n));
    if (answer->size() > kMaxAnswer) return status::io_error("haproxy: answer too long");
  }
}

// `show proc` on the master CLI (HAProxy 2.6.12):
//   #<PID>          <type>          <reloads>       <uptime>        <version>
//   26181           master          1 [failed: 0]   0d00h01m00s     2.6.12-1+deb12u4
//   # workers
//   28534           worker          0               0d00h00m01s     2.6.12-1+deb12u4
//   # old workers
//   26215           worker          1               0d00h01m00s     2.6.12-1+deb12u4
//   # programs
//
// "reloads" of the master counts every reload attempt; "failed" counts the failed ones since
// the last successful load (a success resets it to 0).
struct proc_table {
  int master = 0;
  long reloads = -1;
  long failed = -1;
  std::vector<int> current;  // "# workers"
  std::vector<int> old;      // "# old workers"
};

bool parse_int(const std::string& s, long* out) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return false;
  *out = std::stol(s);
  return true;
}

status parse_show_proc(const std::string& text, proc_table* t) {
  std::istringstream in(text);
  std::string line, section = "master";
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("#<PID>", 0) == 0) continue;  // the column header
      section = lower(line.substr(1));
      section.erase(0, section.find_first_not_of(' '));
      continue;
    }
    std::istringstream f(line);
    std::string pid_s, type, reloads_s;
    f >> pid_s >> type >> reloads_s;
    long pid = 0;
    if (!parse_int(pid_s, &pid) || pid <= 0) continue;
    if (type == "master") {
      t->master = static_cast<int>(pid);
      long n = 0;
      if (parse_int(reloads_s, &n)) t->reloads = n;
      auto at = line.find("[failed:");
      if (at != std::string::npos) t->failed = std::strtol(line.c_str() + at + 8, nullptr, 10);
    } else if (type == "worker") {
      (section.rfind("old", 0) == 0 ? t->old : t->current).push_back(static_cast<int>(pid));
    }
  }
  if (t->master == 0) return status::io_error("haproxy: show proc names no master: " + short_text(text));
  return status::ok();
}

status show_proc(const std::string& dir, proc_table* t) {
  std::string answer;
  if (auto st = run_command(master_socket(dir), "show proc", &answer); !st) return st;
  *t = proc_table{};
  return parse_show_proc(answer, t);
}

bool worker_gone(const std::string& answer) {
  return answer.find("Can't find the target PID") != std::string::npos;
}

// `show map <file>` lines: "0x55740eac5950 <key> <value>".
status parse_show_map(const std::string& text, std::multimap<std::string, std::string>* out) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (only_space(line)) continue;
    std::istringstream f(line);
    std::string ptr, key, value, extra;
    f >> ptr >> key >> value;
    if (ptr.rfind("0x", 0) != 0 || key.empty() || value.empty() || (f >> extra))
      return status::io_error("haproxy: unexpected show map answer: " + short_text(text));
    out->emplace(key, value);
  }
  return status::ok();
}

using text_map = std::map<std::string, std::string>;

text_map as_text(const route_map& m) {
  text_map out;
  for (const auto& [key, port] : m) out.emplace(key, std::to_string(port));
  return out;
}

// Brings one worker's map to `want`. *gone when the worker exited meanwhile. A worker without
// the map fails, unless `may_lack` (a map newer than the config that worker runs).
status sync_one_map(const std::string& dir, int pid, const std::string& file, const text_map& want, bool may_lack,
                    bool* gone) {
  std::string prefix = "@!" + std::to_string(pid) + " ";
  std::string answer;
  if (auto st = run_command(master_socket(dir), prefix + "show map " + file, &answer); !st) return st;
  if (worker_gone(answer)) return *gone = true, status::ok();
  if (answer.find("Unknown map identifier") != std::string::npos) {
    if (may_lack) return status::ok();
    return status::io_error("haproxy: worker " + std::to_string(pid) + " has no map " + file);
  }
  std::multimap<std::string, std::string> have;
  if (auto st = parse_show_map(answer, &have); !st) return st;

  std::vector<std::string> commands;
  for (const auto& [key, value] : want) {
    auto [lo, hi] = have.equal_range(key);
    if (lo == hi)
      commands.push_back("add map " + file + " " + key + " " + value);
    else if (std::any_of(lo, hi, [&](const auto& e) { return e.second != value; }))
      commands.push_back("set map " + file + " " + key + " " + value);  // sets every duplicate
  }
  for (auto it = have.begin(); it != have.end(); it = have.upper_bound(it->first))
    if (want.count(it->first) == 0) commands.push_back("del map " + file + " " + it->first);

  // Up to kBatch commands per connection, one per line (the master runs every line until our
  // EOF): a successful add/set/del answers an empty line, so anything else is an error.
  for (size_t at = 0; at < commands.size(); at += kBatch) {
    std::string lines;
    for (size_t i = at; i < std::min(commands.size(), at + kBatch); ++i)
      lines += (lines.empty() ? "" : "\n") + prefix + commands[i];
    if (auto st = run_command(master_socket(dir), lines, &answer); !st) return st;
    if (worker_gone(answer)) return *gone = true, status::ok();
    if (!only_space(answer))
      return status::io_error("haproxy: map update on worker " + std::to_string(pid) + " (first: '" + commands[at] +
                              "'): " + short_text(answer));
  }
  return status::ok();
}

}  // namespace

// ---- runtime API client --------------------------------------------------------------------

haproxy_admin::haproxy_admin(std::string dir) : dir_(std::move(dir)) {}

status haproxy_admin::ping() {
  proc_table t;
  if (auto st = show_proc(dir_, &t); !st) return st;
  if (t.current.empty()) return status::io_error("haproxy: no worker runs");
  return status::ok();
}

status haproxy_admin::workers(std::vector<int>* pids) {
  proc_table t;
  if (auto st = show_proc(dir_, &t); !st) return st;
  pids->assign(t.current.begin(), t.current.end());
  pids->insert(pids->end(), t.old.begin(), t.old.end());
  return status::ok();
}

status haproxy_admin::sync_maps(const router_maps& maps) {
  for (const auto* m : {&maps.ports, &maps.hosts})
    for (const auto& [key, port] : *m)
      if (!safe_key(key) || port == 0)
        return status::invalid_argument("haproxy: invalid map entry '" + key + "' -> " + std::to_string(port));
  for (const auto& [key, value] : maps.canaries)
    if (!safe_key(key) || key.find_first_not_of("0123456789") != std::string::npos || !valid_split_value(value))
      return status::invalid_argument("haproxy: invalid canary map entry '" + key + "' -> '" + value + "'");
  struct one_map {
    std::string file;
    text_map want;
    bool may_lack;
  };
  // Routes, then splits: a split is keyed by upstream port, so once a promotion moved the route
  // to its candidate the old upstream's split matches no request, whenever it goes.
  const one_map all[] = {{ports_map_path(dir_), as_text(maps.ports), false},
                         {hosts_map_path(dir_), as_text(maps.hosts), false},
                         {canary_map_path(dir_), maps.canaries, true}};
  std::vector<int> pids;
  if (auto st = workers(&pids); !st) return st;
  for (int pid : pids) {
    bool gone = false;
    for (const auto& m : all) {
      if (auto st = sync_one_map(dir_, pid, m.file, m.want, m.may_lack, &gone); !st) return st;
      if (gone) break;
    }
  }
  return status::ok();
}

status haproxy_admin::reload(milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  proc_table before;
  if (auto st = show_proc(dir_, &before); !st) return st;
  std::set<int> known(before.current.begin(), before.current.end());
  known.insert(before.old.begin(), before.old.end());
  std::string answer;
  // 2.6 prints nothing for `reload` and closes the connection when the master re-executes.
  if (auto st = run_command(master_socket(dir_), "reload", &answer); !st) return st;
  status last = status::io_error("haproxy: no new worker yet");
  while (clock_type::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
    proc_table t;
    if (last = show_proc(dir_, &t); !last) continue;  // the master is re-executing
    if (t.reloads <= before.reloads) {
      last = status::io_error("haproxy: the master has not reloaded yet");
      continue;
    }
    int fresh = 0;
    for (int pid : t.current)
      if (known.count(pid) == 0) fresh = pid;
    if (fresh == 0) {
      if (t.failed > 0 && t.failed > before.failed)
        return status::io_error("haproxy: reload failed (the new config was refused; the old worker keeps serving)");
      last = status::io_error("haproxy: no new worker yet");
      continue;
    }
    if (last = run_command(master_socket(dir_), "@!" + std::to_string(fresh) + " show map " + ports_map_path(dir_),
                           &answer);
        !last)
      continue;
    std::multimap<std::string, std::string> unused;
    if (worker_gone(answer) || !parse_show_map(answer, &unused)) {
      last = status::io_error("haproxy: the new worker " + std::to_string(fresh) + " does not answer yet: " +
                              short_text(answer));
      continue;
    }
    return status::ok();
  }
  return status::io_error("haproxy: reload not done in " + std::to_string(timeout.count()) + " ms: " + last.message());
}

status wait_router_ready(const std::string& dir, milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  haproxy_admin admin(dir);
  status last = admin.ping();
  while (!last && clock_type::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
    last = admin.ping();
  }
  if (last) return last;
  return status::io_error("haproxy not ready in " + std::to_string(timeout.count()) + " ms: " + last.message());
}

}  // namespace berth
