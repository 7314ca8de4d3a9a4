// bench_deploy: what a production deploy costs on a real `berth serve`, beyond the build and
// the app's own boot, and how long the stable port goes dark in direct switch mode.
//
// One `berth serve` (its own temp dir, a random 200-port production and preview window,
// --stop-grace-ms 1000) gets two projects:
//   tiny    bench/apps/tiny_http (plain sockets, boots in ~1 ms), build = `install -D` of the
//           VERSION file into dist/ (argv, no shell), served as "release <X>"
//   python  the same with a python3 http.server app (dist/server.py), to show how the switch
//           gap follows the app's boot time
// Each project is deployed once (warm-up, nothing to switch from), then `--deploys` times with
// a changed VERSION (a new release hash each time: a real build, package, candidate, switch).
// A third series redeploys the unchanged tiny source with force=true (same release hash: no new
// folder, but a candidate and a switch all the same); `--no-force` skips it.
// For context, the machine's cost of a process spawn (fork + execve + exit + waitpid of
// tiny_http, from this small process) and of a small fdatasync'd write are measured first:
// a deploy spawns 3 processes (build, candidate, promoted release) and makes ~9 synced appends
// to the event log before `completed`.
//
// Per deploy, from GET /api/deployments/{id} (server-side timestamps, µs):
//   duration       finished - created (queued event -> completed event)
//   build_ms, candidate_boot_ms, promote_boot_ms, gap_ms     from `resources`
//   stop_old       gap_ms - promote_boot_ms: SIGTERM of the release on the stable port until
//                  it is gone, plus the wait for the port to be bindable
//   drain          the draining phase span: stopping the candidate (SIGTERM until gone), removing
//                  the build workspace, writing the `completed` event
//   overhead       duration - build_ms - candidate_boot_ms - gap_ms - drain
//                  = duration - build - candidate boot - promote boot - stop_old - drain
// and, while the deploy runs, a client thread GETs / on the stable port with a fresh connection
// every `--poll-us` (1000): the external gap is the longest run of failed requests, from the
// start of its first failed request to the start of the next successful one.
//
// Usage: bench_deploy [--deploys 20] [--python-deploys N] [--no-python] [--no-force]
//                     [--poll-us 1000] [--timeout-s 300] [--berth PATH] [--tiny-http PATH]
//                     [--python PATH] [--dir PARENT] [--keep] [--verbose]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "messages/event.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/bench_session.hpp"

#ifndef BERTH_BINARY
#define BERTH_BINARY ""
#endif
#ifndef BENCH_TINY_HTTP
#define BENCH_TINY_HTTP ""
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct params {
  int deploys = 20;
  int python_deploys = -1;  // -1: same as deploys
  bool python = true;
  bool force = true;
  int poll_us = 1000;
  int timeout_s = 300;
  std::string berth = BERTH_BINARY;
  std::string tiny = BENCH_TINY_HTTP;
  std::string python_bin;  // "": /usr/bin/python3 when present, else python3 from berth's PATH
  std::string dir;
  bool keep = false;
  bool verbose = false;
};

params parse(int argc, char** argv) {
  params p;
  const char* tmp = std::getenv("TMPDIR");
  p.dir = tmp && *tmp ? tmp : "/tmp";
  CLI::App app{"bench_deploy: orchestrator overhead per deploy and the direct-mode switch gap"};
  bool no_python = false, no_force = false;
  app.add_option("--deploys", p.deploys, "deploys per series")->check(CLI::Range(1, 100000));
  app.add_option("--python-deploys", p.python_deploys, "python deploys (default: --deploys)")->check(CLI::Range(0, 100000));
  app.add_flag("--no-python", no_python, "skip the python series");
  app.add_flag("--no-force", no_force, "skip the --force series");
  app.add_option("--poll-us", p.poll_us, "external poller interval (0: off)")->check(CLI::Range(0, 1000000));
  app.add_option("--timeout-s", p.timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  app.add_option("--berth", p.berth, "berth binary");
  app.add_option("--tiny-http", p.tiny, "tiny_http binary");
  app.add_option("--python", p.python_bin, "python3 for the python app");
  app.add_option("--dir", p.dir, "parent of the temp dir");
  app.add_flag("--keep", p.keep, "keep the temp dir");
  app.add_flag("--verbose", p.verbose, "one line per deploy");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  p.python = !no_python;
  p.force = !no_force;
  if (p.python_bin.empty())
    p.python_bin = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  if (p.python_deploys < 0) p.python_deploys = p.deploys;
  if (p.python_deploys == 0) p.python = false;
  return p;
}

// ---- the berth under test ------------------------------------------------------------------

using berth::bench::api_client;
using berth::bench::free_port;
using berth::bench::loadavg;
using berth::bench::median;
using berth::bench::project_setup;

berth::bench::session g_session{"bench_deploy"};

[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

// ---- HTTP -----------------------------------------------------------------------------------

// One GET / on 127.0.0.1:port with a fresh connection (raw socket, bounded by `timeout`).
// True when the answer is 200 with a body starting "release "; the body goes to *body.
// The connection is closed with an RST (SO_LINGER 0) so that 1000 polls a second leave no
// TIME_WAIT sockets behind on either side.
bool get_release(uint16_t port, std::chrono::milliseconds timeout, std::string* body) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds connect()
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof req - 1)) {
      std::string resp;
      char buf[2048];
      size_t want = std::string::npos;  // total length once the headers are in
      for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        resp.append(buf, static_cast<size_t>(n));
        if (want == std::string::npos) {
          auto he = resp.find("\r\n\r\n");
          if (he != std::string::npos) {
            auto cl = resp.find("Content-Length: ");
            if (cl != std::string::npos && cl < he)
              want = he + 4 + std::strtoul(resp.c_str() + cl + 16, nullptr, 10);
          }
        }
        if (want != std::string::npos && resp.size() >= want) break;
      }
      auto he = resp.find("\r\n\r\n");
      if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() > 12 && resp.compare(8, 5, " 200 ") == 0 &&
          he != std::string::npos) {
        std::string b = resp.substr(he + 4);
        ok = b.rfind("release ", 0) == 0;
        if (body) *body = b;
      }
    }
  }
  ::close(fd);
  return ok;
}

// Polls the stable port from a thread; afterwards, the longest window of failed requests.
class port_poller {
 public:
  port_poller(uint16_t port, std::chrono::microseconds every) : port_(port), every_(every) {
    samples_.reserve(200000);
    t0_ = steady::now();
    thread_ = std::thread([this] { loop(); });
  }
  ~port_poller() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  struct summary {
    size_t polls = 0, failed = 0;
    double longest_ms = 0;  // start of the first failed request -> start of the next good one
    bool open = false;      // the longest window had not closed when polling stopped
  };
  summary analyse() const {
    summary s;
    s.polls = samples_.size();
    int64_t run_start = -1;
    for (auto& x : samples_) {
      if (!x.ok) {
        ++s.failed;
        if (run_start < 0) run_start = x.start_us;
      } else if (run_start >= 0) {
        s.longest_ms = std::max(s.longest_ms, (x.start_us - run_start) / 1000.0);
        run_start = -1;
      }
    }
    if (run_start >= 0 && !samples_.empty()) {
      double w = (samples_.back().end_us - run_start) / 1000.0;
      if (w > s.longest_ms) s.longest_ms = w, s.open = true;
    }
    return s;
  }

 private:
  struct sample {
    int64_t start_us, end_us;
    bool ok;
  };
  int64_t now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0_).count();
  }
  void loop() {
    auto next = steady::now();
    while (!stop_) {
      int64_t s = now_us();
      bool ok = get_release(port_, 500ms, nullptr);
      samples_.push_back({s, now_us(), ok});
      next += every_;
      auto now = steady::now();
      if (next < now) next = now;  // a slow request: go on at once, do not burst to catch up
      std::this_thread::sleep_until(next);
    }
  }
  uint16_t port_;
  std::chrono::microseconds every_;
  steady::time_point t0_;
  std::atomic<bool> stop_{false};
  std::vector<sample> samples_;
  std::thread thread_;
};

// ---- statistics -----------------------------------------------------------------------------

double p90(std::vector<double> v) {  // nearest rank
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(0.9 * v.size()));
  return v[std::max<size_t>(rank, 1) - 1];
}

// ---- machine context -----------------------------------------------------------------------

// fork + execve + exit + waitpid of `bin` (tiny_http given a missing VERSION file exits at once),
// as berth's process driver does it, from this (small) process.
double spawn_exit_ms(const std::string& bin) {
  std::string missing = "/nonexistent/VERSION";
  char* argv[] = {const_cast<char*>(bin.c_str()), const_cast<char*>(missing.c_str()), nullptr};
  char* envp[] = {const_cast<char*>("PORT=1"), nullptr};
  auto t0 = steady::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::execve(argv[0], argv, envp);
    ::_exit(127);
  }
  if (pid < 0) return NAN;
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

// One 200-byte append + fdatasync to a file in `dir` (an event commit is one synced write).
double synced_write_ms(const std::string& dir) {
  static const std::string line(199, 'x');
  int fd = ::open((dir + "/fsync-probe").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return NAN;
  auto t0 = steady::now();
  bool ok = ::write(fd, (line + "\n").data(), 200) == 200 && ::fdatasync(fd) == 0;
  double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
  ::close(fd);
  return ok ? ms : NAN;
}

// ---- the deploys ----------------------------------------------------------------------------

// The measures of one deploy, in ms; keys as printed.
using sample = std::map<std::string, double>;

const std::vector<std::pair<std::string, std::string>> kRows = {
    {"duration", "deploy duration (created -> finished)"},
    {"build_ms", "- build_ms (build command)"},
    {"candidate_boot_ms", "- candidate_boot_ms (fork/exec -> healthy)"},
    {"promote_boot_ms", "- promote_boot_ms (fork/exec -> healthy)"},
    {"stop_old", "- stop old release (gap - promote_boot)"},
    {"drain", "- draining span (stop candidate, rm workspace)"},
    {"overhead", "= orchestrator overhead"},
    {"ov_queued", "   queued (lease candidate port, 1st event)"},
    {"ov_preparing", "   preparing (snapshot source)"},
    {"ov_building", "   building - build_ms"},
    {"ov_packaging", "   packaging (hash, copy release)"},
    {"ov_start_health", "   starting + health_checking - candidate_boot_ms"},
    {"ov_switching", "   switching - gap_ms"},
    {"drain_rest", "draining - stop_candidate (syncs, cleanup)"},
    {"overhead_all", "overhead + (draining - stop_candidate)"},
    {"gap_ms", "switch gap, berth (gap_ms)"},
    {"ext_gap", "switch gap, external poller"},
    {"ext_failed", "failed polls per deploy (count)"},
    {"ext_polls", "polls per deploy (count)"},
};

struct series {
  std::string label;
  std::vector<sample> samples;
  size_t open_windows = 0;  // deploys whose external window had not closed at the end
};

json phases_by_name(const json& detail) {
  json out = json::object();
  for (auto& p : detail.at("phases")) {
    int64_t s = 0, e = 0;
    if (!berth::parse_iso8601(p.value("started", ""), s)) continue;
    if (p["ended"].is_string()) berth::parse_iso8601(p["ended"].get<std::string>(), e);
    out[p.value("phase", "?")] = {{"start", s}, {"end", e}};
  }
  return out;
}

double span_ms(const json& phases, const std::string& name) {
  if (!phases.contains(name)) fail("deployment detail has no phase " + name, phases.dump());
  auto& p = phases[name];
  if (p["end"].get<int64_t>() == 0) fail("phase " + name + " has not ended", phases.dump());
  return (p["end"].get<int64_t>() - p["start"].get<int64_t>()) / 1000.0;
}

// Deploys `proj` once; waits (bounded) for the end; checks that the stable port serves the
// expected release. Returns the detail.
json deploy_once(api_client& api, const project_setup& proj, bool force, port_poller::summary* ext,
                 int poll_us) {
  std::unique_ptr<port_poller> poller;
  if (ext && poll_us > 0) poller = std::make_unique<port_poller>(proj.port, std::chrono::microseconds(poll_us));
  auto [code, body] = force ? api.post("/api/projects/" + proj.name + "/deployments", json{{"force", true}})
                            : api.post("/api/projects/" + proj.name + "/deployments", json::object());
  if (code != 202 || !body.contains("id")) fail("POST deployments: HTTP " + std::to_string(code), body.dump());
  std::string id = body["id"];
  auto until = steady::now() + 60s;
  json detail;
  for (;;) {
    auto [c, d] = api.get("/api/deployments/" + id);
    if (c == 200) {
      detail = d;
      auto st = detail.value("status", "");
      if (st == "completed" || st == "failed" || st == "cancelled" || st == "unchanged") break;
    }
    if (steady::now() > until) fail("deployment " + id + " did not end within 60 s", d.dump());
    std::this_thread::sleep_for(20ms);
  }
  if (poller) {
    poller->stop();
    *ext = poller->analyse();
  }
  if (detail.value("status", "") != "completed")
    fail("deployment " + id + " ended " + detail.value("status", "?"), detail.dump(2));
  std::string served;
  if (!get_release(proj.port, 2000ms, &served) || served != "release " + proj.version + "\n")
    fail("port " + std::to_string(proj.port) + " serves '" + served + "', expected release " + proj.version);
  return detail;
}

sample measure(const json& detail, const port_poller::summary& ext, bool polled) {
  auto ph = phases_by_name(detail);
  auto& r = detail.at("resources");
  for (auto* k : {"build_ms", "candidate_boot_ms", "promote_boot_ms", "gap_ms"})
    if (!r.contains(k)) fail(std::string("resources has no ") + k, detail.dump(2));
  int64_t created = 0, finished = 0;
  if (!berth::parse_iso8601(detail.value("created", ""), created) ||
      !detail["finished"].is_string() || !berth::parse_iso8601(detail["finished"].get<std::string>(), finished))
    fail("deployment detail without created/finished", detail.dump(2));
  // berth reports whole ms, and the same times in µs (`*_us`) since the runtime rework: use
  // those when there (the figures of an older berth are then overstated by 0-3 ms).
  auto ms = [&](const char* name) {
    auto us = std::string(name).replace(std::string(name).size() - 3, 3, "_us");
    return r.contains(us) ? r[us].get<double>() / 1000.0 : r[name].get<double>();
  };
  sample s;
  s["duration"] = (finished - created) / 1000.0;
  s["build_ms"] = ms("build_ms");
  s["candidate_boot_ms"] = ms("candidate_boot_ms");
  s["promote_boot_ms"] = ms("promote_boot_ms");
  s["gap_ms"] = ms("gap_ms");
  s["stop_old"] = s["gap_ms"] - s["promote_boot_ms"];
  s["drain"] = span_ms(ph, "draining");
  s["overhead"] = s["duration"] - s["build_ms"] - s["candidate_boot_ms"] - s["gap_ms"] - s["drain"];
  s["ov_queued"] = span_ms(ph, "queued");
  s["ov_preparing"] = span_ms(ph, "preparing");
  s["ov_building"] = span_ms(ph, "building") - s["build_ms"];
  s["ov_packaging"] = span_ms(ph, "packaging");
  // berth's candidate clock starts just before fork/exec in `starting` and stops in
  // `health_checking`, so the two phases are one row.
  s["ov_start_health"] = span_ms(ph, "starting") + span_ms(ph, "health_checking") - s["candidate_boot_ms"];
  s["ov_switching"] = span_ms(ph, "switching") - s["gap_ms"];
  // Since the rework berth times the candidate's stop: the rest of the draining span is
  // bookkeeping (the activation's synced batch at the boundary, cleanup, the outcome's append).
  if (r.contains("stop_candidate_us")) {
    s["drain_rest"] = s["drain"] - r["stop_candidate_us"].get<double>() / 1000.0;
    s["overhead_all"] = s["overhead"] + s["drain_rest"];
  }
  if (polled) {
    s["ext_gap"] = ext.longest_ms;
    s["ext_failed"] = static_cast<double>(ext.failed);
    s["ext_polls"] = static_cast<double>(ext.polls);
  }
  return s;
}

series run_series(api_client& api, project_setup& proj, const std::string& label, int n, bool force,
                  const params& p, const std::string& nonce) {
  series out;
  out.label = label;
  for (int k = 0; k < n; ++k) {
    if (!force) proj.version = proj.set_version(nonce + "-" + std::to_string(k + 1));
    port_poller::summary ext;
    auto detail = deploy_once(api, proj, force, &ext, p.poll_us);
    auto s = measure(detail, ext, p.poll_us > 0);
    if (ext.open) ++out.open_windows;
    if (p.verbose) {
      std::printf("  %s #%d:", label.c_str(), k + 1);
      for (auto& [key, v] : s) std::printf(" %s=%.2f", key.c_str(), v);
      std::printf("\n");
      std::fflush(stdout);
    }
    out.samples.push_back(std::move(s));
    // The job ends after the `completed` event (retention, the candidate port's release):
    // let it, so that the next deploy does not queue behind it.
    std::this_thread::sleep_for(150ms);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  for (auto& path : {p.berth, p.tiny})
    if (::access(path.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "bench_deploy: %s is not executable\n", path.c_str());
      return 2;
    }

  // Cleanup on a signal or at the time limit; signals are blocked before any other thread exists.
  g_session.guard(std::chrono::seconds(p.timeout_s));
  const std::string tmp = g_session.open_dir(p.dir, p.keep);

  std::mt19937 rng(std::random_device{}());
  auto ports = berth::bench::port_window_args(rng());
  uint16_t api_port = free_port();
  if (api_port == 0) fail("no free loopback port");
  std::string nonce = std::to_string(rng() % 100000);

  std::string load_before = loadavg();
  std::vector<double> spawn_ms, sync_ms;
  for (int i = 0; i < 20; ++i) {
    spawn_ms.push_back(spawn_exit_ms(p.tiny));
    sync_ms.push_back(synced_write_ms(tmp));
  }
  std::remove((tmp + "/fsync-probe").c_str());
  std::printf("bench_deploy: deploys=%d python_deploys=%d force=%s poll=%dus cores=%u load(1/5/15m)=%s\n"
              "  berth=%s\n  tiny_http=%s\n  dir=%s api=127.0.0.1:%u %s %s %s %s --stop-grace-ms 1000\n"
              "  machine: fork+exec+exit of tiny_http %.2f ms, 200 B write+fdatasync %.2f ms (medians of 20)\n\n",
              p.deploys, p.python ? p.python_deploys : 0, p.force ? "yes" : "no", p.poll_us,
              std::thread::hardware_concurrency(), load_before.c_str(), p.berth.c_str(), p.tiny.c_str(),
              tmp.c_str(), api_port, ports[0].c_str(), ports[1].c_str(), ports[2].c_str(), ports[3].c_str(),
              median(spawn_ms), median(sync_ms));
  std::fflush(stdout);

  std::vector<std::string> args = {p.berth, "serve", "--listen", "127.0.0.1:" + std::to_string(api_port),
                                   "--data", tmp + "/data", "--stop-grace-ms", "1000", "--switch-mode", "direct"};
  args.insert(args.end(), ports.begin(), ports.end());
  api_client api(api_port);
  g_session.start_berth(args, api);

  std::vector<series> results;

  // tiny: C++ app, build = install -D VERSION into dist/
  auto tiny = berth::bench::create_tiny(g_session, api, tmp, p.tiny, nonce);
  deploy_once(api, tiny, false, nullptr, 0);  // warm-up: the first release, nothing to switch from
  results.push_back(run_series(api, tiny, "tiny", p.deploys, false, p, nonce));
  if (p.force) results.push_back(run_series(api, tiny, "tiny --force", p.deploys, true, p, nonce));

  if (p.python) {
    auto py = berth::bench::create_python(g_session, api, tmp, p.python_bin, nonce);
    deploy_once(api, py, false, nullptr, 0);
    results.push_back(run_series(api, py, "python", p.python_deploys, false, p, nonce));
  }

  std::string load_after = loadavg();
  g_session.final_cleanup();

  // The table: one row per measure, median and p90 per series.
  std::printf("%-48s", "ms (median / p90 over the deploys)");
  for (auto& s : results) std::printf(" %21s", (s.label + " (n=" + std::to_string(s.samples.size()) + ")").c_str());
  std::printf("\n");
  for (auto& [key, title] : kRows) {
    bool any = false;
    for (auto& s : results)
      if (!s.samples.empty() && s.samples.front().count(key)) any = true;
    if (!any) continue;
    std::printf("%-48s", title.c_str());
    for (auto& s : results) {
      std::vector<double> v;
      for (auto& x : s.samples)
        if (x.count(key)) v.push_back(x.at(key));
      if (v.empty()) std::printf(" %21s", "-");
      else std::printf(" %10.1f / %8.1f", median(v), p90(v));
    }
    std::printf("\n");
  }
  for (auto& s : results)
    if (s.open_windows)
      std::printf("note: %s: %zu deploys ended with the port still failing when polling stopped\n",
                  s.label.c_str(), s.open_windows);
  std::printf("load(1/5/15m) before %s, after %s\n\n", load_before.c_str(), load_after.c_str());

  for (auto& s : results) {
    json j = {{"bench", "deploy"}, {"series", s.label}, {"deploys", s.samples.size()},
              {"machine_spawn_ms", std::round(median(spawn_ms) * 100) / 100},
              {"machine_fdatasync_ms", std::round(median(sync_ms) * 100) / 100}};
    for (auto& [key, title] : kRows) {
      std::vector<double> v;
      for (auto& x : s.samples)
        if (x.count(key)) v.push_back(x.at(key));
      if (v.empty()) continue;
      j["median_" + key] = std::round(median(v) * 100) / 100;
      j["p90_" + key] = std::round(p90(v) * 100) / 100;
    }
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}
