// Preview environments through a real `berth serve`, with a real python app (tests/apps/hello).
#include <csignal>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <httplib.h>

#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

json preview_manifest(const std::string& name, const std::string& src, json env = json::object()) {
  return {{"name", name},
          {"source", {{"path", src}}},
          {"preview", {{"command", {"python3", "server.py"}}, {"health", {{"path", "/"}, {"interval_ms", 50}, {"timeout_s", 15}}}}},
          {"env", env}};
}

// A copy of the sample app with its own message, so tests never share a source folder.
std::string make_app(const temp_dir& tmp, const std::string& message) {
  auto dir = tmp / ("app-" + message);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(BERTH_TEST_APPS) + "/hello/server.py", dir + "/server.py");
  write_file(dir + "/message.txt", message + "\n");
  return dir;
}

std::string fetch(uint16_t port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(1, 0);
  cli.set_read_timeout(2, 0);
  auto res = cli.Get("/");
  return res ? res->body : std::string{};
}

json preview_of(server& srv, const std::string& name) {
  auto r = srv.api().get("/api/projects/" + name);
  REQUIRE(r.status == 200);
  return r.body.at("environments").at("preview");
}

bool group_alive(int pgid) { return ::kill(-pgid, 0) == 0; }

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 15s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return f();
}

}  // namespace

TEST_CASE("preview - start serves the source on the preview port, survives crashes and berth restarts, stop and delete end it",
          "[integration][preview]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = make_app(tmp, "preview-one");
  REQUIRE(srv.api().post("/api/projects", preview_manifest("web", src)).status == 201);

  auto started = srv.api().post("/api/projects/web/preview/start", std::string{});
  INFO(started.describe());
  REQUIRE(started.status == 200);
  CHECK(started.body.at("status") == "running");
  uint16_t port = started.body.at("port");
  int pid = started.body.at("pid");
  CHECK(fetch(port) == "preview-one\n");
  // The source was copied, not used in place.
  CHECK(read_file(srv.projects_dir() + "/web/preview/src/message.txt") == "preview-one\n");

  // The app dies: berth restarts it.
  ::kill(pid, SIGKILL);
  REQUIRE(eventually([&] {
    auto p = preview_of(srv, "web");
    return p.at("status") == "running" && p.at("pid") != pid;
  }));
  CHECK(fetch(port) == "preview-one\n");
  int second = preview_of(srv, "web").at("pid");

  // berth dies: the preview keeps serving, and the new berth adopts the same process.
  srv.kill9();
  CHECK(fetch(port) == "preview-one\n");
  srv.start();
  auto adopted = preview_of(srv, "web");
  CHECK(adopted.at("status") == "running");
  CHECK(adopted.at("pid") == second);

  // stop: the whole process group ends and the port closes.
  auto stopped = srv.api().post("/api/projects/web/preview/stop", std::string{});
  REQUIRE(stopped.status == 200);
  CHECK(stopped.body.at("status") == "stopped");
  CHECK(eventually([&] { return !group_alive(second); }));
  CHECK(fetch(port).empty());

  // restart brings it back; delete leaves no process behind.
  auto again = srv.api().post("/api/projects/web/preview/restart", std::string{});
  REQUIRE(again.status == 200);
  int third = again.body.at("pid");
  CHECK(fetch(port) == "preview-one\n");
  REQUIRE(srv.api().del("/api/projects/web").status == 200);
  CHECK(eventually([&] { return !group_alive(third); }));
}

TEST_CASE("preview - a crash loop is marked crashed with the reason", "[integration][preview]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = make_app(tmp, "flaky");
  REQUIRE(srv.api().post("/api/projects", preview_manifest("flaky", src, {{"CRASH_AFTER_S", "0.3"}})).status == 201);
  auto started = srv.api().post("/api/projects/flaky/preview/start", std::string{});
  REQUIRE(started.status == 200);
  REQUIRE(eventually([&] { return preview_of(srv, "flaky").at("status") == "crashed"; }, 30s));
  auto p = preview_of(srv, "flaky");
  CHECK_THAT(p.at("reason").get<std::string>(), Catch::Contains("exited with code 3"));
  // The log keeps it: a restarted berth still reports crashed and does not restart it.
  srv.restart();
  CHECK(preview_of(srv, "flaky").at("status") == "crashed");
}

TEST_CASE("preview - refused clearly when it cannot run", "[integration][preview]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = make_app(tmp, "plain");
  json no_preview{{"name", "plain"}, {"source", {{"path", src}}}};
  REQUIRE(srv.api().post("/api/projects", no_preview).status == 201);
  auto r = srv.api().post("/api/projects/plain/preview/start", std::string{});
  CHECK(r.status == 409);
  CHECK(r.error_code() == "conflict");

  auto broken = preview_manifest("broken", src);
  broken["preview"]["command"] = {"/nonexistent/program"};
  REQUIRE(srv.api().post("/api/projects", broken).status == 201);
  r = srv.api().post("/api/projects/broken/preview/start", std::string{});
  CHECK(r.status >= 400);
  CHECK(r.is_json_error());
  CHECK(preview_of(srv, "broken").at("status") == "stopped");

  CHECK(srv.api().post("/api/projects/missing/preview/start", std::string{}).status == 404);
  CHECK(srv.api().post("/api/projects/plain/preview/explode", std::string{}).status == 404);
}
