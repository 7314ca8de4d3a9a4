// Helpers for the end-to-end docker tests: a real `berth serve` pointed at the test engine
// (scripts/dockerd.sh), the container test apps (tests/apps/container), and what the engine
// says about a project (containers, images, volumes by berth's labels), read over the Engine API.
#pragma once
#include <string>
#include <vector>

#include "runtime/docker/engine.hpp"
#include "tests/common/docker_env.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

// Every docker test starts with this: without an engine it says why and ends (ctest: skipped).
#ifndef DOCKER_OR_SKIP
#define DOCKER_OR_SKIP()                                         \
  do {                                                           \
    auto why_ = ::berth::it::docker_skip_reason();               \
    if (!why_.empty()) {                                         \
      WARN("SKIPPED: " << why_);                                 \
      return;                                                    \
    }                                                            \
  } while (0)
#endif

namespace berth::it {

// One container as the engine lists it.
struct container_info {
  std::string id, name, state, image, image_id;  // name without the leading '/'
  json labels;
};

// The test engine's view of a project, by the berth.project label.
class engine_view {
 public:
  engine_view();
  docker_engine& engine() { return engine_; }
  // Every container of the project, running or not.
  std::vector<container_info> containers(const std::string& project);
  std::vector<container_info> running(const std::string& project);
  // "berth/<project>:<tag>" tags, plus ids of untagged images labelled with the project.
  std::vector<std::string> images(const std::string& project);
  std::vector<std::string> volumes(const std::string& project);  // names (label or name prefix)
  json inspect(const std::string& container_id);  // GET /containers/{id}/json (null when gone)
  // The uid the container's main process runs as on the host (-1 when not running).
  int uid_of(const std::string& container_id);
  // Removes whatever the project left in the engine (a test's last act, pass or fail).
  void purge(const std::string& project);

 private:
  json get(const std::string& path);
  docker_engine engine_;
};

// A berth server using the test engine (--docker-host), plus the usual helpers.
struct docker_env {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  engine_view engine;
  std::vector<std::string> projects;  // purged from the engine at the end

  // `extra`: more server flags; `docker_host` "" means the test engine.
  explicit docker_env(std::vector<std::string> extra = {}, std::string docker_host = "");
  ~docker_env();
  client& api() { return srv->api(); }
  std::string project_dir(const std::string& name) { return srv->projects_dir() + "/" + name; }

  // A copy of tests/apps/container/<app> in <tmp>/<dir>; its absolute path.
  std::string copy_app(const std::string& app, const std::string& dir);
  // Puts tests/apps/container/<app>/<file> over <src>/<file>.
  void use_file(const std::string& src, const std::string& app, const std::string& file);

  json create(const json& manifest);  // requires 201; remembers the project for purge
  std::string deploy(const std::string& name);  // requires 202; the deployment id
  json deploy_done(const std::string& name);    // waits until terminal; the detail
  json deploy_ok(const std::string& name);      // requires completed
  json rollback_ok(const std::string& name);    // requires 202 then completed
  uint16_t production_port(const std::string& name);
  std::string log_tail(size_t n = 3000);
};

// A manifest for the container site app (`runtime: docker`, health on /version).
json container_manifest(const std::string& name, const std::string& src, int health_timeout_s = 10);
// The release hash of a deployment detail (resources.hash).
std::string hash_of(const json& detail);
// GET /version on the port: "v1", ... ("" when it does not answer 200).
std::string version_at(uint16_t port);

}  // namespace berth::it
