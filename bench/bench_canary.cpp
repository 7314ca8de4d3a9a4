// bench_canary: what users see of a failing canary. A real `berth serve --switch-mode proxy
// --proxy-engine haproxy` (its own temp dir, a random port window, --drain-ms 500) with one
// project from tests/apps/canary, deployed once at release "good" (a first deploy skips its
// canary: nothing serves to compare it with). Its manifest has production.canary {steps
// [--percent, 50], interval_s 120, min_requests --min-requests}. Each run (--runs, 5; medians):
// --clients (4) kept-alive GET / clients on the stable port, `--every-ms` (5) apart, then a
// deploy of a `fail20` candidate (every 5th GET / answers 500), which the canary must revert
// at its first step; the clients go on for --after (300) requests after the failed end.
//   error share      failed / all requests the clients sent from the moment the deployment
//                    showed its split (GET …/deployments/{id}: phase canary, percent > 0) to
//                    the moment it showed `failed` (expected: percent × 20 %)
//   failed requests  every request the clients saw fail in the run (before, during, after)
//   split to revert  the failed canary_step event's time − its step_started_us: the traffic
//                    the judge needs (min_requests to the candidate), its 200 ms looks, the revert
//   proxy revert     resources.canary_revert_ms: the split taken off (berth → HAProxy → served)
//   failed after     requests failed after the deployment showed `failed` (must be 0)
//
// Usage: bench_canary [--runs 5] [--clients 4] [--every-ms 5] [--percent 10] [--min-requests 30]
//                     [--after 300] [--json FILE] [--dir PARENT] [--keep] [--berth PATH] [--timeout-s 1800]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/scale_rows.hpp"
#include "tests/common/support.hpp"
#include "tests/integration/traffic_support.hpp"

#ifndef BERTH_BINARY
#define BERTH_BINARY ""
#endif
#ifndef BENCH_CANARY_APP
#define BENCH_CANARY_APP ""
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

berth::bench::session g_session{"bench_canary"};
[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

const std::string project = "bench-canary";

// Polls the deployment until `pred(detail)` or its end; fails past `limit`.
template <class Pred>
json wait_deployment(berth::bench::api_client& api, const std::string& id, Pred pred, std::chrono::seconds limit) {
  auto until = steady::now() + limit;
  for (;;) {
    auto [code, d] = api.get("/api/deployments/" + id);
    auto status = d.value("status", "");
    if (code == 200 && (pred(d) || status == "completed" || status == "failed" || status == "cancelled" ||
                        status == "unchanged"))
      return d;
    if (steady::now() > until) fail("deployment " + id + " did not get there in time", d.dump());
    std::this_thread::sleep_for(10ms);
  }
}

std::string deploy(berth::bench::api_client& api) {
  auto [code, body] = api.post("/api/projects/" + project + "/deployments", json::object());
  if (code != 202 || !body.contains("id")) fail(fmt::format("POST deployments: HTTP {}", code), body.dump());
  return body["id"].get<std::string>();
}

struct run_figures {
  double error_share_pct = NAN, failed = NAN, split_to_revert_ms = NAN, proxy_revert_ms = NAN, failed_after = NAN;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_canary: what clients see while a canary that fails 20 % of its requests is reverted"};
  int runs = 5, n_clients = 4, every_ms = 5, percent = 10, min_requests = 30, after = 300, timeout_s = 1800;
  std::string json_file, berth = BERTH_BINARY, canary_app = BENCH_CANARY_APP;
  const char* tmp = std::getenv("TMPDIR");
  std::string parent = tmp && *tmp ? tmp : "/tmp";
  bool keep = false;
  app.add_option("--runs", runs, "runs (median reported)")->check(CLI::Range(1, 1000));
  app.add_option("--clients", n_clients, "kept-alive GET clients")->check(CLI::Range(1, 64));
  app.add_option("--every-ms", every_ms, "pause between a client's requests")->check(CLI::Range(0, 10000));
  app.add_option("--percent", percent, "the canary's first step (%)")->check(CLI::Range(1, 49));
  app.add_option("--min-requests", min_requests, "the candidate's requests a step needs")->check(CLI::Range(1, 100000));
  app.add_option("--after", after, "requests after the failed end")->check(CLI::Range(0, 1000000));
  app.add_option("--json", json_file, "write the rows as JSON here");
  app.add_option("--dir", parent, "parent of the temp dir");
  app.add_flag("--keep", keep, "keep the temp dir");
  app.add_option("--berth", berth, "berth binary");
  app.add_option("--app", canary_app, "tests/apps/canary");
  app.add_option("--timeout-s", timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  CLI11_PARSE(app, argc, argv);
  if (::access("/usr/sbin/haproxy", X_OK) != 0 && ::access("/usr/bin/haproxy", X_OK) != 0) {
    std::fprintf(stderr, "bench_canary: canaries need HAProxy, which is not installed\n");
    return 2;
  }
  g_session.guard(std::chrono::seconds(timeout_s));
  ::signal(SIGPIPE, SIG_IGN);

  auto dir = g_session.open_dir(parent, keep);
  uint16_t port = berth::bench::free_port();
  berth::bench::api_client api(port);
  std::vector<std::string> args = {berth, "serve", "--listen", fmt::format("127.0.0.1:{}", port), "--data",
                                   dir + "/data", "--switch-mode", "proxy", "--proxy-engine", "haproxy",
                                   "--proxy-http-port", std::to_string(berth::bench::free_port()), "--drain-ms",
                                   "500", "--stop-grace-ms", "500"};
  auto window = berth::bench::port_window_args(std::random_device{}());
  args.insert(args.end(), window.begin(), window.end());
  g_session.start_berth(args, api, [](const json& h) {
    return h["proxy"].value("status", "") == "running" && h["proxy"].value("engine", "") == "haproxy";
  });

  auto src = dir + "/src";
  fs::create_directories(src);
  for (const char* f : {"build.py", "server.py"})
    fs::copy_file(canary_app + "/" + f, src + "/" + f, fs::copy_options::overwrite_existing);
  auto set_app = [&](const std::string& version, const std::string& mode) {
    berth::it::write_file(src + "/VERSION", version + "\n");
    berth::it::write_file(src + "/MODE", mode + "\n");
  };
  set_app("good", "good");
  json canary = {{"steps", {percent, 50}}, {"interval_s", 120}, {"min_requests", min_requests}};
  json manifest = {{"name", project},
                   {"source", {{"path", src}}},
                   {"build", {{"command", {"python3", "build.py"}}, {"artifacts", {"dist"}}}},
                   {"production",
                    {{"command", {"python3", "dist/server.py"}},
                     {"health", {{"path", "/health"}, {"timeout_s", 20}, {"interval_ms", 50}, {"min_healthy_s", 0}}},
                     {"keep", 3},
                     {"canary", canary}}}};
  auto [created, project_view] = api.post("/api/projects", manifest);
  if (created != 201) fail(fmt::format("POST /api/projects: HTTP {}", created), project_view.dump());
  uint16_t stable = project_view.at("ports").at("production").get<uint16_t>();
  auto first = wait_deployment(api, deploy(api), [](const json&) { return false; }, 120s);
  if (first.value("status", "") != "completed") fail("the first deploy did not complete", first.dump());

  std::vector<run_figures> figures;
  for (int r = 0; r < runs; ++r) {
    run_figures f;
    berth::it::get_clients c(stable, n_clients, std::chrono::milliseconds(every_ms));
    for (auto until = steady::now() + 30s; c.now().ok < 100; std::this_thread::sleep_for(20ms))
      if (steady::now() > until) fail("the clients got no answers from the stable port");
    set_app(fmt::format("fail-{}", r), "fail20");
    auto id = deploy(api);
    auto split = wait_deployment(
        api, id,
        [](const json& d) {
          auto live = d.value("canary", json());
          return live.is_object() && live.value("percent", 0) > 0;
        },
        120s);
    if (split.value("phase", "") != "canary") fail("deployment " + id + " never showed its split", split.dump());
    auto on = c.now();
    auto end = wait_deployment(api, id, [](const json&) { return false; }, 300s);
    auto reverted = c.now();
    if (end.value("status", "") != "failed" || end["error"].value("code", "") != "canary_failed")
      fail("deployment " + id + " did not end failed with canary_failed", end.dump());
    for (auto until = steady::now() + 60s; c.now().requests() < reverted.requests() + after;
         std::this_thread::sleep_for(20ms))
      if (steady::now() > until) fail("the clients stopped after the revert");
    auto total = c.stop();
    auto in_split = reverted.requests() - on.requests();
    if (in_split > 0) f.error_share_pct = 100.0 * double(reverted.failed - on.failed) / double(in_split);
    f.failed = double(total.failed);
    f.failed_after = double(total.failed - reverted.failed);
    f.proxy_revert_ms = end["resources"].value("canary_revert_ms", json()).is_number()
                            ? end["resources"]["canary_revert_ms"].get<double>()
                            : NAN;
    auto [code, events] = api.get("/api/projects/" + project + "/events?limit=10000");
    if (code != 200) fail(fmt::format("GET events: HTTP {}", code), events.dump());
    for (auto& e : events.value("events", json::array()))
      if (e.value("type", "") == "canary_step" && e["data"].value("id", "") == id &&
          e["data"].value("verdict", "") == "failed")
        f.split_to_revert_ms = (e.value("ts_us", int64_t{0}) - e["data"].value("step_started_us", int64_t{0})) / 1000.0;
    std::printf("run %d (%s): clients saw %.2f %% errors while split (%llu of %llu), %llu failed in all, %llu after "
                "the revert; split to revert %.0f ms, proxy revert %.0f ms; %s\n",
                r + 1, id.c_str(), f.error_share_pct, static_cast<unsigned long long>(reverted.failed - on.failed),
                static_cast<unsigned long long>(in_split), static_cast<unsigned long long>(total.failed),
                static_cast<unsigned long long>(total.failed - reverted.failed), f.split_to_revert_ms,
                f.proxy_revert_ms, end["error"].value("message", "").c_str());
    std::fflush(stdout);
    figures.push_back(f);
  }
  g_session.final_cleanup();

  auto setup = fmt::format("fail20 candidate (every 5th GET / a 500), steps [{}, 50], min_requests {}; {} kept-alive "
                           "GET clients {} ms apart on the stable port (HAProxy)",
                           percent, min_requests, n_clients, every_ms);
  using berth::bench::berth_row;
  std::vector<berth::bench::figure_row> rows = {
      berth_row("canary reverted: error share clients saw while split", "%",
                fmt::format("<= {}", std::max(1, percent / 2)),
                "failed / sent between the split showing and the failed end (expected step × 20 %); " + setup),
      berth_row("canary reverted: requests failed in a run", "count", "",
                fmt::format("all the clients' failures in a run (before, during, {} requests after); ", after) + setup),
      berth_row("canary reverted: first split to revert", "ms", "",
                "failed canary_step event time − its step_started_us: min_requests reaching the candidate, the "
                "judge's 200 ms looks, the revert; " + setup),
      berth_row("canary reverted: the proxy's revert", "ms", "",
                "resources.canary_revert_ms: the split taken off until HAProxy serves the route whole; " + setup),
      berth_row("canary reverted: requests failed after the revert", "count", "== 0",
                fmt::format("failures among the {} requests after the deployment showed failed; ", after) + setup)};
  for (auto& f : figures) {
    rows[0].runs.push_back(f.error_share_pct);
    rows[1].runs.push_back(f.failed);
    rows[2].runs.push_back(f.split_to_revert_ms);
    rows[3].runs.push_back(f.proxy_revert_ms);
    rows[4].runs.push_back(f.failed_after);
  }
  berth::bench::print_rows(rows);
  std::string error;
  if (!json_file.empty() && !berth::bench::write_rows(json_file, "bench_canary", rows, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
