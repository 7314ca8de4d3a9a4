// bench_switch: what clients of the stable production port see while deploys run, in the
// direct switch mode (the stable port is handed from the old release to the new one: a short
// dark gap) and in the proxy mode (Caddy owns the stable port; the upstream flips once the
// candidate is healthy, the old release drains for --drain-ms, then stops).
//
// For each mode a fresh `berth serve` (its own temp dir, a free API port, random 200-port
// production and preview windows, --stop-grace-ms 1000, --switch-mode <mode>; proxy mode adds
// --caddy, a free --proxy-http-port and --drain-ms 500) gets the projects
//   tiny    bench/apps/tiny_http (plain sockets, one thread, boots in ~1 ms, closes every
//           connection after its answer)
//   python  a python3 http.server app speaking HTTP/1.1 with keep-alive (boots in ~100 ms)
// each deployed once (v1, the first release). Then, per series (app x connection kind):
//   deploys   `--threads` (4) client threads send GET / to the stable port, `--rate` (250)
//             requests/s each (0: closed loop), while `--deploys` (10; python:
//             `--python-deploys`, 5) deploys run one after the other, each with a new VERSION
//             (a new release hash: build, package, candidate, switch; 150 ms between two
//             deploys); the window ends 150 ms after the last deploy has ended
//   baseline  the same load for the same duration with no deploy running
// Connection kinds: keep-alive (one httplib client per thread, keep-alive on; the app or
// Caddy may still close) and fresh (a new connection per request, closed with an RST so that
// no TIME_WAIT piles up).
// Every request is recorded: start, latency, and whether it failed: no response (connect
// refused/reset, timeout), a status other than 200, or a body not starting "release ".
// Latency percentiles are over the successful requests; a request that is late on the pacing
// schedule starts at once (no burst), and its latency is counted from its actual start.
// "longest outage" is the longest run of failed requests of one thread, from the start of its
// first failed request to the start of the next successful one. "stale" counts good answers
// from an older release than one the same thread had already been served (a flip-flop; 0 is
// expected in both modes).
//
// At the end of each mode (and on SIGINT/SIGTERM and at the time limit) the bench kills berth
// and every process whose cwd is in that mode's temp dir (the releases, Caddy), then removes it.
//
// Usage: bench_switch [--deploys 10] [--python-deploys 5] [--no-python] [--no-fresh]
//                     [--threads 4] [--rate 250] [--modes direct,proxy] [--drain-ms 500]
//                     [--timeout-s 300] [--berth PATH] [--tiny-http PATH] [--python PATH]
//                     [--caddy PATH] [--dir PARENT] [--keep] [--verbose]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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
#include <memory>
#include <mutex>
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
  int deploys = 10;
  int python_deploys = 5;
  bool python = true;
  bool fresh = true;
  int threads = 4;
  int rate = 250;  // requests/s per thread; 0: closed loop
  std::vector<std::string> modes = {"direct", "proxy"};
  int drain_ms = 500;
  int timeout_s = 300;
  std::string berth = BERTH_BINARY;
  std::string tiny = BENCH_TINY_HTTP;
  std::string python_bin;  // "": /usr/bin/python3 when present, else python3 from PATH
  std::string caddy;       // "": /usr/bin/caddy when present, else caddy from PATH
  std::string dir;
  bool keep = false;
  bool verbose = false;
};

params parse(int argc, char** argv) {
  params p;
  const char* tmp = std::getenv("TMPDIR");
  p.dir = tmp && *tmp ? tmp : "/tmp";
  CLI::App app{"bench_switch: what clients of the stable port see during deploys, direct vs proxy"};
  bool no_python = false, no_fresh = false;
  app.add_option("--deploys", p.deploys, "tiny-app deploys per series")->check(CLI::Range(1, 100000));
  app.add_option("--python-deploys", p.python_deploys, "python deploys per series")->check(CLI::Range(0, 100000));
  app.add_flag("--no-python", no_python, "skip the python series");
  app.add_flag("--no-fresh", no_fresh, "skip the new-connection-per-request clients");
  app.add_option("--threads", p.threads, "client threads")->check(CLI::Range(1, 64));
  app.add_option("--rate", p.rate, "requests/s per thread (0: closed loop)")->check(CLI::Range(0, 1000000));
  app.add_option("--modes", p.modes, "direct,proxy")->delimiter(',')->check(CLI::IsMember({"direct", "proxy"}));
  app.add_option("--drain-ms", p.drain_ms, "proxy mode drain")->check(CLI::Range(0, 3600000));
  app.add_option("--timeout-s", p.timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  app.add_option("--berth", p.berth, "berth binary");
  app.add_option("--tiny-http", p.tiny, "tiny_http binary");
  app.add_option("--python", p.python_bin, "python3 for the python app");
  app.add_option("--caddy", p.caddy, "caddy binary");
  app.add_option("--dir", p.dir, "parent of the temp dirs");
  app.add_flag("--keep", p.keep, "keep the temp dirs");
  app.add_flag("--verbose", p.verbose, "per-series JSON and each deploy's phases");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  p.python = !no_python;
  p.fresh = !no_fresh;
  if (p.python_bin.empty())
    p.python_bin = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  if (p.caddy.empty()) p.caddy = ::access("/usr/bin/caddy", X_OK) == 0 ? "/usr/bin/caddy" : "caddy";
  if (p.python_deploys == 0) p.python = false;
  return p;
}

// ---- the berth under test ------------------------------------------------------------------

using berth::bench::api_client;
using berth::bench::free_port;
using berth::bench::loadavg;
using berth::bench::median;
using berth::bench::project_setup;

berth::bench::session g_session{"bench_switch"};

[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

// ---- HTTP -----------------------------------------------------------------------------------

// What one request of the load got.
enum outcome : uint8_t { ok = 0, no_response, bad_status, bad_body };

struct request_sample {
  int64_t start_us;  // since the window's start
  int32_t latency_us;
  outcome what;
  int16_t detail;   // no_response: httplib::Error; bad_status: the status
  int32_t version;  // ok: the k of "release <app>-<nonce>-<k>" (-1: not such a body)
};

// "release tiny-123-7\n" -> 7
int32_t version_of(const std::string& body) {
  auto dash = body.rfind('-');
  if (dash == std::string::npos) return -1;
  char* end = nullptr;
  long k = std::strtol(body.c_str() + dash + 1, &end, 10);
  return end && end != body.c_str() + dash + 1 ? static_cast<int32_t>(k) : -1;
}

// `threads` client threads GET / on 127.0.0.1:port until stop(); each records every request.
class load {
 public:
  load(uint16_t port, int threads, int rate, bool keep_alive)
      : t0_(steady::now()),
        wall0_us_(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count()) {
    per_thread_.resize(threads);
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([=] { loop(i, port, rate, keep_alive, threads); });
  }
  ~load() { stop(); }
  // Stops (each thread ends after its request in flight, bounded by the client timeouts) and
  // returns the window's length in ms.
  double stop() {
    if (!stopped_) {
      stop_ = true;
      for (auto& t : threads_) t.join();
      stopped_ = true;
      ms_ = std::chrono::duration<double, std::milli>(steady::now() - t0_).count();
    }
    return ms_;
  }
  const std::vector<std::vector<request_sample>>& samples() const { return per_thread_; }
  int64_t wall0_us() const { return wall0_us_; }  // the window's start, µs since the epoch

 private:
  void loop(int index, uint16_t port, int rate, bool keep_alive, int threads) {
    auto& out = per_thread_[index];
    out.reserve(rate > 0 ? 200000 : 1000000);
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(1, 0);
    cli.set_read_timeout(2, 0);
    cli.set_write_timeout(2, 0);
    cli.set_keep_alive(keep_alive);
    cli.set_tcp_nodelay(true);
    // Close with an RST: thousands of connections a second leave no TIME_WAIT behind.
    cli.set_socket_options([](socket_t sock) {
      linger lg{1, 0};
      ::setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    });
    const auto every = rate > 0 ? std::chrono::nanoseconds(1000000000LL / rate) : std::chrono::nanoseconds(0);
    auto next = t0_ + every * index / threads;  // the threads' schedules are staggered
    std::this_thread::sleep_until(next);
    while (!stop_) {
      auto s = steady::now();
      auto r = cli.Get("/");
      auto e = steady::now();
      outcome what = ok;
      int16_t detail = 0;
      if (!r) what = no_response, detail = static_cast<int16_t>(r.error());
      else if (r->status != 200) what = bad_status, detail = static_cast<int16_t>(r->status);
      else if (r->body.rfind("release ", 0) != 0) what = bad_body;
      out.push_back({std::chrono::duration_cast<std::chrono::microseconds>(s - t0_).count(),
                     static_cast<int32_t>(std::chrono::duration_cast<std::chrono::microseconds>(e - s).count()),
                     what, detail, what == ok ? version_of(r->body) : -1});
      if (rate > 0) {
        next += every;
        auto now = steady::now();
        if (next < now) next = now;  // late: go on at once, do not burst to catch up
        std::this_thread::sleep_until(next);
      }
    }
  }
  steady::time_point t0_;
  int64_t wall0_us_;
  std::atomic<bool> stop_{false};
  bool stopped_ = false;
  double ms_ = 0;
  std::vector<std::vector<request_sample>> per_thread_;
  std::vector<std::thread> threads_;
};

// ---- statistics -----------------------------------------------------------------------------

double rank(const std::vector<double>& sorted, double q) {  // nearest rank
  if (sorted.empty()) return NAN;
  size_t r = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[std::min(std::max<size_t>(r, 1), sorted.size()) - 1];
}

struct window_stats {
  double ms = 0;
  size_t requests = 0, failed = 0, no_response = 0, bad_status = 0, bad_body = 0;
  double fail_pct = 0, rps = 0;
  double p50 = NAN, p99 = NAN, max = NAN;  // ms, successful requests
  double longest_outage_ms = 0;
  size_t stale = 0;  // good answers from an older release than one the same thread already got
  std::map<std::string, size_t> errors;  // failures by kind: httplib's error name, "status N", "body"
  json to_json() const {
    auto r2 = [](double x) { return std::isnan(x) ? json(nullptr) : json(std::round(x * 1000) / 1000); };
    return {{"ms", std::round(ms)},       {"requests", requests},    {"failed", failed},
            {"no_response", no_response}, {"bad_status", bad_status}, {"bad_body", bad_body},
            {"fail_pct", r2(fail_pct)},   {"rps", std::round(rps)},   {"p50_ms", r2(p50)},
            {"p99_ms", r2(p99)},          {"max_ms", r2(max)},        {"longest_outage_ms", r2(longest_outage_ms)},
            {"errors", errors}, {"stale", stale}};
  }
};

window_stats analyse(load& l) {
  window_stats w;
  w.ms = l.stop();
  std::vector<double> lat;
  for (auto& thread : l.samples()) {
    int64_t run_start = -1;
    int32_t newest = -1;
    for (auto& x : thread) {
      ++w.requests;
      if (x.what == ok) {
        if (x.version >= 0 && x.version < newest) ++w.stale;
        newest = std::max(newest, x.version);
        lat.push_back(x.latency_us / 1000.0);
        if (run_start >= 0) w.longest_outage_ms = std::max(w.longest_outage_ms, (x.start_us - run_start) / 1000.0);
        run_start = -1;
        continue;
      }
      ++w.failed;
      if (x.what == no_response) {
        ++w.no_response;
        ++w.errors[httplib::to_string(static_cast<httplib::Error>(x.detail))];
      } else if (x.what == bad_status) {
        ++w.bad_status;
        ++w.errors["status " + std::to_string(x.detail)];
      } else {
        ++w.bad_body;
        ++w.errors["body"];
      }
      if (run_start < 0) run_start = x.start_us;
    }
    if (run_start >= 0 && !thread.empty()) {  // still failing at the end
      auto& last = thread.back();
      w.longest_outage_ms = std::max(w.longest_outage_ms, (last.start_us + last.latency_us - run_start) / 1000.0);
    }
  }
  std::sort(lat.begin(), lat.end());
  w.fail_pct = w.requests ? 100.0 * w.failed / w.requests : 0;
  w.rps = w.ms > 0 ? w.requests * 1000.0 / w.ms : 0;
  w.p50 = rank(lat, 0.50);
  w.p99 = rank(lat, 0.99);
  w.max = lat.empty() ? NAN : lat.back();
  return w;
}

// ---- the deploys ----------------------------------------------------------------------------

// Deploys `proj` once; waits (bounded) for the end. Returns the detail.
json deploy_once(api_client& api, const project_setup& proj) {
  auto [code, body] = api.post("/api/projects/" + proj.name + "/deployments", json::object());
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
  if (detail.value("status", "") != "completed")
    fail("deployment " + id + " ended " + detail.value("status", "?"), detail.dump(2));
  return detail;
}

// The stable port serves the current release (a fresh connection, bounded).
void check_serves(const project_setup& proj) {
  httplib::Client cli("127.0.0.1", proj.port);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(2, 0);
  auto until = steady::now() + 5s;
  std::string got;
  for (;;) {
    auto r = cli.Get("/");
    got = r ? std::to_string(r->status) + " " + r->body : "no response (" + httplib::to_string(r.error()) + ")";
    if (r && r->status == 200 && r->body == "release " + proj.version + "\n") return;
    if (steady::now() > until) break;
    std::this_thread::sleep_for(50ms);
  }
  fail("port " + std::to_string(proj.port) + " serves '" + got + "', expected release " + proj.version);
}

struct series_result {
  std::string label;  // "tiny keep-alive"
  int deploys = 0;
  window_stats during, baseline;
  std::vector<double> deploy_ms, gap_ms;  // per deploy: duration, berth's gap_ms (when reported)
};

series_result run_series(api_client& api, project_setup& proj, const std::string& conn, int n,
                         const params& p, const std::string& nonce, int& version_counter) {
  series_result out;
  out.label = proj.name.substr(proj.name.find('-') + 1) + " " + conn;
  out.deploys = n;
  bool keep_alive = conn == "keep-alive";
  double window_ms = 0;
  std::vector<std::string> timeline;
  {
    load l(proj.port, p.threads, p.rate, keep_alive);
    for (int k = 0; k < n; ++k) {
      proj.version = proj.set_version(nonce + "-" + std::to_string(++version_counter));
      auto detail = deploy_once(api, proj);
      int64_t created = 0, finished = 0;
      if (berth::parse_iso8601(detail.value("created", ""), created) && detail["finished"].is_string() &&
          berth::parse_iso8601(detail["finished"].get<std::string>(), finished))
        out.deploy_ms.push_back((finished - created) / 1000.0);
      auto& r = detail["resources"];
      if (r.is_object() && r.contains("gap_ms") && r["gap_ms"].is_number()) out.gap_ms.push_back(r["gap_ms"].get<double>());
      if (p.verbose) {  // the deploy's phases on the window's clock, to place the failures
        std::string line = "    deploy " + std::to_string(k + 1) + ":";
        for (auto& ph : detail["phases"]) {
          int64_t st = 0;
          if (berth::parse_iso8601(ph.value("started", ""), st))
            line += " " + ph.value("phase", "?") + "@" + std::to_string((st - l.wall0_us()) / 1000);
        }
        if (finished) line += " end@" + std::to_string((finished - l.wall0_us()) / 1000);
        timeline.push_back(line + " ms");
      }
      // The job ends after the `completed` event (retention, the candidate port's release):
      // let it, so that the next deploy does not queue behind it.
      std::this_thread::sleep_for(150ms);
    }
    out.during = analyse(l);
    window_ms = out.during.ms;
    if (p.verbose) {
      std::printf("  %s: deploys window\n", out.label.c_str());
      for (auto& t : timeline) std::printf("%s\n", t.c_str());
      for (size_t t = 0; t < l.samples().size(); ++t)
        for (auto& x : l.samples()[t])
          if (x.what != ok)
            std::printf("    failed request: thread %zu @%.1f ms, %.1f ms, %s\n", t, x.start_us / 1000.0,
                        x.latency_us / 1000.0,
                        x.what == no_response ? httplib::to_string(static_cast<httplib::Error>(x.detail)).c_str()
                        : x.what == bad_status ? ("status " + std::to_string(x.detail)).c_str()
                                               : "body");
    }
  }
  check_serves(proj);
  std::this_thread::sleep_for(300ms);
  {
    load l(proj.port, p.threads, p.rate, keep_alive);
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(window_ms * 1000)));
    out.baseline = analyse(l);
  }
  if (p.verbose) {
    std::printf("  %-20s deploys: %s\n  %-20s baseline: %s\n", out.label.c_str(), out.during.to_json().dump().c_str(),
                "", out.baseline.to_json().dump().c_str());
    std::fflush(stdout);
  }
  return out;
}

struct mode_result {
  std::string mode;
  std::string load_before, load_after;
  std::vector<series_result> series;
};

mode_result run_mode(const std::string& mode, const params& p, std::mt19937& rng) {
  mode_result res;
  res.mode = mode;
  const std::string tmp = g_session.open_dir(p.dir, p.keep);
  auto ports = berth::bench::port_window_args(rng());
  uint16_t api_port = free_port();
  if (api_port == 0) fail("no free loopback port");
  std::string nonce = std::to_string(rng() % 100000);
  std::vector<std::string> args = {p.berth, "serve", "--listen", "127.0.0.1:" + std::to_string(api_port),
                                   "--data", tmp + "/data", "--stop-grace-ms", "1000", "--switch-mode", mode};
  args.insert(args.end(), ports.begin(), ports.end());
  if (mode == "proxy")
    for (auto& a : {std::string("--caddy"), p.caddy, std::string("--proxy-http-port"), std::to_string(free_port()),
                    std::string("--drain-ms"), std::to_string(p.drain_ms)})
      args.push_back(a);
  std::printf("mode %s: dir=%s api=127.0.0.1:%u %s %s %s %s%s\n", mode.c_str(), tmp.c_str(), api_port,
              ports[0].c_str(), ports[1].c_str(), ports[2].c_str(), ports[3].c_str(),
              mode == "proxy" ? (" caddy=" + p.caddy + " --drain-ms " + std::to_string(p.drain_ms)).c_str() : "");
  std::fflush(stdout);
  api_client api(api_port);
  // In proxy mode, wait for Caddy as well.
  g_session.start_berth(args, api, [&](const json& health) {
    if (mode == "proxy" && health["proxy"].value("status", "") != "running") return false;
    if (health["proxy"].value("mode", "") != mode) fail("berth runs switch mode " + health["proxy"].dump());
    return true;
  });

  auto first_release = [&](project_setup& proj) {
    deploy_once(api, proj);  // v1: the first release, nothing to switch from
    std::this_thread::sleep_for(150ms);
    check_serves(proj);
  };
  auto tiny = berth::bench::create_tiny(g_session, api, tmp, p.tiny, nonce);
  first_release(tiny);
  project_setup py;
  if (p.python) {
    py = berth::bench::create_python(g_session, api, tmp, p.python_bin, nonce);
    first_release(py);
  }

  res.load_before = loadavg();
  int counter = 0;
  std::vector<std::string> conns = {"keep-alive"};
  if (p.fresh) conns.push_back("fresh");
  for (auto& c : conns) res.series.push_back(run_series(api, tiny, c, p.deploys, p, nonce, counter));
  if (p.python)
    for (auto& c : conns) res.series.push_back(run_series(api, py, c, p.python_deploys, p, nonce, counter));
  res.load_after = loadavg();
  g_session.cleanup();
  return res;
}

std::string fmt(double x, int prec = 1) {
  if (std::isnan(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, x);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  for (auto& path : {p.berth, p.tiny})
    if (::access(path.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "bench_switch: %s is not executable\n", path.c_str());
      return 2;
    }

  // Cleanup on a signal or at the time limit; signals are blocked before any other thread exists.
  g_session.guard(std::chrono::seconds(p.timeout_s));

  std::printf("bench_switch: modes=%zu deploys=%d python_deploys=%d threads=%d rate=%s fresh=%s cores=%u "
              "load(1/5/15m)=%s\n  berth=%s\n  tiny_http=%s\n  python=%s\n\n",
              p.modes.size(), p.deploys, p.python ? p.python_deploys : 0, p.threads,
              p.rate > 0 ? (std::to_string(p.rate) + "/s per thread").c_str() : "closed loop",
              p.fresh ? "yes" : "no", std::thread::hardware_concurrency(), loadavg().c_str(), p.berth.c_str(),
              p.tiny.c_str(), p.python_bin.c_str());
  std::fflush(stdout);

  auto t_start = steady::now();
  std::mt19937 rng(std::random_device{}());
  std::vector<mode_result> results;
  for (auto& m : p.modes) results.push_back(run_mode(m, p, rng));
  double total_s = std::chrono::duration<double>(steady::now() - t_start).count();

  // The table: per mode and series, the window with deploys and the baseline.
  std::printf("\n%-6s %-18s %-8s %7s %6s %7s %6s %7s %7s %8s %8s %9s %9s %6s\n", "mode", "series", "window", "ms",
              "req/s", "reqs", "failed", "fail%", "p50ms", "p99ms", "max ms", "outage ms", "deploy ms", "gap ms");
  for (auto& m : results)
    for (auto& s : m.series)
      for (int w = 0; w < 2; ++w) {
        auto& x = w == 0 ? s.during : s.baseline;
        std::printf("%-6s %-18s %-8s %7.0f %6.0f %7zu %6zu %7s %7s %8s %8s %9s %9s %6s\n", m.mode.c_str(),
                    s.label.c_str(), w == 0 ? "deploys" : "baseline", x.ms, x.rps, x.requests, x.failed,
                    fmt(x.fail_pct, 2).c_str(), fmt(x.p50, 2).c_str(), fmt(x.p99, 2).c_str(), fmt(x.max, 1).c_str(),
                    fmt(x.longest_outage_ms, 1).c_str(), w == 0 ? fmt(median(s.deploy_ms), 0).c_str() : "",
                    w == 0 ? fmt(median(s.gap_ms), 1).c_str() : "");
      }
  // proxy vs direct p99, per series present in both.
  const mode_result* direct = nullptr;
  const mode_result* proxy = nullptr;
  for (auto& m : results) (m.mode == "direct" ? direct : proxy) = &m;
  json ratios = json::object();
  if (direct && proxy) {
    std::printf("\np99 ratio proxy / direct:\n");
    for (auto& ps : proxy->series)
      for (auto& ds : direct->series)
        if (ps.label == ds.label) {
          double rd = ps.during.p99 / ds.during.p99, rb = ps.baseline.p99 / ds.baseline.p99;
          std::printf("  %-18s deploys %.2fx   baseline %.2fx\n", ps.label.c_str(), rd, rb);
          ratios[ps.label] = {{"deploys", std::round(rd * 100) / 100}, {"baseline", std::round(rb * 100) / 100}};
        }
  }
  for (auto& m : results)
    for (auto& s : m.series)
      for (auto* x : {&s.during, &s.baseline})
        if (x->stale)
          std::printf("note: %s %s: %zu answers from an older release after a newer one\n", m.mode.c_str(),
                      s.label.c_str(), x->stale);
  for (auto& m : results)
    std::printf("load(1/5/15m) %s: before %s, after %s\n", m.mode.c_str(), m.load_before.c_str(),
                m.load_after.c_str());
  std::printf("total %.1f s\n\n", total_s);

  for (auto& m : results) {
    json j = {{"bench", "switch"}, {"mode", m.mode},      {"threads", p.threads},
              {"rate_per_thread", p.rate}, {"drain_ms", m.mode == "proxy" ? json(p.drain_ms) : json(nullptr)},
              {"load_before", m.load_before}, {"load_after", m.load_after}};
    for (auto& s : m.series) {
      json sj = {{"deploys_n", s.deploys}, {"deploys", s.during.to_json()}, {"baseline", s.baseline.to_json()},
                 {"median_deploy_ms", std::round(median(s.deploy_ms) * 10) / 10},
                 {"failed_per_deploy", std::round(100.0 * s.during.failed / std::max(1, s.deploys)) / 100}};
      if (!s.gap_ms.empty()) sj["median_gap_ms"] = median(s.gap_ms);
      j["series"][s.label] = sj;
    }
    if (m.mode == "proxy" && !ratios.empty()) j["p99_ratio_vs_direct"] = ratios;
    std::printf("%s\n", j.dump().c_str());
  }
  g_session.final_cleanup();
  return 0;
}
