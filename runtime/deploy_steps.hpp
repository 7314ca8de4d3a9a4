// The blocking work of each production deploy phase, and its compensation. No actor code:
// production:<name> runs one step at a time on a detached worker and owns the ordering,
// the events and cancellation. Every step is bounded in time (build and health checks by
// their timeouts, process stops by the grace period, git by its timeout).
//
// Direct switch mode (no proxy): the candidate runs on a spare port until it is healthy;
// only then is the release serving the stable port stopped, and the new release started on
// the stable port and probed every 10 ms. The gap is the time from that stop to the first
// healthy answer. If the new release does not come up there, the old one is started again.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "messages/manifest.hpp"
#include "runtime/layout.hpp"
#include "runtime/process_driver.hpp"
#include "runtime/status.hpp"

namespace berth {

// A release's process: which release, which process, on which port.
struct release_process {
  std::string hash;
  process_handle handle;  // pid 0: none
  uint16_t port = 0;
  bool running() const { return handle.pid > 0; }
};

// Appends timestamped lines to a deployment's log file (build output goes to the same file).
class deploy_log {
 public:
  explicit deploy_log(std::filesystem::path file) : file_(std::move(file)) {}
  void line(const std::string& text);
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::mutex mu_;
};

// The job's inputs, fixed when it starts.
struct deploy_plan {
  std::string project, id;
  manifest spec;
  project_paths paths;
  std::map<std::string, std::string> env;  // manifest env + secrets + BERTH_*; PORT/HOST added per start
  bool force = false;
  std::string target;         // rollback: the release to start (no build)
  std::string current;        // what production/current pointed at when the job started
  release_process serving;    // the process serving the stable port then (pid 0: none)
  uint16_t stable_port = 0;
  uint16_t candidate_port = 0;
  std::chrono::seconds build_timeout{600};
  std::chrono::milliseconds stop_grace{3000};
  std::function<bool()> cancelled;  // polled inside long waits (health checks)
  // Proxy mode: points the stable port and the host at 127.0.0.1:<port> (blocking; the actor
  // provides it) and how long the old release keeps running after that.
  bool proxy = false;
  std::function<status(uint16_t upstream_port)> set_route;
  std::chrono::milliseconds drain{30000};
};

// What the steps created and learnt; compensation reads it to undo in reverse order.
struct deploy_outcome {
  std::filesystem::path workspace;  // build dir (removed at the end either way)
  std::string hash;
  bool packaged_new = false;  // this job created production/<hash>
  bool unchanged = false;
  release_process candidate;  // on the spare port
  release_process promoted;   // the new release on the stable port
  bool old_stopped = false;   // plan.serving was stopped by the switch
  bool switched = false;      // promoted serves and `current` points at hash
  bool route_requested = false;  // proxy mode: the proxy was asked to send traffic to the candidate
  // App boot times run from just before fork/exec to the first healthy answer.
  std::chrono::steady_clock::time_point candidate_started;
  int64_t build_ms = -1, candidate_boot_ms = -1, promote_boot_ms = -1, gap_ms = -1;
  // The last step's failure ("" = ok) and a one-line message.
  std::string error_code, message;
  nlohmann::json resources(const deploy_plan& plan) const;
};

using deploy_step = void (*)(const deploy_plan&, deploy_outcome&, deploy_log&);

void prepare_source(const deploy_plan&, deploy_outcome&, deploy_log&);   // preparing
void run_build(const deploy_plan&, deploy_outcome&, deploy_log&);        // building
void package_artifacts(const deploy_plan&, deploy_outcome&, deploy_log&);  // packaging
// starting: out.hash (packaged, or a rollback's target) on plan.candidate_port.
void start_candidate(const deploy_plan&, deploy_outcome&, deploy_log&);
void check_candidate(const deploy_plan&, deploy_outcome&, deploy_log&);  // health_checking
void switch_traffic(const deploy_plan&, deploy_outcome&, deploy_log&);   // switching (direct)
void drain(const deploy_plan&, deploy_outcome&, deploy_log&);            // draining (direct)
// Proxy mode: the candidate keeps its port and becomes the release; the proxy's upstream flips
// to it (no gap); the old release drains for plan.drain, then stops. A release still serving
// the stable port directly (berth was in direct mode) is stopped first, as it holds the port.
void switch_through_proxy(const deploy_plan&, deploy_outcome&, deploy_log&);
void drain_after_proxy_switch(const deploy_plan&, deploy_outcome&, deploy_log&);

// Undoes what `out` says was created, newest first: the new process on the stable port (and
// the old release brought back there), the candidate, a release folder this job packaged,
// the workspace. Never touches a release that was current before the job.
void compensate(const deploy_plan&, deploy_outcome&, deploy_log&);

// Starts `hash` from its release folder on `port` and waits until it is healthy (probing
// every `interval`). ok -> *out filled; otherwise the process is stopped and the error says why.
// The start goes through the "process" backend's breaker and retry policy (call_backend in
// runtime/breaker.hpp; retries are logged to `log` when given): an open breaker refuses it
// with a backend_unavailable status unless `essential` (bringing back the previous release).
status start_release(const deploy_plan& plan, const std::string& hash, uint16_t port,
                     std::chrono::milliseconds interval, release_process* out, deploy_log* log = nullptr,
                     bool essential = false);

// The environment every production process gets (without PORT/HOST).
std::map<std::string, std::string> production_env(const manifest& spec, const project_paths& paths,
                                                  const std::string& project);

// Removes release folders (never the current one); returns those removed.
std::vector<std::string> prune_releases(const project_paths& paths, const std::vector<std::string>& hashes);

}  // namespace berth
