// Crash safety and the reconciler, with real faults: kill -9 of berth mid-deploy, releases
// killed, stopped (SIGSTOP) or crash-looping, and actors crashed through the fault injector.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

pid_t production_pid(site_env& e) {
  auto p = e.production();
  return p.value("status", "") == "running" && p["pid"].is_number() ? p["pid"].get<pid_t>() : 0;
}

// Waits until production runs a process other than `old` and serves `body` on its port.
bool serves_again(site_env& e, pid_t old, const std::string& body, std::chrono::milliseconds limit = 15s) {
  return eventually(
      [&] {
        auto pid = production_pid(e);
        return pid != 0 && pid != old && fetch(e.stable_port()).body == body;
      },
      limit);
}

// Waits for the deployment to reach `phase`.
json wait_phase(site_env& e, const std::string& id, const std::string& phase) {
  return wait_detail(e.api(), id, [&](const json& d) { return d.value("phase", "") == phase; }, 30s);
}

}  // namespace

TEST_CASE("reconciler - a killed production release is restarted", "[integration][recovery]") {
  site_env e("killed", quick);
  e.deploy_version("v1");
  auto old = production_pid(e);
  REQUIRE(old != 0);
  ::kill(-pgid_of(old), SIGKILL);
  INFO(e.srv->log());
  REQUIRE(serves_again(e, old, "release v1\n"));
  auto events = e.events();
  CHECK(count_type(events, "production_exited") == 1);
  CHECK(count_type(events, "production_started") >= 1);
  CHECK(e.strays().empty());
}

TEST_CASE("reconciler - a release that stops answering is replaced", "[integration][recovery]") {
  site_env e("frozen", quick);
  e.deploy_version("v1");
  auto old = production_pid(e);
  REQUIRE(old != 0);
  ::kill(-old, SIGSTOP);  // its whole group (bwrap and the app): alive, holds its port, answers nothing
  INFO(e.srv->log());
  REQUIRE(serves_again(e, old, "release v1\n", 30s));
  CHECK(pgid_of(old) == 0);  // the frozen one was stopped, not left holding resources
  auto events = e.events();
  bool said_why = false;
  for (auto& ev : events)
    if (ev.value("type", "") == "production_exited" && ev.dump().find("health checks in a row") != std::string::npos)
      said_why = true;
  CHECK(said_why);
}

TEST_CASE("reconciler - a crash loop is marked crashed until the next start", "[integration][recovery]") {
  site_env e("looping", with(quick, {"--crash-loop-restarts", "2", "--crash-loop-window-s", "60"}));
  e.deploy_version("v1");
  // Two restarts are allowed; the third death within the window is a crash loop.
  for (int death = 1; death <= 3; ++death) {
    auto pid = production_pid(e);
    REQUIRE(pid != 0);
    ::kill(-pgid_of(pid), SIGKILL);
    if (death < 3) REQUIRE(serves_again(e, pid, "release v1\n"));
  }
  INFO(e.srv->log());
  REQUIRE(eventually([&] { return e.production().value("status", "") == "crashed"; }, 10s));
  auto p = e.production();
  CHECK(p.value("reason", "").find("restarts within 60 s") != std::string::npos);
  CHECK(count_type(e.events(), "production_crashed") == 1);
  std::this_thread::sleep_for(1s);  // several reconciler passes: it stays down
  CHECK(e.production().value("status", "") == "crashed");
  CHECK(fetch(e.stable_port()).status == -1);
  CHECK(procs_in(e.prod_dir()).empty());
  // An operator's start brings it back, with a fresh budget.
  auto r = e.api().post("/api/projects/looping/production/start", std::string{});
  INFO(r.describe());
  CHECK(r.status == 200);
  CHECK(fetch(e.stable_port()).body == "release v1\n");
}

TEST_CASE("recovery - kill -9 during a build: the build is stopped and v1 keeps serving", "[integration][recovery]") {
  site_env e("midbuild", quick);
  e.deploy_version("v1");
  auto v1 = production_pid(e);
  set_site(e.site, "VERSION", "v2");
  set_site(e.site, "BUILD_SLEEP", "30");
  auto id = e.deploy();
  REQUIRE(wait_phase(e, id, "building").value("phase", "") == "building");
  REQUIRE(eventually([&] { return !procs_in(e.prod_dir() + "/builds").empty(); }, 5s));
  e.srv->kill9();
  CHECK(!procs_in(e.prod_dir() + "/builds").empty());  // the build outlived berth
  e.srv->start();
  auto d = wait_done(e.api(), id, 20s);
  INFO(brief(d) << "\n" << e.srv->log());
  CHECK(d.value("status", "") == "failed");
  CHECK(d["error"].value("code", "") == "interrupted");
  CHECK(d["error"].value("phase", "") == "building");
  CHECK(eventually([&] { return procs_in(e.prod_dir() + "/builds").empty(); }, 10s));
  CHECK(list_dir(e.prod_dir() + "/builds").empty());
  CHECK(production_pid(e) == v1);  // adopted, never restarted
  CHECK(fetch(e.stable_port()).body == "release v1\n");
  CHECK(e.strays().empty());
  CHECK(e.audit_failure().empty());
}

TEST_CASE("recovery - kill -9 during the health check: the candidate is stopped", "[integration][recovery]") {
  site_env e("midcheck", quick);
  e.deploy_version("v1");
  auto v1 = production_pid(e);
  set_site(e.site, "VERSION", "v2");
  set_site(e.site, "MODE", "never-healthy");
  auto id = e.deploy();
  REQUIRE(wait_phase(e, id, "health_checking").value("phase", "") == "health_checking");
  REQUIRE(eventually([&] { return !e.strays().empty(); }, 5s));  // the candidate runs
  e.srv->kill9();
  e.srv->start();
  auto d = wait_done(e.api(), id, 20s);
  INFO(brief(d) << "\n" << e.srv->log());
  CHECK(d.value("status", "") == "failed");
  CHECK(d["error"].value("code", "") == "interrupted");
  CHECK(eventually([&] { return e.strays().empty(); }, 10s));
  CHECK(production_pid(e) == v1);
  CHECK(fetch(e.stable_port()).body == "release v1\n");
  // The next deploy runs normally on the recovered state.
  set_site(e.site, "MODE", "normal");
  e.deploy_version("v3");
  CHECK(e.audit_failure().empty());
}

TEST_CASE("supervision - a production actor crash mid-deploy ends it and the queue moves on",
          "[integration][recovery]") {
  site_env e("crashprod", with(quick, {"--enable-fault-injection"}));
  e.deploy_version("v1");
  auto v1 = production_pid(e);
  set_site(e.site, "VERSION", "v2");
  set_site(e.site, "BUILD_SLEEP", "30");
  auto first = e.deploy();
  REQUIRE(wait_phase(e, first, "building").value("phase", "") == "building");
  set_site(e.site, "BUILD_SLEEP", "0");  // for the next one
  auto second = e.deploy(true);
  REQUIRE(!second.empty());
  auto r = e.api().post("/api/debug/crash", json{{"actor", "production"}, {"project", "crashprod"}});
  INFO(r.describe() << "\n" << e.srv->log());
  REQUIRE(r.status / 100 == 2);
  auto d1 = wait_done(e.api(), first, 20s);
  CHECK(d1.value("status", "") == "failed");
  CHECK(d1["error"].value("code", "") == "interrupted");
  auto d2 = wait_done(e.api(), second, 60s);
  INFO(brief(d2));
  CHECK(d2.value("status", "") == "completed");
  CHECK(fetch(e.stable_port()).body == "release v2\n");
  CHECK(production_pid(e) != v1);
  CHECK(e.strays().empty());
  CHECK(e.audit_failure().empty());
}

TEST_CASE("supervision - crashed actors come back from the log and re-adopt the apps", "[integration][recovery]") {
  site_env e("crashall", with(quick, {"--enable-fault-injection"}));
  e.deploy_version("v1");
  auto r = e.api().post("/api/projects/crashall/preview/start", std::string{});
  REQUIRE(r.status == 200);
  auto preview_pid = r.body.at("pid").get<pid_t>();
  auto v1 = production_pid(e);
  REQUIRE(eventually([&] { return count_type(e.events(), "preview_started") == 1; }));
  auto before = e.events().size();
  for (const char* actor : {"preview", "production", "project"}) {
    auto c = e.api().post("/api/debug/crash", json{{"actor", actor}, {"project", "crashall"}});
    INFO(actor << ": " << c.describe());
    REQUIRE(c.status / 100 == 2);
    // Requests right after the crash get an answer (an error or the state), never a hang.
    auto g = e.api().get("/api/projects/crashall");
    CHECK(g.status != -1);
    http_result last;
    bool back = eventually([&] {
      last = e.api().get("/api/projects/crashall");
      return last.status == 200 && last.body["environments"]["preview"].value("status", "") == "running" &&
             last.body["environments"]["production"].value("status", "") == "running";
    });
    INFO(last.describe());
    REQUIRE(back);
  }
  auto p = e.api().get("/api/projects/crashall").body;
  CHECK(p["environments"]["preview"].value("pid", 0) == preview_pid);  // adopted
  CHECK(production_pid(e) == v1);
  auto after = e.events();
  INFO(after.dump());
  CHECK(after.size() == before);  // nothing was restarted: no new events
  // Beyond the restart intensity (3 in 5 s) the project actor gives up and its own
  // supervisor restarts it: the project still works and its apps are still adopted.
  auto restarts = [&] {
    auto log = e.srv->log();
    size_t n = 0;
    for (auto at = log.find("restarting child 'production'"); at != std::string::npos;
         at = log.find("restarting child 'production'", at + 1))
      ++n;
    return n;
  };
  for (int i = 0; i < 4; ++i) {
    auto seen = restarts();
    REQUIRE(eventually([&] {
      return e.api().post("/api/debug/crash", json{{"actor", "production"}, {"project", "crashall"}}).status / 100 == 2;
    }));
    if (i < 3) REQUIRE(eventually([&] { return restarts() > seen; }));  // one crash per incarnation
  }
  INFO(e.srv->log());
  CHECK(eventually([&] { return e.srv->log().find("restart intensity") != std::string::npos; }));
  REQUIRE(eventually([&] { return e.api().get("/api/projects/crashall").status == 200; }));
  CHECK(eventually([&] { return production_pid(e) == v1; }));
  e.deploy_version("v2");
}

TEST_CASE("shutdown - SIGTERM lets the build finish its phase then records the deploy and leaves apps up",
          "[integration][recovery]") {
  site_env e("sigterm", quick);
  e.deploy_version("v1");
  auto v1 = production_pid(e);
  set_site(e.site, "VERSION", "v2");
  set_site(e.site, "BUILD_SLEEP", "2");
  auto id = e.deploy();
  REQUIRE(wait_phase(e, id, "building").value("phase", "") == "building");
  auto port = e.stable_port();
  CHECK(e.srv->terminate(30s) == 0);
  // Down, but the site is up, and nothing of the deploy runs on.
  CHECK(fetch(port).body == "release v1\n");
  CHECK(procs_in(e.prod_dir() + "/builds").empty());
  auto replay = run({"audit", "replay", "--data", e.srv->data_dir(), "--project", "sigterm"});
  INFO(replay.describe());
  CHECK(replay.out.find("berth is stopping") != std::string::npos);
  e.srv->start();
  auto d = wait_done(e.api(), id, 10s);
  INFO(brief(d));
  CHECK(d.value("status", "") == "failed");
  CHECK(d["error"].value("code", "") == "interrupted");
  CHECK(d["error"].value("phase", "") == "building");
  CHECK(production_pid(e) == v1);  // adopted
  CHECK(e.strays().empty());
}

TEST_CASE("shutdown - a phase longer than the grace is cancelled and berth still exits cleanly",
          "[integration][recovery]") {
  site_env e("slowstop", with(quick, {"--shutdown-grace-ms", "300"}));
  e.deploy_version("v1");
  set_site(e.site, "VERSION", "v2");
  set_site(e.site, "BUILD_SLEEP", "60");
  auto id = e.deploy();
  REQUIRE(wait_phase(e, id, "building").value("phase", "") == "building");
  auto asked = std::chrono::steady_clock::now();
  CHECK(e.srv->terminate(20s) == 0);
  CHECK(std::chrono::steady_clock::now() - asked < 15s);  // not the build's 60 s
  CHECK(procs_in(e.prod_dir() + "/builds").empty());
  e.srv->start();
  auto d = wait_done(e.api(), id, 10s);
  CHECK(d["error"].value("code", "") == "interrupted");
  CHECK(fetch(e.stable_port()).body == "release v1\n");
}

TEST_CASE("shutdown - --stop-apps-on-exit stops the apps and the next start brings them back",
          "[integration][recovery]") {
  site_env e("stopapps", with(quick, {"--stop-apps-on-exit"}));
  e.deploy_version("v1");
  REQUIRE(e.api().post("/api/projects/stopapps/preview/start", std::string{}).status == 200);
  auto port = e.stable_port();
  CHECK(e.srv->terminate(30s) == 0);
  auto project_dir = e.srv->projects_dir() + "/stopapps";
  INFO(describe(procs_in(project_dir)) << "\n" << e.srv->log());
  CHECK(procs_in(project_dir).empty());
  CHECK(fetch(port).status == -1);
  e.srv->start();
  CHECK(eventually([&] { return fetch(port).body == "release v1\n"; }, 15s));
  CHECK(eventually([&] {
    auto p = e.api().get("/api/projects/stopapps");
    return p.status == 200 && p.body["environments"]["preview"].value("status", "") == "running";
  }, 15s));
}
