// Docker projects over their whole life, through a real `berth serve` and the test engine:
// kill -9 of berth mid-deploy and adoption, volumes across deploys and rollbacks, delete, the
// preview as a container, a server without an engine, the docker breaker in /health, and an
// engine that goes away (a relay in front of it is cut).
#include <algorithm>
#include <filesystem>

#include <catch2/catch.hpp>

#include "tests/docker/docker_support.hpp"
#include "tests/docker/socket_relay.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string names_of(const std::vector<container_info>& cs) {
  std::string s;
  for (auto& c : cs) s += "\n  " + c.name + " (" + c.state + ")";
  return s.empty() ? " none" : s;
}

// Polls the deployment until it reaches `phase` (or ends); the last detail.
json wait_phase(docker_env& e, const std::string& id, const std::string& phase) {
  return wait_detail(
      e.api(), id,
      [&](const json& d) { return d.value("phase", "") == phase || is_terminal_status(d.value("status", "")); },
      60s);
}

// GET /cgi-bin/boots: the releases that started with the volume mounted, one a line.
std::vector<std::string> boots(uint16_t port) {
  auto r = fetch(port, "/cgi-bin/boots", 2s);
  std::vector<std::string> out;
  UNSCOPED_INFO("GET /cgi-bin/boots on " << port << ": " << r.describe());
  if (r.status != 200) return out;
  std::string line;
  for (char c : r.body) {
    if (c == '\n') {
      if (!line.empty()) out.push_back(line);
      line.clear();
    } else if (c != '\r') {
      line += c;
    }
  }
  if (!line.empty()) out.push_back(line);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += "\n  " + x;
  return s.empty() ? " none" : s;
}

}  // namespace

TEST_CASE("lifecycle - kill -9 of berth mid-deploy: the serving container is adopted, the candidate removed",
          "[docker][recovery]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  e.create(container_manifest("dt-crash", src, 60));
  e.deploy_ok("dt-crash");
  auto port = e.production_port("dt-crash");
  auto v1 = e.engine.running("dt-crash");
  REQUIRE(v1.size() == 1);

  e.use_file(src, "unhealthy", "Dockerfile");  // a candidate that waits in the health check
  auto id = e.deploy("dt-crash");
  auto mid = wait_phase(e, id, "health_checking");
  INFO(brief(mid));
  REQUIRE(mid.value("phase", "") == "health_checking");
  REQUIRE(eventually([&] { return e.engine.running("dt-crash").size() == 2; }, 10s));  // the candidate runs
  auto images_before = e.engine.images("dt-crash");
  INFO("images before the kill:" << joined(images_before));
  REQUIRE(images_before.size() == 2);  // v1's and the candidate's
  e.srv->kill9();
  CHECK(version_at(port) == "v1");  // berth is down; the container is not
  e.srv->start();

  auto d = wait_done(e.api(), id, 30s);
  INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(d.value("status", "") == "failed");
  CHECK(d.value("error", json::object()).value("code", "") == "interrupted");
  std::vector<container_info> left;
  CHECK(eventually([&] { return (left = e.engine.containers("dt-crash")).size() == 1; }, 20s));
  INFO("containers:" << names_of(left));
  REQUIRE(left.size() == 1);
  CHECK(left[0].id == v1[0].id);  // adopted: the same container, never restarted
  CHECK(left[0].state == "running");
  CHECK(version_at(port) == "v1");
  auto prod = e.api().get("/api/projects/dt-crash/production");
  INFO(prod.describe());
  CHECK(prod.body.value("status", "") == "running");
  // The candidate's image belongs to no release the log knows: the restart removed it.
  std::vector<std::string> images;
  CHECK(eventually([&] { return (images = e.engine.images("dt-crash")).size() == 1; }, 20s));
  INFO("images after the restart:" << joined(images));
  REQUIRE(images.size() == 1);
  CHECK(images[0] == "berth/dt-crash:" + prod.body.value("current", std::string("?")));
}

TEST_CASE("lifecycle - a volume keeps its data across a deploy and a rollback", "[docker][volumes]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  auto m = container_manifest("dt-volume", src);
  m["volumes"] = {{"data", "/var/lib/app"}};
  e.create(m);
  auto h1 = hash_of(e.deploy_ok("dt-volume"));
  auto port = e.production_port("dt-volume");
  // Direct switching starts a release twice (candidate, then on the stable port): h1, h1.
  auto after_v1 = boots(port);
  CHECK_FALSE(after_v1.empty());
  CHECK(std::count(after_v1.begin(), after_v1.end(), h1) == static_cast<long>(after_v1.size()));
  auto vols = e.engine.volumes("dt-volume");
  CHECK(vols.size() == 1);

  write_file(src + "/www/version", "v2\n");
  auto h2 = hash_of(e.deploy_ok("dt-volume"));
  CHECK(version_at(port) == "v2");
  // v2 saw what v1 wrote (the candidate started once, on its own port, before the switch).
  auto after_v2 = boots(port);
  INFO("boots: " << json(after_v2).dump());
  REQUIRE(after_v2.size() >= 2);
  CHECK(after_v2.front() == h1);
  CHECK(after_v2.back() == h2);

  e.rollback_ok("dt-volume");
  CHECK(version_at(port) == "v1");
  auto after_rb = boots(port);
  INFO("boots: " << json(after_rb).dump());
  REQUIRE(after_rb.size() > after_v2.size());
  CHECK(std::equal(after_v2.begin(), after_v2.end(), after_rb.begin()));
  CHECK(after_rb.back() == h1);
  CHECK(e.engine.volumes("dt-volume") == vols);  // the same volume, not a new one
}

TEST_CASE("lifecycle - delete leaves no container, image, volume or port behind", "[docker][delete]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  auto m = container_manifest("dt-delete", src);
  m["volumes"] = {{"data", "/var/lib/app"}};
  auto created = e.create(m);
  uint16_t port = created.at("ports").at("production");
  e.deploy_ok("dt-delete");
  write_file(src + "/www/version", "v2\n");
  e.deploy_ok("dt-delete");
  REQUIRE(version_at(port) == "v2");
  REQUIRE_FALSE(e.engine.images("dt-delete").empty());
  REQUIRE_FALSE(e.engine.volumes("dt-delete").empty());

  auto del = e.api().del("/api/projects/dt-delete");
  INFO(del.describe() << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(del.status == 200);
  std::vector<container_info> left;
  CHECK(eventually([&] { return (left = e.engine.containers("dt-delete")).empty(); }, 20s));
  INFO("containers left:" << names_of(left));
  CHECK(left.empty());
  CHECK(e.engine.images("dt-delete").empty());
  CHECK(e.engine.volumes("dt-delete").empty());
  CHECK(fetch(port, "/", 500ms).status == -1);
  CHECK_FALSE(fs::exists(e.project_dir("dt-delete")));
  // Its leases are gone: the same name gets the same stable port again.
  auto again = e.create(container_manifest("dt-delete", src));
  CHECK(again.at("ports").at("production").get<uint16_t>() == port);
}

TEST_CASE("lifecycle - the preview runs as a container over the bind-mounted source", "[docker][preview]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("plain", "src");
  auto m = container_manifest("dt-preview", src);
  m["image"] = {{"base", test_base_image()}};
  m["production"]["command"] = {"sh", "serve.sh"};
  m["preview"] = {{"command", {"sh", "serve.sh"}},
                  {"health", {{"path", "/version"}, {"interval_ms", 100}, {"timeout_s", 15}}}};
  e.create(m);
  auto started = e.api().post("/api/projects/dt-preview/preview/start", std::string{});
  INFO(started.describe() << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(started.status == 200);
  uint16_t port = started.body.at("port");
  CHECK(version_at(port) == "v1");
  auto run = e.engine.running("dt-preview");
  INFO("containers:" << names_of(run));
  REQUIRE(run.size() == 1);
  CHECK(run[0].labels.value("berth.env", "") == "preview");
  CHECK(e.engine.uid_of(run[0].id) > 0);
  bool bind_mounted = false;
  for (auto& mnt : e.engine.inspect(run[0].id).value("Mounts", json::array()))
    if (mnt.value("Type", "") == "bind") bind_mounted = true;
  CHECK(bind_mounted);

  // An edit (in the source and in the preview's copy of it) shows after a restart.
  write_file(src + "/www/version", "v2\n");
  if (fs::exists(e.project_dir("dt-preview") + "/preview/src/www"))
    write_file(e.project_dir("dt-preview") + "/preview/src/www/version", "v2\n");
  auto again = e.api().post("/api/projects/dt-preview/preview/restart", std::string{});
  INFO(again.describe());
  REQUIRE(again.status == 200);
  CHECK(eventually([&] { return version_at(port) == "v2"; }, 10s));

  auto stopped = e.api().post("/api/projects/dt-preview/preview/stop", std::string{});
  REQUIRE(stopped.status == 200);
  CHECK(eventually([&] { return e.engine.running("dt-preview").empty(); }, 10s));
}

TEST_CASE("lifecycle - with --docker-host off a docker manifest is refused and nothing is left",
          "[docker][bad-input]") {
  DOCKER_OR_SKIP();
  docker_env e({}, "off");
  auto src = e.copy_app("site", "src");
  auto r = e.api().post("/api/projects", container_manifest("dt-off", src));
  INFO(r.describe());
  CHECK(r.status == 409);
  CHECK(r.is_json_error());
  CHECK(r.error_code() == "runtime_unavailable");
  auto msg = r.body.value("error", json::object()).value("message", "");
  CHECK_THAT(msg, Catch::Contains("docker") && Catch::Contains("--docker-host off"));
  CHECK(e.api().get("/api/projects/dt-off").status == 404);
  CHECK_FALSE(fs::exists(e.project_dir("dt-off")));
  CHECK(e.engine.containers("dt-off").empty());
  CHECK(e.engine.images("dt-off").empty());
  // A process project still works on that server.
  auto list = e.api().get("/api/projects");
  CHECK(list.status == 200);
}

TEST_CASE("lifecycle - /health lists the docker breaker", "[docker][health]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto h = e.srv->health();
  INFO(h.dump(1));
  REQUIRE(h.contains("breakers"));
  REQUIRE(h["breakers"].contains("docker"));
  CHECK(h["breakers"]["docker"].value("state", "") == "closed");
}

TEST_CASE("lifecycle - the engine gone: deploys fail fast, the docker breaker opens, v1 keeps serving",
          "[docker][breakers]") {
  DOCKER_OR_SKIP();
  temp_dir relay_dir;
  auto engine_socket = test_docker_host().substr(std::string("unix://").size());
  berth::dk::socket_relay relay(relay_dir / "engine.sock", engine_socket);
  docker_env e({"--retry-attempts", "2", "--retry-base-ms", "50", "--retry-max-ms", "100", "--breaker-failures", "2",
                "--breaker-open-ms", "1500"},
               "unix://" + (relay_dir / "engine.sock"));
  auto src = e.copy_app("site", "src");
  e.create(container_manifest("dt-engine-gone", src));
  e.deploy_ok("dt-engine-gone");
  auto port = e.production_port("dt-engine-gone");
  auto v1 = e.engine.running("dt-engine-gone");  // the engine itself, not through the relay
  REQUIRE(v1.size() == 1);

  relay.cut();
  write_file(src + "/www/version", "v2\n");
  json d;
  for (int i = 0; i < 3; ++i) {  // each fails; they open the breaker on the way
    d = e.deploy_done("dt-engine-gone");
    INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail());
    CHECK(d.value("status", "") == "failed");
  }
  INFO(brief(d));
  CHECK(d.value("error", json::object()).value("code", "") == "backend_unavailable");
  auto h = e.srv->health();
  INFO(h.dump(1));
  CHECK(h["breakers"]["docker"].value("state", "") == "open");
  CHECK(version_at(port) == "v1");  // what serves keeps serving
  auto still = e.engine.running("dt-engine-gone");
  REQUIRE(still.size() == 1);
  CHECK(still[0].id == v1[0].id);

  relay.resume();  // the engine is back: after the open period a deploy goes through
  json ok;
  CHECK(eventually(
      [&] {
        ok = e.deploy_done("dt-engine-gone");
        return ok.value("status", "") == "completed";
      },
      20s));
  INFO(brief(ok));
  CHECK(version_at(port) == "v2");
  CHECK(e.srv->health()["breakers"]["docker"].value("state", "") == "closed");
}
