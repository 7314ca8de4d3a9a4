// bench_switch: what every kind of client of a project sees while deploys run, per switch mode
// and router, and what a crash of the router or of berth costs them.
//
// Modes (each a fresh `berth serve`: its own temp dir, a free API port, random 200-port
// production and preview windows, --stop-grace-ms 1000):
//   direct               --switch-mode direct (the stable port is handed from release to release)
//   proxy-caddy          --switch-mode proxy --proxy-engine caddy (Caddy routes; config reload per change)
//   proxy-haproxy        --switch-mode proxy --proxy-engine haproxy (runtime-API map changes)
//   proxy-haproxy-https  proxy-haproxy with --sites-tls internal: the clients go through Caddy's
//                        HTTPS listener with SNI <name>.localhost, verified against the internal root;
//                        the HTTP clients speak h2 (libcurl), the kept-alive GET and WebSocket HTTP/1.1
// Proxy modes use --drain-ms (1000) and a free --proxy-http-port. Two projects, alpha (A) and
// bravo (B), both tests/apps/traffic, each deployed once first. Per mode, two scenarios:
//   own        the five client kinds (switch_clients.hpp) on A while --deploys deploys of A run
//   neighbour  the same clients on A while --deploys deploys of B run
// Stable port in the HTTP modes, the HTTPS listener in the https mode. Runs alternate the modes;
// --runs (3) runs, medians per mode x scenario x kind, per-run failures printed in brackets.
// Then (each run; --no-crash skips it) per mode: steady new-connection GETs on A's stable
// port and host route while the router's master is SIGKILLed (proxy modes; berth restarts it),
// and then while berth itself is SIGKILLed and restarted on the same data dir.
//
// Usage: bench_switch [--deploys 5] [--runs 3] [--modes direct,proxy-caddy,proxy-haproxy,proxy-haproxy-https]
//                     [--drain-ms 1000] [--no-crash] [--json FILE] [--timeout-s 3600] [--berth PATH]
//                     [--python PATH] [--caddy PATH] [--dir PARENT] [--keep] [--verbose]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/switch_clients.hpp"
#include "bench/common/switch_crash.hpp"
#include "bench/common/switch_report.hpp"
#include "tests/common/support.hpp"
#include "tests/integration/traffic_wire.hpp"

#ifndef BERTH_BINARY
#define BERTH_BINARY ""
#endif
#ifndef BENCH_TRAFFIC_APP
#define BENCH_TRAFFIC_APP ""
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using berth::bench::api_client;
using berth::bench::free_port;
using berth::it::target;

const std::vector<std::string> all_modes = {"direct", "proxy-caddy", "proxy-haproxy", "proxy-haproxy-https"};

struct params {
  int deploys = 5;
  int runs = 3;
  std::vector<std::string> modes = all_modes;
  int drain_ms = 1000;
  bool crash = true;
  std::string json_file;
  int timeout_s = 3600;
  std::string berth = BERTH_BINARY;
  std::string python_bin = "python3";
  std::string caddy = "/usr/bin/caddy";
  std::string dir;
  bool keep = false;
  bool verbose = false;
};

params parse(int argc, char** argv) {
  params p;
  const char* tmp = std::getenv("TMPDIR");
  p.dir = tmp && *tmp ? tmp : "/tmp";
  CLI::App app{"bench_switch: what each client kind sees during deploys and crashes, per switch mode and router"};
  bool no_crash = false;
  app.add_option("--deploys", p.deploys, "deploys per scenario")->check(CLI::Range(1, 1000));
  app.add_option("--runs", p.runs, "runs (the modes alternate)")->check(CLI::Range(1, 100));
  app.add_option("--modes", p.modes, "comma-separated")->delimiter(',')->check(CLI::IsMember(all_modes));
  app.add_option("--drain-ms", p.drain_ms, "proxy modes' drain")->check(CLI::Range(0, 3600000));
  app.add_flag("--no-crash", no_crash, "skip the router / berth crash measurements");
  app.add_option("--json", p.json_file, "also write the JSON result to this file");
  app.add_option("--timeout-s", p.timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  app.add_option("--berth", p.berth, "berth binary");
  app.add_option("--python", p.python_bin, "python3 for the traffic app");
  app.add_option("--caddy", p.caddy, "caddy binary");
  app.add_option("--dir", p.dir, "parent of the temp dirs");
  app.add_flag("--keep", p.keep, "keep the temp dirs");
  app.add_flag("--verbose", p.verbose, "each scenario's figures as it ends");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  p.crash = !no_crash;
  return p;
}

berth::bench::session g_session{"bench_switch"};
[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

// ---- one berth per mode ---------------------------------------------------------------------

struct project {
  std::string name, src;
  uint16_t port = 0;  // stable production port
  int version = 0;
};

struct mode_env {
  std::string mode, dir, data;
  std::vector<std::string> args;  // berth serve's, for a restart on the same data dir
  std::unique_ptr<api_client> api;
  uint16_t http_port = 0, https_port = 0;
  std::string ca_file;  // https mode: Caddy's internal root
  project a, b;
  bool proxy() const { return mode != "direct"; }
  bool https() const { return mode == "proxy-haproxy-https"; }
  std::string engine() const { return mode == "proxy-caddy" ? "caddy" : "haproxy"; }
};

// Deploys `proj` at its next version; waits (bounded) for the end; returns the duration in ms.
double deploy_next(mode_env& env, project& proj) {
  ++proj.version;
  berth::it::write_file(proj.src + "/VERSION", proj.name + "-" + std::to_string(proj.version) + "\n");
  auto t0 = steady::now();
  auto [code, body] = env.api->post("/api/projects/" + proj.name + "/deployments", json::object());
  if (code != 202 || !body.contains("id")) fail("POST deployments: HTTP " + std::to_string(code), body.dump());
  std::string id = body["id"];
  for (;;) {
    auto [c, d] = env.api->get("/api/deployments/" + id);
    auto st = c == 200 ? d.value("status", "") : "";
    if (st == "completed") break;
    if (st == "failed" || st == "cancelled" || st == "unchanged") fail("deployment " + id + " ended " + st, d.dump(2));
    if (steady::now() - t0 > 90s) fail("deployment " + id + " did not end within 90 s", d.dump());
    std::this_thread::sleep_for(20ms);
  }
  // The job ends after the `completed` event (retention): let it, so the next one does not queue.
  std::this_thread::sleep_for(150ms);
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

// The way a user reaches `proj`: the stable port (plain HTTP), or in the https mode the HTTPS
// listener by name.
target user_target(const mode_env& env, const project& proj) {
  if (!env.https()) return {"127.0.0.1", proj.port, "", {}};
  return {"127.0.0.1", env.https_port, proj.name + ".localhost", {true, env.ca_file, true}};
}

// The shared host route: the HTTP listener with Host <name>.localhost (the HTTPS one in https mode).
target host_target(const mode_env& env, const project& proj) {
  if (env.https()) return user_target(env, proj);
  return {"127.0.0.1", env.http_port, proj.name + ".localhost", {}};
}

bool proxy_ready(const mode_env& env, const json& health) {
  if (!env.proxy()) return true;
  auto& px = health["proxy"];
  return px.value("status", "") == "running" && px.value("engine", "") == env.engine();
}

void wait_serves(mode_env& env, const project& proj) {
  namespace wire = berth::it::wire;
  auto until = steady::now() + 20s;
  auto want = "release " + proj.name + "-" + std::to_string(proj.version);
  auto t = user_target(env, proj);
  t.tls.http2 = false;
  for (std::string got;;) {
    wire::connection c;
    std::string buf;
    if (c.open(t).empty() &&
        c.send_all("GET / HTTP/1.1\r\nHost: " + wire::host_header(t) + "\r\nConnection: close\r\n\r\n")) {
      bool closed = false;
      auto r = wire::read_response(c, buf, steady::now() + 2s, closed);
      got = std::to_string(r.status) + " " + r.body;
      if (r.complete && r.status == 200 && r.body.rfind(want, 0) == 0) return;
    } else {
      got = c.error;
    }
    if (steady::now() > until) fail(proj.name + " does not serve '" + want + "': " + got);
    std::this_thread::sleep_for(100ms);
  }
}

project create_project(mode_env& env, const std::string& name, const params& p) {
  project proj;
  proj.name = name;
  proj.src = env.dir + "/src-" + name;
  fs::create_directories(proj.src);
  for (const char* f : {"build.py", "server.py"})
    fs::copy_file(std::string(BENCH_TRAFFIC_APP) + "/" + f, proj.src + "/" + f, fs::copy_options::overwrite_existing);
  json m = {{"name", name},
            {"source", {{"path", proj.src}}},
            {"build", {{"command", {p.python_bin, "build.py"}}, {"artifacts", {"dist"}}}},
            {"production",
             {{"command", {p.python_bin, "dist/server.py"}},
              {"health", {{"path", "/health"}, {"timeout_s", 20}, {"interval_ms", 50}, {"min_healthy_s", 0}}},
              {"keep", 3}}}};
  auto [code, body] = env.api->post("/api/projects", m);
  if (code != 201) fail("POST /api/projects " + name + ": HTTP " + std::to_string(code), body.dump());
  proj.port = body.at("ports").at("production").get<uint16_t>();
  return proj;
}

std::unique_ptr<mode_env> start_mode(const std::string& mode, const params& p, std::mt19937& rng) {
  auto env = std::make_unique<mode_env>();
  env->mode = mode;
  env->dir = g_session.open_dir(p.dir, p.keep);
  env->data = env->dir + "/data";
  uint16_t api_port = free_port();
  env->api = std::make_unique<api_client>(api_port);
  env->args = {p.berth, "serve", "--listen", "127.0.0.1:" + std::to_string(api_port), "--data", env->data,
               "--stop-grace-ms", "1000", "--switch-mode", env->proxy() ? "proxy" : "direct"};
  auto ports = berth::bench::port_window_args(rng());
  env->args.insert(env->args.end(), ports.begin(), ports.end());
  if (env->proxy()) {
    env->http_port = free_port();
    for (auto& a : {std::string("--proxy-engine"), env->engine(), std::string("--caddy"), p.caddy,
                    std::string("--proxy-http-port"), std::to_string(env->http_port), std::string("--drain-ms"),
                    std::to_string(p.drain_ms)})
      env->args.push_back(a);
  }
  if (env->https()) {
    env->https_port = free_port();
    for (auto& a : {std::string("--sites-tls"), std::string("internal"), std::string("--sites-https-port"),
                    std::to_string(env->https_port)})
      env->args.push_back(a);
    env->ca_file = env->data + "/proxy/front/data/pki/authorities/local/root.crt";
  }
  std::printf("mode %s: dir=%s api=127.0.0.1:%u\n", mode.c_str(), env->dir.c_str(), api_port);
  std::fflush(stdout);
  g_session.start_berth(env->args, *env->api, [&](const json& h) { return proxy_ready(*env, h); });
  env->a = create_project(*env, "alpha", p);
  env->b = create_project(*env, "bravo", p);
  if (env->https()) {  // Caddy makes its root when it starts; wait for the file
    auto until = steady::now() + 20s;
    while (!fs::exists(env->ca_file))
      if (steady::now() > until) fail("no internal CA root at " + env->ca_file);
      else std::this_thread::sleep_for(100ms);
  }
  for (auto* proj : {&env->a, &env->b}) {
    deploy_next(*env, *proj);
    wait_serves(*env, *proj);
  }
  return env;
}

// ---- the scenarios --------------------------------------------------------------------------

// The client kinds on A while --deploys deploys of A (own) or B (neighbour) run.
std::vector<berth::bench::kind_figures> run_scenario(mode_env& env, bool own, const params& p,
                                                     std::vector<double>& deploy_ms) {
  berth::bench::client_set clients(user_target(env, env.a));
  clients.start();
  std::this_thread::sleep_for(500ms);  // every client connected and answered once
  for (int k = 0; k < p.deploys; ++k) deploy_ms.push_back(deploy_next(env, own ? env.a : env.b));
  std::this_thread::sleep_for(500ms);
  auto out = clients.stop();
  wait_serves(env, env.a);
  return out;
}

double ms_since(steady::time_point t0) { return std::chrono::duration<double, std::milli>(steady::now() - t0).count(); }

// Steady new-connection GETs on A's stable port and host route while the router's master is
// SIGKILLed, then while berth is SIGKILLed and restarted.
json run_crash(mode_env& env) {
  json out = {{"mode", env.mode}};
  std::vector<std::unique_ptr<berth::bench::crash_probe>> probes;
  probes.push_back(std::make_unique<berth::bench::crash_probe>("stable port", target{"127.0.0.1", env.a.port, "", {}}));
  if (env.proxy())
    probes.push_back(std::make_unique<berth::bench::crash_probe>(env.https() ? "https host" : "http host",
                                                                 host_target(env, env.a)));
  for (auto& pr : probes) pr->start();
  std::this_thread::sleep_for(1s);
  auto figures = [&](steady::time_point from) {
    json j = json::array();
    for (auto& pr : probes) j.push_back(pr->figures_since(from));
    return j;
  };
  if (env.proxy()) {
    auto restarts = env.api->get("/health").second["proxy"].value("restarts", 0);
    pid_t pid = berth::bench::router_master_pid(env.data, env.engine());
    if (pid <= 0) fail("no " + env.engine() + " master process found for " + env.data);
    auto t0 = steady::now();
    ::kill(pid, SIGKILL);
    double running_ms = -1;
    while (ms_since(t0) < 20000) {
      auto [c, h] = env.api->get("/health");
      if (c == 200 && h["proxy"].value("restarts", 0) > restarts && proxy_ready(env, h)) {
        running_ms = ms_since(t0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(2s);
    out["router_kill"] = {{"pid", pid}, {"restarted_running_ms", std::round(running_ms)}, {"routes", figures(t0)}};
    std::this_thread::sleep_for(500ms);
  }
  auto t0 = steady::now();
  g_session.kill_berth();
  std::this_thread::sleep_for(500ms);  // berth stays away for a while
  g_session.start_berth(env.args, *env.api, [&](const json& h) { return proxy_ready(env, h); });
  double ready_ms = ms_since(t0);
  std::this_thread::sleep_for(2s);
  out["berth_kill"] = {{"restarted_ready_ms", std::round(ready_ms)}, {"routes", figures(t0)}};
  for (auto& pr : probes) pr->stop();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  if (::access(p.berth.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "bench_switch: %s is not executable\n", p.berth.c_str());
    return 2;
  }
  g_session.guard(std::chrono::seconds(p.timeout_s));  // before any other thread exists
  ::signal(SIGPIPE, SIG_IGN);
  std::printf("bench_switch: modes=%zu runs=%d deploys=%d drain_ms=%d cores=%u load(1/5/15m)=%s\n  berth=%s\n\n",
              p.modes.size(), p.runs, p.deploys, p.drain_ms, std::thread::hardware_concurrency(),
              berth::bench::loadavg().c_str(), p.berth.c_str());
  std::fflush(stdout);

  auto t_start = steady::now();
  std::mt19937 rng(std::random_device{}());
  berth::bench::switch_results results;
  for (int run = 0; run < p.runs; ++run)
    for (auto& mode : p.modes) {
      auto env = start_mode(mode, p, rng);
      for (bool own : {true, false}) {
        std::vector<double> deploy_ms;
        auto figs = run_scenario(*env, own, p, deploy_ms);
        results.add(mode, own ? "own" : "neighbour", run, figs, deploy_ms);
        if (p.verbose) results.print_run(mode, own ? "own" : "neighbour", run);
      }
      if (p.crash) {
        results.crashes.push_back(run_crash(*env));
        results.crashes.back()["run"] = run + 1;
        if (p.verbose) std::printf("  crash: %s\n", results.crashes.back().dump().c_str());
      }
      g_session.cleanup();
      std::printf("  run %d mode %s done at %.0f s, load %s\n", run + 1, mode.c_str(),
                  std::chrono::duration<double>(steady::now() - t_start).count(), berth::bench::loadavg().c_str());
      std::fflush(stdout);
    }
  double total_s = std::chrono::duration<double>(steady::now() - t_start).count();
  results.print_table(p.modes);
  results.print_crashes();
  results.print_errors();
  std::printf("load(1/5/15m) at the end: %s; total %.1f s\n\n", berth::bench::loadavg().c_str(), total_s);
  json j = results.to_json();
  j["params"] = {{"deploys", p.deploys}, {"runs", p.runs}, {"drain_ms", p.drain_ms}, {"total_s", std::round(total_s)}};
  std::printf("%s\n", j.dump().c_str());
  if (!p.json_file.empty()) std::ofstream(p.json_file) << j.dump(2) << "\n";
  g_session.final_cleanup();
  return 0;
}
