// The sandbox around every process berth starts for a project, through a real `berth serve`
// (umask 077, as after the hardening) and a real probe app (tests/apps/probe) that reports
// what it could reach: its build, its production release and its preview each try the token,
// another project's secrets, the event log, another app's environment and their release.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kVictimSecret = "victim-secret-7d1c0a";
const bool as_root = ::geteuid() == 0;

// berth and everything it starts run with umask 077 (restored when the test ends).
struct umask_077 {
  mode_t old = ::umask(077);
  ~umask_077() { ::umask(old); }
};

// A copy of tests/apps/probe at <tmp>/<dir>.
std::string make_probe(const temp_dir& tmp, const std::string& dir) {
  auto to = tmp / dir;
  fs::create_directories(to);
  for (auto f : {"probe.py", "build.py", "server.py"})
    fs::copy_file(std::string(BERTH_TEST_APPS) + "/probe/" + f, to + "/" + f);
  return to;
}

json probe_manifest(const std::string& name, const std::string& src, const server& srv) {
  // Reversed: the secret itself in the probe's own environment would be found there.
  std::string secret = kVictimSecret;
  json env{{"PROBE_DATA", srv.data_dir()},
           {"PROBE_OTHER", "victim"},
           {"PROBE_OTHER_SECRET_REVERSED", std::string(secret.rbegin(), secret.rend())}};
  json health{{"path", "/"}, {"interval_ms", 50}, {"timeout_s", 20}};
  return {{"name", name},
          {"source", {{"path", src}}},
          {"env", env},
          {"build", {{"command", {"python3", "build.py"}}, {"artifacts", {"dist"}}}},
          {"production", {{"command", {"python3", "dist/server.py"}}, {"health", health}}},
          {"preview", {{"command", {"python3", "server.py"}}, {"health", health}}}};
}

// The victim: the same probe, with a secret in its environment (from .secrets).
json victim_manifest(const std::string& src, const server& srv) {
  auto m = probe_manifest("victim", src, srv);
  m["secrets"] = {{"VICTIM_KEY", kVictimSecret}};
  m["env"]["PROBE_OTHER"] = "snoop";
  m["env"]["PROBE_OTHER_SECRET_REVERSED"] = "";
  return m;
}

json get_json(uint16_t port, const std::string& path) {
  auto r = fetch(port, path, 3000ms);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  auto j = json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

json deploy(server& srv, const std::string& name) {
  auto r = srv.api().post("/api/projects/" + name + "/deployments", std::string{});
  INFO(r.describe());
  REQUIRE(r.status == 202);
  auto d = wait_done(srv.api(), r.body.at("id").get<std::string>(), 90s);
  INFO(brief(d) << "\n--- server log ---\n" << srv.log());
  REQUIRE(d.value("status", "") == "completed");
  return d;
}

json production(server& srv, const std::string& name) {
  auto r = srv.api().get("/api/projects/" + name + "/production");
  REQUIRE(r.status == 200);
  return r.body;
}

// The sandbox uid berth recorded for the project (project_created or sandbox_assigned).
uint32_t recorded_uid(server& srv, const std::string& name, int* assignments = nullptr) {
  auto r = srv.api().get("/api/projects/" + name + "/events");
  REQUIRE(r.status == 200);
  uint32_t uid = 0;
  int count = 0;
  for (auto& e : r.body.at("events")) {
    auto data = e.at("data").is_string() ? json::parse(e.at("data").get<std::string>()) : e.at("data");
    if (e.at("type") == "project_created" && data.contains("sandbox")) uid = data["sandbox"].at("uid"), ++count;
    if (e.at("type") == "sandbox_assigned") uid = data.at("uid"), ++count;
  }
  if (assignments) *assignments = count;
  return uid;
}

uint32_t owner_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_uid;
}

// Processes running as `uid` in `under` (their working directory): every test server's first
// project gets the same uid, so the uid alone would also find other tests' apps.
std::vector<int> processes_of(uint32_t uid, const std::string& under) {
  std::vector<int> out;
  for (auto& e : fs::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0 || st.st_uid != uid) continue;
    std::error_code ec;
    auto cwd = fs::read_symlink(e.path() / "cwd", ec).string();
    if (!ec && cwd.rfind(under, 0) == 0) out.push_back(std::stoi(name));
  }
  return out;
}

// What every sandboxed process of the probe must not reach.
void check_confined(const json& report, const std::string& who) {
  INFO(who << ": " << report.dump(1));
  CHECK(report.at("token") != "readable");
  // Of the data dir, only the (empty) folders on the way to its own.
  auto listed = report.at("data_dir");
  CHECK((!listed.is_array() || listed == json::array({"projects"})));
  CHECK((!report.at("projects").is_array() || report.at("projects").size() == 1));
  CHECK(report.at("event_log") != "readable");
  CHECK(report.at("other_secrets") != "readable");
  CHECK(report.at("own_secrets_file") != "readable");  // its secrets come as variables only
  CHECK(report.at("other_environ").empty());
  CHECK(report.at("caddy_admin") != "connected");
  CHECK(report.at("write_production") != "written");
  CHECK(report.at("write_tmp") == "written");
  CHECK(report.at("write_app_data") == "written");
  CHECK(report.at("home") == report.at("app_data"));
  // Its own PID namespace: a handful of processes, numbered from 1.
  CHECK(report.at("pids").size() <= 6);
  CHECK(report.at("pids").at(0) == 1);
  if (as_root) {
    CHECK(report.at("uid") != 0);
    CHECK(report.at("uid") == report.at("gid"));
    CHECK(report.at("groups").size() <= 1);
  }
}

}  // namespace

TEST_CASE("sandbox - a build, a release and a preview reach nothing of berth or of other projects",
          "[integration][sandbox]") {
  umask_077 umask;
  temp_dir tmp;
  auto options = deploy_server_options();
  options.pass_token = false;  // berth makes <data>/token, which the apps try to read
  server srv(tmp.path(), options);
  REQUIRE(fs::exists(srv.data_dir() + "/token"));
  REQUIRE(srv.api().post("/api/projects", victim_manifest(make_probe(tmp, "victim-src"), srv)).status == 201);
  auto created = srv.api().post("/api/projects", probe_manifest("snoop", make_probe(tmp, "snoop-src"), srv));
  INFO(created.describe());
  REQUIRE(created.status == 201);
  deploy(srv, "victim");
  deploy(srv, "snoop");
  auto victim = production(srv, "victim");
  auto snoop = production(srv, "snoop");
  auto seen = get_json(snoop.at("port").get<uint16_t>(), "/");

  SECTION("the build and the production release") {
    check_confined(seen.at("build"), "build");
    check_confined(seen.at("app"), "production");
    // The build writes its workspace; the release is read-only.
    CHECK(seen.at("build").at("write_cwd") == "written");
    CHECK(seen.at("app").at("write_cwd").get<std::string>().find("Read-only") != std::string::npos);
    // The victim's own process, by its host pid: not there.
    auto environ = get_json(snoop.at("port").get<uint16_t>(), fmt::format("/environ?pid={}", victim.at("pid").get<int>()));
    CHECK(environ.at("environ") != "readable");
    // It wrote its data folder, at <project>/data/production, and it persists on the host.
    auto data = srv.projects_dir() + "/snoop/data/production";
    CHECK(fs::exists(data + "/started"));
    CHECK(seen.at("app").at("app_data") == data);
    if (as_root) {
      auto uid = recorded_uid(srv, "snoop");
      CHECK(uid >= 61184);
      CHECK(uid <= 65519);
      CHECK(seen.at("app").at("uid") == uid);
      CHECK(seen.at("build").at("uid") == uid);
      CHECK(owner_of(data + "/started") == uid);
      CHECK(recorded_uid(srv, "victim") != uid);
      CHECK(get_json(victim.at("port").get<uint16_t>(), "/").at("app").at("uid") == recorded_uid(srv, "victim"));
    }
  }

  SECTION("the preview, which may write its src") {
    auto started = srv.api().post("/api/projects/snoop/preview/start", std::string{});
    INFO(started.describe() << "\n--- server log ---\n" << srv.log());
    REQUIRE(started.status == 200);
    auto preview = get_json(started.body.at("port").get<uint16_t>(), "/");
    check_confined(preview.at("app"), "preview");
    CHECK(preview.at("app").at("write_cwd") == "written");
    CHECK(preview.at("app").at("cwd") == srv.projects_dir() + "/snoop/preview/src");
    CHECK(preview.at("app").at("app_data") == srv.projects_dir() + "/snoop/data/preview");
    if (as_root) CHECK(preview.at("app").at("uid") == recorded_uid(srv, "snoop"));
  }
}

TEST_CASE("sandbox - stopping a release stops the app inside its sandbox, gracefully, killing the sandbox kills it",
          "[integration][sandbox]") {
  umask_077 umask;
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  REQUIRE(srv.api().post("/api/projects", probe_manifest("stopper", make_probe(tmp, "src"), srv)).status == 201);
  deploy(srv, "stopper");
  auto data = srv.projects_dir() + "/stopper/data/production";
  auto before = production(srv, "stopper");
  uint16_t port = before.at("port");

  // The pid berth shows is the sandbox's: killing it takes the app with it, and the keeper
  // starts the release again on the same port (nothing of the old one holds it).
  int sandbox_pid = before.at("pid");
  REQUIRE(::kill(sandbox_pid, SIGKILL) == 0);
  REQUIRE(eventually([&] {
    auto p = production(srv, "stopper");
    return p.value("status", "") == "running" && p.value("pid", 0) != sandbox_pid && fetch(port, "/").status == 200;
  }, 30s));

  fs::remove(data + "/terminated");
  auto stopped = srv.api().post("/api/projects/stopper/production/stop", std::string{});
  INFO(stopped.describe());
  REQUIRE(stopped.status == 200);
  // The app got SIGTERM itself (it wrote its file) and nothing of it is left.
  CHECK(read_file(data + "/terminated") == "SIGTERM\n");
  CHECK(fetch(port, "/", 500ms).status == -1);
  if (as_root) CHECK(processes_of(recorded_uid(srv, "stopper"), srv.data_dir()).empty());
}

TEST_CASE("sandbox - each project gets its own uid once, it survives restarts and is freed by delete",
          "[integration][sandbox]") {
  if (!as_root) {
    WARN("not root: sandboxes keep berth's uid (user namespace), no uids are allocated");
    return;
  }
  umask_077 umask;
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--sandbox-uids", "62000-62001"}));
  auto src = make_probe(tmp, "src");
  REQUIRE(srv.api().post("/api/projects", probe_manifest("first", src, srv)).status == 201);
  REQUIRE(srv.api().post("/api/projects", probe_manifest("second", src, srv)).status == 201);
  CHECK(recorded_uid(srv, "first") == 62000);
  CHECK(recorded_uid(srv, "second") == 62001);

  // The range is used up: refused, and nothing is left behind.
  auto events = srv.event_count();
  auto third = srv.api().post("/api/projects", probe_manifest("third", src, srv));
  INFO(third.describe());
  CHECK(third.status == 409);
  CHECK(third.is_json_error());
  CHECK(third.body["error"]["message"].get<std::string>().find("62000-62001") != std::string::npos);
  CHECK(srv.event_count() == events);
  CHECK_FALSE(fs::exists(srv.projects_dir() + "/third"));

  // A restart keeps them: nothing new is recorded, and the release runs as the same uid.
  srv.restart();
  int assignments = 0;
  CHECK(recorded_uid(srv, "second", &assignments) == 62001);
  CHECK(assignments == 1);
  deploy(srv, "second");
  CHECK(get_json(production(srv, "second").at("port").get<uint16_t>(), "/").at("app").at("uid") == 62001);
  CHECK(owner_of(srv.projects_dir() + "/second/data/production") == 62001);

  // Deleting frees the uid for the next project.
  REQUIRE(srv.api().del("/api/projects/first").status == 200);
  REQUIRE(srv.api().post("/api/projects", probe_manifest("third", src, srv)).status == 201);
  CHECK(recorded_uid(srv, "third") == 62000);
}

TEST_CASE("sandbox - a project made without a uid gets one at the next start, recorded once",
          "[integration][sandbox]") {
  if (!as_root) {
    WARN("not root: no uids are allocated");
    return;
  }
  umask_077 umask;
  temp_dir tmp;
  auto src = make_probe(tmp, "src");
  {
    // As an older berth (or one with sandboxes off) made it: no uid in project_created.
    server plain(tmp.path(), deploy_server_options({"--sandbox", "off"}));
    REQUIRE(plain.api().post("/api/projects", probe_manifest("older", src, plain)).status == 201);
    CHECK(recorded_uid(plain, "older") == 0);
  }
  server srv(tmp.path(), deploy_server_options({"--sandbox-uids", "62100-62199"}));
  int assignments = 0;
  CHECK(recorded_uid(srv, "older", &assignments) == 62100);
  CHECK(assignments == 1);
  deploy(srv, "older");
  CHECK(get_json(production(srv, "older").at("port").get<uint16_t>(), "/").at("app").at("uid") == 62100);
  srv.restart();
  CHECK(recorded_uid(srv, "older", &assignments) == 62100);
  CHECK(assignments == 1);
  // A new project never gets a uid an existing one holds.
  REQUIRE(srv.api().post("/api/projects", probe_manifest("newer", src, srv)).status == 201);
  CHECK(recorded_uid(srv, "newer") == 62101);
}

TEST_CASE("sandbox - an app and its build cannot reach the proxy's admin sockets", "[integration][sandbox][proxy]") {
  std::string caddy, haproxy;
  for (const char* p : {"/usr/bin/caddy", "/usr/local/bin/caddy"})
    if (::access(p, X_OK) == 0) caddy = p;
  for (const char* p : {"/usr/sbin/haproxy", "/usr/bin/haproxy"})
    if (::access(p, X_OK) == 0) haproxy = p;
  if (caddy.empty() || haproxy.empty()) {
    WARN("caddy or haproxy is not installed: skipped");
    return;
  }
  umask_077 umask;
  temp_dir tmp;
  // HAProxy routes (its runtime API and master CLI) and Caddy fronts HTTPS (its admin API).
  server srv(tmp.path(), deploy_server_options({"--switch-mode", "proxy", "--caddy", caddy, "--haproxy", haproxy,
                                                "--sites-tls", "internal", "--proxy-http-port",
                                                std::to_string(free_port())}));
  REQUIRE(eventually([&] { return srv.health().at("proxy").value("status", "") == "running"; }, 15s));
  // The sockets are there and answer berth's user: a probe that cannot connect is confined.
  std::map<std::string, std::string> sockets{{"haproxy_admin", "/proxy/haproxy/admin.sock"},
                                             {"haproxy_master", "/proxy/haproxy/master.sock"},
                                             {"tls_front_admin", "/proxy/front/admin/caddy.sock"}};
  for (auto& [name, path] : sockets) {
    INFO(name);
    REQUIRE(eventually([&] { return fs::exists(srv.data_dir() + path); }, 10s));
  }
  REQUIRE(srv.api().post("/api/projects", probe_manifest("snoop", make_probe(tmp, "src"), srv)).status == 201);
  deploy(srv, "snoop");
  auto seen = get_json(production(srv, "snoop").at("port").get<uint16_t>(), "/");
  INFO(seen.dump(1));
  for (auto& [name, path] : sockets) {
    CHECK(seen.at("build").at(name) == "missing");
    CHECK(seen.at("app").at(name) == "missing");
  }
}
