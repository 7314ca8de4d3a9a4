// Running a release: the spec that starts it, and starting it until it answers its health
// check. Shared by the deploy pipeline (candidates, the direct switch, bringing the previous
// release back) and production's keeper (restarts, production/start). No actor code; blocking.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "messages/instance.hpp"
#include "messages/manifest.hpp"
#include "runtime/driver.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/status.hpp"

namespace berth {

class backend_guards;

struct release_launch {
  std::string project, hash;
  const manifest* spec = nullptr;  // production.command and production.health
  const project_paths* paths = nullptr;
  const std::map<std::string, std::string>* env = nullptr;  // manifest env + secrets
  uint16_t port = 0;
  sandbox_identity sandbox;  // the project's own uid/gid (runtime/driver.hpp)
  std::chrono::milliseconds probe_every{500};
  std::chrono::milliseconds stop_grace{3000};
  bool essential = false;               // an open process breaker does not refuse it
  std::function<bool()> give_up;        // stops retries and waits early
  std::function<void(const std::string&)> log;  // retry lines ("" = not logged)
};

// The circuit breaker a runtime's calls go through: "process", or "docker" (the engine, which
// serves the docker and swarm runtimes alike).
const char* backend_of(const std::string& runtime);

// The manifest's image, volumes and replicas as a driver takes them; the registry credential
// is the value of image.registry_secret in `env` (manifest env + secrets).
container_options container_options_of(const manifest& m, const std::map<std::string, std::string>& env);

// The spec that runs the release (its folder, production.command, PORT/HOST, its labels), in
// its sandbox: the release read-only, production's data folder writable.
instance_spec release_spec(const release_launch& l);

// Starts the release through its runtime's breaker (backend_of) and retry policy: transient
// failures are retried with backoff (each logged); a permanent one fails at once; an open
// breaker refuses at once unless `essential` (a backend_unavailable status). *attempts: the
// attempts made. Only the start: whether the app then gets healthy is the app's business.
status start_release(runtime_driver& driver, backend_guards& b, const release_launch& l, instance_ref* out,
                     int* attempts = nullptr);

// start_release, then probes until healthy within production.health.timeout_s; an instance
// that does not get there is stopped again and the status says how it ended.
status launch_release(runtime_driver& driver, backend_guards& b, const release_launch& l, instance_ref* out);

// How the instance is after a failed health check, once it had a moment (up to `settle`) to be
// seen ending: an app that died closed its connections just before its instance ends (a
// sandbox's bwrap exits a few ms after the app), which must read as "exited", not "refused".
instance_status after_failed_probe(const runtime_driver& driver, const instance_ref& r,
                                   std::chrono::milliseconds settle = std::chrono::milliseconds(300));

// "exited with code 3", "was killed by signal 9": how an instance that stopped ended.
std::string how_it_ended(const instance_status& end);

}  // namespace berth
