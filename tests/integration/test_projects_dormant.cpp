// Dormant projects and the project index (runtime/state/project_index.hpp) through a real
// `berth serve`: a project whose nothing runs has no actor after a restart, its GET comes from
// the index and equals what its actor says once a command wakes it; the list is paginated.
#include <algorithm>
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/metrics_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

// Creates `n` projects named <prefix>-0000… from 8 client threads; returns how many got 201.
int create_many(server& srv, const std::string& prefix, int n, const std::string& src) {
  std::atomic<int> next{0}, created{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w)
    workers.emplace_back([&] {
      client api(srv.port());
      for (int i = next++; i < n; i = next++)
        if (api.post("/api/projects", manifest_for(fmt::format("{}-{:04}", prefix, i), src)).status == 201) ++created;
    });
  for (auto& t : workers) t.join();
  return created;
}

// Every name of the list, following next_cursor with pages of `limit`.
std::vector<std::string> all_names(client& api, int limit, int* pages = nullptr) {
  std::vector<std::string> names;
  std::string cursor;
  int n = 0;
  for (;;) {
    auto r = api.get(fmt::format("/api/projects?limit={}", limit) + (cursor.empty() ? "" : "&cursor=" + cursor));
    INFO(r.describe());
    REQUIRE(r.status == 200);
    ++n;
    REQUIRE(r.body.at("projects").size() <= static_cast<size_t>(limit));
    for (auto& p : r.body.at("projects")) names.push_back(p.at("name"));
    if (r.body.at("next_cursor").is_null()) break;
    cursor = r.body.at("next_cursor");
  }
  if (pages) *pages = n;
  return names;
}

double actors(server& srv) {
  client api(srv.port());
  auto r = api.get("/metrics");
  REQUIRE(r.status == 200);
  scrape s;
  REQUIRE(parse_metrics(r.raw, &s) == "");
  return s.value("berth_actors");
}

// The project's GET, without what is measured live (usage) and may differ between two reads.
json project_doc(client& api, const std::string& name) {
  auto r = api.get("/api/projects/" + name);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  auto j = r.body;
  for (const char* env : {"production", "preview"})
    if (j.contains("environments") && j["environments"].contains(env)) j["environments"][env].erase("usage");
  return j;
}

}  // namespace

TEST_CASE("dormant - a stopped project's GET from the index equals its GET once a command woke it",
          "[integration][dormant]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto site = make_site(tmp, "dorm-site", "1");
  REQUIRE(srv.api().post("/api/projects", site_manifest("dorm", site)).status == 201);
  // Deployed, then production stopped; the preview started, then stopped.
  auto queued = srv.api().post("/api/projects/dorm/deployments", std::string{"{}"});
  INFO(queued.describe());
  REQUIRE(queued.status == 202);
  auto done = wait_done(srv.api(), queued.body.at("id"));
  REQUIRE(done.at("status") == "completed");
  REQUIRE(srv.api().post("/api/projects/dorm/production/stop", std::string{}).status == 200);
  REQUIRE(srv.api().post("/api/projects/dorm/preview/start", std::string{}).status == 200);
  REQUIRE(srv.api().post("/api/projects/dorm/preview/stop", std::string{}).status == 200);
  auto awake_before = project_doc(srv.api(), "dorm");

  REQUIRE(srv.terminate(10s) == 0);
  srv.start();
  auto idle_actors = actors(srv);
  auto dormant = project_doc(srv.api(), "dorm");
  CHECK(dormant == awake_before);
  CHECK(dormant.at("environments").at("production").at("status") == "stopped");
  CHECK(dormant.at("environments").at("production").at("releases") == 1);
  CHECK(dormant.at("environments").at("preview").at("status") == "stopped");
  // Still dormant: reads do not wake it.
  CHECK(actors(srv) == idle_actors);

  // A command wakes it (production's history goes to its actor); then the actor answers.
  REQUIRE(srv.api().get("/api/projects/dorm/production/history").status == 200);
  CHECK(actors(srv) > idle_actors);
  auto woken = project_doc(srv.api(), "dorm");
  CHECK(woken == dormant);
}

TEST_CASE("dormant - preview start and deploy wake a dormant project", "[integration][dormant]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto site = make_site(tmp, "wake-site", "1");
  REQUIRE(srv.api().post("/api/projects", site_manifest("wake", site)).status == 201);
  srv.restart();  // kill -9: nothing of it ran, so it comes back dormant
  auto idle_actors = actors(srv);

  auto started = srv.api().post("/api/projects/wake/preview/start", std::string{});
  INFO(started.describe());
  REQUIRE(started.status == 200);
  CHECK(started.body.at("status") == "running");
  CHECK(actors(srv) > idle_actors);
  CHECK(fetch(started.body.at("port").get<uint16_t>()).status == 200);

  srv.restart();  // the running preview makes it awake at start; production is woken by deploy
  auto queued = srv.api().post("/api/projects/wake/deployments", std::string{"{}"});
  INFO(queued.describe());
  REQUIRE(queued.status == 202);
  auto done = wait_done(srv.api(), queued.body.at("id"));
  INFO(brief(done));
  CHECK(done.at("status") == "completed");
  auto doc = project_doc(srv.api(), "wake");
  CHECK(doc.at("environments").at("production").at("status") == "running");
}

TEST_CASE("list - pages of the index give every project once in order and refuse bad input",
          "[integration][dormant]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = tmp / "src";
  std::filesystem::create_directories(src);
  REQUIRE(create_many(srv, "p", 250, src) == 250);

  // A client that got 201 reads its own write at once (the index is fed before the answer).
  auto created = srv.api().post("/api/projects", manifest_for("zz-own", src));
  REQUIRE(created.status == 201);
  CHECK(srv.api().get("/api/projects/zz-own").status == 200);

  int pages = 0;
  auto names = all_names(srv.api(), 100, &pages);
  CHECK(pages == 3);
  REQUIRE(names.size() == 251);
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
  CHECK(names.back() == "zz-own");
  CHECK(all_names(srv.api(), 7) == names);
  CHECK(all_names(srv.api(), 1000) == names);

  // Default page size, then the cursor round trip.
  auto first = srv.api().get("/api/projects");
  REQUIRE(first.status == 200);
  CHECK(first.body.at("projects").size() == 100);
  std::string cursor = first.body.at("next_cursor");
  CHECK(cursor == names[99]);
  auto second = srv.api().get("/api/projects?cursor=" + cursor + "&limit=1");
  REQUIRE(second.status == 200);
  CHECK(second.body.at("projects").at(0).at("name") == names[100]);

  for (const char* bad : {"?limit=0", "?limit=1001", "?limit=ten", "?limit=-1", "?cursor=..%2Fx", "?cursor="}) {
    auto r = srv.api().get(std::string("/api/projects") + bad);
    INFO(bad << " " << r.describe());
    CHECK(r.status == 400);
    CHECK(r.is_json_error());
  }
}

TEST_CASE("dormant - kill -9 and restart answer list and GET at once, keep a running preview and leave idle ones dormant",
          "[integration][dormant]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto src = tmp / "src";
  std::filesystem::create_directories(src);
  REQUIRE(create_many(srv, "idle", 60, src) == 60);
  auto site = make_site(tmp, "run-site", "1");
  REQUIRE(srv.api().post("/api/projects", site_manifest("run", site)).status == 201);
  auto started = srv.api().post("/api/projects/run/preview/start", std::string{});
  REQUIRE(started.status == 200);
  int pid = started.body.at("pid");
  uint16_t port = started.body.at("port");

  srv.restart();  // kill -9
  // Right after the restart: the list and every project answer 200.
  auto list = srv.api().get("/api/projects?limit=1000");
  INFO(list.describe());
  REQUIRE(list.status == 200);
  CHECK(list.body.at("projects").size() == 61);
  for (int i = 0; i < 60; ++i) {
    auto r = srv.api().get(fmt::format("/api/projects/idle-{:04}", i));
    INFO(r.describe());
    REQUIRE(r.status == 200);
    CHECK(r.body.at("environments").at("preview").at("status") == "stopped");
  }
  // The preview was adopted (same process, awake), and the 60 idle projects have no actor:
  // 60 awake projects would be at least 180 actors (project, preview, production).
  REQUIRE(eventually([&] { return project_doc(srv.api(), "run")["environments"]["preview"]["status"] == "running"; },
                     15s));
  CHECK(project_doc(srv.api(), "run")["environments"]["preview"]["pid"] == pid);
  CHECK(fetch(port).status == 200);
  CHECK(actors(srv) < 60);
}

TEST_CASE("dormant - update and delete of a dormant project", "[integration][dormant]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = tmp / "src";
  std::filesystem::create_directories(src);
  for (const char* name : {"keep", "gone"}) REQUIRE(srv.api().post("/api/projects", manifest_for(name, src)).status == 201);
  REQUIRE(srv.terminate(10s) == 0);
  srv.start();

  auto m = manifest_for("keep", src);
  m["env"] = {{"GREETING", "hi"}};
  auto updated = srv.api().put("/api/projects/keep", m);
  INFO(updated.describe());
  REQUIRE(updated.status == 200);
  CHECK(updated.body.at("manifest").at("env").at("GREETING") == "hi");
  CHECK(read_file(srv.projects_dir() + "/keep/.env").find("GREETING=") != std::string::npos);
  auto got = srv.api().get("/api/projects/keep");
  CHECK(got.body.at("manifest").at("env").at("GREETING") == "hi");
  CHECK(got.body.at("events") == updated.body.at("events"));

  REQUIRE(srv.api().del("/api/projects/gone").status == 200);
  CHECK(srv.api().get("/api/projects/gone").status == 404);
  CHECK(!std::filesystem::exists(srv.projects_dir() + "/gone"));
  auto names = all_names(srv.api(), 100);
  CHECK(names == std::vector<std::string>{"keep"});
  // The name is free again, and survives another restart as it is.
  REQUIRE(srv.api().post("/api/projects", manifest_for("gone", src)).status == 201);
  srv.restart();
  CHECK(all_names(srv.api(), 100) == std::vector<std::string>{"gone", "keep"});
  CHECK(srv.api().get("/api/projects/keep").body.at("manifest").at("env").at("GREETING") == "hi");
}
