// Retries and circuit breakers through a real `berth serve` with fault injection
// (--enable-fault-injection: POST /api/debug/fail makes the next N process starts fail before
// the real driver is called; everything else is real: builds, releases, the sample site).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> fault_args = {"--enable-fault-injection", "--retry-base-ms", "10",
                                             "--retry-max-ms",           "40", "--breaker-open-ms",
                                             "1500"};

struct env {
  temp_dir tmp;
  std::unique_ptr<server> srv;

  explicit env(std::vector<std::string> extra = fault_args) {
    srv = std::make_unique<server>(tmp.path(), deploy_server_options(std::move(extra)));
  }
  client& api() { return srv->api(); }

  void create(const json& manifest) {
    auto r = api().post("/api/projects", manifest);
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  std::string deploy(const std::string& name) {
    auto r = api().post("/api/projects/" + name + "/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    return r.body.at("id").get<std::string>();
  }
  json wait(const std::string& id) {
    auto d = wait_done(api(), id, 60s);
    INFO(brief(d));
    REQUIRE(is_terminal_status(d.value("status", "")));
    return d;
  }
  void inject(const std::string& backend, int count, const std::string& kind) {
    auto r = api().post("/api/debug/fail", json{{"backend", backend}, {"count", count}, {"kind", kind}});
    INFO(r.describe());
    REQUIRE(r.status == 200);
    REQUIRE(r.body.value("pending", -1) == count);
  }
  json health() {
    auto r = api().get("/health");
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body;
  }
  json process_breaker() { return health().at("breakers").at("process"); }
  uint16_t production_port(const std::string& name) {
    auto r = api().get("/api/projects/" + name);
    REQUIRE(r.status == 200);
    return r.body.at("ports").at("production").get<uint16_t>();
  }
  // Events of the `backends` stream, read offline by `berth audit replay --json`.
  std::vector<json> backend_events() {
    auto r = run({"audit", "replay", "--data", srv->data_dir(), "--json"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    auto out = json::parse(r.out, nullptr, false);
    REQUIRE(out.is_object());
    std::vector<json> events;
    for (auto& e : out.at("events"))
      if (e.value("stream", "") == "backends") events.push_back(e);
    return events;
  }
  std::string log_tail(size_t n = 3000) {
    auto l = srv->log();
    return l.size() > n ? l.substr(l.size() - n) : l;
  }
};

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

// The sample site without a build step: the source is the release and server.py answers
// "preview <VERSION>". A deploy reaches `starting` within milliseconds, which keeps the steps
// of a test inside the breaker's 1.5 s open window (a Python build alone can take over a
// second on a busy test machine).
json unbuilt_site_manifest(const std::string& name, const std::string& src) {
  auto manifest = site_manifest(name, src, 5, 15);
  manifest.erase("build");
  manifest["production"]["command"] = json::array({"python3", "server.py"});
  return manifest;
}

std::vector<std::string> log_lines_with(const json& detail, const std::string& needle) {
  std::vector<std::string> out;
  if (detail.contains("log") && detail["log"].is_array())
    for (auto& l : detail["log"])
      if (l.is_string() && l.get<std::string>().find(needle) != std::string::npos) out.push_back(l);
  return out;
}

std::string error_code(const json& d) {
  return d.contains("error") && d["error"].is_object() ? d["error"].value("code", "") : "";
}

std::string error_message(const json& d) {
  return d.contains("error") && d["error"].is_object() ? d["error"].value("message", "") : "";
}

std::vector<std::string> types_of(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (auto& e : events) out.push_back(e.value("type", ""));
  return out;
}

}  // namespace

TEST_CASE("breakers - transient start failures are retried and the deploy completes", "[integration][breakers]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(site_manifest("retry-site", site));
  e.inject("process", 2, "transient");
  auto d = e.wait(e.deploy("retry-site"));
  INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
  REQUIRE(d.value("status", "") == "completed");
  // The deployment's log tells what happened.
  auto retries = log_lines_with(d, "retrying in");
  REQUIRE(retries.size() == 2);
  CHECK(retries[0].find("start attempt 1 failed (transient): injected transient fault in the process backend") !=
        std::string::npos);
  CHECK(retries[1].find("start attempt 2 failed") != std::string::npos);
  CHECK(log_lines_with(d, "(after 3 attempts)").size() == 1);
  CHECK(fetch(e.production_port("retry-site")).body == "release 1\n");

  auto b = e.process_breaker();
  INFO(b.dump());
  CHECK(b.at("state") == "closed");
  CHECK(b.at("failures") == 0);        // consecutive: reset by the success
  CHECK(b.at("failures_total") == 2);  // the two injected ones
  CHECK(b.at("calls").get<int>() >= 3);
  CHECK(b.at("opened") == 0);
  CHECK(b.at("last_error") == "injected transient fault in the process backend");
  CHECK(e.health().at("status") == "ok");
}

TEST_CASE("breakers - a permanent start failure fails at once without retries", "[integration][breakers]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(site_manifest("perm-site", site));
  e.inject("process", 1, "permanent");
  auto d = e.wait(e.deploy("perm-site"));
  INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
  REQUIRE(d.value("status", "") == "failed");
  CHECK(error_code(d) == "start_failed");
  CHECK(d["error"].value("phase", "") == "starting");
  CHECK(error_message(d).find("injected permanent fault") != std::string::npos);
  CHECK(error_message(d).find("attempts") == std::string::npos);
  CHECK(log_lines_with(d, "retrying in").empty());
  CHECK(log_lines_with(d, "permanent error: not retried").size() == 1);

  // A real permanent error: a production command that does not exist.
  auto manifest = site_manifest("missing-prog", site);
  manifest["production"]["command"] = json::array({"/nonexistent/berth-test-program"});
  e.create(manifest);
  d = e.wait(e.deploy("missing-prog"));
  INFO(brief(d));
  REQUIRE(d.value("status", "") == "failed");
  CHECK(error_code(d) == "start_failed");
  CHECK(error_message(d).find("No such file or directory") != std::string::npos);
  CHECK(log_lines_with(d, "retrying in").empty());

  // Neither counted against the backend: the request was wrong, not the backend.
  auto b = e.process_breaker();
  INFO(b.dump());
  CHECK(b.at("state") == "closed");
  CHECK(b.at("failures_total") == 0);
  CHECK(b.at("last_error").is_null());
}

TEST_CASE("breakers - an open process breaker fails deploys fast and closes again after its timeout",
          "[integration][breakers]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(unbuilt_site_manifest("brk-site", site));
  auto first = e.wait(e.deploy("brk-site"));
  INFO(brief(first));
  REQUIRE(first.value("status", "") == "completed");
  auto port = e.production_port("brk-site");
  REQUIRE(fetch(port).body == "preview 1\n");

  // Five consecutive failures (the threshold) open the breaker during the next deploy's start;
  // its sixth attempt is refused. A second deploy queued behind it meets the open breaker.
  set_site(site, "VERSION", "2");
  e.inject("process", 5, "transient");
  auto failing = e.deploy("brk-site");
  auto refused = e.deploy("brk-site");
  auto d = e.wait(failing);
  {
    INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "failed");
    CHECK(error_code(d) == "backend_unavailable");
    CHECK(d["error"].value("phase", "") == "starting");
    CHECK(log_lines_with(d, "retrying in").size() == 5);
  }
  auto h = e.health();
  {
    INFO(h.dump(2));
    CHECK(h.at("status") == "degraded");
    auto& b = h.at("breakers").at("process");
    CHECK(b.at("state") == "open");
    CHECK(b.at("opened") == 1);
    CHECK(b.at("failures") == 5);
    CHECK(b.at("last_error") == "injected transient fault in the process backend");
    CHECK(b.at("retry_in_ms").get<int>() <= 1500);
    CHECK(h.at("breakers").at("proxy").at("state") == "closed");
  }
  d = e.wait(refused);
  {
    INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "failed");
    CHECK(error_code(d) == "backend_unavailable");
    CHECK(d["error"].value("phase", "") == "starting");
    CHECK(error_message(d).find("circuit breaker is open") != std::string::npos);
    CHECK(log_lines_with(d, "start attempt").empty());  // refused before any attempt
  }
  // Production kept serving the previous release throughout.
  CHECK(fetch(port).body == "preview 1\n");

  // The change is an event in the `backends` stream.
  std::vector<json> events;
  CHECK(eventually([&] {
    events = e.backend_events();
    return !events.empty();
  }));
  REQUIRE(!events.empty());
  CHECK(events[0].value("type", "") == "breaker_opened");
  CHECK(events[0]["data"].value("backend", "") == "process");
  CHECK(events[0]["data"].value("failures", 0) == 5);
  CHECK(events[0]["data"].value("last_error", "") == "injected transient fault in the process backend");

  // After the open timeout one trial goes through: the next deploy succeeds and closes it.
  CHECK(eventually([&] { return e.process_breaker().at("state") == "half_open"; }, 5s));
  d = e.wait(e.deploy("brk-site"));
  {
    INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "completed");
  }
  CHECK(fetch(port).body == "preview 2\n");
  h = e.health();
  CHECK(h.at("status") == "ok");
  CHECK(h.at("breakers").at("process").at("state") == "closed");
  CHECK(eventually([&] {
    events = e.backend_events();
    return types_of(events) == std::vector<std::string>{"breaker_opened", "breaker_half_open", "breaker_closed"};
  }));
  INFO(json(events).dump(2));
  CHECK(types_of(events) == std::vector<std::string>{"breaker_opened", "breaker_half_open", "breaker_closed"});
  auto verify = run({"audit", "verify", "--data", e.srv->data_dir()});
  INFO(verify.describe());
  CHECK(verify.exit_code == 0);
}

TEST_CASE("breakers - an open proxy breaker fails the switch and the site keeps its route",
          "[integration][breakers][proxy]") {
  auto caddy = caddy_binary();
  if (caddy.empty()) {
    WARN("caddy is not installed: proxy breaker test skipped");
    return;
  }
  auto http_port = free_port();
  auto args = fault_args;
  for (auto a : {"--switch-mode", "proxy", "--caddy", caddy.c_str(), "--drain-ms", "300", "--proxy-http-port"})
    args.push_back(a);
  args.push_back(std::to_string(http_port));
  env e(args);
  REQUIRE(eventually([&] { return e.health().at("proxy").value("status", "") == "running"; }, 15s));
  auto site = make_site(e.tmp, "site", "1");
  e.create(unbuilt_site_manifest("prx-site", site));
  auto first = e.wait(e.deploy("prx-site"));
  INFO(brief(first));
  REQUIRE(first.value("status", "") == "completed");
  auto port = e.production_port("prx-site");
  auto serves = [&](const std::string& body) {
    return fetch(port).body == body && fetch(http_port, "/", 1500ms, "prx-site.localhost").body == body;
  };
  REQUIRE(eventually([&] { return serves("preview 1\n"); }, 5s));

  // Caddy's config loads fail five times: the breaker opens while the deploy switches, the
  // switch is refused, and the candidate never gets traffic.
  set_site(site, "VERSION", "2");
  e.inject("proxy", 5, "transient");
  auto d = e.wait(e.deploy("prx-site"));
  {
    INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "failed");
    CHECK(error_code(d) == "backend_unavailable");
    CHECK(d["error"].value("phase", "") == "switching");
    CHECK(log_lines_with(d, "pointing the proxy back at release").size() == 1);
  }
  auto h = e.health();
  {
    INFO(h.dump(2));
    CHECK(h.at("status") == "degraded");
    CHECK(h.at("breakers").at("proxy").at("state") == "open");
    CHECK(h.at("breakers").at("proxy").at("last_error") == "injected transient fault in the proxy backend");
    CHECK(h.at("breakers").at("process").at("state") == "closed");
  }
  CHECK(serves("preview 1\n"));

  // Once half-open, the next change (a new project's preview route) loads the whole config
  // from the log: the production route must still point at release 1, not at the stopped
  // candidate.
  CHECK(eventually([&] { return e.health().at("breakers").at("proxy").at("state") == "half_open"; }, 5s));
  e.create(unbuilt_site_manifest("other-site", site));
  // A new project is dormant until a command wakes it; its environments then set their routes.
  CHECK(e.api().get("/api/projects/other-site/production").status == 200);
  CHECK(eventually([&] { return e.health().at("breakers").at("proxy").at("state") == "closed"; }, 5s));
  CHECK(serves("preview 1\n"));

  d = e.wait(e.deploy("prx-site"));
  {
    INFO(brief(d) << "\n--- server log ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "completed");
  }
  CHECK(eventually([&] { return serves("preview 2\n"); }, 5s));
  std::vector<json> events;
  CHECK(eventually([&] {
    events = e.backend_events();
    return types_of(events) == std::vector<std::string>{"breaker_opened", "breaker_half_open", "breaker_closed"};
  }));
  INFO(json(events).dump(2));
  for (auto& ev : events) CHECK(ev["data"].value("backend", "") == "proxy");
}

TEST_CASE("breakers - fault injection routes validate strictly and exist only when enabled",
          "[integration][breakers]") {
  {
    env e;
    auto& api = e.api();
    auto bad = [&](const std::string& path, const std::string& body, int status, const std::string& code) {
      auto r = api.post(path, body);
      INFO(path << " " << body << " -> " << r.describe());
      CHECK(r.status == status);
      CHECK(r.is_json_error());
      CHECK(r.error_code() == code);
    };
    bad("/api/debug/fail", "not json", 400, "invalid_request");
    bad("/api/debug/fail", "[1]", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"kubernetes","count":1})", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"process","count":"2"})", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"process","count":-1})", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"process","count":1.5})", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"process"})", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"process","count":1,"kind":"sometimes"})", 400, "invalid_request");
    bad("/api/debug/fail", R"({"backend":"process","count":1,"extra":true})", 400, "invalid_request");
    bad("/api/debug/crash", R"({"actor":"scheduler"})", 400, "invalid_request");
    bad("/api/debug/crash", R"({"actor":"production"})", 400, "invalid_request");
    bad("/api/debug/crash", R"({"actor":"production","project":"Not A Name"})", 400, "invalid_name");
    bad("/api/debug/crash", R"({"actor":"port_allocator","project":"shop"})", 400, "invalid_request");
    bad("/api/debug/crash", R"({"actor":7})", 400, "invalid_request");
    // Direct switch mode: there is no proxy actor to crash.
    bad("/api/debug/crash", R"({"actor":"proxy"})", 404, "not_found");

    // count 0 clears what is pending.
    auto r = api.post("/api/debug/fail", json{{"backend", "proxy"}, {"count", 3}});
    CHECK(r.status == 200);
    CHECK(r.body.value("kind", "") == "transient");
    r = api.post("/api/debug/fail", json{{"backend", "proxy"}, {"count", 0}});
    CHECK(r.status == 200);
    CHECK(r.body.value("pending", -1) == 0);

    // A crashed top-level actor is restarted by the root supervisor and works again.
    r = api.post("/api/debug/crash", json{{"actor", "port_allocator"}});
    INFO(r.describe());
    CHECK(r.status == 202);
    CHECK(r.body.value("crashed", "") == "port_allocator");
    auto site = make_site(e.tmp, "site", "1");
    CHECK(eventually([&] {
      return api.post("/api/projects", site_manifest("after-crash", site)).status == 201;
    }));
    // Project-level actors are reached through the projects actor.
    bad("/api/debug/crash", R"({"actor":"preview","project":"no-such-project"})", 404, "not_found");
    r = api.post("/api/debug/crash", json{{"actor", "production"}, {"project", "after-crash"}});
    INFO(r.describe());
    CHECK(r.status == 202);
    CHECK(r.body.value("crashed", "") == "production");
    CHECK(r.body.value("project", "") == "after-crash");
    CHECK(eventually([&] { return api.get("/api/projects/after-crash").status == 200; }));
  }
  {
    env e(std::vector<std::string>{});  // no --enable-fault-injection
    auto r = e.api().post("/api/debug/fail", json{{"backend", "process"}, {"count", 1}});
    INFO(r.describe());
    CHECK(r.status == 404);
    r = e.api().post("/api/debug/crash", json{{"actor", "event_store"}});
    CHECK(r.status == 404);
    auto h = e.health();
    CHECK(h.at("breakers").at("process").at("state") == "closed");
    CHECK(h.at("breakers").at("proxy").at("state") == "closed");
  }
}
