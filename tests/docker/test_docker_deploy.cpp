// The process runtime's end-to-end deploy scenarios against docker, through a real `berth
// serve` and the test engine (scripts/dockerd.sh): v1, v2, unchanged, rollback without a
// rebuild, and the failures that must never touch what serves. Projects are named dt-*.
#include <algorithm>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/docker/docker_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

std::string names_of(const std::vector<container_info>& cs) {
  std::string s;
  for (auto& c : cs) s += "\n  " + c.name + " (" + c.state + ", " + c.image + ")";
  return s.empty() ? " none" : s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += "\n  " + x;
  return s.empty() ? " none" : s;
}

bool has_phase(const json& d, const std::string& p) {
  auto ph = phase_names(d);
  return std::find(ph.begin(), ph.end(), p) != ph.end();
}

// The deployment's log shows an image build (the engine's "Step n/m" lines).
bool built_an_image(const json& d) {
  for (auto& line : d.value("log", json::array()))
    if (line.is_string() && line.get<std::string>().find("Step ") != std::string::npos) return true;
  return false;
}

// berth-<name>-production-<hash>, or that and "-<port>": the driver tells a release's
// candidate (on its spare port) from the same release on the stable port by the port.
// "" when the name is right, else the name (so that a failed CHECK shows it).
std::string misnamed(const container_info& c, const std::string& project, const std::string& hash) {
  auto base = "berth-" + project + "-production-" + hash;
  bool ok = c.name == base || (c.name.rfind(base + "-", 0) == 0 &&
                               c.name.find_first_not_of("0123456789", base.size() + 1) == std::string::npos);
  return ok ? "" : c.name + " (expected " + base + "[-<port>])";
}

// The one running container of the project; requires exactly one.
container_info serving(docker_env& e, const std::string& name) {
  auto run = e.engine.running(name);
  INFO("running containers of " << name << ":" << names_of(run));
  REQUIRE(run.size() == 1);
  return run[0];
}

// A project serving v1 of the site app; returns the v1 deployment.
json deploy_v1(docker_env& e, const std::string& name, const std::string& src) {
  e.create(container_manifest(name, src));
  auto v1 = e.deploy_ok(name);
  REQUIRE(version_at(e.production_port(name)) == "v1");
  return v1;
}

// After a failed deploy: v1 still answers from the same container, and nothing else of the
// project exists in the engine (no candidate left, running or stopped).
void check_v1_untouched(docker_env& e, const std::string& name, const container_info& v1) {
  CHECK(version_at(e.production_port(name)) == "v1");
  auto all = e.engine.containers(name);
  INFO("containers of " << name << ":" << names_of(all));
  CHECK(all.size() == 1);
  CHECK(serving(e, name).id == v1.id);
}

}  // namespace

TEST_CASE("deploy - v1, v2, unchanged, rollback starts the kept image", "[docker][deploy]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  auto v1 = deploy_v1(e, "dt-flow", src);
  auto h1 = hash_of(v1);
  REQUIRE(h1.size() == 12);
  auto port = e.production_port("dt-flow");

  // The container: named after project, env and release, labelled, not root, published on
  // loopback only.
  auto c1 = serving(e, "dt-flow");
  CHECK(misnamed(c1, "dt-flow", h1) == "");
  CHECK(c1.labels.value("berth.project", "") == "dt-flow");
  CHECK(c1.labels.value("berth.env", "") == "production");
  CHECK(c1.labels.value("berth.release", "") == h1);
  auto uid = e.engine.uid_of(c1.id);
  CHECK(uid > 0);
  auto info = e.engine.inspect(c1.id);
  REQUIRE(info.is_object());
  CHECK_FALSE(info["HostConfig"].value("Privileged", true));
  auto bindings = info["HostConfig"].value("PortBindings", json::object());
  CHECK_FALSE(bindings.empty());
  for (auto& [ctr, binds] : bindings.items())
    for (auto& b : binds) CHECK(b.value("HostIp", "") == "127.0.0.1");
  auto images1 = e.engine.images("dt-flow");
  INFO("images:" << joined(images1));
  CHECK(std::count(images1.begin(), images1.end(), "berth/dt-flow:" + h1) == 1);
  // The build's output reached the deployment's log.
  INFO(brief(v1));
  CHECK(built_an_image(v1));
  CHECK(v1.value("log", json::array()).dump().find("COPY") != std::string::npos);

  write_file(src + "/www/version", "v2\n");
  auto v2 = e.deploy_ok("dt-flow");
  auto h2 = hash_of(v2);
  CHECK(h2 != h1);
  CHECK(version_at(port) == "v2");
  auto c2 = serving(e, "dt-flow");
  CHECK(misnamed(c2, "dt-flow", h2) == "");
  CHECK(eventually([&] { return e.engine.containers("dt-flow").size() == 1; }, 10s));  // v1's is gone
  auto images2 = e.engine.images("dt-flow");
  INFO("images after v2:" << joined(images2));
  CHECK(std::count(images2.begin(), images2.end(), "berth/dt-flow:" + h1) == 1);  // kept for rollback
  CHECK(std::count(images2.begin(), images2.end(), "berth/dt-flow:" + h2) == 1);

  // Unchanged: nothing is built or started.
  auto same = e.deploy_done("dt-flow");
  INFO(brief(same));
  CHECK(same.value("status", "") == "unchanged");
  CHECK_FALSE(built_an_image(same));
  CHECK(e.engine.images("dt-flow") == images2);
  CHECK(serving(e, "dt-flow").id == c2.id);

  // Rollback: the kept v1 image, started again; no build, no new image.
  auto image_id_v1 = c1.image_id;
  auto rb = e.rollback_ok("dt-flow");
  CHECK(hash_of(rb) == h1);
  CHECK_FALSE(has_phase(rb, "building"));
  CHECK_FALSE(has_phase(rb, "preparing"));
  CHECK_FALSE(built_an_image(rb));
  CHECK(version_at(port) == "v1");
  auto c3 = serving(e, "dt-flow");
  CHECK(misnamed(c3, "dt-flow", h1) == "");
  CHECK(c3.image_id == image_id_v1);
  CHECK(e.engine.images("dt-flow") == images2);
}

TEST_CASE("deploy - without a Dockerfile the image is image.base plus the production command, limits applied",
          "[docker][deploy]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("plain", "src");
  auto m = container_manifest("dt-plain", src);
  m["image"] = {{"base", test_base_image()}, {"port", 8080}};
  m["production"]["command"] = {"sh", "serve.sh"};
  m["production"]["limits"] = {{"memory_mb", 64}, {"cpu", 0.5}, {"pids", 32}};
  e.create(m);
  auto d = e.deploy_ok("dt-plain");
  CHECK(version_at(e.production_port("dt-plain")) == "v1");
  auto c = serving(e, "dt-plain");
  CHECK(misnamed(c, "dt-plain", hash_of(d)) == "");
  // image.port: the app listens on 8080 inside, whatever the host port is.
  auto info = e.engine.inspect(c.id);
  auto env = info["Config"].value("Env", json::array()).dump();
  CHECK(env.find("\"PORT=8080\"") != std::string::npos);
  CHECK(env.find("\"HOST=0.0.0.0\"") != std::string::npos);
  CHECK(e.engine.uid_of(c.id) > 0);
  // The manifest's limits, as the engine applies them; confined, and no host folder inside.
  auto host = info["HostConfig"];
  INFO(host.dump());
  CHECK(host.value("Memory", 0LL) == 64LL << 20);
  CHECK(host.value("NanoCpus", 0LL) == 500000000LL);
  CHECK(host.value("PidsLimit", 0LL) == 32);
  CHECK(host.value("CapDrop", json::array()).dump().find("ALL") != std::string::npos);
  CHECK(host.value("SecurityOpt", json::array()).dump().find("no-new-privileges") != std::string::npos);
  for (auto& mnt : info.value("Mounts", json::array())) CHECK(mnt.value("Type", "") != "bind");
}

TEST_CASE("deploy - a failing image build fails the deploy and v1 keeps serving", "[docker][deploy]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  deploy_v1(e, "dt-badbuild", src);
  auto v1 = serving(e, "dt-badbuild");
  auto images = e.engine.images("dt-badbuild");

  e.use_file(src, "broken-build", "Dockerfile");
  auto d = e.deploy_done("dt-badbuild");
  INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(d.value("status", "") == "failed");
  // The build's own words reach the deployment's log.
  CHECK(d.value("log", json::array()).dump().find("about to fail") != std::string::npos);
  check_v1_untouched(e, "dt-badbuild", v1);
  CHECK(e.engine.images("dt-badbuild") == images);
}

TEST_CASE("deploy - an image whose command does not exist fails and v1 keeps serving", "[docker][deploy]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  deploy_v1(e, "dt-nocmd", src);
  auto v1 = serving(e, "dt-nocmd");

  e.use_file(src, "no-command", "Dockerfile");
  auto d = e.deploy_done("dt-nocmd");
  INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(d.value("status", "") == "failed");
  auto err = d.value("error", json::object());
  auto said = err.value("code", "") + " " + err.value("message", "");
  CHECK((said.find("start_failed") != std::string::npos || said.find("not_found") != std::string::npos ||
         said.find("no-such-program") != std::string::npos));
  CHECK(err.value("phase", "") == "starting");
  check_v1_untouched(e, "dt-nocmd", v1);
}

TEST_CASE("deploy - a container that never passes its health check is removed, v1 keeps serving",
          "[docker][deploy]") {
  DOCKER_OR_SKIP();
  docker_env e;
  auto src = e.copy_app("site", "src");
  e.create(container_manifest("dt-unhealthy", src, 3));
  e.deploy_ok("dt-unhealthy");
  auto v1 = serving(e, "dt-unhealthy");

  e.use_file(src, "unhealthy", "Dockerfile");
  auto d = e.deploy_done("dt-unhealthy");
  INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(d.value("status", "") == "failed");
  CHECK(d.value("error", json::object()).value("phase", "") == "health_checking");
  CHECK(eventually([&] { return e.engine.containers("dt-unhealthy").size() == 1; }, 10s));
  check_v1_untouched(e, "dt-unhealthy", v1);
}

TEST_CASE("deploy - behind the proxy a docker deploy drops no request", "[docker][deploy][proxy]") {
  DOCKER_OR_SKIP();
  if (!std::filesystem::exists("/usr/bin/caddy")) {
    WARN("SKIPPED: caddy is not installed");
    return;
  }
  docker_env e({"--switch-mode", "proxy", "--caddy", "/usr/bin/caddy", "--drain-ms", "300", "--proxy-http-port",
                std::to_string(free_port())});
  auto src = e.copy_app("site", "src");
  deploy_v1(e, "dt-proxy", src);
  auto port = e.production_port("dt-proxy");
  auto index = fetch(port, "/").body;
  REQUIRE(index.find("berth container test") != std::string::npos);

  write_file(src + "/www/version", "v2\n");
  port_watch watch(port, index);
  std::this_thread::sleep_for(100ms);  // polling before the deploy starts
  auto d = e.deploy_ok("dt-proxy");
  std::this_thread::sleep_for(200ms);  // and a moment after it ended
  watch.stop();
  auto bad = watch.bad();
  std::string said;
  for (auto& b : bad) said += "\n  " + b;
  INFO(watch.polls() << " polls; bad answers:" << said);
  CHECK(watch.polls() > 10);
  CHECK(bad.empty());
  CHECK(version_at(port) == "v2");
  CHECK(eventually([&] { return e.engine.containers("dt-proxy").size() == 1; }, 10s));
  CHECK(misnamed(serving(e, "dt-proxy"), "dt-proxy", hash_of(d)) == "");
}
