// Defects of the runtime layer before its rework, each shown through a real `berth serve`:
// the crash-loop budget forgotten by a restarted berth, routes left pointing at ports given
// back, one more exit watcher thread per failed deploy, a JSON dump of invalid UTF-8 throwing
// inside the production actor, and a project's tree removed on a CAF scheduler thread.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/defects_support.hpp"
#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// GET production of `name` (an empty object while berth cannot answer, e.g. restarting).
json production_of(client& api, const std::string& name) {
  auto r = api.get("/api/projects/" + name + "/production");
  return r.status == 200 && r.body.is_object() ? r.body : json::object();
}

// The pid of the running release (0 when production is not running).
pid_t running_pid(client& api, const std::string& name) {
  auto p = production_of(api, name);
  return p.value("status", "") == "running" && p["pid"].is_number() ? p["pid"].get<pid_t>() : 0;
}

std::string error_code(const json& d) {
  return d.contains("error") && d["error"].is_object() ? d["error"].value("code", "") : "";
}

enum class mode { direct, proxy };

// One berth (direct mode, or proxy mode with its own Caddy), with `extra` flags, and project
// `name` made from the sample site (version 1) with health timeouts for a busy machine.
struct site_server {
  temp_dir tmp;
  uint16_t http_port = free_port();
  std::unique_ptr<server> srv;
  std::string name, site;

  site_server(const std::string& project, mode m, const std::vector<std::string>& extra) : name(project) {
    auto args = m == mode::proxy ? with(proxy_args(http_port), extra) : with({"--switch-mode", "direct"}, extra);
    srv = std::make_unique<server>(tmp.path(), deploy_server_options(args));
    if (m == mode::proxy)
      REQUIRE(eventually([&] { return srv->health().at("proxy").value("status", "") == "running"; }, 15s));
    site = make_site(tmp, "site", "1");
    auto r = api().post("/api/projects", site_manifest(name, site, 5, 15));
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  client& api() { return srv->api(); }
  uint16_t stable_port() { return production_of(api(), name).value("port", 0); }
  pid_t pid() { return running_pid(api(), name); }
  // Starts a deploy and waits for its end.
  json deploy() {
    auto r = api().post("/api/projects/" + name + "/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    auto d = wait_done(api(), r.body.at("id").get<std::string>(), 90s);
    REQUIRE(is_terminal_status(d.value("status", "")));
    return d;
  }
  // The first deploy: it completes and the stable port serves release 1.
  void deploy_v1() {
    auto d = deploy();
    INFO(brief(d) << "\n" << srv->log());
    REQUIRE(d.value("status", "") == "completed");
    REQUIRE(eventually([&] { return fetch(stable_port()).body == "release 1\n"; }, 10s));
  }
  // Kills the release's process group, then waits until another process serves release 1.
  void kill_release_and_wait(std::chrono::milliseconds limit = 30s) {
    auto old = pid();
    REQUIRE(old != 0);
    ::kill(-pgid_of(old), SIGKILL);
    INFO(srv->log());
    REQUIRE(eventually(
        [&] {
          auto now = pid();
          return now != 0 && now != old && fetch(stable_port()).body == "release 1\n";
        },
        limit));
  }
  json events() {
    auto r = api().get("/api/projects/" + name + "/events?limit=10000");
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body.at("events");
  }
};

bool is_route(const json& e, const std::string& route_id) {
  return e.value("stream", "") == "proxy" && e.value("type", "") == "route_set" &&
         e["data"].value("id", "") == route_id;
}

// Index of the last route_set of `route_id` before index `limit` (-1: none).
long last_route_before(const std::vector<json>& events, const std::string& route_id, long limit) {
  long last = -1;
  for (long i = 0; i < limit && i < static_cast<long>(events.size()); ++i)
    if (is_route(events[i], route_id)) last = i;
  return last;
}

bool is_release_of(const json& e, uint16_t port) {
  return e.value("stream", "") == "ports" && e.value("type", "") == "port_released" &&
         e["data"].value("port", 0) == port;
}

}  // namespace

TEST_CASE("defects - the crash-loop budget survives a berth restart", "[integration][defects]") {
  site_server e("budget", mode::direct, with(quick, {"--crash-loop-restarts", "2", "--crash-loop-window-s", "60"}));
  e.deploy_v1();
  // Two deaths, two restarts: the budget is used up.
  e.kill_release_and_wait();
  e.kill_release_and_wait();
  auto serving = e.pid();
  e.srv->restart();  // kill -9 and start again: the release outlives berth and is adopted
  REQUIRE(eventually([&] { return e.pid() == serving; }, 15s));
  // The third death within the window is a crash loop, whoever counts it.
  ::kill(-pgid_of(serving), SIGKILL);
  INFO(e.srv->log());
  CHECK(eventually([&] { return production_of(e.api(), e.name).value("status", "") == "crashed"; }, 15s));
  std::this_thread::sleep_for(1s);  // several reconciler passes: nothing restarts it
  auto p = production_of(e.api(), e.name);
  INFO(p.dump());
  CHECK(p.value("status", "") == "crashed");
  auto events = e.events();
  CHECK(count_type(events, "production_exited") == 3);
  CHECK(count_type(events, "production_crashed") == 1);
}

TEST_CASE("defects - behind the proxy a dead release's route goes before its port",
          "[integration][defects][proxy]") {
  SKIP_WITHOUT_CADDY();
  // A slow restart leaves a gap in which the dead release's port is back in the pool.
  site_server e("deadroute", mode::proxy,
                {"--reconcile-interval-ms", "200", "--restart-base-ms", "2000", "--restart-max-ms", "2000"});
  e.deploy_v1();
  e.kill_release_and_wait();

  auto events = replay_events(e.srv->data_dir());
  INFO("events:" << describe_events(events, {"proxy", "ports", "project/deadroute"}) << "\n" << e.srv->log());
  // The spare port the dead release ran on.
  auto activated = find_event(events, -1, [](const json& ev) { return ev.value("type", "") == "release_activated"; });
  REQUIRE(activated >= 0);
  uint16_t port = events[activated]["data"].value("port", 0);
  REQUIRE(port != 0);
  auto released = find_event(events, activated, [&](const json& ev) { return is_release_of(ev, port); });
  REQUIRE(released >= 0);
  // When that port went back to the pool, the route no longer led to it: the last route_set
  // before the release says upstream 0.
  auto route = last_route_before(events, "deadroute-production", released);
  REQUIRE(route >= 0);
  CHECK(events[route]["data"].value("upstream_port", -1) == 0);
}

TEST_CASE("defects - a first deploy whose switch fails leaves no route to the candidate's port",
          "[integration][defects][proxy]") {
  SKIP_WITHOUT_CADDY();
  site_server e("failswitch", mode::proxy, {"--enable-fault-injection"});
  // A new project is dormant: a command wakes it, and its environments then set their routes.
  REQUIRE(e.api().get("/api/projects/failswitch/production").status == 200);
  // Once nothing else happens (no event for a second: any route a creation may set is
  // loaded), the deploy's switch is the next load of Caddy's config, and it is refused once.
  uint64_t seen = 0;
  REQUIRE(eventually(
      [&] {
        auto now = e.srv->event_count();
        if (now == seen) return true;
        seen = now;
        std::this_thread::sleep_for(1s);
        return false;
      },
      20s));
  auto r = e.api().post("/api/debug/fail", json{{"backend", "proxy"}, {"count", 1}, {"kind", "permanent"}});
  INFO(r.describe());
  REQUIRE(r.status == 200);
  auto d = e.deploy();
  INFO(brief(d) << "\n" << e.srv->log());
  REQUIRE(d.value("status", "") == "failed");
  CHECK(d["error"].value("phase", "") == "switching");

  auto events = replay_events(e.srv->data_dir());
  INFO("events:" << describe_events(events, {"proxy", "ports", "project/failswitch"}));
  auto leased = find_event(events, -1, [](const json& ev) {
    return ev.value("type", "") == "port_leased" && ev["data"].value("kind", "") == "candidate";
  });
  REQUIRE(leased >= 0);
  uint16_t candidate = events[leased]["data"].value("port", 0);
  auto released = find_event(events, leased, [&](const json& ev) { return is_release_of(ev, candidate); });
  REQUIRE(released >= 0);
  // The last word on the production route is "nothing serves" (upstream 0), said after any
  // route to the candidate and before the candidate's port went back.
  auto last_route = last_route_before(events, "failswitch-production", static_cast<long>(events.size()));
  REQUIRE(last_route >= 0);
  CHECK(events[last_route]["data"].value("upstream_port", -1) == 0);
  CHECK(last_route < released);

  // The next deploy (no fault) switches normally.
  auto again = e.deploy();
  INFO(brief(again));
  CHECK(again.value("status", "") == "completed");
  CHECK(eventually([&] { return fetch(e.stable_port()).body == "release 1\n"; }, 10s));
}

TEST_CASE("defects - failed deploys leave no exit watcher threads behind", "[integration][defects]") {
  site_server e("watchers", mode::direct, {});
  e.deploy_v1();
  auto pid = e.srv->pid();
  auto before = threads_at_rest(pid);
  REQUIRE(before > 0);
  set_site(e.site, "MODE", "build-fail");
  for (int i = 0; i < 8; ++i) {
    auto d = e.deploy();
    INFO(brief(d));
    REQUIRE(d.value("status", "") == "failed");
    REQUIRE(error_code(d) == "build_failed");
  }
  auto after = threads_at_rest(pid);
  INFO("threads at rest before " << before << ", after " << after);
  CHECK(after <= before + 2);
  CHECK(fetch(e.stable_port()).body == "release 1\n");
}

TEST_CASE("defects - a package error naming invalid UTF-8 fails the deploy without crashing production",
          "[integration][defects]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto site = make_site(tmp, "site", "1");
  // With ODD in the source, dist/ gets a link to /etc whose name holds the byte 0xff.
  auto m = site_manifest("oddbyte", site, 5, 15);
  m["build"]["command"] = {"sh", "-c",
                           "python3 build.py && if [ -f ODD ]; then ln -s /etc \"dist/$(printf '\\377')link\"; fi"};
  auto created = api.post("/api/projects", m);
  INFO(created.describe());
  REQUIRE(created.status == 201);
  auto deploy = [&] {
    auto r = api.post("/api/projects/oddbyte/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    return r.body.at("id").get<std::string>();
  };
  auto good = wait_done(api, deploy(), 60s);
  INFO(brief(good));
  REQUIRE(good.value("status", "") == "completed");
  auto serving = running_pid(api, "oddbyte");
  REQUIRE(serving != 0);

  write_file(site + "/ODD", "1\n");
  set_site(site, "VERSION", "2");
  auto id = deploy();
  auto d = wait_done(api, id, 60s);  // only a detail that parses as JSON counts as an answer
  INFO(brief(d) << "\n" << srv.log());
  REQUIRE(d.value("status", "") == "failed");
  CHECK(error_code(d) == "package_failed");
  CHECK(d["error"].value("phase", "") == "packaging");
  auto message = d["error"].value("message", "");
  CHECK_THAT(message, Catch::Contains("\xEF\xBF\xBD" "link"));  // U+FFFD where the byte was

  // The production actor was never restarted: no deployment was interrupted, and the same
  // release still serves.
  auto events = api.get("/api/projects/oddbyte/events?limit=10000");
  REQUIRE(events.status == 200);
  for (auto& ev : events.body.at("events"))
    if (ev.value("type", "") == "deployment_queued") {
      auto other = api.get("/api/deployments/oddbyte." + std::to_string(ev.value("seq", 0)));
      INFO(other.describe());
      CHECK(error_code(other.body) != "interrupted");
    }
  CHECK(running_pid(api, "oddbyte") == serving);
  CHECK(fetch(production_of(api, "oddbyte").value("port", 0)).body == "release 1\n");
  CHECK(srv.log().find("restarting child 'production'") == std::string::npos);
  auto verify = run({"audit", "verify", "--data", srv.data_dir()});
  INFO(verify.describe());
  CHECK(verify.exit_code == 0);
}

TEST_CASE("defects - deleting a big project does not block the scheduler", "[integration][defects]") {
  temp_dir tmp;
  // One scheduler thread; the DELETE may take longer than the default request timeout.
  server srv(tmp.path(), deploy_server_options({"--scheduler-threads", "1", "--request-timeout-ms", "120000"}));
  for (auto name : {"big", "other"}) {
    fs::create_directories(tmp / ("src-" + std::string(name)));
    auto r = srv.api().post("/api/projects", manifest_for(name, tmp / ("src-" + std::string(name))));
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  // 40 000 small files in 200 folders: removing them takes from half a second (an idle
  // machine) to a minute (a busy disk).
  auto src = srv.projects_dir() + "/big/preview/src";
  std::vector<std::string> dirs;
  for (int d = 0; d < 200; ++d) {
    dirs.push_back(src + "/d" + std::to_string(d));
    fs::create_directories(dirs.back());
    for (int f = 0; f < 200; ++f) write_file(dirs.back() + "/f" + std::to_string(f), "x");
  }
  auto some_left = [&] {
    return std::any_of(dirs.begin(), dirs.end(), [](const std::string& d) { return fs::exists(d); });
  };
  auto all_there = [&] {
    return std::all_of(dirs.begin(), dirs.end(), [](const std::string& d) { return fs::exists(d); });
  };

  std::atomic<bool> answered{false};
  http_result deleted;
  long delete_ms = 0;  // for the failure message only
  std::thread remover([&] {
    client c(srv.port(), 150s);
    auto t0 = std::chrono::steady_clock::now();
    deleted = c.del("/api/projects/big");
    delete_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    answered = true;
  });
  // Once the removal has visibly started, GET the other project until the DELETE answers.
  // A GET counts when it came back while the tree was still being removed (not one answered
  // together with the DELETE once the removal was over).
  int during = 0, gets = 0;
  {
    client c(srv.port(), 150s);
    auto until = std::chrono::steady_clock::now() + 150s;
    while (!answered && all_there() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(2ms);
    while (!answered && std::chrono::steady_clock::now() < until) {
      auto r = c.get("/api/projects/other");
      ++gets;
      if (r.status == 200 && !answered && some_left()) ++during;
      std::this_thread::sleep_for(20ms);
    }
  }
  remover.join();
  INFO("GETs sent " << gets << ", answered with 200 during the removal " << during << "; the DELETE took "
                     << delete_ms << " ms");
  INFO(deleted.describe());
  REQUIRE(deleted.status == 200);
  CHECK(during >= 1);
  CHECK(!fs::exists(srv.projects_dir() + "/big"));
  CHECK(srv.api().get("/api/projects/other").status == 200);
}
