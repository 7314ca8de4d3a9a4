// project:<name> — serialises this project's commands and owns its state, which is the fold
// of the stream `project/<name>`. It supervises preview:<name> and production:<name>.
//   (get_atom)                        -> std::string project JSON (with environment status)
//   (update_atom, manifest)           -> std::string project JSON
//   (status_atom)                     -> std::string project JSON without environments
//   (deploy_atom, bool force)         -> std::string deployment detail (queued)
//   (rollback_atom, hash)             -> std::string deployment detail ("" = previous release)
//   (production_atom, action)         -> status | history | stop | start
//   (deployment_atom, id), (cancel_atom, id) -> std::string deployment detail
//   (delete_atom)                     -> std::string, once nothing of the project runs
//   (shutdown_atom, stop_apps, grace_ms) -> std::string, once the running job reached a phase
//                                        boundary; queued deployments stay queued in the log
//   (crash_atom, actor)               -> std::string: "project", "preview" or "production"
//                                        throws (fault injection; the supervisors restart it)
#pragma once
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "messages/project_state.hpp"
#include "runtime/layout.hpp"

namespace berth {

// A command waiting for production:<name>: a deployment (by id) or a stop/start.
struct queued_command {
  enum class kind : uint8_t { deployment, stop, start } what = kind::deployment;
  std::string id;                  // deployments
  caf::response_promise rp;        // stop/start: answered when done
};

struct project_actor_state {
  supervisor_core sup;
  project_state project;
  project_paths paths;
  deploy_settings settings;
  std::deque<queued_command> queue;
  bool busy = false;                              // production:<name> runs a command
  uint64_t job_generation = 0;                    // answers for an abandoned command are ignored
  caf::response_promise control_rp;               // the running stop/start's requester
  bool stopping = false;                          // berth is stopping: no new commands run
  std::string running;                            // id of the deployment it runs, if any
  std::vector<std::function<void()>> when_idle;   // run once the queue is empty and idle
  static inline const char* name = "project";
};

caf::behavior project_actor(caf::stateful_actor<project_actor_state>* self, std::string name,
                            std::string data_dir, deploy_settings settings);

}  // namespace berth
