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
// Figures per run, then medians over the runs, then one JSON line per figure.
//
// Usage: bench_surfaces [--runs 5] [--deploys 3] [--lines 200] [--spacing-ms 20] [--threads 8]
//                       [--api-s 3] [--streams 32] [--scrapes 50] [--timeout-s 170]
//                       [--berth PATH] [--tail PATH] [--dir PARENT] [--keep]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/stream_probe.hpp"
#include "runtime/auth/token.hpp"
#include "runtime/files/layout.hpp"
#include "tests/common/support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace berth::bench;
using namespace std::chrono_literals;
using json = nlohmann::json;

struct params {
  int runs = 5, deploys = 3, lines = 200, spacing_ms = 20, threads = 8, api_s = 3, streams = 32, scrapes = 50;
  int timeout_s = 170;
  std::string berth = BERTH_BINARY, tail = "/usr/bin/tail", dir = "/tmp";
  bool keep = false;
};

params parse(int argc, char** argv) {
  params p;
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

session g_session("surfaces");
[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

const std::string tag = "bsf";

double ms(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile of unsorted values; NAN when empty.
double pct(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::min(v.size() - 1, k ? k - 1 : 0)];
}

// ---- the berth under test ----------------------------------------------------------------

struct target {
  uint16_t api_port = 0, app_port = 0;
  std::string token, name, data, src, release;
};

void deploy(api_client& api, const std::string& name) {
  auto [code, body] = api.post("/api/projects/" + name + "/deployments", json::object());
  if (code != 202) fail("POST deployments of " + name + ": HTTP " + std::to_string(code), body.dump());
  std::string id = body.value("id", "");
  auto until = steady::now() + 60s;
  for (;;) {
    auto [c, d] = api.get("/api/deployments/" + id);
    auto st = d.value("status", "");
    if (c == 200 && (st == "completed" || st == "failed" || st == "cancelled" || st == "unchanged")) {
      if (st != "completed") fail("deployment " + id + " ended " + st, d.dump(2));
      return;
    }
    if (steady::now() > until) fail("deployment " + id + " did not end within 60 s", d.dump());
    std::this_thread::sleep_for(20ms);
  }
}

// The lines app, created and deployed `deploys` times (a new release each time).
void setup(target& t, api_client& api, int deploys) {
  fs::create_directories(t.src);
  std::error_code ec;
  fs::copy_file(BENCH_LINES_APP, t.src + "/server.py", fs::copy_options::overwrite_existing, ec);
  if (ec) fail(std::string("cannot copy ") + BENCH_LINES_APP + ": " + ec.message());
  berth::it::write_file(t.src + "/TAG", tag + "\n");
  json m = {{"name", t.name},
            {"source", {{"path", t.src}}},
            {"production",
             {{"command", {"python3", "server.py"}},
              {"health", {{"path", "/health"}, {"timeout_s", 20}, {"interval_ms", 10}, {"min_healthy_s", 0}}},
              {"keep", 3}}}};
  auto [code, body] = api.post("/api/projects", m);
  if (code != 201) fail("POST /api/projects: HTTP " + std::to_string(code), body.dump());
  t.app_port = body.at("ports").at("production").get<uint16_t>();
  for (int k = 0; k < deploys; ++k) {
    berth::it::write_file(t.src + "/VERSION", std::to_string(k) + "\n");
    deploy(api, t.name);
  }
  auto [hc, history] = api.get("/api/projects/" + t.name + "/production/history");
  if (hc != 200 || !history["current"].is_string()) fail("no current release", history.dump());
  t.release = history["current"].get<std::string>();
}

// ---- 1. log follow latency ---------------------------------------------------------------

struct follow_result {
  std::vector<double> berth_ms, tail_ms;
  int lost_berth = 0, lost_tail = 0;
};

// GET /emit?n=K on the app: its count of lines printed so far (the last one is count - 1).
long emit(httplib::Client& app, int k) {
  auto r = app.Get(("/emit?n=" + std::to_string(k)).c_str());
  if (!r || r->status != 200) fail("GET /emit on the lines app: " + (r ? std::to_string(r->status) : httplib::to_string(r.error())));
  return std::stol(r->body);
}

// `lines` GET /emit?n=1 pipelined on one connection, one every `spacing`; when each was sent.
std::vector<steady::time_point> emit_series(const target& t, int lines, std::chrono::milliseconds spacing) {
  raw_stream conn;
  std::string error;
  if (!conn.open(t.app_port, "/emit?n=0", "", 5s, &error)) fail("lines app: " + error);
  std::atomic<long> answers{0};
  std::thread drain([&conn, &answers] {  // counts the answers, whatever they are split into
    const std::string ok = "HTTP/1.1 200 ";
    std::string carry;
    char buf[8192];
    for (ssize_t n; (n = conn.read(buf, sizeof buf)) > 0;) {
      carry.append(buf, static_cast<size_t>(n));
      size_t pos = 0, done = 0;
      while ((pos = carry.find(ok, pos)) != std::string::npos) {
        ++answers;
        done = pos += ok.size();
      }
      carry.erase(0, std::max(done, carry.size() > ok.size() ? carry.size() - ok.size() : size_t{0}));
    }
  });
  const std::string req = "GET /emit?n=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::vector<steady::time_point> sent;
  auto start = steady::now();
  for (int i = 0; i < lines; ++i) {
    std::this_thread::sleep_until(start + spacing * i);
    sent.push_back(steady::now());
    if (!conn.write(req)) fail("the lines app closed the connection after " + std::to_string(i) + " GET /emit");
  }
  for (auto until = steady::now() + 10s; answers < lines && steady::now() < until;) std::this_thread::sleep_for(5ms);
  conn.shutdown();
  drain.join();
  if (answers != lines) fail("the lines app answered " + std::to_string(answers) + " of " + std::to_string(lines) + " GET /emit");
  return sent;
}

follow_result follow_once(const target& t, const params& p, const std::string& log_file) {
  arrivals by_berth(1 << 20), by_tail(1 << 20);
  raw_stream sse;
  std::string error;
  if (!sse.open(t.api_port, "/api/projects/" + t.name + "/logs?follow=1&tail=0", t.token, 10s, &error))
    fail("log follower: " + error);
  stream_reader berth_reader(tag, by_berth), tail_reader(tag, by_tail);
  berth_reader.start_stream(sse);
  int out = -1;
  pid_t tail = spawn_piped({p.tail, "-F", "-n", "0", log_file}, &out);
  if (tail < 0) fail("cannot start " + p.tail);
  tail_reader.start_fd(out);
  httplib::Client app("127.0.0.1", t.app_port);
  app.set_keep_alive(true);
  app.set_tcp_nodelay(true);
  app.set_read_timeout(5, 0);
  // Both followers are in place once a line written now reaches both.
  long first = 0;
  for (auto until = steady::now() + 15s;;) {
    long n = emit(app, 1) - 1;
    auto wait = steady::now() + 300ms;
    while (!(by_berth.seen(n) && by_tail.seen(n)) && steady::now() < wait) std::this_thread::sleep_for(2ms);
    if (by_berth.seen(n) && by_tail.seen(n)) {
      first = n + 1;
      break;
    }
    if (steady::now() > until) fail("the followers did not see a line within 15 s");
  }
  auto sent = emit_series(t, p.lines, std::chrono::milliseconds(p.spacing_ms));
  if (emit(app, 0) != first + p.lines) fail("the lines app printed other lines than the benchmark asked for");
  long last = first + p.lines - 1;
  for (auto until = steady::now() + 5s; steady::now() < until && !(by_berth.seen(last) && by_tail.seen(last));)
    std::this_thread::sleep_for(2ms);
  stop_process(tail);  // its pipe closes: the reader ends
  tail_reader.join();
  sse.shutdown();
  berth_reader.join();
  sse.close();
  follow_result r;
  for (long i = 0; i < p.lines; ++i) {
    long n = first + i;
    auto at = sent[i];
    if (by_berth.seen(n)) r.berth_ms.push_back(ms(by_berth.at(n) - at));
    else ++r.lost_berth;
    if (by_tail.seen(n)) r.tail_ms.push_back(ms(by_tail.at(n) - at));
    else ++r.lost_tail;
  }
  return r;
}

// ---- 2. the API under open streams -------------------------------------------------------

struct load_result {
  double rps = NAN, p50_ms = NAN, p99_ms = NAN;
  size_t errors = 0;
};

load_result api_load(const target& t, const params& p) {
  std::vector<std::vector<double>> lat(p.threads);
  std::vector<size_t> errors(p.threads, 0);
  std::atomic<bool> go{false};
  std::vector<std::thread> th;
  auto path = "/api/projects/" + t.name;
  steady::time_point start, end;
  for (int i = 0; i < p.threads; ++i)
    th.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", t.api_port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(10, 0);
      cli.set_bearer_token_auth(t.token);
      while (!go) std::this_thread::yield();
      while (steady::now() < end) {
        auto t0 = steady::now();
        auto r = cli.Get(path.c_str());
        auto t1 = steady::now();
        if (r && r->status == 200) lat[i].push_back(ms(t1 - t0));
        else ++errors[i];
      }
    });
  start = steady::now();
  end = start + std::chrono::seconds(p.api_s);
  go = true;
  for (auto& x : th) x.join();
  double secs = std::chrono::duration<double>(steady::now() - start).count();
  std::vector<double> all;
  load_result r;
  for (int i = 0; i < p.threads; ++i) {
    all.insert(all.end(), lat[i].begin(), lat[i].end());
    r.errors += errors[i];
  }
  r.rps = all.size() / secs;
  r.p50_ms = pct(all, 0.5);
  r.p99_ms = pct(all, 0.99);
  return r;
}

// `streams` log followers held open (waiting for lines) while the API is loaded.
load_result api_with_streams(const target& t, const params& p, int* still_open) {
  std::vector<std::unique_ptr<raw_stream>> open;
  for (int i = 0; i < p.streams; ++i) {
    auto s = std::make_unique<raw_stream>();
    std::string error;
    if (!s->open(t.api_port, "/api/projects/" + t.name + "/logs?follow=1&tail=0", t.token, 10s, &error))
      fail("log stream " + std::to_string(i + 1) + " of " + std::to_string(p.streams) + ": " + error);
    open.push_back(std::move(s));
  }
  auto r = api_load(t, p);
  *still_open = 0;
  for (auto& s : open) *still_open += s->still_open() ? 1 : 0;
  return r;  // the streams close here
}

// ---- 3. /metrics -------------------------------------------------------------------------

struct scrape_result {
  double metrics_ms = NAN, health_ms = NAN, metrics_bytes = NAN;
  size_t series = 0;  // sample lines in the last scrape
};

scrape_result scrape(const target& t, const params& p) {
  httplib::Client cli("127.0.0.1", t.api_port);
  cli.set_keep_alive(true);
  cli.set_tcp_nodelay(true);
  cli.set_read_timeout(10, 0);
  cli.set_bearer_token_auth(t.token);
  std::vector<double> m, h, bytes;
  std::string last;
  for (int i = 0; i < p.scrapes; ++i) {
    auto t0 = steady::now();
    auto r = cli.Get("/metrics");
    auto t1 = steady::now();
    if (!r || r->status != 200) fail("GET /metrics: " + (r ? std::to_string(r->status) : httplib::to_string(r.error())));
    m.push_back(ms(t1 - t0));
    bytes.push_back(static_cast<double>(r->body.size()));
    last = r->body;
    auto t2 = steady::now();
    auto hr = cli.Get("/health");
    if (!hr || hr->status != 200) fail("GET /health failed");
    h.push_back(ms(steady::now() - t2));
  }
  scrape_result r{median(m), median(h), median(bytes), 0};
  for (size_t pos = 0; pos < last.size();) {
    auto eol = last.find('\n', pos);
    if (last[pos] != '#' && eol != pos) ++r.series;
    pos = eol == std::string::npos ? last.size() : eol + 1;
  }
  if (last.find("berth_") == std::string::npos) fail("/metrics has no berth_ metric", last.substr(0, 400));
  return r;
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
  g_session.guard(std::chrono::seconds(p.timeout_s));
  std::mt19937 rng(std::random_device{}());
  auto tmp = g_session.open_dir(p.dir, p.keep);
  target t;
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
  g_session.start_berth(args, api);
  auto t_setup = steady::now();
  setup(t, api, p.deploys);
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
  g_session.final_cleanup();
  return 0;
}
