// The three measures of bench_surfaces (see bench/bench_surfaces.cpp for what each measures
// and why), on a real `berth serve` that the caller started with `token` on `api_port`.
#pragma once
#include <cmath>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/stream_probe.hpp"

namespace berth::bench {

struct surfaces_params {
  int runs = 5, deploys = 3, lines = 200, spacing_ms = 20, threads = 8, api_s = 3, streams = 32, scrapes = 50;
  int timeout_s = 170;
  std::string berth, tail = "/usr/bin/tail", dir = "/tmp";
  bool keep = false;
};

// The process's one session (its berth, temp dir and time limit).
session& surfaces_session();

struct surface_target {
  uint16_t api_port = 0, app_port = 0;
  std::string token, name, data, src, release;
};

// Creates the lines app as `t.name` from `t.src` and deploys it `deploys` times (a new release
// each time); sets app_port and release (the current one).
void setup_lines_app(surface_target& t, api_client& api, int deploys);

struct follow_result {
  std::vector<double> berth_ms, tail_ms;  // per line, from GET /emit sent to the line read
  int lost_berth = 0, lost_tail = 0;      // lines never seen (within 5 s of the last one)
};
// One follower on berth's log stream and `tail -F` on `log_file`, p.lines lines.
follow_result follow_once(const surface_target& t, const surfaces_params& p, const std::string& log_file);

struct load_result {
  double rps = NAN, p50_ms = NAN, p99_ms = NAN;
  size_t errors = 0;
};
// GET /api/projects/{name} from p.threads clients for p.api_s seconds; the second one with
// p.streams log streams open (*still_open: how many were still open after the load).
load_result api_load(const surface_target& t, const surfaces_params& p);
load_result api_with_streams(const surface_target& t, const surfaces_params& p, int* still_open);

struct scrape_result {
  double metrics_ms = NAN, health_ms = NAN, metrics_bytes = NAN;  // medians
  size_t series = 0;  // sample lines in the last scrape
};
// p.scrapes GET /metrics, each followed by a GET /health, on one keep-alive connection.
scrape_result scrape(const surface_target& t, const surfaces_params& p);

double ms(steady::duration d);
double pct(std::vector<double> v, double q);  // nearest rank, of unsorted values; NAN when empty

}  // namespace berth::bench
