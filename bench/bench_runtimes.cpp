// bench_runtimes: what a production deploy costs on each runtime (process, docker, swarm), the
// same tiny app on each, one `berth serve`, the same run.
//
// The app is busybox httpd serving index.html ("v<N>"): as a process (`busybox httpd` in the
// release folder) and as a container (an image generated from --base + the same command). Per
// runtime: one warm-up deploy, then --deploys deploys each with a new index.html (a new release
// hash: for containers a new image). While each deploy runs, a client GETs the site through
// the proxy (Host: <name>.localhost; or the stable port in direct mode) with a fresh connection
// every --poll-us and counts failed requests and the longest outage.
// Per deploy, from GET /api/deployments/{id} (server-side timestamps):
//   duration     queued -> completed
//   image        resources.image_ms: building the image (and pushing it, for swarm)
//   start+health the starting and health_checking phases minus the image: the container (or
//                process, or service update) until its first healthy answer; for swarm, the
//                service update time
//   gap          resources.gap_ms (direct mode: the stable port's dark time; proxy: 0 by design)
// Figures are medians; ratios are against the process runtime of the same run.
//
// Usage: bench_runtimes [--deploys 5] [--runtimes process,docker,swarm] [--switch-mode proxy|direct]
//                       [--docker-host unix:///…] [--base IMAGE] [--registry HOST:PORT]
//                       [--berth PATH] [--caddy PATH] [--poll-us 2000] [--timeout-s 900] [--dir D] [--keep]
// The engine defaults to the test fixture's (<build>/dockerd, started by scripts/dockerd.sh).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "messages/event.hpp"
#include "tests/common/support.hpp"

using namespace berth::bench;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

session g_session("runtimes");
[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

struct params {
  int deploys = 5;
  std::vector<std::string> runtimes{"process", "docker", "swarm"};
  std::string mode = "proxy";
  std::string docker_host = std::string("unix://") + BENCH_DOCKERD_DIR + "/docker.sock";
  std::string base = "berth-test/busybox:1";
  std::string registry = "127.0.0.1:5000";
  std::string berth = BERTH_BINARY, caddy = "caddy", dir = "/tmp";
  int poll_us = 2000, timeout_s = 900;
  bool keep = false;
};

params parse(int argc, char** argv) {
  params p;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--deploys") p.deploys = std::stoi(next());
    else if (a == "--runtimes") {
      p.runtimes.clear();
      std::stringstream in(next());
      for (std::string r; std::getline(in, r, ',');) p.runtimes.push_back(r);
    } else if (a == "--switch-mode") p.mode = next();
    else if (a == "--docker-host") p.docker_host = next();
    else if (a == "--base") p.base = next();
    else if (a == "--registry") p.registry = next();
    else if (a == "--berth") p.berth = next();
    else if (a == "--caddy") p.caddy = next();
    else if (a == "--poll-us") p.poll_us = std::stoi(next());
    else if (a == "--timeout-s") p.timeout_s = std::stoi(next());
    else if (a == "--dir") p.dir = next();
    else if (a == "--keep") p.keep = true;
    else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of bench/bench_runtimes.cpp)\n", a.c_str());
      std::exit(2);
    }
  }
  if (p.mode == "direct") p.runtimes.erase(std::remove(p.runtimes.begin(), p.runtimes.end(), "swarm"), p.runtimes.end());
  return p;
}

json manifest_for(const std::string& runtime, const std::string& name, const std::string& src, const params& p) {
  json m = {{"name", name},
            {"source", {{"path", src}}},
            {"production",
             {{"health", {{"path", "/"}, {"timeout_s", 60}, {"interval_ms", 10}}}, {"keep", 3}}}};
  if (runtime == "process") {
    m["production"]["command"] = {"busybox", "sh", "-c", "exec busybox httpd -f -p $HOST:$PORT -h ."};
  } else {
    m["runtime"] = runtime;
    m["image"] = {{"base", p.base}};
    if (runtime == "swarm") m["image"]["registry"] = p.registry;
    m["production"]["command"] = {"sh", "-c", "exec httpd -f -p $PORT -h /app"};
  }
  return m;
}

// GETs the site every poll_us on a fresh connection until `stop`; failures and the longest run.
struct poller {
  std::atomic<bool> stop{false};
  size_t requests = 0, failed = 0;
  double longest_ms = 0;
  void run(uint16_t port, const std::string& host, int poll_us) {
    steady::time_point first_fail{};
    bool failing = false;
    while (!stop) {
      auto t = steady::now();
      httplib::Client cli("127.0.0.1", port);
      cli.set_connection_timeout(1, 0);
      cli.set_read_timeout(1, 0);
      httplib::Headers h;
      if (!host.empty()) h.emplace("Host", host);
      auto r = cli.Get("/", h);
      ++requests;
      bool ok = r && r->status == 200;
      if (!ok) {
        ++failed;
        if (!failing) first_fail = t;
        failing = true;
      } else if (failing) {
        longest_ms = std::max(longest_ms, std::chrono::duration<double, std::milli>(t - first_fail).count());
        failing = false;
      }
      std::this_thread::sleep_until(t + std::chrono::microseconds(poll_us));
    }
  }
};

double span_ms(const json& detail, const std::string& phase) {
  for (auto& ph : detail.at("phases")) {
    if (ph.value("phase", "") != phase || !ph["ended"].is_string()) continue;
    int64_t s = 0, e = 0;
    if (berth::parse_iso8601(ph.value("started", ""), s) && berth::parse_iso8601(ph["ended"].get<std::string>(), e))
      return (e - s) / 1000.0;
  }
  return NAN;
}

double resource_ms(const json& detail, const std::string& name) {
  auto& r = detail["resources"];
  if (r.is_object() && r.contains(name + "_us") && r[name + "_us"].is_number()) return r[name + "_us"].get<double>() / 1000.0;
  return NAN;
}

json deploy(api_client& api, const std::string& name) {
  auto [code, body] = api.post("/api/projects/" + name + "/deployments", json::object());
  if (code != 202) fail("POST deployments of " + name + ": HTTP " + std::to_string(code), body.dump());
  std::string id = body["id"];
  auto until = steady::now() + 300s;
  for (;;) {
    auto [c, d] = api.get("/api/deployments/" + id);
    auto st = d.value("status", "");
    if (c == 200 && (st == "completed" || st == "failed" || st == "cancelled" || st == "unchanged")) {
      if (st != "completed") fail("deployment " + id + " ended " + st, d.dump(2));
      return d;
    }
    if (steady::now() > until) fail("deployment " + id + " did not end within 300 s", d.dump());
    std::this_thread::sleep_for(20ms);
  }
}

struct series {
  std::string runtime;
  std::vector<double> duration, image, start_health, gap, outage;
  size_t requests = 0, failed = 0;
};

std::string f1(double x) {
  if (std::isnan(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", x);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  g_session.guard(std::chrono::seconds(p.timeout_s));
  std::mt19937 rng(std::random_device{}());
  auto nonce = std::to_string(rng() % 100000);
  auto tmp = g_session.open_dir(p.dir, p.keep);
  uint16_t api_port = free_port(), http_port = free_port();
  std::vector<std::string> args = {p.berth, "serve", "--listen", "127.0.0.1:" + std::to_string(api_port), "--data",
                                   tmp + "/data", "--stop-grace-ms", "1000", "--switch-mode", p.mode,
                                   "--docker-host", p.docker_host, "--registry", p.registry};
  for (auto& a : port_window_args(rng())) args.push_back(a);
  if (p.mode == "proxy")
    for (auto& a : {std::string("--caddy"), p.caddy, std::string("--proxy-http-port"), std::to_string(http_port),
                    std::string("--drain-ms"), std::string("500")})
      args.push_back(a);
  std::printf("bench_runtimes: deploys=%d mode=%s cores=%u load(1/5/15m)=%s\n  berth=%s\n  engine=%s base=%s\n\n",
              p.deploys, p.mode.c_str(), std::thread::hardware_concurrency(), loadavg().c_str(), p.berth.c_str(),
              p.docker_host.c_str(), p.base.c_str());
  std::fflush(stdout);
  api_client api(api_port);
  g_session.start_berth(args, api, [&](const json& h) {
    return p.mode != "proxy" || h["proxy"].value("status", "") == "running";
  });

  std::vector<series> results;
  for (auto& runtime : p.runtimes) {
    std::string name = "br-" + runtime.substr(0, 4) + "-" + nonce;
    auto src = tmp + "/src-" + runtime;
    fs::create_directories(src);
    int version = 0;
    auto set_version = [&] { berth::it::write_file(src + "/index.html", "v" + std::to_string(++version) + "\n"); };
    set_version();
    auto [code, body] = api.post("/api/projects", manifest_for(runtime, name, src, p));
    if (code != 201) fail("create " + name + ": HTTP " + std::to_string(code), body.dump());
    uint16_t stable = body["ports"]["production"].get<uint16_t>();
    deploy(api, name);  // warm-up: the first release, nothing to switch from
    series s;
    s.runtime = runtime;
    for (int k = 0; k < p.deploys; ++k) {
      set_version();
      poller poll;
      std::thread t([&] {
        if (p.mode == "proxy") poll.run(http_port, name + ".localhost", p.poll_us);
        else poll.run(stable, "", p.poll_us);
      });
      auto d = deploy(api, name);
      std::this_thread::sleep_for(100ms);
      poll.stop = true;
      t.join();
      double image = resource_ms(d, "image");
      int64_t created = 0, finished = 0;
      berth::parse_iso8601(d.value("created", ""), created);
      if (d["finished"].is_string()) berth::parse_iso8601(d["finished"].get<std::string>(), finished);
      s.duration.push_back((finished - created) / 1000.0);
      s.image.push_back(image);
      s.start_health.push_back(span_ms(d, "starting") + span_ms(d, "health_checking") - (std::isnan(image) ? 0 : image));
      s.gap.push_back(resource_ms(d, "gap"));
      s.outage.push_back(poll.longest_ms);
      s.requests += poll.requests;
      s.failed += poll.failed;
      std::printf("  %s deploy %d: %.1f ms (image %s, start+health %s, gap %s), %zu/%zu requests failed\n",
                  runtime.c_str(), k + 1, s.duration.back(), f1(image).c_str(), f1(s.start_health.back()).c_str(),
                  f1(s.gap.back()).c_str(), poll.failed, poll.requests);
      std::fflush(stdout);
    }
    api.cli.Delete(("/api/projects/" + name).c_str());
    results.push_back(s);
  }

  const series* proc = nullptr;
  for (auto& s : results)
    if (s.runtime == "process") proc = &s;
  std::printf("\n%-8s %10s %9s %13s %7s %9s %8s %10s\n", "runtime", "deploy ms", "image ms", "start+hlth ms",
              "gap ms", "failed", "requests", "vs process");
  for (auto& s : results) {
    double ratio = proc ? median(s.duration) / median(proc->duration) : NAN;
    std::printf("%-8s %10s %9s %13s %7s %9zu %8zu %9sx\n", s.runtime.c_str(), f1(median(s.duration)).c_str(),
                f1(median(s.image)).c_str(), f1(median(s.start_health)).c_str(), f1(median(s.gap)).c_str(), s.failed,
                s.requests, f1(ratio).c_str());
  }
  std::printf("load(1/5/15m) after: %s\n", loadavg().c_str());
  for (auto& s : results) {
    json j = {{"bench", "runtimes"}, {"runtime", s.runtime}, {"mode", p.mode}, {"deploys", p.deploys},
              {"median_deploy_ms", median(s.duration)}, {"median_image_ms", median(s.image)},
              {"median_start_health_ms", median(s.start_health)}, {"median_gap_ms", median(s.gap)},
              {"requests", s.requests}, {"failed", s.failed}};
    std::printf("%s\n", j.dump().c_str());
  }
  g_session.final_cleanup();
  return 0;
}
