// Internal to runtime/pipeline: one deploy in flight, as the steps see it. deploy.cpp reads as
// the story; the steps (source_steps.cpp, release_steps.cpp, switch.cpp) do the work.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/pipeline/deploy.hpp"
#include "runtime/pipeline/deploy_log.hpp"
#include "runtime/pipeline/launch.hpp"
#include "runtime/release/snapshot_record.hpp"

namespace berth::pipeline {

using clock_type = std::chrono::steady_clock;

// A step failed: the deploy rolls back and ends with this code and message.
struct failure {
  std::string code;  // build_failed, health_check_failed, switch_failed, cancelled, timeout …
  std::string message;
};

// Undo actions, registered as each resource is created and run newest first on failure.
class undo_stack {
 public:
  void push(std::string what, std::function<void()> undo) { items_.push_back({std::move(what), std::move(undo)}); }
  // Runs every action newest first; one that throws is logged and the rest still run.
  void unwind(deploy_log& log);
  // The deploy is committed (its release serves): nothing is undone any more.
  void clear() { items_.clear(); }

 private:
  std::vector<std::pair<std::string, std::function<void()>>> items_;
};

struct job {
  deploy_host& host;
  const deploy_tools& tools;
  const deploy_inputs& in;
  undo_stack undo;
  phase current = phase::queued;
  bool committed = false;  // the release was activated: a late cancel changes nothing
  bool sealed = false;     // ... and that is durable: nothing is undone any more
  clock_type::time_point deadline = clock_type::time_point::max();  // of the running phase
  clock_type::time_point candidate_started;                          // its fork/exec, for its boot time
  // A release this deploy packaged: made durable in the background (while the candidate boots)
  // and recorded (release_packaged) only when it is activated.
  std::string packaged;
  std::future<status> packaged_synced;
  snapshot_record sources;  // what preparing copied from where: packaging skips what it proves unchanged
  nlohmann::json resources = nlohmann::json::object();  // hash, ports, pids, timings: in each phase event
  // Resources for the next phase event only (the fold keeps them): large ones, such as what the
  // deploy ran with, need not ride along in every later event.
  mutable nlohmann::json once = nlohmann::json::object();
  std::vector<new_event> pending;                        // recorded with the next phase event

  deploy_log& log() const { return tools.log; }
  // True once waits should give up: a cancel, the end of the shutdown grace, or the time limit
  // of the running phase.
  bool give_up() const;
  // Logs and throws failure{code, message}.
  [[noreturn]] void fail(const std::string& code, const std::string& message) const;
  // Throws the failure that says why the deploy stops: cancelled, interrupted (berth is
  // stopping) or timeout (the phase's time limit).
  [[noreturn]] void gave_up() const;
  // An event of this project, kept until the next record.
  void add_event(const std::string& type, const nlohmann::json& data);
  // Records the pending events plus `events`; throws failure("internal", …) if the log refuses.
  void record(std::vector<new_event> events, bool durable);
  new_event phase_event(phase p, const std::string& message, const deployment_error* error = nullptr) const;
};

// Waits for an instance to end, through the driver's exit notification.
class exit_watch {
 public:
  exit_watch(runtime_driver& driver, const instance_ref& r);
  ~exit_watch();
  exit_watch(const exit_watch&) = delete;
  exit_watch& operator=(const exit_watch&) = delete;
  // How it ended, once it has; nullopt when `timeout` passed first.
  std::optional<instance_status> wait_for(std::chrono::milliseconds timeout);

 private:
  struct state {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<instance_status> end;
  };
  runtime_driver& driver_;
  std::shared_ptr<state> st_ = std::make_shared<state>();
  uint64_t token_ = 0;
};

// Milliseconds and microseconds since t0 (whole ms in *_ms resources; *_us for benches).
int64_t ms_since(clock_type::time_point t0);
int64_t us_since(clock_type::time_point t0);
// resources[name_ms] and resources[name_us] from a start time.
void record_duration(job& j, const std::string& name, clock_type::time_point t0);

// ---- steps (source_steps.cpp) ----
// preparing: the source snapshot in a fresh build workspace, removed when the deploy ends.
std::filesystem::path prepare_source(job& j);
// building: build.command in the workspace, its output streamed into the deploy log.
void build(job& j, const std::filesystem::path& workspace);
// packaging: the artifacts' hash, and production/<hash>/ when it is new (undo: removed).
std::string package(job& j, const std::filesystem::path& workspace);
// activation: the new release's folder is durable and release_packaged joins release_activated.
void record_packaged(job& j);
// The release is what production/current already is and the deploy is not forced.
bool is_unchanged(const job& j, const std::string& hash);

// ---- steps (release_steps.cpp) ----
// How this job runs release `hash` on `port` (runtime/pipeline/launch.hpp).
release_launch launch_of(job& j, const std::string& hash, uint16_t port);
// starting: the release's artifact (an image for containers; built unless it is there).
void prepare_artifact(job& j, const std::string& hash);
// starting: `hash` on a leased spare port (undo: stopped, port given back).
instance_ref start_candidate(job& j, const std::string& hash);
// health_checking: healthy within timeout_s, then healthy for min_healthy_s.
void check_health(job& j, const instance_ref& candidate);
void stop_instance(job& j, const instance_ref& r, const std::string& what);

// ---- the canary (canary.cpp) ----
// Whether this deploy runs a canary: production.canary is set, it is a deploy (a rollback goes
// back at once), and a release serves through the proxy to compare the candidate with.
bool wants_canary(const job& j, const serving_release& old);
// canary: steps[i] % of requests to the candidate, each step judged (canary.hpp); returns when
// every step passed or a person promoted it (the switch then moves the rest). A breach, an
// abort, a cancel or too little traffic with on_no_traffic "fail" sends every request back to
// the serving release at once (undo registered before the first split) and fails the deploy.
void run_canary(job& j, const instance_ref& candidate, const serving_release& old);

// ---- the switch (switch.cpp): direct (hand the stable port over) or through the proxy ----
class switcher {
 public:
  virtual ~switcher() = default;
  virtual std::string switch_message() const = 0;
  virtual std::string drain_message() const = 0;
  // Moves traffic from `old` to release `hash` (running as `candidate`); returns the instance
  // that serves now. Registers the undo of each change it makes.
  virtual instance_ref switch_to(job& j, const std::string& hash, const instance_ref& candidate,
                                 const serving_release& old) = 0;
  // After the release was activated: what served before, and what is left of the candidate,
  // stop (the proxy lets the old release drain first).
  virtual void drain(job& j, const instance_ref& candidate, const serving_release& old) = 0;
};
std::unique_ptr<switcher> make_switcher(const deploy_inputs& in);

// ---- retention (release_steps.cpp) ----
// Removes the releases retention no longer keeps (never `hash`, the one now current);
// their release_pruned events ride with the outcome.
void prune(job& j, const std::string& hash);

}  // namespace berth::pipeline
