// Helpers for the canary tests (test_canary.cpp): a real `berth serve --switch-mode proxy
// --proxy-engine haproxy` with one project made from tests/apps/canary and deployed at release 1
// (good), candidates deployed with production.canary, kept-alive GET clients on the stable
// port, and the deployment's canary_step events. Every wait is bounded.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/traffic_support.hpp"

namespace berth::it {

// Canaries need HAProxy (Caddy can neither split by weight nor measure each upstream).
bool have_haproxy();

// A copy of tests/apps/canary in <tmp>/<dir> with VERSION and MODE (good | fail20 | slow300)
// written; returns its absolute path. set_canary_app rewrites them in place.
std::string make_canary_app(const temp_dir& tmp, const std::string& dir, const std::string& version,
                            const std::string& mode);
void set_canary_app(const std::string& src, const std::string& version, const std::string& mode);

// The app's manifest: build into dist/, a quick health check, and production.canary = `canary`
// unless it is null.
json canary_manifest(const std::string& name, const std::string& src, const json& canary = nullptr);

// What "release <version> <mode>" GET / answers with.
std::string answer_of(const std::string& version, const std::string& mode);

// berth in proxy mode (HAProxy) with project `name` from tests/apps/canary deployed at
// release 1, mode good: created with production.canary set, which a first deploy skips
// (nothing serves to compare it with).
struct canary_env {
  temp_dir tmp;
  uint16_t http_port = free_port();
  std::unique_ptr<server> srv;
  std::string name = "canary-app";
  std::string src;
  uint16_t stable = 0;  // the project's stable production port
  json first;           // release 1's deployment

  explicit canary_env(std::vector<std::string> extra_args = {});
  client& api() { return srv->api(); }
  std::string log_tail(size_t n = 4000) const;

  // Sets production.canary (PUT the manifest; null = none) and the source's VERSION and MODE,
  // then starts a deploy; returns its id.
  std::string deploy(const std::string& version, const std::string& mode, const json& canary);
  // Waits (generously) for the deployment's end.
  json finish(const std::string& id, std::chrono::seconds limit = std::chrono::seconds(120));
  // Waits until the deployment is in its canary phase with its first split on; returns the
  // detail (its `canary` the live figures).
  json wait_split(const std::string& id);
  // The release's pid as production reports it (0 when none).
  pid_t production_pid();
  // The project's events, and the canary_step events of deployment `id` ({type, ts_us, data,
  // ...}), in order.
  json events();
  std::vector<json> canary_steps(const std::string& id);
  // The event of `type` of deployment `id` (null when none).
  json deployment_event(const std::string& id, const std::string& type);
  // `n` GETs through the stable port, each on a new connection: how many answered `body`; the
  // others are described in *bad (when given).
  int answers(int n, const std::string& body, std::vector<std::string>* bad = nullptr);
};

// Whether `pid` still runs (a zombie counts as gone).
bool alive(pid_t pid);

}  // namespace berth::it
