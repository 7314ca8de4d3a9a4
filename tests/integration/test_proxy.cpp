// Proxy switch mode through a real `berth serve` and a real Caddy (/usr/bin/caddy): deploys,
// rollbacks and a failing deploy under constant client load with zero failed requests; Caddy
// killed (berth restarts it); berth killed (Caddy keeps serving, berth adopts it); routes of a
// deleted project go away; mode selection; the public URL. Skipped when Caddy is not installed.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// The caddy binary on PATH (or /usr/bin/caddy); "" when there is none.
std::string caddy_binary() {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path ? path : "") + ":/usr/bin:/usr/local/bin";
  for (size_t start = 0; start <= dirs.size();) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (end > start) {
      auto candidate = dirs.substr(start, end - start) + "/caddy";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return "";
}

#define SKIP_WITHOUT_CADDY()                                       \
  if (caddy_binary().empty()) {                                    \
    WARN("caddy is not installed: proxy mode test skipped");       \
    return;                                                        \
  }

std::string joined(const std::vector<std::string>& v, size_t max = 15) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i) s += "\n  " + v[i];
  if (v.size() > max) s += "\n  ... (" + std::to_string(v.size() - max) + " more)";
  return s;
}

// GET `path` on 127.0.0.1:port with a fresh connection and the given Host header.
fetch_result fetch_host(uint16_t port, const std::string& host, const std::string& path = "/",
                        std::chrono::milliseconds timeout = 1500ms) {
  return fetch(port, path, timeout, host);
}

// Health checks may take this long (s): test servers share two cores with whatever else runs.
constexpr int health_timeout_s = 15;

// Now as HH:MM:SS.mmm UTC, to line failures up with the server's logs.
std::string wall_clock() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// A berth in proxy mode (its own router: HAProxy, the default, or Caddy) in its own temp dir.
struct proxy_env {
  temp_dir tmp;
  uint16_t http_port = free_port();
  std::string engine;
  std::unique_ptr<server> srv;

  explicit proxy_env(std::string engine_name = "haproxy") : engine(std::move(engine_name)) {
    srv = std::make_unique<server>(
        tmp.path(), deploy_server_options({"--switch-mode", "proxy", "--proxy-engine", engine, "--caddy",
                                           caddy_binary(), "--proxy-http-port", std::to_string(http_port),
                                           "--drain-ms", "300"}));
    wait_proxy_running();
  }
  client& api() { return srv->api(); }
  std::string log_tail(size_t n = 4000) {
    auto l = srv->log();
    return l.size() > n ? l.substr(l.size() - n) : l;
  }
  std::string caddy_log_tail(size_t n = 2000) {
    auto l = read_file(srv->data_dir() + (engine == "caddy" ? "/proxy/caddy.log" : "/proxy/haproxy/haproxy.log"));
    return l.size() > n ? l.substr(l.size() - n) : l;
  }
  json proxy_health() { return srv->health().at("proxy"); }
  // The router's pid (HAProxy: its master; 0 when none runs): /health does not publish it, so
  // found by its cwd. HAProxy's workers are children of the master.
  pid_t caddy_pid() {
    for (auto& p : procs_in(srv->data_dir() + "/proxy")) {
      if (read_file("/proc/" + std::to_string(p.pid) + "/comm").rfind(engine, 0) != 0) continue;
      auto stat = read_file("/proc/" + std::to_string(p.pid) + "/stat");
      auto close = stat.rfind(')');
      pid_t parent = close == std::string::npos ? 0 : std::atoi(stat.c_str() + close + 4);
      if (read_file("/proc/" + std::to_string(parent) + "/comm").rfind(engine, 0) != 0) return p.pid;
    }
    return 0;
  }
  // Waits (≤ 15 s) until /health says Caddy runs; returns the proxy object.
  json wait_proxy_running(std::chrono::milliseconds limit = 15s) {
    json last;
    bool ok = eventually(
        [&] {
          last = proxy_health();
          return last.value("status", "") == "running";
        },
        limit);
    INFO("proxy: " << last.dump() << "\n--- server log tail ---\n"
                   << log_tail() << "\n--- caddy log tail ---\n" << caddy_log_tail());
    REQUIRE(ok);
    return last;
  }
  void create(const json& manifest) {
    auto r = api().post("/api/projects", manifest);
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  uint16_t production_port(const std::string& name) {
    auto r = api().get("/api/projects/" + name);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body.at("ports").at("production").get<uint16_t>();
  }
  std::string start_job(const std::string& path, const std::string& body = "") {
    auto r = api().post(path, body);
    INFO(r.describe());
    REQUIRE(r.status == 202);
    REQUIRE(r.body.is_object());
    REQUIRE(r.body.contains("id"));
    return r.body["id"].get<std::string>();
  }
  std::string deploy(const std::string& name) { return start_job("/api/projects/" + name + "/deployments"); }
  json deploy_ok(const std::string& name) { return must_complete(deploy(name)); }
  json rollback_ok(const std::string& name) {
    return must_complete(start_job("/api/projects/" + name + "/production/rollback"));
  }
  json must_complete(const std::string& id) {
    auto d = wait_done(api(), id, 60s);
    INFO(brief(d) << "\n--- server log tail ---\n" << log_tail());
    REQUIRE(d.value("status", "") == "completed");
    return d;
  }
  // Both routes of the production environment of `name` answer `body`.
  bool serves(uint16_t stable, const std::string& name, const std::string& body) {
    return fetch(stable).body == body && fetch_host(http_port, name + ".localhost").body == body;
  }
  // Creates project "site" from the source folder `src` (at version 1), deploys it and waits
  // until both of its routes serve release 1; returns its stable port.
  uint16_t site_v1(const std::string& src) {
    create(site_manifest("site", src, 5, health_timeout_s));
    deploy_ok("site");
    auto stable = production_port("site");
    REQUIRE(eventually([&] { return serves(stable, "site", "release 1\n"); }, 5s));
    return stable;
  }
};

// Client threads hitting the stable port and the shared listener (Host header) alternately,
// until stopped. Even-numbered threads keep their connections alive (one per target);
// odd-numbered ones open a new connection per request, so both kinds of client are measured.
// Bounded: every request has timeouts, and the run ends after `cap` at the latest.
class load {
 public:
  load(uint16_t stable, uint16_t http_port, std::string host, std::set<std::string> allowed,
       int threads, std::chrono::seconds cap = 90s)
      : allowed_(std::move(allowed)), t0_(steady::now()) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([=] { run(stable, http_port, host, cap, i % 2 == 0); });
  }
  ~load() { stop(); }
  void stop() {
    stop_.store(true);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  size_t requests() const { return requests_[0].load() + requests_[1].load(); }
  // GETs resent once after a kept-alive connection was closed under them.
  size_t resent() const { return resent_.load(); }
  size_t failures() const { return failures_[0].load() + failures_[1].load(); }
  // By kind of client: keep_alive true = kept-alive connections, false = a connection a request.
  size_t requests(bool keep_alive) const { return requests_[keep_alive].load(); }
  size_t failures(bool keep_alive) const { return failures_[keep_alive].load(); }
  std::vector<std::string> failure_samples() const {
    std::lock_guard<std::mutex> g(mu_);
    return samples_;
  }
  std::map<std::string, size_t> bodies() const {
    std::lock_guard<std::mutex> g(mu_);
    return bodies_;
  }
  // Latency percentile in ms over all requests (after stop()).
  double percentile(double p) const {
    std::lock_guard<std::mutex> g(mu_);
    if (latencies_us_.empty()) return 0;
    auto v = latencies_us_;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return static_cast<double>(v[k]) / 1000.0;
  }
  double max_ms() const {
    std::lock_guard<std::mutex> g(mu_);
    return latencies_us_.empty() ? 0 : static_cast<double>(*std::max_element(latencies_us_.begin(), latencies_us_.end())) / 1000.0;
  }

 private:
  void run(uint16_t stable, uint16_t http_port, std::string host, std::chrono::seconds cap, bool keep_alive) {
    auto setup = [keep_alive](httplib::Client& c) {
      c.set_connection_timeout(2, 0);
      c.set_read_timeout(10, 0);
      c.set_write_timeout(5, 0);
      c.set_keep_alive(keep_alive);
      c.set_tcp_nodelay(true);
    };
    httplib::Client by_port("127.0.0.1", stable), by_host("127.0.0.1", http_port);
    setup(by_port);
    setup(by_host);
    httplib::Headers host_header{{"Host", host}};
    std::vector<int64_t> lat;
    std::map<std::string, size_t> bodies;
    lat.reserve(1 << 16);
    auto until = t0_ + cap;
    for (size_t i = 0; !stop_.load() && steady::now() < until; ++i) {
      bool via_host = i % 2 == 1;
      auto t = steady::now();
      auto get = [&] { return via_host ? by_host.Get("/", host_header) : by_port.Get("/"); };
      auto r = get();
      // Caddy closes idle kept-alive connections when it takes a new config; a GET that races
      // that close gets no answer, and HTTP clients (browsers, curl) resend such an idempotent
      // request once on a new connection (RFC 9110 9.2.2). So does this one; it is counted.
      if (!r && keep_alive) {
        resent_.fetch_add(1);
        r = get();
      }
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t).count();
      lat.push_back(us);
      requests_[keep_alive].fetch_add(1);
      std::string what;
      if (!r)
        what = "no response: " + httplib::to_string(r.error());
      else if (r->status != 200)
        what = "HTTP " + std::to_string(r->status) + " '" + r->body.substr(0, 120) + "'";
      else if (!allowed_.count(r->body))
        what = "unexpected body '" + r->body.substr(0, 120) + "'";
      if (r) ++bodies[r->body.substr(0, 60)];
      if (!what.empty()) {
        failures_[keep_alive].fetch_add(1);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - t0_).count();
        std::lock_guard<std::mutex> g(mu_);
        if (samples_.size() < 50)
          samples_.push_back("t+" + std::to_string(ms) + "ms (" + wall_clock() + ") " +
                             (keep_alive ? "keep-alive " : "new-connection ") +
                             (via_host ? "host " : "port ") + what);
      }
    }
    std::lock_guard<std::mutex> g(mu_);
    latencies_us_.insert(latencies_us_.end(), lat.begin(), lat.end());
    for (auto& [b, n] : bodies) bodies_[b] += n;
  }

  std::set<std::string> allowed_;
  steady::time_point t0_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> requests_[2] = {{0}, {0}}, failures_[2] = {{0}, {0}};
  std::atomic<size_t> resent_{0};
  mutable std::mutex mu_;
  std::vector<std::string> samples_;
  std::vector<int64_t> latencies_us_;
  std::map<std::string, size_t> bodies_;
  std::vector<std::thread> threads_;
};

// The lines of the project's deployment logs that say when the proxy switched and when an
// old release was stopped (to line client failures up with them).
std::string switch_times(const std::string& production_dir) {
  std::vector<std::string> lines;
  for (auto& name : list_dir(production_dir + "/logs")) {
    if (name.rfind("deploy-", 0) != 0) continue;
    std::istringstream in(read_file(production_dir + "/logs/" + name));
    for (std::string line; std::getline(in, line);)
      if (line.find("the proxy sends") != std::string::npos ||
          line.find("stopping the old release") != std::string::npos ||
          line.find("phase switching") != std::string::npos)
        lines.push_back(line.substr(0, 140));
  }
  std::sort(lines.begin(), lines.end());
  return joined(lines, 40);
}

std::string bodies_text(const std::map<std::string, size_t>& m) {
  std::string s;
  for (auto& [b, n] : m) s += "\n  " + json(b).dump() + ": " + std::to_string(n);
  return s;
}

// The sample site's server writes headers and body separately without TCP_NODELAY, so on a
// kept-alive connection (Caddy keeps its upstream connections alive) every response waits for
// the peer's delayed ACK: ~40 ms a request, which caps 4 clients at ~90 requests/s. For the
// load test, the test's copy of the site sets TCP_NODELAY (no change when it already does).
void without_nagle(const std::string& site) {
  auto file = site + "/server.py";
  auto text = read_file(file);
  if (text.find("disable_nagle_algorithm") != std::string::npos) return;
  const std::string anchor = "    protocol_version = \"HTTP/1.1\"\n";
  auto at = text.find(anchor);
  REQUIRE(at != std::string::npos);
  text.insert(at + anchor.size(), "    disable_nagle_algorithm = True\n");
  write_file(file, text);
}

bool is_router(const proxy_env& e, pid_t pid) {
  auto comm = read_file("/proc/" + std::to_string(pid) + "/comm");
  return comm.rfind(e.engine, 0) == 0;
}

// The pid of the router that serves (berth says it runs).
pid_t running_router(proxy_env& e) {
  auto h = e.wait_proxy_running();
  pid_t pid = e.caddy_pid();
  INFO("proxy: " << h.dump());
  REQUIRE(pid > 0);
  REQUIRE(is_router(e, pid));
  CHECK(h.value("engine", "") == e.engine);
  return pid;
}

}  // namespace

TEST_CASE("proxy - zero failed requests across deploy and rollback and a failing deploy",
          "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  proxy_env e;
  auto site = make_site(e.tmp, "site", "1");
  without_nagle(site);
  auto stable = e.site_v1(site);

  load clients(stable, e.http_port, "site.localhost", {"release 1\n", "release 2\n"}, 4);
  std::this_thread::sleep_for(300ms);

  // v2, then back to v1, then a broken v3 that must never take traffic.
  set_site(site, "VERSION", "2");
  auto v2_phases = phase_names(e.deploy_ok("site"));
  CHECK(std::find(v2_phases.begin(), v2_phases.end(), "draining") != v2_phases.end());
  std::this_thread::sleep_for(300ms);
  CHECK(e.serves(stable, "site", "release 2\n"));
  e.rollback_ok("site");
  std::this_thread::sleep_for(300ms);
  CHECK(e.serves(stable, "site", "release 1\n"));
  set_site(site, "VERSION", "3");
  set_site(site, "MODE", "health-500");
  {
    // v3 answers / but never passes its health check: give up on it after 5 s.
    auto m = site_manifest("site", site, 5, 5);
    auto r = e.api().put("/api/projects/site", m);
    INFO(r.describe());
    REQUIRE(r.status == 200);
  }
  auto v3 = wait_done(e.api(), e.deploy("site"), 60s);
  std::this_thread::sleep_for(300ms);
  clients.stop();

  auto n = clients.requests(), failed = clients.failures();
  auto p50 = clients.percentile(0.50), p99 = clients.percentile(0.99), worst = clients.max_ms();
  auto bodies = clients.bodies();
  std::ostringstream figures;
  figures << n << " requests (4 threads, stable port + host route), " << failed << " failed ("
          << clients.failures(true) << " of " << clients.requests(true) << " on kept-alive connections, "
          << clients.failures(false) << " of " << clients.requests(false) << " on new connections; "
          << clients.resent() << " GETs resent after a kept-alive connection closed), p50 "
          << p50 << " ms, p99 " << p99 << " ms, max " << worst << " ms";
  std::cout << "[proxy] zero-failure run: " << figures.str() << std::endl;
  WARN(figures.str() << "; bodies:" << bodies_text(bodies));

  {
    INFO("v3: " << brief(v3) << "\n--- server log tail ---\n" << e.log_tail());
    CHECK(v3.value("status", "") == "failed");
    CHECK(v3.value("error", json::object()).value("code", "") == "health_check_failed");
    auto phases = phase_names(v3);
    CHECK(std::find(phases.begin(), phases.end(), "switching") == phases.end());
  }
  INFO("failures:" << joined(clients.failure_samples(), 50) << "\nbodies:" << bodies_text(bodies)
                   << "\nswitches (deployment logs):"
                   << switch_times(e.srv->projects_dir() + "/site/production")
                   << "\n--- server log tail ---\n" << e.log_tail() << "\n--- caddy log tail ---\n"
                   << e.caddy_log_tail());
  CHECK(n >= 5000);
  CHECK(failed == 0);
  CHECK(bodies.count("release 3\n") == 0);
  CHECK(bodies["release 1\n"] > 0);
  CHECK(bodies["release 2\n"] > 0);  // the flips happened under load
  for (auto& [b, count] : bodies) CHECK((b == "release 1\n" || b == "release 2\n"));
  // After all of it, v1 serves on both routes.
  CHECK(e.serves(stable, "site", "release 1\n"));
}

namespace {

void killed_router_comes_back(const std::string& engine) {
  proxy_env e(engine);
  auto site = make_site(e.tmp, "site", "1");
  auto stable = e.site_v1(site);

  pid_t caddy = running_router(e);
  auto restarts_before = e.proxy_health().value("restarts", 0);

  auto t0 = steady::now();
  REQUIRE(::kill(caddy, SIGKILL) == 0);
  bool back = false;
  fetch_result last;
  while (steady::now() - t0 < 15s) {
    last = fetch(stable, "/", 500ms);
    if (last.status == 200 && last.body == "release 1\n") {
      back = true;
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  std::cout << "[proxy] " << engine << " killed: stable port answered again after " << gap << " ms" << std::endl;
  WARN(engine << " SIGKILLed: the stable port answered again after " << gap << " ms");
  INFO("last answer: " << last.describe() << "\n--- server log tail ---\n" << e.log_tail()
                       << "\n--- caddy log tail ---\n" << e.caddy_log_tail());
  REQUIRE(back);
  CHECK(eventually([&] { return fetch_host(e.http_port, "site.localhost").body == "release 1\n"; }, 5s));
  CHECK(fetch_host(e.http_port, "nosuch.localhost").status == 404);

  auto after = e.wait_proxy_running();
  INFO("proxy after: " << after.dump());
  CHECK(after.value("status", "") == "running");
  CHECK(after.value("restarts", 0) >= 1);
  CHECK(after.value("restarts", 0) > restarts_before);
  pid_t now = e.caddy_pid();
  CHECK(now != caddy);
  CHECK(is_router(e, now));
  CHECK(after.value("http_port", 0) == e.http_port);
  // The restarted router carries on with deploys.
  set_site(site, "VERSION", "2");
  e.deploy_ok("site");
  CHECK(eventually([&] { return e.serves(stable, "site", "release 2\n"); }, 5s));
}

void router_serves_while_berth_is_down(const std::string& engine) {
  proxy_env e(engine);
  auto site = make_site(e.tmp, "site", "1");
  auto stable = e.site_v1(site);
  pid_t caddy = running_router(e);

  // One client keeps both routes busy across the kill, the restart and the adoption.
  load clients(stable, e.http_port, "site.localhost", {"release 1\n"}, 1);
  e.srv->kill9();
  REQUIRE_FALSE(e.srv->running());
  size_t answered = 0;
  std::vector<std::string> bad;
  auto t0 = steady::now();
  while (steady::now() - t0 < 1s) {
    auto a = fetch(stable), b = fetch_host(e.http_port, "site.localhost");
    for (auto* r : {&a, &b}) {
      if (r->status == 200 && r->body == "release 1\n") ++answered;
      else bad.push_back((r == &a ? "port: " : "host: ") + r->describe());
    }
    std::this_thread::sleep_for(20ms);
  }
  {
    INFO("answers while berth was down: " << answered << " good, bad:" << joined(bad));
    CHECK(answered >= 10);
    CHECK(bad.empty());
  }
  CHECK(::kill(caddy, 0) == 0);

  e.srv->start();
  auto after = e.wait_proxy_running();
  clients.stop();
  {
    INFO("proxy after: " << after.dump() << "\n--- server log tail ---\n" << e.log_tail());
    CHECK(e.caddy_pid() == caddy);
    CHECK(after.value("restarts", -1) == 0);
    CHECK(e.log_tail(20000).find("adopted " + engine) != std::string::npos);
  }
  {
    INFO("client across the restart: " << clients.requests() << " requests, failures:"
                                       << joined(clients.failure_samples()));
    CHECK(clients.requests() > 20);
    CHECK(clients.failures() == 0);
  }
  CHECK(e.serves(stable, "site", "release 1\n"));

  set_site(site, "VERSION", "2");
  e.deploy_ok("site");
  CHECK(eventually([&] { return e.serves(stable, "site", "release 2\n"); }, 5s));
  CHECK(e.caddy_pid() == caddy);
}

}  // namespace

TEST_CASE("proxy - berth restarts a killed HAProxy and the routes come back", "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  killed_router_comes_back("haproxy");
}

TEST_CASE("proxy - berth restarts a killed Caddy router and the routes come back", "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  killed_router_comes_back("caddy");
}

TEST_CASE("proxy - HAProxy keeps serving while berth is down and berth adopts it", "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  router_serves_while_berth_is_down("haproxy");
}

TEST_CASE("proxy - a Caddy router keeps serving while berth is down and berth adopts it", "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  router_serves_while_berth_is_down("caddy");
}

TEST_CASE("proxy - deleting a project removes its routes and the preview has its host",
          "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  proxy_env e;
  auto site = make_site(e.tmp, "site", "1");
  auto stable = e.site_v1(site);

  auto started = e.api().post("/api/projects/site/preview/start", std::string{});
  INFO(started.describe());
  REQUIRE(started.status == 200);
  REQUIRE(started.body.value("status", "") == "running");
  fetch_result preview;
  CHECK(eventually(
      [&] {
        preview = fetch_host(e.http_port, "site-preview.localhost");
        return preview.status == 200 && preview.body == "preview 1\n";
      },
      5s));
  INFO("preview host: " << preview.describe());
  CHECK(e.proxy_health().value("routes", 0) == 2);

  auto del = e.api().del("/api/projects/site");
  INFO("delete: " << del.describe() << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(del.status / 100 == 2);
  fetch_result port_answer, host_answer, preview_answer;
  bool gone = eventually(
      [&] {
        port_answer = fetch(stable, "/", 500ms);
        host_answer = fetch_host(e.http_port, "site.localhost");
        preview_answer = fetch_host(e.http_port, "site-preview.localhost");
        bool port_gone = port_answer.status == -1 || port_answer.body.find("release") == std::string::npos;
        return port_gone && host_answer.status == 404 && preview_answer.status == 404;
      },
      10s);
  INFO("stable port: " << port_answer.describe() << "\nhost: " << host_answer.describe()
                       << "\npreview host: " << preview_answer.describe());
  CHECK(gone);
  CHECK(port_answer.status == -1);  // the listener is gone: connection refused
  CHECK(e.proxy_health().value("routes", -1) == 0);
  CHECK(e.proxy_health().value("status", "") == "running");
}

TEST_CASE("proxy - mode selection auto falls back to direct and proxy needs a router", "[integration][proxy]") {
  temp_dir tmp;
  std::filesystem::create_directories(tmp / "auto");
  {
    server srv(tmp / "auto", [] {
      server_options o;
      o.extra_args = {"--switch-mode", "auto", "--caddy", "/nonexistent/caddy", "--haproxy", "/nonexistent/haproxy"};
      return o;
    }());
    auto h = srv.health();
    INFO("health: " << h.dump());
    REQUIRE(h.contains("proxy"));
    CHECK(h["proxy"].value("mode", "") == "direct");
    CHECK(h["proxy"].contains("reason"));
  }
  std::filesystem::create_directories(tmp / "proxy");
  auto r = run({"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data",
                tmp / "proxy/data", "--switch-mode", "proxy", "--caddy", "/nonexistent/caddy", "--haproxy",
                "/nonexistent/haproxy"},
               {}, 15s);
  INFO(r.describe());
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code != 0);
  CHECK(r.exit_code != -1);
  CHECK((r.out + r.err).find("proxy mode needs haproxy or caddy") != std::string::npos);
  kill_processes_in(tmp.path());
}

TEST_CASE("proxy - production status shows the public url", "[integration][proxy]") {
  SKIP_WITHOUT_CADDY();
  proxy_env e;
  auto site = make_site(e.tmp, "site", "1");
  auto stable = e.site_v1(site);
  auto r = e.api().get("/api/projects/site/production");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  // The shared listener's port is part of the address (it is not http's 80).
  CHECK(r.body.value("public_url", "") == "http://site.localhost:" + std::to_string(e.http_port));
  CHECK(r.body.value("url", "") == "http://127.0.0.1:" + std::to_string(stable));
  CHECK(r.body.value("port", 0) == stable);
  CHECK(r.body.value("status", "") == "running");
  // What it names answers: the host route and the stable port.
  CHECK(e.serves(stable, "site", "release 1\n"));
  auto h = e.proxy_health();
  INFO("proxy: " << h.dump());
  CHECK(h.value("mode", "") == "proxy");
  CHECK(h.value("http_port", 0) == e.http_port);
  CHECK_FALSE(h.contains("admin_port"));
  CHECK_FALSE(h.contains("pid"));
  CHECK(h.value("routes", 0) >= 1);
}
