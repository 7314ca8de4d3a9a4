#include "runtime/proxy/haproxy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/files/fs_util.hpp"

namespace berth {

using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr milliseconds kConnectTimeout{1000};
constexpr milliseconds kAnswerTimeout{5000};
constexpr size_t kMaxAnswer = 64u << 20;  // show map of many thousand hosts
constexpr size_t kMaxErrorText = 300;
constexpr size_t kBatch = 200;  // map commands sent on one master CLI connection

const char* const kNotFoundJson = R"({"error":{"code":"not_found","message":"no such site"}})";
const char* const kUnavailableJson =
    R"({"error":{"code":"unavailable","message":"nothing serves this site yet"}})";

std::string ports_map_path(const std::string& dir) { return dir + "/ports.map"; }
std::string hosts_map_path(const std::string& dir) { return dir + "/hosts.map"; }
std::string master_socket(const std::string& dir) { return dir + "/master.sock"; }
std::string admin_socket(const std::string& dir) { return dir + "/admin.sock"; }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool only_space(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

std::string short_text(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (s.size() > kMaxErrorText) s = s.substr(0, kMaxErrorText) + "...";
  return s;
}

// A lowercase DNS name: labels of [a-z0-9-], 1-63 chars, not starting or ending with '-'.
bool valid_dns_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t end = s.find('.', start);
    std::string label = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label)
      if (!(std::islower(c) || std::isdigit(c) || c == '-')) return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// Paths go into the config unquoted: no spaces, quotes, '#' or other characters HAProxy parses.
bool safe_path(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '+' || c == '@';
  });
}

// A map key the runtime API cannot misread: one word of [A-Za-z0-9._:-].
bool safe_key(const std::string& s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

std::string map_text(const route_map& m) {
  std::string out;
  for (const auto& [k, v] : m) out += k + " " + std::to_string(v) + "\n";
  return out;
}

status write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp-" + fsutil::random_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return status::io_error("haproxy: cannot create " + tmp + ": " + fsutil::errstr(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return status::io_error("haproxy: cannot write " + tmp + ": " + fsutil::errstr(e));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return status::io_error("haproxy: cannot rename onto " + path + ": " + fsutil::errstr(e));
  }
  return status::ok();
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

// Brings one worker's map to `want`. *gone when the worker exited meanwhile.
status sync_one_map(const std::string& dir, int pid, const std::string& file, const route_map& want, bool* gone) {
  std::string prefix = "@!" + std::to_string(pid) + " ";
  std::string answer;
  if (auto st = run_command(master_socket(dir), prefix + "show map " + file, &answer); !st) return st;
  if (worker_gone(answer)) return *gone = true, status::ok();
  if (answer.find("Unknown map identifier") != std::string::npos)
    return status::io_error("haproxy: worker " + std::to_string(pid) + " has no map " + file);
  std::multimap<std::string, std::string> have;
  if (auto st = parse_show_map(answer, &have); !st) return st;

  std::vector<std::string> commands;
  for (const auto& [key, port] : want) {
    std::string value = std::to_string(port);
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

// ---- layout --------------------------------------------------------------------------------

route_map ports_map_of(const router_layout& l) {
  route_map m;
  for (const auto& r : l.routes)
    if (r.listen_port != 0 && r.upstream_port != 0) m[std::to_string(r.listen_port)] = r.upstream_port;
  return m;
}

route_map hosts_map_of(const router_layout& l) {
  route_map m;
  for (const auto& r : l.routes) {
    if (r.upstream_port == 0) continue;
    if (!r.host.empty()) m[lower(r.host)] = r.upstream_port;
    for (const auto& d : r.domains) m[lower(d)] = r.upstream_port;
  }
  return m;
}

std::vector<uint16_t> listen_ports_of(const router_layout& l) {
  std::set<uint16_t> ports;
  if (l.http_port != 0) ports.insert(l.http_port);
  if (l.ask_port != 0) ports.insert(l.ask_port);
  for (const auto& r : l.routes)
    if (r.listen_port != 0) ports.insert(r.listen_port);
  return {ports.begin(), ports.end()};
}

std::string haproxy_config(const router_layout& l) {
  const std::string ports_map = ports_map_path(l.dir), hosts_map = hosts_map_path(l.dir);
  std::set<uint16_t> stable;
  for (const auto& r : l.routes)
    if (r.listen_port != 0) stable.insert(r.listen_port);
  std::ostringstream c;
  c << "# Written by berth (runtime/proxy/haproxy.cpp); routes live in ports.map and hosts.map.\n"
       "global\n"
       // No `quiet`: it would hide the ALERT lines that say why a reload was refused.
       "    master-worker\n"
       // The runtime API; expose-fd lets a reloaded worker take the listening sockets over.
       "    stats socket " << admin_socket(l.dir) << " mode 600 level admin expose-fd listeners\n"
       "    stats timeout 10s\n"
       "    log stderr format raw local0 err\n"
       "\n"
       "defaults\n"
       "    mode http\n"
       "    log global\n"
       // A soft-stopping (old) worker answers an idle kept-alive client once more, with
       // "Connection: close", instead of closing under a client that may be sending.
       "    option idle-close-on-response\n"
       "    option forwardfor\n"
       // Upstream connections stay private to the client connection that opened them (one per
       // upstream it used, up to 10) and are reused by its next requests to the same upstream;
       // never one to another upstream after a map flip (test_haproxy_admin.cpp). Measured with
       // set-dst routing (4 kept-alive clients round-robin over 3 hosts, 120 requests): "never"
       // opened 12 upstream connections, "safe" 49, "always" 52 - safe/always reuse only the
       // first upstream a client connection used. Nothing is shared between clients, so a
       // client's first request never lands on an idle connection an app is closing.
       "    http-reuse never\n"
       // Only failed connects are retried: a request that reached an upstream (a POST) is
       // never sent twice.
       "    retries 3\n"
       "    retry-on conn-failure\n"
       "    timeout connect 2s\n"
       // Header within 30 s (slow clients), idle kept-alive connections closed after 75 s.
       "    timeout http-request 30s\n"
       "    timeout http-keep-alive 75s\n"
       // Slow uploads, long requests and streamed answers (SSE) are not cut short; WebSockets
       // and other upgraded connections stay open while used, idle up to an hour.
       "    timeout client 1h\n"
       "    timeout server 1h\n"
       "    timeout tunnel 1h\n"
       "    timeout client-fin 30s\n"
       "    timeout server-fin 30s\n"
       "    http-error status 502 content-type application/json string "
       "'{\"error\":{\"code\":\"bad_gateway\",\"message\":\"the site answered badly\"}}'\n"
       // 503: the upstream refused every connect (retries included).
       "    http-error status 503 content-type application/json string "
       "'{\"error\":{\"code\":\"unavailable\",\"message\":\"the site is not answering\"}}'\n"
       "    http-error status 504 content-type application/json string "
       "'{\"error\":{\"code\":\"gateway_timeout\",\"message\":\"the site did not answer in time\"}}'\n";

  if (l.http_port != 0 || !stable.empty()) {
    c << "\nfrontend sites\n";
    if (l.http_port != 0) c << "    bind " << l.listen_host << ":" << l.http_port << "\n";
    for (auto p : stable) c << "    bind 127.0.0.1:" << p << "\n";
    // A stable port is routed by ports.map only (never by Host); the shared listener by Host.
    std::string on_http = l.http_port != 0 ? "{ dst_port " + std::to_string(l.http_port) + " }" : "FALSE";
    c << "    http-request set-var(txn.up) dst_port,map(" << ports_map << ") unless " << on_http << "\n";
    if (l.http_port != 0)
      c << "    http-request set-var(txn.up) req.hdr(host),field(1,:),lower,map(" << hosts_map << ") if "
        << on_http << "\n"
        << "    http-request return status 404 content-type application/json string '" << kNotFoundJson
        << "' if !{ var(txn.up) -m found } " << on_http << "\n";
    c << "    http-request return status 503 content-type application/json string '" << kUnavailableJson
      << "' if !{ var(txn.up) -m found }\n"
      << "    default_backend upstream\n";
  }

  if (l.ask_port != 0)
    c << "\nfrontend ask\n"
         "    bind 127.0.0.1:" << l.ask_port << "\n"
         "    http-request return status 200 content-type text/plain string \"ok\" if { path /ask } "
         "{ url_param(domain),lower,map(" << hosts_map << ") -m found }\n"
         "    http-request return status 404 content-type text/plain string \"no such site\"\n";

  c << "\nbackend upstream\n"
       // Both maps are always loaded (even with no frontend using one), so `set map` finds them.
       "    http-request set-var(txn.unused) dst_port,map(" << ports_map << ") if FALSE\n"
       "    http-request set-var(txn.unused) req.hdr(host),map(" << hosts_map << ") if FALSE\n"
       "    http-request set-dst-port var(txn.up)\n"
       "    http-request set-dst ipv4(127.0.0.1)\n"
       "    server s 0.0.0.0:0\n";
  return c.str();
}

status check_router_layout(const router_layout& l) {
  auto bad = [](const std::string& m) { return status::invalid_argument("haproxy layout: " + m); };
  if (l.dir.empty() || l.dir.front() != '/') return bad("the dir needs an absolute path");
  if (!safe_path(l.dir)) return bad("the dir '" + l.dir + "' has characters HAProxy's config cannot hold");
  size_t max_socket = sizeof(sockaddr_un{}.sun_path) - 1;
  if (master_socket(l.dir).size() > max_socket || admin_socket(l.dir).size() > max_socket)
    return bad("the dir's socket paths are longer than " + std::to_string(max_socket) +
               " bytes (use a shorter --data path)");
  if (l.listen_host.empty() || !std::all_of(l.listen_host.begin(), l.listen_host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == ':' || c == '-';
      }))
    return bad("invalid listen_host '" + l.listen_host + "'");
  std::set<uint16_t> ports;
  auto claim = [&](uint16_t p, const std::string& what) {
    if (p == 0 || ports.insert(p).second) return status::ok();
    return bad("port " + std::to_string(p) + " (" + what + ") is bound twice");
  };
  if (auto st = claim(l.http_port, "http_port"); !st) return st;
  if (auto st = claim(l.ask_port, "ask_port"); !st) return st;
  std::set<std::string> ids, names;
  for (const auto& r : l.routes) {
    if (!valid_id(r.id)) return bad("invalid route id '" + r.id + "'");
    if (!ids.insert(r.id).second) return bad("route id '" + r.id + "' used twice");
    if (auto st = claim(r.listen_port, "route " + r.id); !st) return st;
    std::vector<std::string> all = r.domains;
    if (!r.host.empty()) all.insert(all.begin(), r.host);
    for (const auto& name : all) {
      if (!valid_dns_name(name)) return bad("invalid host or domain '" + name + "' of route " + r.id);
      if (!names.insert(name).second) return bad("host or domain '" + name + "' used twice");
    }
  }
  return status::ok();
}

status write_router_files(const router_layout& l) {
  // Maps first: a reload triggered by someone else between the writes then loads a config that
  // references maps which exist.
  if (auto st = write_atomically(ports_map_path(l.dir), map_text(ports_map_of(l))); !st) return st;
  if (auto st = write_atomically(hosts_map_path(l.dir), map_text(hosts_map_of(l))); !st) return st;
  return write_atomically(l.dir + "/haproxy.cfg", haproxy_config(l));
}

std::vector<std::string> haproxy_command(const std::string& binary, const std::string& dir) {
  return {binary, "-W", "-S", master_socket(dir) + ",mode,600", "-f", dir + "/haproxy.cfg"};
}

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

status haproxy_admin::sync_maps(const route_map& ports, const route_map& hosts) {
  for (const auto* m : {&ports, &hosts})
    for (const auto& [key, port] : *m)
      if (!safe_key(key) || port == 0)
        return status::invalid_argument("haproxy: invalid map entry '" + key + "' -> " + std::to_string(port));
  std::vector<int> pids;
  if (auto st = workers(&pids); !st) return st;
  for (int pid : pids) {
    bool gone = false;
    if (auto st = sync_one_map(dir_, pid, ports_map_path(dir_), ports, &gone); !st) return st;
    if (!gone)
      if (auto st = sync_one_map(dir_, pid, hosts_map_path(dir_), hosts, &gone); !st) return st;
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
