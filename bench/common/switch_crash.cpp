#include "bench/common/switch_crash.hpp"

#include <dirent.h>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/integration/traffic_wire.hpp"

namespace berth::bench {

namespace wire = berth::it::wire;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

crash_probe::crash_probe(std::string route, berth::it::target t) : route_(std::move(route)), t_(std::move(t)) {
  t_.tls.http2 = false;
}

crash_probe::~crash_probe() { stop(); }

void crash_probe::start() { th_ = std::thread([this] { loop(); }); }

void crash_probe::stop() {
  stop_ = true;
  if (th_.joinable()) th_.join();
}

void crash_probe::loop() {
  auto next = clock_type::now();
  while (!stop_) {
    auto t0 = clock_type::now();
    wire::connection c;
    std::string buf, error;
    if (auto e = c.open(t_); !e.empty()) {
      error = "connect: " + e;
    } else if (!c.send_all("GET / HTTP/1.1\r\nHost: " + wire::host_header(t_) + "\r\nConnection: close\r\n\r\n")) {
      error = "send: " + c.error;
    } else {
      bool closed = false;
      auto r = wire::read_response(c, buf, t0 + 2s, closed);
      if (!r.complete) error = "no complete answer (" + c.error + ")";
      else if (r.status != 200) error = "HTTP " + std::to_string(r.status) + " '" + r.body.substr(0, 60) + "'";
    }
    c.close();
    {
      std::lock_guard<std::mutex> g(mu_);
      samples_.push_back({t0, std::chrono::duration<double, std::milli>(clock_type::now() - t0).count(),
                          error.empty(), error});
    }
    next += 10ms;
    auto now = clock_type::now();
    if (next < now) next = now;  // late: no burst
    std::this_thread::sleep_until(next);
  }
}

nlohmann::json crash_probe::figures_since(clock_type::time_point from) const {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t n = 0, failed = 0;
  std::string first_error;
  const sample* last_failure = nullptr;
  double recovery_ms = 0, slowest_ok_ms = 0;
  for (auto& s : samples_) {
    if (s.start < from) continue;
    ++n;
    if (s.ok) slowest_ok_ms = std::max(slowest_ok_ms, s.ms);
    if (!s.ok) {
      ++failed;
      if (first_error.empty()) first_error = s.error;
      last_failure = &s;
    }
  }
  if (last_failure) {
    recovery_ms = -1;
    for (auto& s : samples_)
      if (s.start > last_failure->start && s.ok) {
        recovery_ms = std::chrono::duration<double, std::milli>(s.start - from).count();
        break;
      }
  }
  return {{"route", route_}, {"requests", n}, {"failed", failed}, {"first_error", first_error},
          {"recovery_ms", std::round(recovery_ms * 10) / 10},
          {"slowest_ok_ms", std::round(slowest_ok_ms * 10) / 10}};
}

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t parent_of(pid_t pid) {
  // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so after the last ')'.
  auto s = read_all("/proc/" + std::to_string(pid) + "/stat");
  auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 1));
  std::string state;
  pid_t ppid = -1;
  in >> state >> ppid;
  return ppid;
}

}  // namespace

pid_t router_master_pid(const std::string& data_dir, const std::string& engine) {
  std::set<pid_t> matches;
  DIR* d = ::opendir("/proc");
  if (!d) return -1;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end || pid <= 0) continue;
    auto cmd = read_all("/proc/" + std::string(e->d_name) + "/cmdline");
    for (auto& ch : cmd)
      if (ch == '\0') ch = ' ';
    auto exe = cmd.substr(0, cmd.find(' '));
    if (exe.size() < engine.size() || exe.compare(exe.size() - engine.size(), engine.size(), engine) != 0) continue;
    if (cmd.find(data_dir + "/proxy/") == std::string::npos || cmd.find("/proxy/front/") != std::string::npos)
      continue;
    matches.insert(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  for (auto pid : matches)
    if (!matches.count(parent_of(pid))) return pid;
  return -1;
}

}  // namespace berth::bench
