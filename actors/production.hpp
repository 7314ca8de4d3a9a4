// production:<name> — runs the project's deploy and rollback jobs (one at a time: the project
// actor queues them), owns production/ and the production process, and watches that process.
// Each phase's event is durable before the phase does anything; blocking work runs on
// detached workers. Every event it appends is also sent to the parent (the project actor) as
// (committed_atom, vector<event_record>), so the project's fold stays complete.
//   (job_atom, deployment_job, manifest, uint16_t stable_port) -> std::string final status
//   (cancel_atom, std::string id)                 -> bool: it was the running job
//   (stop_atom, std::string reason)               -> bool: a process was stopped
//   (start_atom, manifest, uint16_t stable_port)  -> bool: started (false: already running)
//   (ready_atom)                                  -> bool: the start-up reconciliation is done
//   (shutdown_atom, bool stop_apps, uint32_t grace_ms) -> bool, once no job runs: the running
//        job ends at its next phase boundary (`interrupted`, compensated; after grace_ms its
//        phase is cancelled); then the release is stopped if stop_apps, else left serving
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "config/config.hpp"
#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "runtime/deploy_steps.hpp"
#include "runtime/layout.hpp"
#include "runtime/restart_policy.hpp"

namespace berth {

struct phase_step {
  phase p;
  const char* message;
  deploy_step run;
};

// The job in flight: its inputs, what it created so far, where it is in its phases.
struct production_job {
  deployment_job job;
  deploy_plan plan;
  std::shared_ptr<deploy_outcome> out = std::make_shared<deploy_outcome>();
  std::shared_ptr<deploy_log> log;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  const std::vector<phase_step>* phases = nullptr;
  size_t next = 0;
  phase current = phase::queued;
  bool timed_out = false;  // the phase outlived its timeout: it fails once its worker returns
  std::vector<new_event> pending;  // release events that go out with the next phase event
  caf::response_promise rp;
};

struct production_state {
  std::string project;
  project_paths paths;
  deploy_settings settings;
  manifest spec;
  uint16_t stable_port = 0;
  caf::actor parent;
  production_record prod;               // fold of the production events
  std::shared_ptr<production_job> job;  // null when idle
  uint64_t watch_generation = 0;        // exits reported by older watchers are expected
  // The reconciler: desired state (the fold) against the world, restarts with backoff.
  restart_tracker restarts;
  bool restart_pending = false;         // a restart is scheduled or starting
  uint64_t restart_generation = 0;      // stale scheduled restarts are ignored
  bool pass_armed = false;              // the periodic pass is scheduled
  bool probing = false;                 // a pass's health probe is out
  int failed_probes = 0;                // consecutive failed probes of the live release
  // SIGTERM: the running job stops at its next phase boundary; then shutdown_rp is answered.
  bool stopping = false;
  bool stop_apps = false;
  caf::response_promise shutdown_rp;
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);
  ~production_state() {
    alive->store(false);
    if (job) job->cancel->store(true);  // its worker stops at the next wait; a new incarnation sweeps
  }
  static inline const char* name = "production";
};

// At start it folds the project's stream and reconciles before it takes any command: processes
// left under production/ by an interrupted job are stopped, half-made folders removed, the
// production process the log says is running adopted when it is still the same process (pid +
// start time), otherwise started again. Then a periodic pass (while production should run)
// restarts a release that died or stopped answering its health check, with backoff and jitter,
// and marks a crash loop `crashed`.
caf::behavior production_actor(caf::stateful_actor<production_state>* self, std::string project,
                               project_paths paths, deploy_settings settings, manifest spec,
                               uint16_t stable_port, caf::actor parent);

}  // namespace berth
