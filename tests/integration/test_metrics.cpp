// GET /metrics against a real berth: the text is valid (promtool, and a strict reader here),
// counters move when a real app is deployed (and when a deploy fails), and the route is
// authenticated unless --metrics-public.
#include <signal.h>

#include <cmath>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/metrics_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

// A scrape with the server's token, checked by promtool and parsed strictly.
scrape scrape_ok(uint16_t port) {
  auto r = client(port).get("/metrics");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  INFO(r.raw);
  CHECK(promtool_problems(r.raw) == "");
  scrape s;
  CHECK(parse_metrics(r.raw, &s) == "");
  return s;
}

// One series of a fresh scrape (NaN when absent or when the scrape fails).
double parse_metrics_value(uint16_t port, const std::string& name, const std::map<std::string, std::string>& labels) {
  auto r = client(port).get("/metrics");
  scrape s;
  if (r.status != 200 || !parse_metrics(r.raw, &s).empty()) return NAN;
  return s.value(name, labels);
}

std::string deploy(client& api, const std::string& name) {
  auto r = api.post("/api/projects/" + name + "/deployments", std::string{});
  INFO(r.describe());
  REQUIRE(r.status == 202);
  return r.body.at("id").get<std::string>();
}

}  // namespace

TEST_CASE("metrics - the strict reader refuses what Prometheus would", "[integration][metrics]") {
  scrape s;
  CHECK(parse_metrics("# TYPE a_total counter\na_total 1\n", &s) == "");
  CHECK(s.value("a_total") == 1);
  scrape s2;
  CHECK(parse_metrics("a 1\n", &s2) != "");  // no TYPE
  scrape s3;
  CHECK(parse_metrics("# TYPE a gauge\na{x=\"1} 1\n", &s3) != "");  // unterminated label value
  scrape s4;
  CHECK(parse_metrics("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", &s4) !=
        "");  // not cumulative
  scrape s5;
  CHECK(parse_metrics("# TYPE a gauge\na 1\na 2\n", &s5) != "");  // duplicate
  CHECK(promtool_problems("# TYPE a counter\na 1\n") != "");      // lint: counter without _total
}

TEST_CASE("metrics - counters move after a real deploy and a failing one", "[integration][metrics]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto before = scrape_ok(srv.port());
  CHECK(before.value("berth_build_info", {{"version", BERTH_VERSION}}) == 1);
  CHECK(before.value("berth_projects") == 0);
  CHECK(before.value("berth_actors") > 0);
  CHECK(before.value("berth_uptime_seconds") >= 0);
  CHECK(before.value("berth_breaker_state", {{"backend", "process"}}) == 0);
  CHECK(before.value("berth_http_streams_open") == 0);
  CHECK(before.value("berth_deployments_total", {{"kind", "deploy"}, {"result", "completed"}}) == 0);

  auto site = make_site(tmp, "mt-site", "1");
  auto created = api.post("/api/projects", site_manifest("mt-site", site));
  INFO(created.describe());
  REQUIRE(created.status == 201);
  auto id = deploy(api, "mt-site");
  auto done = wait_done(api, id, 60s);
  INFO(brief(done));
  REQUIRE(done.value("status", "") == "completed");
  // Two unknown projects: one route pattern, not one series per name.
  CHECK(api.get("/api/projects/mt-nope-a").status == 404);
  CHECK(api.get("/api/projects/mt-nope-b").status == 404);

  auto after = scrape_ok(srv.port());
  CHECK(after.value("berth_deployments_total", {{"kind", "deploy"}, {"result", "completed"}}) == 1);
  CHECK(after.value("berth_deployments_total", {{"kind", "deploy"}, {"result", "failed"}}) == 0);
  for (auto phase : {"queued", "preparing", "building", "packaging", "starting", "health_checking", "switching",
                     "draining"}) {
    INFO("phase " << phase);
    CHECK(after.value("berth_deployment_phase_duration_seconds_count", {{"phase", phase}}) == 1);
    CHECK(after.value("berth_deployment_phase_duration_seconds_bucket", {{"phase", phase}, {"le", "+Inf"}}) == 1);
  }
  CHECK(after.value("berth_health_check_duration_seconds_count", {{"result", "healthy"}}) == 1);
  CHECK(after.value("berth_eventlog_appended_events_total", {{"sync", "synced"}}) >
        before.value("berth_eventlog_appended_events_total", {{"sync", "synced"}}));
  CHECK(after.value("berth_eventlog_commits_total") > before.value("berth_eventlog_commits_total"));
  CHECK(after.value("berth_eventlog_commit_events_count") == after.value("berth_eventlog_commits_total"));
  CHECK(after.value("berth_eventlog_disk_bytes") > 0);
  CHECK(after.value("berth_projects") == 1);
  // The keeper takes the release over once the job has ended, just after its outcome is recorded.
  CHECK(eventually([&] {
    return parse_metrics_value(srv.port(), "berth_instances_running", {{"env", "production"}}) == 1;
  }));
  CHECK(after.value("berth_http_requests_total", {{"method", "POST"}, {"route", "/api/projects"}, {"status", "201"}}) ==
        1);
  CHECK(after.value("berth_http_requests_total",
                    {{"method", "POST"}, {"route", "/api/projects/{}/deployments"}, {"status", "202"}}) == 1);
  CHECK(after.value("berth_http_requests_total",
                    {{"method", "GET"}, {"route", "/api/deployments/{}"}, {"status", "200"}}) >= 1);
  CHECK(after.value("berth_http_requests_total",
                    {{"method", "GET"}, {"route", "/api/projects/{}"}, {"status", "404"}}) == 2);
  CHECK(after.value("berth_http_requests_total", {{"method", "GET"}, {"route", "/metrics"}, {"status", "200"}}) >= 1);
  CHECK(after.value("berth_http_request_duration_seconds_count",
                    {{"method", "POST"}, {"route", "/api/projects/{}/deployments"}}) == 1);
  for (auto& [key, v] : after.samples) {
    INFO(key);
    CHECK(key.find("mt-nope") == std::string::npos);  // no raw path in any label
  }

  // Every keeper counts what it keeps: the preview, and Caddy (tests run in proxy mode when it
  // is installed, as berth's auto mode does).
  auto pv = api.post("/api/projects/mt-site/preview/start", std::string{});
  INFO(pv.describe());
  REQUIRE(pv.status == 200);
  CHECK(eventually(
      [&] { return parse_metrics_value(srv.port(), "berth_instances_running", {{"env", "preview"}}) == 1; }));
  if (srv.health().at("proxy").value("mode", "") == "proxy")
    CHECK(eventually(
        [&] { return parse_metrics_value(srv.port(), "berth_instances_running", {{"env", "proxy"}}) == 1; }));

  // The release dies: the keeper counts the crash (by reason class) and the restart.
  auto prod = api.get("/api/projects/mt-site/production");
  REQUIRE(prod.status == 200);
  auto pid = prod.body.value("pid", 0);
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  CHECK(eventually(
      [&] { return parse_metrics_value(srv.port(), "berth_instance_restarts_total", {{"env", "production"}}) == 1; },
      20s));
  auto crashed = scrape_ok(srv.port());
  CHECK(crashed.value("berth_instance_crashes_total", {{"env", "production"}, {"reason", "exited"}}) == 1);
  CHECK(crashed.value("berth_instance_crash_loops_total", {{"env", "production"}}) != 1);

  set_site(site, "MODE", "build-fail");
  auto failed = wait_done(api, deploy(api, "mt-site"), 60s);
  INFO(brief(failed));
  REQUIRE(failed.value("status", "") == "failed");
  auto last = scrape_ok(srv.port());
  CHECK(last.value("berth_deployments_total", {{"kind", "deploy"}, {"result", "failed"}}) == 1);
  CHECK(last.value("berth_deployments_total", {{"kind", "deploy"}, {"result", "completed"}}) == 1);
  CHECK(last.value("berth_deployment_phase_duration_seconds_count", {{"phase", "building"}}) == 2);
  CHECK(last.value("berth_deployment_phase_duration_seconds_count", {{"phase", "rolling_back"}}) == 1);
  CHECK(last.value("berth_deployment_phase_duration_seconds_count", {{"phase", "starting"}}) == 1);
  CHECK(eventually([&] {  // v1 still serves, kept
    return parse_metrics_value(srv.port(), "berth_instances_running", {{"env", "production"}}) == 1;
  }));

  // v2, then a rollback to v1: counted under its own kind.
  set_site(site, "MODE", "normal");
  set_site(site, "VERSION", "2");
  auto v2 = wait_done(api, deploy(api, "mt-site"), 60s);
  INFO(brief(v2));
  REQUIRE(v2.value("status", "") == "completed");
  auto rb = api.post("/api/projects/mt-site/production/rollback", std::string{});
  INFO(rb.describe());
  REQUIRE(rb.status == 202);
  auto rolled = wait_done(api, rb.body.at("id").get<std::string>(), 60s);
  INFO(brief(rolled));
  REQUIRE(rolled.value("status", "") == "completed");
  auto end = scrape_ok(srv.port());
  CHECK(end.value("berth_deployments_total", {{"kind", "deploy"}, {"result", "completed"}}) == 2);
  CHECK(end.value("berth_deployments_total", {{"kind", "rollback"}, {"result", "completed"}}) == 1);
  CHECK(end.value("berth_deployment_phase_duration_seconds_count", {{"phase", "building"}}) == 3);  // not the rollback
  CHECK(end.value("berth_deployment_phase_duration_seconds_count", {{"phase", "starting"}}) == 3);
  CHECK(end.value("berth_health_check_duration_seconds_count", {{"result", "healthy"}}) == 3);
}

TEST_CASE("metrics - /metrics needs the token unless --metrics-public", "[integration][metrics]") {
  {
    temp_dir tmp;
    server srv(tmp.path());
    auto anonymous = client(srv.port(), auth::none()).get("/metrics");
    INFO(anonymous.describe());
    CHECK(anonymous.status == 401);
    CHECK(anonymous.error_code() == "unauthorized");
    CHECK(anonymous.raw.find("berth_") == std::string::npos);
    CHECK(client(srv.port(), auth::bearer("wrong-token-0123456789")).get("/metrics").status == 401);
    auto s = scrape_ok(srv.port());
    // The refused scrapes were counted, under no route (nothing of the path leaks).
    CHECK(s.value("berth_http_requests_total", {{"method", "GET"}, {"route", "none"}, {"status", "401"}}) == 2);
  }
  temp_dir tmp;
  server srv(tmp.path(), server_options{{"--metrics-public"}});
  auto anonymous = client(srv.port(), auth::none()).get("/metrics");
  INFO(anonymous.describe());
  CHECK(anonymous.status == 200);
  scrape s;
  CHECK(parse_metrics(anonymous.raw, &s) == "");
  CHECK(s.has("berth_uptime_seconds"));
  // Only /metrics opens: the API still needs the token.
  CHECK(client(srv.port(), auth::none()).get("/api/projects").status == 401);
}

TEST_CASE("metrics - open event streams are counted while they last", "[integration][metrics]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto site = make_site(tmp, "mt-stream", "1");
  set_site(site, "BUILD_SLEEP", "5");  // the stream stays open while the build runs
  REQUIRE(api.post("/api/projects", site_manifest("mt-stream", site)).status == 201);
  auto id = deploy(api, "mt-stream");
  sse_result stream;
  std::thread reader([&] { stream = read_sse(srv.port(), "/api/deployments/" + id + "/events", 60s); });
  bool seen_open = eventually(
      [&] { return parse_metrics_value(srv.port(), "berth_http_streams_open", {}) == 1; }, 20s);
  reader.join();
  CHECK(seen_open);
  INFO(stream.describe());
  CHECK(stream.ended);
  CHECK(eventually([&] { return parse_metrics_value(srv.port(), "berth_http_streams_open", {}) == 0; }));
  auto s = scrape_ok(srv.port());
  CHECK(s.value("berth_http_requests_total",
                {{"method", "GET"}, {"route", "/api/deployments/{}/events"}, {"status", "200"}}) == 1);
  CHECK(s.value("berth_http_request_duration_seconds_count",
                {{"method", "GET"}, {"route", "/api/deployments/{}/events"}}) == 1);
}
