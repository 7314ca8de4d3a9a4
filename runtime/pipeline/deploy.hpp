// The production deploy as one function, read top to bottom as its phases (deploy.cpp):
// prepare the source, build, package, start the candidate, check its health, switch, drain,
// complete. A rollback is the same function entered at "start the candidate". It runs on one
// blocking worker; every step that creates something registers its undo, and a failure or a
// cancel unwinds them newest first. No actor code: it reaches its owner (production:<name>)
// only through deploy_host, so it can be driven by a fake in unit tests.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "messages/deployment.hpp"
#include "messages/event.hpp"
#include "messages/instance.hpp"
#include "messages/manifest.hpp"
#include "messages/proxy.hpp"
#include "runtime/driver.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/status.hpp"

namespace berth {

class backend_guards;
class berth_metrics;
class deploy_log;
class traffic_meter;

// The release serving when the switch begins (instance empty: production is down).
struct serving_release {
  std::string hash;
  instance_ref instance;
};

// A person's decision during a canary (POST /api/deployments/{id}/promote|abort).
enum class canary_verdict : uint8_t { none, promote, abort };

// Why the owner wants the deploy to stop.
enum class stop_request : uint8_t {
  none,
  cancel,        // a cancel request: waits give up now, the deploy ends `cancelled`
  shutdown,      // berth is stopping: the deploy ends `interrupted` at the next phase boundary
  shutdown_now,  // the shutdown grace is over: waits give up now too
  abandoned,     // the owner is gone: stop at once and undo nothing (its successor sweeps)
};

// What the pipeline needs from its owner; production:<name> implements it
// (actors/production_host.cpp). Every method may be called from the deploy's worker thread.
class deploy_host {
 public:
  virtual ~deploy_host() = default;
  // Appends `events` to the project's stream, in order, after everything recorded before.
  // durable: returns once they (and all before them) are synced; an error means the log refused.
  virtual status record(std::vector<new_event> events, bool durable) = 0;
  // Whether the deploy should stop, and how (see stop_request). Cheap: polled inside waits.
  virtual stop_request stop_requested() const = 0;
  // The release serving now. From this call on its exit is the deploy's doing (the owner stops
  // watching it) until the deploy's outcome is recorded.
  virtual serving_release serving() = 0;
  // Proxy mode: points the project's production route at 127.0.0.1:<port> and returns once
  // Caddy serves it; port 0 takes the route away (nothing serves: nobody is sent to a port
  // that berth gave back).
  virtual status set_route(uint16_t port) = 0;
  // Proxy mode: sends split.percent % of the production route's requests to split.port (the
  // candidate), the rest staying with the route's upstream; split.port 0 ends the split. Returns
  // once the proxy serves it; io_error when it did not take it. A later set_route ends it too.
  virtual status set_split(const traffic_split& split) = 0;
  // What a person decided about the canary (none until someone does). Cheap: polled.
  virtual canary_verdict operator_verdict() const = 0;
  // Where the canary stands now, for those watching the deployment live (not recorded).
  virtual void canary_progress(const canary_status& now) = 0;
  // A spare port for a candidate, leased so that nothing else takes it; and giving one back.
  virtual status lease_port(uint16_t* port) = 0;
  virtual void release_port(uint16_t port, const std::string& why) = 0;
};

// The job's inputs, fixed when it starts.
struct deploy_inputs {
  std::string project, id;   // id: the deployment ("<project>.<seq>")
  job_kind kind = job_kind::deploy;
  bool force = false;
  std::string target;        // rollback: the kept release to start
  manifest spec;
  project_paths paths;
  std::map<std::string, std::string> env;  // manifest env + secrets; PORT/HOST added per start
  std::map<std::string, std::string> build_env;  // manifest env + only the secrets build.secrets names
  std::string git_credential;  // the value of source.credentials_secret ("" none); never logged
  uint16_t stable_port = 0;
  sandbox_identity sandbox;  // the project's own uid/gid for its build and releases
  std::string current;       // what production/current pointed at when the job started
  std::map<std::string, release_record> releases;  // kept releases then (for retention)
  std::vector<std::string> in_use;                 // releases retention must keep
  bool proxy = false;        // traffic moves through the proxy (else the stable port is handed over)
  // Why production.canary cannot run here ("" when it can): the stable port is handed over
  // (no proxy), or the proxy engine cannot split traffic or measure it (Caddy).
  std::string canary_unavailable;
  std::chrono::seconds build_timeout{600};
  std::chrono::seconds phase_timeout{300};  // phases without a limit of their own
  std::chrono::milliseconds stop_grace{3000};
  std::chrono::milliseconds drain{30000};   // proxy mode: how long the old release keeps running
};

// What the pipeline drives; owned elsewhere, thread-safe.
struct deploy_tools {
  runtime_driver& driver;
  backend_guards& guards;
  deploy_log& log;
  berth_metrics* metrics = nullptr;  // the health check's duration (null: not measured)
  traffic_meter* meter = nullptr;    // the proxy's per-upstream figures (null: no canary possible)
};

// The environment of every production process: the manifest's env, every secret, and who it is
// (BERTH_PROJECT, BERTH_ENV=production; PORT/HOST are added per start). The build's is the same
// with only the secrets build.secrets names. Pure.
std::map<std::string, std::string> release_environment(const manifest& spec, const std::string& project,
                                                       const std::map<std::string, std::string>& secrets);
std::map<std::string, std::string> build_environment(const manifest& spec, const std::string& project,
                                                     const std::map<std::string, std::string>& secrets);

// Runs the deploy (or rollback) to its end and records that end durably: completed,
// unchanged, failed or cancelled (`interrupted` is failed with that code). Returns the end.
// Blocking; never throws. If the log refuses the final record, returns failed.
phase run_deploy(deploy_host& host, const deploy_tools& tools, const deploy_inputs& in);

}  // namespace berth
