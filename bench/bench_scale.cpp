// bench_scale: berth with many registered idle projects, and GET of one project under wrk.
//
// One `berth serve` (sandbox on; its own temp dir; production ports 10000-20999, preview ports
// 21000-32000 and, as root, project uids 100000-120000: 10,000 projects need wide ranges):
//   1. --projects (10,000) projects are created over HTTP from --clients (8) clients at once:
//      a minimal manifest with a preview and a production command, nothing started (timed as
//      info only).
//   2. daemon RSS (VmRSS) once settled, and its CPU while nothing happens: utime+stime from
//      /proc/<pid>/stat over --idle-s (10) s, in % of one core; --runs windows.
//   3. bench/apps/tiny_http is deployed as production of a project, and
//      `wrk -t2 -c32 -d<--wrk-s>s --latency` GETs /api/projects/{name} with the token: req/s
//      and p99, --runs runs, the idle fleet beside it.
//   4. --runs times: kill -9 of berth, start again on the same data dir; from the spawn, GET
//      /api/projects as soon as the port accepts (its first status is a figure) and GET every
//      project from --clients clients at once until each answered 200: the last one's time is
//      "kill -9, restart: last project answering" (at most --restart-limit-s, then a lower
//      bound and no further restart). RSS again once all answered.
// Figures print as a table and, with --json FILE, in the shared row format (bench/README.md)
// that bench/report.py merges into bench/results/latest.md. --quick: 300 projects, 1 run,
// 5 s windows (under a minute).
//
// Usage: bench_scale [--projects 10000] [--runs 3] [--quick] [--json FILE] [--clients 8]
//                    [--idle-s 10] [--wrk-s 10] [--wrk PATH] [--berth PATH] [--tiny-http PATH]
//                    [--restart-limit-s 300] [--dir PARENT] [--keep] [--timeout-s 1800]
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/scale_probe.hpp"
#include "bench/common/scale_projects.hpp"
#include "bench/common/scale_rows.hpp"
#include "runtime/auth/token.hpp"
#include "tests/common/support.hpp"

#ifndef BERTH_BINARY
#define BERTH_BINARY ""
#endif
#ifndef BENCH_TINY_HTTP
#define BENCH_TINY_HTTP ""
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace berth::bench;

struct params {
  size_t projects = 10000;
  int runs = 3, clients = 8, idle_s = 10, wrk_s = 10, restart_limit_s = 300, timeout_s = 1800;
  bool quick = false, keep = false;
  std::string json_out, wrk, dir;
  std::string berth = BERTH_BINARY, tiny = BENCH_TINY_HTTP;
};

std::string in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  for (size_t b = 0; b <= p.size();) {
    size_t e = p.find(':', b);
    if (e == std::string::npos) e = p.size();
    auto cand = p.substr(b, e - b) + "/" + name;
    if (e > b && ::access(cand.c_str(), X_OK) == 0) return cand;
    b = e + 1;
  }
  return "";
}

params parse(int argc, char** argv) {
  params p;
  const char* tmp = std::getenv("TMPDIR");
  p.dir = tmp && *tmp ? tmp : "/tmp";
  CLI::App app{"bench_scale: berth with many idle projects (RSS, idle CPU, restart) and GET under wrk"};
  auto* projects = app.add_option("--projects", p.projects, "idle projects to create")->check(CLI::Range(1, 100000));
  auto* runs = app.add_option("--runs", p.runs, "runs of each figure (median)")->check(CLI::Range(1, 50));
  app.add_flag("--quick", p.quick, "300 projects, 1 run, 5 s windows (defaults only; explicit flags win)");
  app.add_option("--json", p.json_out, "write the figures in the shared row format to FILE");
  app.add_option("--clients", p.clients, "concurrent HTTP clients creating and sweeping")->check(CLI::Range(1, 64));
  auto* idle = app.add_option("--idle-s", p.idle_s, "idle CPU window (s)")->check(CLI::Range(1, 600));
  auto* wrk_s = app.add_option("--wrk-s", p.wrk_s, "wrk duration (s)")->check(CLI::Range(1, 600));
  app.add_option("--restart-limit-s", p.restart_limit_s, "a restart fails past this (s)")->check(CLI::Range(5, 3600));
  app.add_option("--wrk", p.wrk, "wrk binary (default: wrk in PATH)");
  app.add_option("--berth", p.berth, "berth binary");
  app.add_option("--tiny-http", p.tiny, "tiny_http binary");
  app.add_option("--dir", p.dir, "parent of the temp dir");
  app.add_flag("--keep", p.keep, "keep the temp dir");
  app.add_option("--timeout-s", p.timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (p.quick) {
    if (projects->count() == 0) p.projects = 300;
    if (runs->count() == 0) p.runs = 1;
    if (idle->count() == 0) p.idle_s = 5;
    if (wrk_s->count() == 0) p.wrk_s = 5;
  }
  if (p.wrk.empty()) p.wrk = in_path("wrk");
  return p;
}

berth::bench::session g_session("bench_scale");

// "10,000": the figure names carry the fleet size as the issue writes it.
std::string grouped(size_t n) {
  auto s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The project wrk reads: bench_tiny_http copied into its source (the sandbox shows a release
// only its own folders and the system's /usr), built into dist/ and served as production.
std::string create_served(api_client& api, const std::string& dir, const std::string& tiny) {
  const std::string name = "bench-tiny", src = dir + "/src-tiny";
  fs::create_directories(src);
  fs::copy_file(tiny, src + "/tiny_http", fs::copy_options::overwrite_existing);
  berth::it::write_file(src + "/VERSION", "scale\n");
  json m = {{"name", name},
            {"source", {{"path", src}}},
            {"build", {{"command", {"install", "-D", "-m", "755", "-t", "dist", "VERSION", "tiny_http"}},
                       {"artifacts", {"dist"}}}},
            {"production",
             {{"command", {"dist/tiny_http", "dist/VERSION"}},
              {"health", {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 10}, {"min_healthy_s", 0}}}}}};
  auto [code, body] = api.post("/api/projects", m);
  if (code != 201) g_session.fail("POST /api/projects " + name + ": HTTP " + std::to_string(code), body.dump());
  return name;
}

// Deploys `name` and waits (bounded) until the deployment completed.
void deploy(api_client& api, const std::string& name) {
  auto [code, body] = api.post("/api/projects/" + name + "/deployments", json::object());
  if (code != 202 || !body.contains("id")) g_session.fail("POST deployments: HTTP " + std::to_string(code), body.dump());
  std::string id = body["id"];
  auto until = steady::now() + 60s;
  for (;;) {
    auto [c, d] = api.get("/api/deployments/" + id);
    auto st = c == 200 ? d.value("status", "") : "";
    if (st == "completed") return;
    if (st == "failed" || st == "cancelled") g_session.fail("deployment " + id + " ended " + st, d.dump(2));
    if (steady::now() > until) g_session.fail("deployment " + id + " did not end within 60 s", d.dump());
    std::this_thread::sleep_for(20ms);
  }
}

void print_table(const std::vector<figure_row>& rows) {
  std::printf("\n%-66s %10s %-8s %-14s %s\n", "figure", "median", "unit", "target", "runs");
  for (auto& r : rows) {
    std::string runs;
    for (double v : r.runs) runs += (runs.empty() ? "" : " ") + fmt("%.2f", v);
    std::printf("%-66s %10.2f %-8s %-14s %s%s%s\n", r.figure.c_str(), median(r.runs), r.unit.c_str(),
                r.target.c_str(), runs.c_str(), r.notes.empty() ? "" : "  # ", r.notes.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  for (auto& path : {p.berth, p.tiny})
    if (::access(path.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "bench_scale: %s is not executable\n", path.c_str());
      return 2;
    }
  g_session.guard(std::chrono::seconds(p.timeout_s));
  const std::string tmp = g_session.open_dir(p.dir, p.keep);
  const std::string n = grouped(p.projects) + " idle projects: ";

  fleet_api fleet{free_port(), "bench-" + berth::generate_token()};
  if (fleet.port == 0) g_session.fail("no free loopback port");
  std::vector<std::string> args = {p.berth, "serve", "--listen", "127.0.0.1:" + std::to_string(fleet.port),
                                   "--data", tmp + "/data", "--token", fleet.token,
                                   "--production-ports", "10000-20999", "--preview-ports", "21000-32000"};
  if (::geteuid() == 0) args.insert(args.end(), {"--sandbox-uids", "100000-120000"});
  std::printf("bench_scale: projects=%zu runs=%d clients=%d idle=%ds wrk=%ds load(1/5/15m)=%s\n  dir=%s\n  ",
              p.projects, p.runs, p.clients, p.idle_s, p.wrk_s, loadavg().c_str(), tmp.c_str());
  for (auto& a : args) std::printf("%s ", a == fleet.token ? "<token>" : a.c_str());
  std::printf("\n");
  std::fflush(stdout);

  api_client api(fleet.port);
  g_session.start_berth(args, api);
  std::vector<figure_row> rows;
  // The rows so far are written after every phase: a later failure keeps the figures made.
  auto checkpoint = [&](const std::vector<figure_row>& so_far) {
    std::string error;
    if (!p.json_out.empty() && !write_rows(p.json_out, "bench_scale", so_far, &error))
      std::fprintf(stderr, "bench_scale: %s\n", error.c_str());
  };
  rows.push_back({"daemon RSS, no project (info)", "berth", "-", "MB", {rss_mb(g_session.berth_pid())}, "", ""});

  // 1. The idle fleet.
  const std::string src = tmp + "/src-idle";
  fs::create_directories(src);
  berth::it::write_file(src + "/VERSION", "idle\n");
  fs::copy_file(p.tiny, src + "/tiny_http", fs::copy_options::overwrite_existing);
  std::vector<std::string> names;
  for (size_t i = 0; i < p.projects; ++i) names.push_back(idle_name(i));
  double create_s = create_idle_projects(g_session, fleet, names, src, p.clients);
  std::printf("created %zu projects in %.1f s (%.0f/s)\n", names.size(), create_s, names.size() / create_s);
  std::fflush(stdout);
  rows.push_back({n + "create them over HTTP (info)", "berth", "-", "s", {create_s}, "",
                  std::to_string(p.clients) + " clients at once"});
  checkpoint(rows);

  // 2. Settled: RSS and idle CPU.
  std::this_thread::sleep_for(2s);
  figure_row rss{n + "daemon RSS", "berth", "-", "MB", {}, "<= 64 MB", "after creating them, settled 2 s"};
  figure_row cpu{n + "idle CPU over " + std::to_string(p.idle_s) + " s", "berth", "-", "%", {}, "< 0.5 %",
                 "utime+stime of berth (/proc/<pid>/stat), % of one core"};
  for (int r = 0; r < p.runs; ++r) {
    rss.runs.push_back(rss_mb(g_session.berth_pid()));
    cpu.runs.push_back(cpu_percent_over(g_session.berth_pid(), std::chrono::seconds(p.idle_s)));
    std::printf("idle window %d: RSS %.1f MB, CPU %.2f %%\n", r + 1, rss.runs.back(), cpu.runs.back());
    std::fflush(stdout);
  }
  rows.push_back(rss);
  rows.push_back(cpu);
  checkpoint(rows);

  // 3. GET of a project whose production runs, under wrk.
  figure_row rps{"GET a project (wrk, loopback): req/s", "berth", "native", "req/s", {}, ">= 30000 req/s", ""};
  figure_row p99{"GET a project (wrk, loopback): p99", "berth", "native", "ms", {}, "< 5 ms", ""};
  if (p.wrk.empty()) {
    std::printf("wrk not found (apt-get install wrk, or --wrk PATH): GET under wrk skipped\n");
    rps.notes = p99.notes = "skipped: wrk not installed";
  } else {
    auto served = create_served(api, tmp, p.tiny);
    deploy(api, served);
    auto [code, body] = api.get("/api/projects/" + served);
    if (code != 200) g_session.fail("GET /api/projects/" + served + ": HTTP " + std::to_string(code), body.dump());
    long failed = 0;
    for (int r = 0; r < p.runs; ++r) {
      auto w = run_wrk(p.wrk, 2, 32, p.wrk_s, "Authorization: Bearer " + fleet.token,
                       "http://127.0.0.1:" + std::to_string(fleet.port) + "/api/projects/" + served,
                       tmp + "/wrk.log");
      if (!w.ok) g_session.fail(w.error);
      rps.runs.push_back(w.req_per_s);
      p99.runs.push_back(w.p99_ms);
      failed += w.failed;
      std::printf("wrk %d: %.0f req/s, p99 %.2f ms, %ld failed\n", r + 1, w.req_per_s, w.p99_ms, w.failed);
      std::fflush(stdout);
    }
    rps.notes = p99.notes = "wrk -t2 -c32 -d" + std::to_string(p.wrk_s) + "s --latency, " + grouped(p.projects) +
                            " idle projects beside it; " + std::to_string(failed) + " failed requests";
  }
  rows.push_back(rps);
  rows.push_back(p99);
  checkpoint(rows);

  // 4. kill -9 and restart (last: on today's main the restarted berth may not answer for minutes).
  figure_row restart{n + "kill -9, restart: last project answering", "berth", "-", "s", {}, "< 1 s", ""};
  figure_row list{n + "GET /api/projects right after restart", "berth", "-", "status", {}, "== 200", ""};
  figure_row rss_after{n + "daemon RSS after restart", "berth", "-", "MB", {}, "<= 64 MB",
                       "once every project answered"};
  long retries = 0;
  bool every_restart_complete = true;
  for (int r = 0; r < p.runs; ++r) {
    auto res = restart_and_sweep(g_session, args, fleet, names, p.clients, std::chrono::seconds(p.restart_limit_s));
    restart.runs.push_back(res.last_answer_s);
    list.runs.push_back(res.list_status);
    rss_after.runs.push_back(rss_mb(g_session.berth_pid()));
    retries += res.retries;
    if (!res.complete)
      restart.notes += "run " + std::to_string(r + 1) + ": only " + std::to_string(res.answered) + " of " +
                       std::to_string(names.size()) + " answered within " + std::to_string(p.restart_limit_s) +
                       " s (the figure is that limit, a lower bound); ";
    if (!res.first_problem.empty()) restart.notes += "first problem: " + res.first_problem + "; ";
    list.notes += (list.notes.empty() ? "" : "; ") + std::string("first answer ") + std::to_string(res.list_status) +
                  " at " + fmt("%.0f", res.list_first_ms) + " ms, " +
                  (res.list_ok_ms < 0 ? "never 200" : "200 at " + fmt("%.0f", res.list_ok_ms) + " ms");
    std::printf("restart %d: last project answering at %.3f s; GET /api/projects first %d at %.0f ms, 200 at %.0f ms; "
                "%ld non-200 answers retried; RSS %.1f MB\n",
                r + 1, res.last_answer_s, res.list_status, res.list_first_ms, res.list_ok_ms, res.retries,
                rss_after.runs.back());
    if (!res.complete) {
      every_restart_complete = false;
      rss_after.notes = "run " + std::to_string(r + 1) + " taken at the restart limit, not all projects answering";
      std::printf("restart %d: only %zu of %zu projects answered within %d s (first problem: %s); no more restarts\n",
                  r + 1, res.answered, names.size(), p.restart_limit_s, res.first_problem.c_str());
      std::fflush(stdout);
      break;  // the next restart would take as long
    }
    std::fflush(stdout);
  }
  restart.notes += "from spawn; GETs from " + std::to_string(p.clients) + " clients at once; " +
                   std::to_string(retries) + " non-200 answers retried in all";
  rows.push_back(restart);
  rows.push_back(list);
  rows.push_back(rss_after);
  checkpoint(rows);

  // 5. Idle again after the last restart: the state a server with this fleet runs in (the
  // windows of step 2 come right after 3 x N creations, while RocksDB still compacts them).
  figure_row cpu_after{n + "idle CPU over " + std::to_string(p.idle_s) + " s after restart", "berth", "-", "%", {},
                       "< 0.5 %", "utime+stime of berth (/proc/<pid>/stat), % of one core, after every project answered"};
  for (int r = 0; r < p.runs && every_restart_complete; ++r) {
    cpu_after.runs.push_back(cpu_percent_over(g_session.berth_pid(), std::chrono::seconds(p.idle_s)));
    std::printf("idle window %d after restart: CPU %.2f %%\n", r + 1, cpu_after.runs.back());
  }
  if (!cpu_after.runs.empty()) rows.push_back(cpu_after);
  checkpoint(rows);

  std::string load_after = loadavg();
  g_session.final_cleanup();
  print_table(rows);
  std::printf("load(1/5/15m) after %s\n", load_after.c_str());
  if (!p.json_out.empty()) {
    checkpoint(rows);
    std::printf("rows written to %s\n", p.json_out.c_str());
  }
  return 0;
}
