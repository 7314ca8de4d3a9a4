// The request path and the idle server, through a real `berth serve`: GET of a running project
// stays correct and fair under many kept-alive clients, its usage figures (sampled at most every
// 200 ms per instance, not per request) still follow an app that allocates, and an idle berth
// does not wake up on timers of its own. The apps are tests/apps/hog (python3).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

const std::string hog_source = std::string(BERTH_TEST_APPS) + "/hog";

json hog_manifest(const std::string& name) {
  return {{"name", name},
          {"source", {{"path", hog_source}}},
          {"production",
           {{"command", {"python3", "server.py"}},
            {"health", {{"path", "/health"}, {"timeout_s", 15}, {"interval_ms", 100}}}}}};
}

// A berth (direct mode) with `name` running the hog as its production.
struct running_hog {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  std::string name;
  explicit running_hog(const std::string& project) : name(project) {
    srv = std::make_unique<server>(tmp.path(), deploy_server_options({"--switch-mode", "direct"}));
    auto r = srv->api().post("/api/projects", hog_manifest(name));
    INFO(r.describe());
    REQUIRE(r.status == 201);
    auto d = srv->api().post("/api/projects/" + name + "/deployments", std::string{});
    INFO(d.describe());
    REQUIRE(d.status == 202);
    auto done = wait_done(srv->api(), d.body.at("id").get<std::string>(), 90s);
    INFO(done.dump() << "\n" << srv->log());
    REQUIRE(done.value("status", "") == "completed");
  }
  json production() {
    auto r = srv->api().get("/api/projects/" + name);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body["environments"]["production"];
  }
};

// Voluntary and involuntary context switches of every thread of `pid`: how often it woke.
uint64_t wakeups(pid_t pid) {
  uint64_t total = 0;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (auto& task : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        total += std::stoull(line.substr(line.find(':') + 1));
  }
  return total;
}

size_t thread_count(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) ++n;
  return n;
}

}  // namespace

TEST_CASE("http fastpath - GET of a running project stays correct and fair under 32 kept-alive clients",
          "[integration][http]") {
  running_hog hog("busy");
  auto pid = hog.production().value("pid", 0);
  REQUIRE(pid > 0);

  constexpr int clients = 32;
  std::vector<int> answered(clients, 0);
  std::vector<std::string> wrong(clients);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      client c(hog.srv->port(), 30s);  // one kept-alive connection each
      while (!stop.load()) {
        auto r = c.get("/api/projects/busy");
        auto& prod = r.body["environments"]["production"];
        if (r.status != 200 || r.body.value("name", "") != "busy" || prod.value("status", "") != "running" ||
            prod.value("pid", 0) != pid || !prod["usage"].is_object()) {
          wrong[i] = r.describe();
          return;
        }
        ++answered[i];
      }
    });
  std::this_thread::sleep_for(3s);
  stop = true;
  for (auto& t : threads) t.join();

  for (int i = 0; i < clients; ++i) {
    INFO("client " << i << ": " << wrong[i]);
    CHECK(wrong[i].empty());
  }
  // Fair: the workers take connections in the order their requests came, so no kept-alive
  // client waits behind the others while they are served again and again.
  auto total = std::accumulate(answered.begin(), answered.end(), 0);
  auto fewest = *std::min_element(answered.begin(), answered.end());
  INFO("answers: " << total << ", fewest for one client: " << fewest);
  CHECK(total >= clients * 5);
  CHECK(fewest * clients * 10 >= total);  // none got less than a tenth of its share
  CHECK(hog.srv->running());
}

TEST_CASE("http fastpath - usage figures in GET follow an app that allocates", "[integration][http]") {
  running_hog hog("grows");
  auto before = hog.production()["usage"];
  INFO(before.dump());
  REQUIRE(before.is_object());
  auto base = before.value("memory_bytes", uint64_t(0));
  REQUIRE(base > 0);
  // Many GETs in a row are served from one sample...
  auto cpu0 = before.value("cpu_seconds", 0.0);
  REQUIRE(fetch(hog.production().value("port", 0), "/alloc?mb=64", 10s).body == "allocated 64\n");
  // ...and within a moment the figures show what the app now holds.
  json now;
  auto until = steady::now() + 5s;
  do {
    now = hog.production()["usage"];
    if (now.value("memory_bytes", uint64_t(0)) >= base + (uint64_t(48) << 20)) break;
    std::this_thread::sleep_for(50ms);
  } while (steady::now() < until);
  INFO(now.dump());
  CHECK(now.value("memory_bytes", uint64_t(0)) >= base + (uint64_t(48) << 20));
  CHECK(now.value("cpu_seconds", 0.0) > cpu0);  // touching 64 MiB took CPU too
}

TEST_CASE("http fastpath - an idle berth does not wake up by itself and keeps few threads",
          "[integration][http]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  REQUIRE(srv.api().get("/api/projects").status == 200);
  std::this_thread::sleep_for(1s);  // start-up work settles
  auto threads = thread_count(srv.pid());
  auto w0 = wakeups(srv.pid());
  std::this_thread::sleep_for(3s);
  auto woke = wakeups(srv.pid()) - w0;
  INFO("threads: " << threads << ", wakeups in 3 s: " << woke);
  // Nothing polls: no scheduler worker looking for work every 10 ms (4 x 100/s), no accept
  // loop ticking every second. A few wakeups remain for the kernel's own reasons.
  CHECK(woke < 30);
  // HTTP workers are made when requests need them, not 16 up front.
  CHECK(threads < 20);
}
