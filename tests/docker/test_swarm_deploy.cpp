// The swarm runtime end to end: a real `berth serve` in proxy mode (its own Caddy) deploying a
// project with "runtime": "swarm" to the test engine's single-node swarm, images pushed to the
// local registry. v1, v2 (the proxy flips to the new release's port), rollback without a
// rebuild, delete. Projects are named sw-*.
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>

#include <catch2/catch.hpp>

#include "messages/event.hpp"
#include "tests/docker/docker_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

// Caddy on PATH ("" when it is not installed: the test says so and ends).
std::string caddy() {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  for (size_t at = 0; at <= path.size();) {
    auto end = path.find(':', at);
    if (end == std::string::npos) end = path.size();
    auto candidate = path.substr(at, end - at) + "/caddy";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return "";
}

// The swarm runtime needs the proxy: a berth in proxy mode over the test registry.
std::vector<std::string> swarm_server_args(uint16_t http_port) {
  return {"--switch-mode", "proxy", "--caddy", caddy(), "--proxy-http-port", std::to_string(http_port),
          "--drain-ms", "300", "--registry", test_registry()};
}

#define CADDY_OR_SKIP()                                                                  \
  if (caddy().empty()) {                                                                 \
    WARN("SKIPPED: caddy is not installed (proxy mode, which the swarm runtime needs)"); \
    return;                                                                              \
  }

json service_of(engine_view& engine, const std::string& project) {
  berth::engine_reply r;
  REQUIRE(engine.engine().call("GET", "/services/berth-" + project, nullptr, &r).is_ok());
  return r.ok() ? r.body : json();
}

uint16_t published_port(const json& service) {
  auto ports = service["Spec"]["EndpointSpec"].value("Ports", json::array());
  return ports.empty() ? 0 : ports[0].value("PublishedPort", 0);
}

// How long a phase of the deployment took, in ms (-1 when it is not there).
int64_t phase_ms(const json& d, const std::string& name) {
  for (auto& p : d.value("phases", json::array())) {
    if (p.value("phase", "") != name) continue;
    int64_t a = 0, b = 0;
    if (!berth::parse_iso8601(p.value("started", ""), a) || !p["ended"].is_string() ||
        !berth::parse_iso8601(p["ended"].get<std::string>(), b))
      return -1;
    return (b - a) / 1000;
  }
  return -1;
}

// The swarm update time of a deploy: starting (less the image's build and push) plus
// health_checking. Printed for the closing note; never asserted.
void report(const std::string& what, const json& d) {
  auto starting = phase_ms(d, "starting"), health = phase_ms(d, "health_checking");
  auto image = d["resources"].value("image_ms", int64_t{0});
  std::printf("swarm update time (%s): %lld ms (starting %lld ms of which image build+push %lld ms, "
              "health_checking %lld ms)\n",
              what.c_str(), static_cast<long long>(starting - image + health), static_cast<long long>(starting),
              static_cast<long long>(image), static_cast<long long>(health));
}

// Declared before the docker_env, so that it acts after berth was killed: the project's service
// (which the env's purge does not know) goes, then whatever its tasks left. Also before the
// test, for what a run that was killed left.
struct service_cleanup {
  std::string name;
  explicit service_cleanup(std::string n) : name(std::move(n)) { clean(); }
  ~service_cleanup() { clean(); }
  void clean() {
    try {
      engine_view view;
      berth::engine_reply r;
      view.engine().call("DELETE", "/services/berth-" + name, nullptr, &r);
      eventually([&] { return view.containers(name).empty(); }, 20s);
      view.purge(name);
    } catch (...) {
    }
  }
};

bool log_has(const json& d, const std::string& text) { return d.value("log", json::array()).dump().find(text) != std::string::npos; }

}  // namespace

TEST_CASE("swarm deploy - v1, v2 behind the proxy, rollback without a rebuild, delete leaves no service",
          "[docker][swarm][deploy]") {
  DOCKER_OR_SKIP();
  CADDY_OR_SKIP();
  auto http_port = free_port();
  auto name = std::string("sw-flow");
  service_cleanup cleanup(name);
  docker_env e(swarm_server_args(http_port));
  auto src = e.copy_app("site", "src");
  auto m = container_manifest(name, src);
  m["runtime"] = "swarm";  // no production.command: the release's Dockerfile says what runs
  m["image"] = {{"healthcheck", {"sh", "-c", "wget -q -O /dev/null http://127.0.0.1:$PORT/version"}},
                {"base", test_base_image()}};  // what the preview runs in
  m["preview"] = {{"command", {"sh", "serve.sh"}},
                  {"health", {{"path", "/version"}, {"interval_ms", 100}, {"timeout_s", 15}}}};
  m["volumes"] = {{"data", "/var/lib/app"}};  // each start appends its release: GET /cgi-bin/boots
  e.create(m);

  auto v1 = e.deploy_ok(name);
  auto h1 = hash_of(v1);
  auto stable = e.production_port(name);
  CHECK(version_at(stable) == "v1");  // through Caddy
  auto s1 = service_of(e.engine, name);
  REQUIRE(s1.is_object());
  auto p1 = published_port(s1);
  CHECK(p1 != stable);  // each release has its own port; the proxy holds the stable one
  CHECK(version_at(p1) == "v1");
  CHECK(s1["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].get<std::string>().rfind(
            test_registry() + "/berth/" + name + ":" + h1, 0) == 0);
  CHECK(s1["Spec"]["TaskTemplate"]["ContainerSpec"]["User"] != "0");
  report("v1, a new service", v1);

  // The preview is a container on berth's host (the docker runtime), not a service.
  auto preview = e.api().post("/api/projects/" + name + "/preview/start", std::string{});
  INFO(preview.describe() << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(preview.status == 200);
  CHECK(version_at(preview.body.at("port").get<uint16_t>()) == "v1");
  int previews = 0;
  for (auto& c : e.engine.running(name))
    previews += c.labels.value("berth.env", "") == "preview" && c.labels.value("berth.runtime", "") == "docker";
  CHECK(previews == 1);
  REQUIRE(e.api().post("/api/projects/" + name + "/preview/stop", std::string{}).status == 200);

  write_file(src + "/www/version", "v2\n");
  auto v2 = e.deploy_ok(name);
  auto h2 = hash_of(v2);
  CHECK(h2 != h1);
  CHECK(version_at(stable) == "v2");
  auto s2 = service_of(e.engine, name);
  CHECK(s2["ID"] == s1["ID"]);  // the same service, updated
  auto p2 = published_port(s2);
  CHECK(p2 != p1);
  CHECK(version_at(p2) == "v2");
  CHECK(eventually([&] { return version_at(p1).empty(); }, 15s));  // v1's task went
  report("v2", v2);

  // Rollback: the kept image, already in the registry: no build, no push.
  auto rb = e.rollback_ok(name);
  CHECK(hash_of(rb) == h1);
  INFO(brief(rb));
  CHECK(log_has(rb, "not rebuilt"));
  CHECK(log_has(rb, "not pushed"));
  CHECK(version_at(stable) == "v1");
  auto s3 = service_of(e.engine, name);
  CHECK(s3["ID"] == s1["ID"]);
  CHECK(s3["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"].value("berth.release", "") == h1);
  report("rollback to v1", rb);
  // One volume, kept across the releases of the service.
  auto boots = fetch(stable, "/cgi-bin/boots", 2s).body;
  CHECK(boots == h1 + "\n" + h2 + "\n" + h1 + "\n");
  auto vols = e.engine.volumes(name);  // production's, and the preview's own
  CHECK(std::count(vols.begin(), vols.end(), "berth-" + name + "-data") == 1);

  write_file(src + "/www/version", "v3\n");
  report("v3", e.deploy_ok(name));
  CHECK(version_at(stable) == "v3");

  // A release whose app exits at once: Swarm rolls the update back, the deploy fails on that
  // (not on a health check timeout) and v3 serves on.
  auto s_v3 = service_of(e.engine, name);
  write_file(src + "/serve.sh", "echo sw-broken; exit 3\n");
  auto broken = e.deploy_done(name);
  INFO(brief(broken) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(broken.value("status", "") == "failed");
  CHECK(broken["error"].value("message", "").find("exited with code 3") != std::string::npos);
  CHECK(version_at(stable) == "v3");
  CHECK(service_of(e.engine, name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"] ==
        s_v3["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]);

  // Swarm replaced each release's task itself: berth's keeper saw no release die on the way.
  auto events = e.api().get("/api/projects/" + name + "/events?limit=10000");
  REQUIRE(events.status == 200);
  auto list = events.body.is_object() ? events.body.value("events", json::array()) : events.body;
  int exits = 0;
  for (auto& ev : list) exits += ev.value("type", "") == "production_exited";
  CHECK(exits == 0);

  auto del = e.api().del("/api/projects/" + name);
  INFO(del.describe() << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(del.status == 200);
  CHECK(service_of(e.engine, name).is_null());
  CHECK(eventually([&] { return e.engine.containers(name).empty(); }, 20s));
  CHECK(e.engine.images(name).empty());
  CHECK(e.engine.volumes(name).empty());
  CHECK(version_at(stable).empty());
}

TEST_CASE("swarm deploy - kill -9 of berth mid-deploy: the candidate is rolled back, the release adopted",
          "[docker][swarm][recovery]") {
  DOCKER_OR_SKIP();
  CADDY_OR_SKIP();
  auto http_port = free_port();
  auto name = std::string("sw-crash");
  service_cleanup cleanup(name);
  docker_env e(swarm_server_args(http_port));
  auto src = e.copy_app("site", "src");
  auto m = container_manifest(name, src, 60);
  m["runtime"] = "swarm";
  m["production"]["command"] = {"sh", "serve.sh"};  // the task's Args, over the image's CMD
  e.create(m);
  auto h1 = hash_of(e.deploy_ok(name));
  auto stable = e.production_port(name);
  auto p1 = published_port(service_of(e.engine, name));

  // A candidate that runs but never answers: the service runs it while berth probes it.
  write_file(src + "/serve.sh", "exec sleep 3600\n");
  auto id = e.deploy(name);
  auto mid = wait_detail(
      e.api(), id,
      [](const json& d) { return d.value("phase", "") == "health_checking" || is_terminal_status(d.value("status", "")); },
      60s);
  REQUIRE(mid.value("phase", "") == "health_checking");
  REQUIRE(service_of(e.engine, name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"].value("berth.release", "") != h1);
  e.srv->kill9();
  e.srv->start();

  auto d = wait_done(e.api(), id, 30s);
  INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(d.value("error", json::object()).value("code", "") == "interrupted");
  // The restarted berth stopped the candidate it did not own: the service is back on v1, on
  // v1's port, and production serves it.
  auto labels = [&] { return service_of(e.engine, name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]; };
  CHECK(eventually([&] { return labels().value("berth.release", "") == h1; }, 20s));
  CHECK(labels().value("berth.port", "") == std::to_string(p1));
  CHECK(eventually([&] { return version_at(stable) == "v1"; }, 20s));
  auto prod = e.api().get("/api/projects/" + name + "/production");
  INFO(prod.describe());
  CHECK(prod.body.value("status", "") == "running");
  e.api().del("/api/projects/" + name);
  CHECK(service_of(e.engine, name).is_null());
}

TEST_CASE("swarm deploy - a release Swarm gives up restarting is recorded, and berth's keeper starts it again",
          "[docker][swarm][recovery]") {
  DOCKER_OR_SKIP();
  CADDY_OR_SKIP();
  auto http_port = free_port();
  auto name = std::string("sw-keep");
  service_cleanup cleanup(name);
  docker_env e(swarm_server_args(http_port));
  auto src = e.copy_app("site", "src");
  // Serves for 2 s, then ends: Swarm restarts it a few times, then gives up.
  write_file(src + "/serve.sh", "httpd -p \"$PORT\" -h www; sleep 2; exit 7\n");
  auto m = container_manifest(name, src);
  m["runtime"] = "swarm";
  e.create(m);
  e.deploy_ok(name);
  auto first = published_port(service_of(e.engine, name));

  auto events = [&] {
    auto r = e.api().get("/api/projects/" + name + "/events?limit=10000");
    REQUIRE(r.status == 200);
    return r.body.is_object() ? r.body.value("events", json::array()) : r.body;
  };
  json exited, restarted;
  bool seen = eventually(
      [&] {
        for (auto& ev : events()) {
          if (ev.value("type", "") == "production_exited" && exited.is_null()) exited = ev;
          if (ev.value("type", "") == "production_started" && !exited.is_null() && restarted.is_null())
            restarted = ev;
        }
        return !restarted.is_null();
      },
      90s);
  INFO("exited: " << exited.dump() << "\nrestarted: " << restarted.dump() << "\n--- server log tail ---\n"
                  << e.log_tail());
  REQUIRE(seen);
  CHECK(exited["data"].value("reason", "").find("exited with code 7") != std::string::npos);
  // The keeper's start is a service update to the same release on a new port.
  auto again = service_of(e.engine, name);
  CHECK(published_port(again) != first);
  CHECK(restarted["data"].value("port", 0) == published_port(again));
}
