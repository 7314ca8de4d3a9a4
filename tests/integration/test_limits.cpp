// Resource limits per environment (manifest `limits`), applied with cgroups, through a real
// `berth serve`: an app allocating past memory_mb is OOM-killed, recorded with reason `oom`,
// restarted, and marked crashed after a loop; a build over its memory limit fails saying so;
// GET production shows the cgroup's usage and limits; a pids limit stops a fork bomb; bad
// limits are 400 and a host without cgroups refuses limits (409) and says so in /health.
// The app is tests/apps/hog (python3).
#include <unistd.h>

#include <filesystem>
#include <memory>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string hog_source = std::string(BERTH_TEST_APPS) + "/hog";

// The hog as a project: production (and preview) run server.py from the source, no build.
json hog_manifest(const std::string& name, json production_limits, json extra = json::object()) {
  json m{{"name", name},
         {"source", {{"path", hog_source}}},
         {"preview", {{"command", {"python3", "server.py"}}, {"health", {{"path", "/health"}, {"timeout_s", 15}}}}},
         {"production",
          {{"command", {"python3", "server.py"}},
           {"health", {{"path", "/health"}, {"timeout_s", 15}, {"interval_ms", 100}}}}}};
  if (!production_limits.is_null()) m["production"]["limits"] = production_limits;
  m.merge_patch(extra);
  return m;
}

// The cgroup cases need root (these machines run tests as root; elsewhere they say so and stop).
#define SKIP_WITHOUT_CGROUPS()                                                   \
  if (::geteuid() != 0) {                                                        \
    WARN("not root: berth cannot make cgroups here, limits test skipped");      \
    return;                                                                      \
  }

json production_of(client& api, const std::string& name) {
  auto r = api.get("/api/projects/" + name + "/production");
  return r.status == 200 && r.body.is_object() ? r.body : json::object();
}

int running_pid(client& api, const std::string& name) {
  auto p = production_of(api, name);
  return p.value("status", "") == "running" && p["pid"].is_number() ? p["pid"].get<int>() : 0;
}

json events_of(client& api, const std::string& name) {
  auto r = api.get("/api/projects/" + name + "/events?limit=10000");
  REQUIRE(r.status == 200);
  return r.body.at("events");
}

std::vector<std::string> exit_reasons(const json& events) {
  std::vector<std::string> out;
  for (auto& e : events)
    if (e.value("type", "") == "production_exited") out.push_back(e["data"].value("reason", ""));
  return out;
}

// One berth (direct mode, quick restarts) with `project` created from `manifest` and deployed.
struct hog_env {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  std::string name;

  hog_env(const std::string& project, const json& manifest, std::vector<std::string> extra = {}) : name(project) {
    srv = std::make_unique<server>(tmp.path(), deploy_server_options(with(with({"--switch-mode", "direct"}, quick), extra)));
    auto r = api().post("/api/projects", manifest);
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  client& api() { return srv->api(); }
  json deploy() {
    auto r = api().post("/api/projects/" + name + "/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    return wait_done(api(), r.body.at("id").get<std::string>(), 90s);
  }
  uint16_t port() { return production_of(api(), name).value("port", 0); }
  // GET on the release's stable port (a long timeout: allocating takes a moment).
  fetch_result app(const std::string& path) { return fetch(port(), path, 10s); }
};

}  // namespace

TEST_CASE("limits - an app over its memory limit is OOM-killed, recorded as oom, restarted, then crashed",
          "[integration][limits]") {
  SKIP_WITHOUT_CGROUPS();
  hog_env e("greedy", hog_manifest("greedy", {{"memory_mb", 64}, {"pids", 64}}),
            {"--crash-loop-restarts", "2", "--crash-loop-window-s", "120"});
  REQUIRE(e.srv->health().at("limits").value("available", false));
  auto d = e.deploy();
  INFO(brief(d) << "\n" << e.srv->log());
  REQUIRE(d.value("status", "") == "completed");
  REQUIRE(e.app("/alloc?mb=8").body == "allocated 8\n");  // within the limit: it lives

  // Three times over the limit: two restarts (with backoff), then the crash loop.
  for (int death = 1; death <= 3; ++death) {
    INFO("death " << death);
    int before = running_pid(e.api(), e.name);
    REQUIRE(before != 0);
    auto r = e.app("/alloc?mb=256");
    CHECK(r.body != "allocated 256\n");  // killed before it could answer
    if (death < 3) {
      REQUIRE(eventually(
          [&] {
            int now = running_pid(e.api(), e.name);
            return now != 0 && now != before && e.app("/health").body == "ok";
          },
          30s));
    }
  }
  REQUIRE(eventually([&] { return production_of(e.api(), e.name).value("status", "") == "crashed"; }, 30s));
  auto p = production_of(e.api(), e.name);
  INFO(p.dump());
  CHECK(p.value("reason", "").rfind("oom", 0) == 0);
  auto events = events_of(e.api(), e.name);
  auto reasons = exit_reasons(events);
  REQUIRE(reasons.size() == 3);
  for (auto& why : reasons) {
    INFO(why);
    CHECK(why.rfind("oom: ", 0) == 0);
    CHECK_THAT(why, Catch::Contains("memory limit"));
  }
  CHECK(count_type(events, "production_crashed") == 1);
}

TEST_CASE("limits - GET production shows the cgroup's memory and CPU use and the limits", "[integration][limits]") {
  SKIP_WITHOUT_CGROUPS();
  hog_env e("meter", hog_manifest("meter", {{"memory_mb", 96}, {"cpu", 0.5}},
                                  {{"preview", {{"limits", {{"memory_mb", 80}, {"pids", 40}}}}}}));
  auto d = e.deploy();
  INFO(brief(d) << "\n" << e.srv->log());
  REQUIRE(d.value("status", "") == "completed");
  REQUIRE(e.app("/alloc?mb=20").body == "allocated 20\n");
  REQUIRE(e.app("/burn?ms=300").body == "burnt\n");
  auto p = production_of(e.api(), e.name);
  INFO(p.dump());
  REQUIRE(p.contains("usage"));
  auto& u = p["usage"];
  REQUIRE(u.is_object());
  CHECK(u.value("source", "") == "cgroup");
  CHECK(u.value("memory_bytes", uint64_t(0)) >= uint64_t(20) << 20);  // what it holds counts
  CHECK(u.value("memory_bytes", uint64_t(0)) <= uint64_t(96) << 20);
  CHECK(u.value("cpu_seconds", 0.0) > 0.0);
  CHECK(u.value("processes", 0) >= 1);
  REQUIRE(u["limits"].is_object());
  CHECK(u["limits"].value("memory_mb", 0) == 96);
  CHECK(u["limits"].value("cpu", 0.0) == Approx(0.5));
  CHECK(u["limits"].value("pids", 0) == 512);  // the default, as the manifest set none
  // The manifest keeps what was given, and only that.
  auto proj = e.api().get("/api/projects/" + e.name);
  REQUIRE(proj.status == 200);
  CHECK(proj.body["manifest"]["production"]["limits"] == json({{"memory_mb", 96}, {"cpu", 0.5}}));

  // The preview has its own group and limits.
  auto pv = e.api().post("/api/projects/" + e.name + "/preview/start", std::string{});
  INFO(pv.describe());
  REQUIRE(pv.status == 200);
  auto& preview = pv.body;
  INFO(preview.dump());
  REQUIRE(preview["usage"].is_object());
  CHECK(preview["usage"].value("source", "") == "cgroup");
  CHECK(preview["usage"]["limits"] == json({{"memory_mb", 80}, {"cpu", 1.0}, {"pids", 40}}));
  CHECK(e.api().post("/api/projects/" + e.name + "/preview/stop", std::string{}).status == 200);
}

TEST_CASE("limits - a build over its memory limit fails as out of memory", "[integration][limits]") {
  SKIP_WITHOUT_CGROUPS();
  auto m = hog_manifest("bigbuild", nullptr,
                        {{"build", {{"command", {"python3", "server.py", "alloc", "256"}}, {"limits", {{"memory_mb", 48}}}}}});
  hog_env e("bigbuild", m);
  auto d = e.deploy();
  INFO(brief(d) << "\n" << e.srv->log());
  CHECK(d.value("status", "") == "failed");
  REQUIRE(d["error"].is_object());
  CHECK(d["error"].value("code", "") == "build_failed");
  CHECK(d["error"].value("phase", "") == "building");
  CHECK_THAT(d["error"].value("message", ""), Catch::Contains("out of memory"));
  CHECK(production_of(e.api(), e.name).value("status", "") == "none");
}

TEST_CASE("limits - a pids limit stops a fork bomb without harming berth", "[integration][limits]") {
  SKIP_WITHOUT_CGROUPS();
  hog_env e("forky", hog_manifest("forky", {{"pids", 24}}));
  auto d = e.deploy();
  INFO(brief(d) << "\n" << e.srv->log());
  REQUIRE(d.value("status", "") == "completed");
  auto r = e.app("/fork?n=200");  // bounded: at most 200 children, each gone after 30 s
  INFO(r.describe());
  REQUIRE(r.status == 200);
  auto bomb = json::parse(r.body);
  CHECK(bomb.value("forked", 200) < 24);
  CHECK(bomb["error"].is_string());  // the kernel refused the next fork
  // berth is unharmed: it answers, and it can still start processes.
  CHECK(e.srv->health().value("status", "") == "ok");
  auto stop = e.api().post("/api/projects/" + e.name + "/production/stop", std::string{});
  INFO(stop.describe());
  CHECK(stop.status == 200);
  auto start = e.api().post("/api/projects/" + e.name + "/production/start", std::string{});
  INFO(start.describe());
  CHECK(start.status == 200);
  CHECK(e.app("/health").body == "ok");
}

TEST_CASE("limits - bad limits are refused with the field named, and leave nothing behind",
          "[integration][limits]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--switch-mode", "direct"}));
  auto events_before = srv.event_count();
  struct bad_case {
    json limits;
    const char* field;
  };
  for (auto& c : std::vector<bad_case>{{{{"memory_mb", -5}}, "production.limits.memory_mb"},
                                       {{{"memory_mb", 0}}, "production.limits.memory_mb"},
                                       {{{"memory_mb", "512"}}, "production.limits.memory_mb"},
                                       {{{"memory_mb", 1 << 30}}, "production.limits.memory_mb"},
                                       {{{"cpu", 0}}, "production.limits.cpu"},
                                       {{{"cpu", -1.5}}, "production.limits.cpu"},
                                       {{{"cpu", "half"}}, "production.limits.cpu"},
                                       {{{"cpu", 1e9}}, "production.limits.cpu"},
                                       {{{"pids", 2.5}}, "production.limits.pids"},
                                       {{{"pids", 0}}, "production.limits.pids"},
                                       {{{"swap_mb", 1}}, "production.limits.swap_mb"},
                                       {json::array({1}), "production.limits"}}) {
    auto r = srv.api().post("/api/projects", hog_manifest("badlimits", c.limits));
    INFO(c.limits.dump() << " -> " << r.describe());
    CHECK(r.status == 400);
    CHECK(r.error_code() == "invalid_manifest");
    CHECK_THAT(r.body["error"].value("message", ""), Catch::StartsWith(c.field));
  }
  auto preview = hog_manifest("badlimits", nullptr, {{"preview", {{"limits", {{"pids", -1}}}}}});
  auto r = srv.api().post("/api/projects", preview);
  CHECK(r.status == 400);
  CHECK_THAT(r.body["error"].value("message", ""), Catch::StartsWith("preview.limits.pids"));
  CHECK(srv.api().get("/api/projects/badlimits").status == 404);
  CHECK(list_dir(srv.projects_dir()).empty());
  CHECK(srv.event_count() == events_before);
}

TEST_CASE("limits - without cgroups, limits are refused and /health says why", "[integration][limits]") {
  temp_dir tmp;
  // A folder that is no cgroup: berth cannot apply limits there (as when not root).
  server srv(tmp.path(), deploy_server_options({"--switch-mode", "direct", "--cgroup-root", tmp.path()}));
  auto health = srv.health();
  INFO(health.dump());
  REQUIRE(health["limits"].is_object());
  CHECK_FALSE(health["limits"].value("available", true));
  CHECK_THAT(health["limits"].value("reason", ""), Catch::Contains("cgroup"));
  CHECK(health.value("status", "") == "ok");  // berth itself works
  auto events_before = srv.event_count();

  auto r = srv.api().post("/api/projects", hog_manifest("limited", {{"memory_mb", 64}}));
  INFO(r.describe());
  CHECK(r.status == 409);
  CHECK(r.error_code() == "limits_unavailable");
  CHECK(srv.api().get("/api/projects/limited").status == 404);
  CHECK(list_dir(srv.projects_dir()).empty());
  CHECK(srv.event_count() == events_before);

  // Without limits a project is made and runs (unlimited: no defaults applied).
  r = srv.api().post("/api/projects", hog_manifest("limited", nullptr));
  INFO(r.describe());
  REQUIRE(r.status == 201);
  auto events_after_create = srv.event_count();
  // Nor can an update add limits.
  auto put = srv.api().put("/api/projects/limited", hog_manifest("limited", {{"pids", 64}}));
  INFO(put.describe());
  CHECK(put.status == 409);
  CHECK(put.error_code() == "limits_unavailable");
  CHECK(srv.event_count() == events_after_create);
  auto dep = srv.api().post("/api/projects/limited/deployments", std::string{});
  REQUIRE(dep.status == 202);
  auto d = wait_done(srv.api(), dep.body.at("id").get<std::string>(), 90s);
  INFO(brief(d) << "\n" << srv.log());
  CHECK(d.value("status", "") == "completed");
  auto p = production_of(srv.api(), "limited");
  INFO(p.dump());
  REQUIRE(p["usage"].is_object());
  CHECK(p["usage"].value("source", "") == "processes");
  CHECK(p["usage"]["limits"].is_null());
}

TEST_CASE("limits - a release adopted after a berth restart keeps its group, usage and oom verdict",
          "[integration][limits]") {
  SKIP_WITHOUT_CGROUPS();
  hog_env e("adopted", hog_manifest("adopted", {{"memory_mb", 64}}));
  auto d = e.deploy();
  INFO(brief(d) << "\n" << e.srv->log());
  REQUIRE(d.value("status", "") == "completed");
  int serving = running_pid(e.api(), e.name);
  REQUIRE(serving != 0);
  e.srv->restart();  // kill -9 and start again: the release outlives berth and is adopted
  REQUIRE(eventually([&] { return running_pid(e.api(), e.name) == serving; }, 15s));
  auto p = production_of(e.api(), e.name);
  INFO(p.dump());
  REQUIRE(p["usage"].is_object());
  CHECK(p["usage"].value("source", "") == "cgroup");
  CHECK(p["usage"]["limits"].value("memory_mb", 0) == 64);
  e.app("/alloc?mb=256");
  REQUIRE(eventually(
      [&] {
        int now = running_pid(e.api(), e.name);
        return now != 0 && now != serving;
      },
      30s));
  auto reasons = exit_reasons(events_of(e.api(), e.name));
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0].rfind("oom: ", 0) == 0);
}
