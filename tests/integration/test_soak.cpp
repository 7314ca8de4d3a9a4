// The fault loop: deploys in flight, kill -9 of berth at a random moment, restart, check.
// BERTH_SOAK_ROUNDS sets the rounds (default 8 here; `make soak` runs 60), BERTH_SOAK_MODE=proxy
// switches through Caddy instead of directly. It prints its
// figures: rounds survived, events lost, orphans, how deployments ended, and the time from
// kill -9 to the API and to production answering again.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

int rounds_wanted() {
  const char* v = std::getenv("BERTH_SOAK_ROUNDS");
  int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : 8;
}

double ms_since(steady::time_point t) {
  return std::chrono::duration<double, std::milli>(steady::now() - t).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool serving_a_release(site_env& e) { return fetch(e.stable_port()).body.rfind("release v", 0) == 0; }

}  // namespace

TEST_CASE("soak - kill -9 at random moments of deploys never loses a deploy or leaves an orphan",
          "[integration][soak]") {
  std::vector<std::string> args{"--reconcile-interval-ms", "300", "--restart-base-ms", "50", "--restart-max-ms", "500"};
  const char* mode = std::getenv("BERTH_SOAK_MODE");
  if (mode && std::string(mode) == "proxy") args.insert(args.end(), {"--switch-mode", "proxy", "--drain-ms", "200"});
  site_env e("soak", args);
  e.deploy_version("v0");
  std::mt19937 rng(std::random_device{}());
  const int rounds = rounds_wanted();
  std::vector<std::string> acknowledged;  // every deployment berth answered 202 for
  std::vector<double> to_api, to_serving;
  uint64_t last_events = e.srv->event_count();
  size_t orphans = 0, lost_events = 0, killed_mid_deploy = 0;

  for (int round = 1; round <= rounds; ++round) {
    INFO("round " << round);
    // One to three deploys: a new version, sometimes forced, with a build of 0-400 ms.
    set_site(e.site, "VERSION", "v" + std::to_string(round));
    set_site(e.site, "BUILD_SLEEP", std::to_string((rng() % 5) * 0.1));
    int deploys = 1 + rng() % 3;
    for (int d = 0; d < deploys; ++d) {
      std::string why;
      auto id = e.deploy(d > 0 && rng() % 2, &why);
      INFO(why);
      REQUIRE(!id.empty());
      acknowledged.push_back(id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 1500));
    auto running = e.api().get("/api/deployments/" + acknowledged.back());
    if (running.status == 200 && !is_terminal_status(running.body.value("status", ""))) ++killed_mid_deploy;
    last_events = std::max(last_events, e.srv->event_count());

    e.srv->kill9();
    auto killed = steady::now();
    e.srv->start();  // returns once /health answers
    to_api.push_back(ms_since(killed));
    REQUIRE(eventually([&] { return serving_a_release(e); }, 20s));
    to_serving.push_back(ms_since(killed));

    // Every acknowledged deployment is still known and comes to an end.
    for (auto& id : acknowledged) {
      auto d = wait_done(e.api(), id, 60s);
      INFO(brief(d) << "\n" << e.srv->log().substr(e.srv->log().size() > 4000 ? e.srv->log().size() - 4000 : 0));
      REQUIRE(is_terminal_status(d.value("status", "")));
    }
    auto events_now = e.srv->event_count();
    if (events_now < last_events) ++lost_events;
    CHECK(events_now >= last_events);
    last_events = events_now;
    // Nothing but production's own process group runs under production/.
    bool clean = eventually([&] { return e.strays().empty(); }, 10s);
    if (!clean) ++orphans;
    INFO(describe(e.strays()));
    CHECK(clean);
    CHECK(e.production().value("status", "") == "running");
    CHECK(serving_a_release(e));
    auto audit = e.audit_failure();
    INFO(audit);
    REQUIRE(audit.empty());
  }

  std::map<std::string, int> endings;
  for (auto& id : acknowledged) {
    auto d = wait_done(e.api(), id, 10s);
    auto key = d.value("status", "?");
    if (d.contains("error") && d["error"].is_object()) key += "/" + d["error"].value("code", "");
    ++endings[key];
  }
  std::cout << "soak (" << (mode ? mode : "direct") << "): " << rounds << " rounds survived, " << acknowledged.size() << " deployments ("
            << killed_mid_deploy << " rounds killed berth mid-deploy), events lost " << lost_events
            << ", orphans " << orphans << "\nsoak: deployments ended:";
  for (auto& [k, n] : endings) std::cout << " " << k << "=" << n;
  std::cout << "\nsoak: kill -9 -> API answering: median " << median(to_api) << " ms, max "
            << *std::max_element(to_api.begin(), to_api.end()) << " ms; -> production answering: median "
            << median(to_serving) << " ms, max " << *std::max_element(to_serving.begin(), to_serving.end())
            << " ms\n";
  CHECK(lost_events == 0);
  CHECK(orphans == 0);
}
