// Zero downtime, as users see it: a real `berth serve --switch-mode proxy --drain-ms 3000` (its
// default router: HAProxy when installed, else Caddy) with
// two projects A and B from tests/apps/traffic, and real clients (traffic_support.hpp) on A's
// stable port and on the host listener (Host: alpha.localhost): a WebSocket, a kept-alive POST
// client that never resends, a new-connection GET client and a streaming reader on each.
// Across A's own deploys a WebSocket may close only when the old release's drain ends, and
// cleanly; across a neighbour's deploys and delete nothing of A's is touched at all.
// BERTH_IT_PROXY_ENGINE=caddy (or haproxy) in the test's environment picks the router.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/traffic_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

namespace fs = std::filesystem;

constexpr int drain_ms = 3000;
const std::string A = "alpha", B = "bravo";  // project names (3 characters at least)
constexpr int health_timeout_s = 15;  // test servers share two cores with whatever else runs

// berth's router in proxy mode: HAProxy (the default when installed), else Caddy.
bool have_router() {
  for (const char* p : {"/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/bin/caddy"})
    if (fs::exists(p)) return true;
  return false;
}

#define SKIP_WITHOUT_PROXY()                                      \
  if (!have_router()) {                                           \
    WARN("no proxy installed: zero-downtime test skipped");       \
    return;                                                       \
  }

// A copy of tests/apps/traffic in <tmp>/<dir> at `version`; returns its path.
std::string make_app(const temp_dir& tmp, const std::string& dir, const std::string& version) {
  auto path = tmp / dir;
  fs::create_directories(path);
  for (const char* f : {"build.py", "server.py"})
    fs::copy_file(std::string(BERTH_TEST_APPS) + "/traffic/" + f, path + "/" + f,
                  fs::copy_options::overwrite_existing);
  write_file(path + "/VERSION", version + "\n");
  return path;
}

json app_manifest(const std::string& name, const std::string& src, int health_s = health_timeout_s) {
  return {{"name", name},
          {"source", {{"path", src}}},
          {"build", {{"command", {"python3", "build.py"}}, {"artifacts", {"dist"}}}},
          {"production",
           {{"command", {"python3", "dist/server.py"}},
            {"health", {{"path", "/health"}, {"timeout_s", health_s}, {"interval_ms", 100}, {"min_healthy_s", 0}}},
            {"keep", 10}}}};
}

double ms_since(steady::time_point t0) { return std::chrono::duration<double, std::milli>(steady::now() - t0).count(); }

// berth in proxy mode with projects A and B deployed at release 1.
struct zd_env {
  temp_dir tmp;
  uint16_t http_port = free_port();
  std::unique_ptr<server> srv;
  std::string a_src, b_src;
  uint16_t a_port = 0, b_port = 0;

  zd_env() {
    std::vector<std::string> args{"--switch-mode", "proxy", "--caddy", "/usr/bin/caddy", "--proxy-http-port",
                                  std::to_string(http_port), "--drain-ms", std::to_string(drain_ms)};
    // BERTH_IT_PROXY_ENGINE=caddy|haproxy measures one router on purpose (default: berth's choice).
    if (const char* engine = std::getenv("BERTH_IT_PROXY_ENGINE"); engine && *engine)
      args.insert(args.end(), {"--proxy-engine", engine});
    srv = std::make_unique<server>(tmp.path(), deploy_server_options(args));
    a_src = make_app(tmp, "a-src", "1");
    b_src = make_app(tmp, "b-src", "1");
    for (auto [name, src] : {std::pair{A, a_src}, std::pair{B, b_src}}) {
      auto r = api().post("/api/projects", app_manifest(name, src));
      INFO(r.describe());
      REQUIRE(r.status == 201);
    }
    deploy_ok(A);
    deploy_ok(B);
    a_port = production_port(A);
    b_port = production_port(B);
    REQUIRE(eventually([&] { return serves(A, a_port, "release 1\n") && serves(B, b_port, "release 1\n"); }, 10s));
  }
  client& api() { return srv->api(); }
  std::string log_tail(size_t n = 3000) {
    auto l = srv->log();
    return l.size() > n ? l.substr(l.size() - n) : l;
  }
  uint16_t production_port(const std::string& name) {
    auto r = api().get("/api/projects/" + name);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body.at("ports").at("production").get<uint16_t>();
  }
  std::string start_job(const std::string& path) {
    auto r = api().post(path, std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    return r.body.at("id").get<std::string>();
  }
  json finish(const std::string& id) { return wait_done(api(), id, 60s); }
  json must_complete(const std::string& id) {
    auto d = finish(id);
    INFO(brief(d) << "\n--- server log tail ---\n" << log_tail());
    REQUIRE(d.value("status", "") == "completed");
    return d;
  }
  json deploy_ok(const std::string& name) { return must_complete(start_job("/api/projects/" + name + "/deployments")); }
  bool serves(const std::string& name, uint16_t port, const std::string& body) {
    return fetch(port).body == body && fetch(http_port, "/", 1500ms, name + ".localhost").body == body;
  }
  // The targets a user of project `name` reaches it by: its stable port and the host listener.
  std::vector<std::pair<std::string, target>> routes_of(const std::string& name, uint16_t port) {
    target by_port{"127.0.0.1", port, "", {}};
    target by_host{"127.0.0.1", http_port, name + ".localhost", {}};
    return {{"port", by_port}, {"host", by_host}};
  }
};

// Every kind of client on every route of a project, started together.
struct clients {
  std::vector<std::pair<std::string, std::unique_ptr<traffic_client>>> all;
  std::map<std::string, traffic_report> reports;
  steady::time_point t0;

  clients(const std::vector<std::pair<std::string, target>>& routes, bool ws_reconnect) {
    for (auto& [route, t] : routes) {
      all.emplace_back("websocket/" + route, websocket_client(t, "/ws", 100ms, ws_reconnect));
      all.emplace_back("keepalive-post/" + route, keepalive_post_client(t, "/echo", 20ms));
      all.emplace_back("new-connection-get/" + route, new_connection_client(t, "/", 50ms));
      all.emplace_back("stream/" + route, streaming_client(t, "/stream"));
    }
    t0 = steady::now();
    for (auto& c : all) c.second->start();
  }
  ~clients() { stop(); }
  void stop() {
    for (auto& [name, c] : all)
      if (!reports.count(name)) reports[name] = c->stop();
  }
  uint64_t sum(uint64_t traffic_report::*field) const {
    uint64_t n = 0;
    for (auto& [name, r] : reports) n += r.*field;
    return n;
  }
  std::vector<std::string> of_kind(const std::string& kind) const {
    std::vector<std::string> names;
    for (auto& [name, r] : reports)
      if (name.rfind(kind + "/", 0) == 0) names.push_back(name);
    return names;
  }
  // One line per client: counts, p50/p99, longest stall, releases seen; then every error.
  std::string figures() const {
    std::ostringstream out;
    for (auto& [name, r] : reports) {
      auto v = r.latencies_ms;
      std::sort(v.begin(), v.end());
      auto pct = [&](double p) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
      out << "\n  " << name << ": ok " << r.ok << ", failed " << r.failed << ", unexpected closes "
          << r.unexpected_closes << ", clean closes " << r.clean_closes << ", p50 " << pct(0.5) << " ms, p99 "
          << pct(0.99) << " ms, longest stall " << static_cast<long>(r.longest_stall_ms) << " ms (ended t+"
          << static_cast<long>(r.longest_stall_end_ms) << " ms), seen:";
      for (auto& b : r.bodies_seen)
        out << " [" << b << "]";
      for (auto& e : r.errors) out << "\n      " << e;
    }
    return out.str();
  }
};

bool saw(const traffic_report& r, const std::string& line) {
  return std::find(r.bodies_seen.begin(), r.bodies_seen.end(), line) != r.bodies_seen.end();
}

void print_figures(const std::string& scenario, const clients& c) {
  std::cout << "[zero downtime] " << scenario << ":" << c.figures() << std::endl;
}

}  // namespace

TEST_CASE("zero downtime: five deploys of a project close its websockets only after the drain",
          "[integration][proxy][zero-downtime]") {
  SKIP_WITHOUT_PROXY();
  zd_env e;
  clients c(e.routes_of(A, e.a_port), true);
  std::this_thread::sleep_for(500ms);
  struct window {
    double requested_ms, done_ms;
  };
  std::vector<window> deploys;
  for (int v = 2; v <= 6; ++v) {
    write_file(e.a_src + "/VERSION", std::to_string(v) + "\n");
    double asked = ms_since(c.t0);
    e.deploy_ok(A);
    deploys.push_back({asked, ms_since(c.t0)});
  }
  std::this_thread::sleep_for(500ms);
  c.stop();
  print_figures("five deploys of A", c);
  INFO("clients:" << c.figures() << "\n--- server log tail ---\n" << e.log_tail());

  CHECK(c.sum(&traffic_report::failed) == 0);
  CHECK(c.sum(&traffic_report::unexpected_closes) == 0);
  for (auto& name : c.of_kind("new-connection-get")) {
    INFO(name);
    auto& r = c.reports[name];
    CHECK(r.ok >= 50);
    CHECK(saw(r, "release 1"));  // the answering release changed, deploy by deploy
    CHECK(saw(r, "release 6"));
  }
  for (auto& name : c.of_kind("websocket")) {
    INFO(name);
    auto& r = c.reports[name];
    // One clean close a deploy, when the old release's drain ended, then on the new release.
    CHECK(r.clean_closes == deploys.size());
    CHECK(saw(r, "release 6"));
    for (double at : r.clean_close_at_ms) {
      INFO("a clean close at t+" << at << " ms");
      bool after_a_drain = std::any_of(deploys.begin(), deploys.end(), [&](const window& w) {
        return at >= w.requested_ms + drain_ms - 100 && at <= w.done_ms + 1500;
      });
      CHECK(after_a_drain);
    }
  }
  for (auto& name : c.of_kind("stream")) {
    INFO(name);
    CHECK(c.reports[name].ok >= 5);  // stalls are figures (printed; bench_switch), not assertions
  }
  for (auto& name : c.of_kind("keepalive-post")) {
    INFO(name);
    CHECK(c.reports[name].ok >= 300);
    CHECK(saw(c.reports[name], "echo from release 6"));  // kept-alive connections follow the deploys
  }
  CHECK(e.serves(A, e.a_port, "release 6\n"));
}

TEST_CASE("zero downtime: five deploys of a neighbour never touch a project's connections",
          "[integration][proxy][zero-downtime]") {
  SKIP_WITHOUT_PROXY();
  zd_env e;
  // No reconnecting: A's sockets must live through all of B's deploys.
  clients c(e.routes_of(A, e.a_port), false);
  std::this_thread::sleep_for(500ms);
  for (int v = 2; v <= 6; ++v) {
    write_file(e.b_src + "/VERSION", std::to_string(v) + "\n");
    e.deploy_ok(B);
  }
  std::this_thread::sleep_for(500ms);
  c.stop();
  print_figures("five deploys of neighbour B, clients of A", c);
  INFO("clients of A:" << c.figures() << "\n--- server log tail ---\n" << e.log_tail());

  CHECK(e.serves(B, e.b_port, "release 6\n"));  // B's deploys happened
  CHECK(c.sum(&traffic_report::failed) == 0);
  CHECK(c.sum(&traffic_report::unexpected_closes) == 0);
  CHECK(c.sum(&traffic_report::clean_closes) == 0);  // not even announced closes
  for (auto& name : c.of_kind("websocket")) {
    INFO(name);
    auto& r = c.reports[name];
    // Echoed throughout (one every 100 ms, each awaited: a missing echo is a failure); how long
    // the longest gap was is a figure (printed; bench_switch), not an assertion.
    CHECK(r.ok >= 100);
  }
  for (auto& [name, r] : c.reports) {
    INFO(name);
    CHECK(r.ok > 0);
    for (auto& b : r.bodies_seen) CHECK((b == "echo" || b == "echo from release 1" || b.rfind("release 1", 0) == 0));
  }
}

TEST_CASE("zero downtime: a rollback and a broken deploy and a neighbour delete",
          "[integration][proxy][zero-downtime]") {
  SKIP_WITHOUT_PROXY();
  zd_env e;
  write_file(e.a_src + "/VERSION", "2\n");
  e.deploy_ok(A);
  REQUIRE(eventually([&] { return e.serves(A, e.a_port, "release 2\n"); }, 5s));

  clients c(e.routes_of(A, e.a_port), true);
  std::this_thread::sleep_for(500ms);
  double rollback_asked = ms_since(c.t0);
  e.must_complete(e.start_job("/api/projects/" + A + "/production/rollback"));
  double rollback_done = ms_since(c.t0);
  CHECK(e.serves(A, e.a_port, "release 1\n"));

  // A release whose health check fails: it must never take traffic.
  write_file(e.a_src + "/VERSION", "broken\n");
  {
    auto r = e.api().put("/api/projects/" + A, app_manifest(A, e.a_src, 4));
    INFO(r.describe());
    REQUIRE(r.status == 200);
  }
  double broken_asked = ms_since(c.t0);
  auto broken = e.finish(e.start_job("/api/projects/" + A + "/deployments"));
  double broken_done = ms_since(c.t0);
  {
    INFO(brief(broken));
    CHECK(broken.value("status", "") == "failed");
  }
  CHECK(e.serves(A, e.a_port, "release 1\n"));

  double delete_asked = ms_since(c.t0);
  auto del = e.api().del("/api/projects/" + B);
  INFO(del.describe());
  REQUIRE(del.status / 100 == 2);
  CHECK(eventually([&] { return fetch(e.http_port, "/", 1500ms, B + ".localhost").status == 404; }, 10s));
  std::this_thread::sleep_for(1000ms);  // A's clients keep going after B is gone
  c.stop();
  std::ostringstream timeline;
  timeline << "rollback t+" << static_cast<long>(rollback_asked) << ".." << static_cast<long>(rollback_done)
           << " ms, broken deploy t+" << static_cast<long>(broken_asked) << ".." << static_cast<long>(broken_done)
           << " ms, delete of B t+" << static_cast<long>(delete_asked) << " ms";
  print_figures("rollback of A, broken deploy of A, delete of B (" + timeline.str() + ")", c);
  INFO("clients of A:" << c.figures() << "\n" << timeline.str() << "\n--- server log tail ---\n" << e.log_tail());

  CHECK(c.sum(&traffic_report::failed) == 0);
  CHECK(c.sum(&traffic_report::unexpected_closes) == 0);
  for (auto& [name, r] : c.reports) {
    INFO(name);
    CHECK(r.ok > 0);
    CHECK_FALSE(saw(r, "release broken"));
  }
  for (auto& name : c.of_kind("new-connection-get")) {
    INFO(name);
    CHECK(saw(c.reports[name], "release 2"));
    CHECK(saw(c.reports[name], "release 1"));
  }
  for (auto& name : c.of_kind("websocket")) {
    INFO(name);
    auto& r = c.reports[name];
    // Only the rollback closes it (release 2 stops after its drain); the broken deploy and
    // B's delete do not.
    CHECK(r.clean_closes == 1);
    for (double at : r.clean_close_at_ms) {
      CHECK(at >= rollback_asked + drain_ms - 100);
      CHECK(at <= rollback_done + 1500);
    }
  }
  CHECK(e.serves(A, e.a_port, "release 1\n"));
}
