// bench_surfaces: what the operator surfaces of issue 15 cost on a real `berth serve`, on
// loopback: following a log, the API while event streams are open, and a /metrics scrape.
//
// One `berth serve` (its own temp dir, a random port window, default --http-threads and
// --http-streams) gets one project, the lines app (tests/apps/lines: GET /emit?n=1 prints the
// next numbered line "bsf 000123" to stdout), deployed --deploys times (each a new release),
// then --runs repetitions of:
//   follow   a follower on GET /api/projects/{name}/logs?follow=1&tail=0 (a raw socket, read
//            as bytes) and, as the peer, `tail -F -n 0` (coreutils, inotify) on the same file,
//            <data>/projects/<name>/production/logs/release-<hash>.log, its stdout read
//            through a pipe. --lines lines, one GET /emit every --spacing-ms; per line, the
//            time from sending GET /emit until the line is read from each; p50/p90/p99 and
//            berth/tail at p50. The requests are pipelined on one connection and the answers
//            drained by a thread: the app writes the line, then answers in two writes (head,
//            body) that Nagle and delayed ACK hold ~40 ms, so waiting for each answer would
//            space the lines 40 ms apart, and timing from the answer would find both followers
//            ~40 ms early. The send time adds the app's handling of the request (well under
//            1 ms) to both followers alike.
//   api      GET /api/projects/{name} from --threads keep-alive clients for --api-s seconds:
//            requests/s and p99, with no open stream and with --streams log streams open
//            (follow=1, tail=0, waiting for lines); the two alternate in order across runs.
//   metrics  --scrapes GET /metrics: median time and size; the same count of GET /health as
//            the peer (the cheapest answer berth gives).
// Figures per run, then medians over the runs, then one JSON line per figure. The measures
// are in bench/common/surfaces.*, the stream and pipe readers in bench/common/stream_probe.*.
//
// Usage: bench_surfaces [--runs 5] [--deploys 3] [--lines 200] [--spacing-ms 20] [--threads 8]
//                       [--api-s 3] [--streams 32] [--scrapes 50] [--timeout-s 170]
//                       [--berth PATH] [--tail PATH] [--dir PARENT] [--keep]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/common/surfaces.hpp"
#include "runtime/auth/token.hpp"
#include "runtime/files/layout.hpp"

namespace {

using namespace berth::bench;
using json = nlohmann::json;
using params = surfaces_params;

params parse(int argc, char** argv) {
  params p;
  p.berth = BERTH_BINARY;
  CLI::App app{"bench_surfaces: log follow latency, the API under open streams, /metrics scrapes"};
  app.add_option("--runs", p.runs, "repetitions of each measure")->check(CLI::Range(1, 100));
  app.add_option("--deploys", p.deploys, "deploys before measuring")->check(CLI::Range(1, 100));
  app.add_option("--lines", p.lines, "lines followed per run")->check(CLI::Range(1, 20000));
  app.add_option("--spacing-ms", p.spacing_ms, "between two lines")->check(CLI::Range(0, 10000));
  app.add_option("--threads", p.threads, "API client threads")->check(CLI::Range(1, 256));
  app.add_option("--api-s", p.api_s, "seconds per API series")->check(CLI::Range(1, 600));
  app.add_option("--streams", p.streams, "log streams open in the second API series")->check(CLI::Range(1, 4000));
  app.add_option("--scrapes", p.scrapes, "GET /metrics per run")->check(CLI::Range(1, 100000));
  app.add_option("--timeout-s", p.timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  app.add_option("--berth", p.berth, "berth binary");
  app.add_option("--tail", p.tail, "tail binary (coreutils)");
  app.add_option("--dir", p.dir, "parent of the temp dir");
  app.add_flag("--keep", p.keep, "keep the temp dir");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return p;
}

// ---- report ------------------------------------------------------------------------------

std::string f(double x, const char* fmt = "%.2f") {
  if (std::isnan(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, fmt, x);
  return b;
}

// Figures per run by name; the summary is their medians.
std::map<std::string, std::vector<double>> g_fig;
void put(const std::string& name, double v) { g_fig[name].push_back(v); }
double med(const std::string& name) { return median(g_fig[name]); }

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  surfaces_session().guard(std::chrono::seconds(p.timeout_s));
  std::mt19937 rng(std::random_device{}());
  auto tmp = surfaces_session().open_dir(p.dir, p.keep);
  surface_target t;
  t.api_port = free_port();
  t.token = "bench-" + berth::generate_token();
  t.name = "bsf-" + std::to_string(rng() % 100000);
  t.data = tmp + "/data";
  t.src = tmp + "/src";
  std::vector<std::string> args = {p.berth, "serve", "--listen", "127.0.0.1:" + std::to_string(t.api_port), "--data",
                                   t.data, "--stop-grace-ms", "1000", "--switch-mode", "direct", "--token", t.token};
  for (auto& a : port_window_args(rng())) args.push_back(a);
  std::printf("bench_surfaces: runs=%d lines=%d spacing=%d ms threads=%d api=%d s streams=%d scrapes=%d cores=%u "
              "load(1/5/15m)=%s\n  berth=%s tail=%s\n\n",
              p.runs, p.lines, p.spacing_ms, p.threads, p.api_s, p.streams, p.scrapes,
              std::thread::hardware_concurrency(), loadavg().c_str(), p.berth.c_str(), p.tail.c_str());
  std::fflush(stdout);
  api_client api(t.api_port);
  surfaces_session().start_berth(args, api);
  auto t_setup = steady::now();
  setup_lines_app(t, api, p.deploys);
  auto log_file = berth::paths_for(t.data, t.name).release_log(t.release).string();
  std::printf("setup: %d deploys in %.1f s; following %s\n\n", p.deploys, ms(steady::now() - t_setup) / 1000,
              log_file.c_str());
  std::printf("%-4s %27s %27s %10s | %16s %16s %6s | %9s %8s %8s\n", "run", "berth p50/p90/p99 ms",
              "tail -F p50/p90/p99 ms", "berth/tail", "api 0: req/s p99", "api N: req/s p99", "open", "metrics", "bytes",
              "health");
  for (int run = 1; run <= p.runs; ++run) {
    auto fr = follow_once(t, p, log_file);
    put("follow_berth_p50_ms", pct(fr.berth_ms, .5));
    put("follow_berth_p90_ms", pct(fr.berth_ms, .9));
    put("follow_berth_p99_ms", pct(fr.berth_ms, .99));
    put("follow_tail_p50_ms", pct(fr.tail_ms, .5));
    put("follow_tail_p90_ms", pct(fr.tail_ms, .9));
    put("follow_tail_p99_ms", pct(fr.tail_ms, .99));
    put("follow_ratio_p50", pct(fr.berth_ms, .5) / pct(fr.tail_ms, .5));
    put("follow_lost_berth", fr.lost_berth);
    put("follow_lost_tail", fr.lost_tail);

    load_result idle, busy;
    int still_open = 0;
    if (run % 2) {  // alternate the order, so a drift in the machine's load does not favour one
      idle = api_load(t, p);
      busy = api_with_streams(t, p, &still_open);
    } else {
      busy = api_with_streams(t, p, &still_open);
      idle = api_load(t, p);
    }
    put("api_0_rps", idle.rps);
    put("api_0_p99_ms", idle.p99_ms);
    put("api_0_p50_ms", idle.p50_ms);
    put("api_streams_rps", busy.rps);
    put("api_streams_p99_ms", busy.p99_ms);
    put("api_streams_p50_ms", busy.p50_ms);
    put("api_ratio_rps", busy.rps / idle.rps);
    put("api_ratio_p99", busy.p99_ms / idle.p99_ms);
    put("api_errors", static_cast<double>(idle.errors + busy.errors));
    put("api_streams_still_open", still_open);

    auto sr = scrape(t, p);
    put("metrics_ms", sr.metrics_ms);
    put("metrics_bytes", sr.metrics_bytes);
    put("metrics_series", static_cast<double>(sr.series));
    put("health_ms", sr.health_ms);
    put("metrics_ratio_health", sr.metrics_ms / sr.health_ms);

    std::printf("%-4d %27s %27s %10s | %16s %16s %6d | %9s %8s %8s\n", run,
                (f(pct(fr.berth_ms, .5)) + "/" + f(pct(fr.berth_ms, .9)) + "/" + f(pct(fr.berth_ms, .99))).c_str(),
                (f(pct(fr.tail_ms, .5)) + "/" + f(pct(fr.tail_ms, .9)) + "/" + f(pct(fr.tail_ms, .99))).c_str(),
                f(g_fig["follow_ratio_p50"].back()).c_str(), (f(idle.rps, "%.0f") + " " + f(idle.p99_ms)).c_str(),
                (f(busy.rps, "%.0f") + " " + f(busy.p99_ms)).c_str(), still_open, f(sr.metrics_ms, "%.3f").c_str(),
                f(sr.metrics_bytes, "%.0f").c_str(), f(sr.health_ms, "%.3f").c_str());
    if (fr.lost_berth || fr.lost_tail || idle.errors || busy.errors)
      std::printf("     lost lines: berth %d, tail %d; API errors: %zu + %zu\n", fr.lost_berth, fr.lost_tail,
                  idle.errors, busy.errors);
    std::fflush(stdout);
  }

  std::printf("\nmedians over %d runs (load after: %s)\n", p.runs, loadavg().c_str());
  std::printf("  log follow, GET /emit sent -> line read   berth p50 %s  p90 %s  p99 %s ms | tail -F p50 %s  p90 %s  p99 %s "
              "ms | berth/tail p50 %sx\n",
              f(med("follow_berth_p50_ms")).c_str(), f(med("follow_berth_p90_ms")).c_str(),
              f(med("follow_berth_p99_ms")).c_str(), f(med("follow_tail_p50_ms")).c_str(),
              f(med("follow_tail_p90_ms")).c_str(), f(med("follow_tail_p99_ms")).c_str(),
              f(med("follow_ratio_p50")).c_str());
  std::printf("  GET /api/projects/{name}, %d threads   0 streams %s req/s p99 %s ms | %d log streams %s req/s p99 %s ms | "
              "ratio req/s %sx p99 %sx\n",
              p.threads, f(med("api_0_rps"), "%.0f").c_str(), f(med("api_0_p99_ms")).c_str(), p.streams,
              f(med("api_streams_rps"), "%.0f").c_str(), f(med("api_streams_p99_ms")).c_str(),
              f(med("api_ratio_rps")).c_str(), f(med("api_ratio_p99")).c_str());
  std::printf("  GET /metrics                          %s ms, %s bytes, %s samples | GET /health %s ms | ratio %sx\n",
              f(med("metrics_ms"), "%.3f").c_str(), f(med("metrics_bytes"), "%.0f").c_str(),
              f(med("metrics_series"), "%.0f").c_str(), f(med("health_ms"), "%.3f").c_str(),
              f(med("metrics_ratio_health")).c_str());
  for (auto& [name, values] : g_fig) {
    json j = {{"bench", "surfaces"}, {"figure", name}, {"median", median(values)}, {"runs", values}};
    std::printf("%s\n", j.dump().c_str());
  }
  surfaces_session().final_cleanup();
  return 0;
}
