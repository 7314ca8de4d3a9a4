// preview:<name> — the project's dev service. Runs the manifest's preview command on the
// project's preview port from a fresh copy of the source, health-checks it, restarts it with
// exponential backoff when it dies, and marks it `crashed` after too many restarts in a window.
// Blocking work (copying, fork/exec, probing, waiting) runs in detached workers.
//   (start_atom, manifest, uint16_t port)   -> std::string status JSON once healthy
//   (restart_atom, manifest, uint16_t port) -> same, after stopping the current process
//   (stop_atom)                             -> std::string status JSON
//   (status_atom)                           -> std::string status JSON
//   (shutdown_atom, bool stop_apps)         -> bool: berth stops; no more restarts
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "config/config.hpp"
#include "messages/manifest.hpp"
#include "messages/preview.hpp"
#include "runtime/layout.hpp"
#include "runtime/restart_policy.hpp"

namespace berth {

struct preview_state {
  std::string project;
  project_paths paths;
  manifest spec;
  uint16_t port = 0;
  std::string status = "stopped";  // stopped | starting | running | restarting | crashed
  std::string reason;              // last failure
  preview_launched process;        // the process we own while starting/running
  uint64_t generation = 0;         // bumps on every launch/stop; stale worker replies are ignored
  restart_policy policy;
  restart_tracker restarts;                                    // within the crash window
  std::chrono::milliseconds pass_interval{5000};               // the reconciler's pass
  bool pass_armed = false;
  bool probing = false;
  int failed_probes = 0;                                       // in a row
  std::vector<caf::response_promise> waiting;                  // start requests until healthy
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);
  ~preview_state() { alive->store(false); }  // CAF destroys the state when the actor exits
  static inline const char* name = "preview";
};

// At start it folds the project's stream: processes under preview/ that are not the preview's
// own are stopped; a preview the log says is running is adopted if it is still the same
// process (pid + start time), otherwise started again. While it runs, a periodic pass checks
// that it is alive and answers its health check (three failures in a row restart it).
caf::behavior preview_actor(caf::stateful_actor<preview_state>* self, std::string project,
                            project_paths paths, manifest spec, uint16_t port, deploy_settings settings);

}  // namespace berth
