#include "bench/common/surfaces.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/common/support.hpp"

namespace berth::bench {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

const std::string tag = "bsf";

[[noreturn]] void fail(const std::string& what, const std::string& extra = "");

}  // namespace

session& surfaces_session() {
  static session s("surfaces");
  return s;
}

double ms(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile of unsorted values; NAN when empty.
double pct(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::min(v.size() - 1, k ? k - 1 : 0)];
}

namespace {

void fail(const std::string& what, const std::string& extra) { surfaces_session().fail(what, extra); }

// ---- the berth under test ----------------------------------------------------------------

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

}  // namespace

// The lines app, created and deployed `deploys` times (a new release each time).
void setup_lines_app(surface_target& t, api_client& api, int deploys) {
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

namespace {

// GET /emit?n=K on the app: its count of lines printed so far (the last one is count - 1).
long emit(httplib::Client& app, int k) {
  auto r = app.Get(("/emit?n=" + std::to_string(k)).c_str());
  if (!r || r->status != 200) fail("GET /emit on the lines app: " + (r ? std::to_string(r->status) : httplib::to_string(r.error())));
  return std::stol(r->body);
}

// `lines` GET /emit?n=1 pipelined on one connection, one every `spacing`; when each was sent.
std::vector<steady::time_point> emit_series(const surface_target& t, int lines, std::chrono::milliseconds spacing) {
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

}  // namespace

follow_result follow_once(const surface_target& t, const surfaces_params& p, const std::string& log_file) {
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

load_result api_load(const surface_target& t, const surfaces_params& p) {
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
load_result api_with_streams(const surface_target& t, const surfaces_params& p, int* still_open) {
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

scrape_result scrape(const surface_target& t, const surfaces_params& p) {
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

}  // namespace berth::bench
