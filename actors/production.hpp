// production:<name> — owns the project's production: its job queue (deploys, rollbacks and
// stop/start, one at a time in arrival order), the only fold of production's events, the runs
// of the deploy pipeline (runtime/pipeline/deploy.hpp, each on one blocking worker, reaching
// this actor through deploy_host), and the keeper of the serving release.
//
//   (deploy_atom, bool force)          -> deployment_view once `queued` is durable
//   (rollback_atom, std::string hash)  -> deployment_view ("" = the previous release)
//       Errors: conflict (no production.command; nothing to roll back to; already serving),
//       not_found (no such kept release), invalid_request (a malformed hash), unavailable
//       (berth is stopping).
//   (deployment_atom, std::string id)  -> deployment_view with the last 50 lines of its log
//   (cancel_atom, std::string id)      -> deployment_view; a queued one ends at once, a running
//       one at its next phase boundary, compensated. conflict once it has ended.
//   (plan_atom, plan_request)          -> plan_view: what a deploy would change, recording nothing
//       (runtime/plan/plan.hpp); not queued behind jobs.
//   (verdict_atom, std::string verdict, std::string id) -> deployment_view; "promote" moves
//       the canary on to 100 % now, "abort" reverts it (failed, canary_aborted). conflict when
//       the deployment is not in its canary phase.
//   (subscribe_atom, std::string id)   -> deployment_view; then the sender is sent every new
//       deployment_view and (log_lines_atom, id, lines) until the deployment ends (or it dies)
//   (status_atom) -> production_view      (history_atom) -> history_view
//   (stop_atom) / (start_atom)         -> production_view, once done (queued behind jobs)
//   (update_atom, manifest)            -> void: the project's manifest changed (proxy mode: a
//       change of its custom domains re-sends the production route with them)
//   (delete_atom)                      -> bool once nothing of production runs (queue cancelled)
//   (shutdown_atom, bool stop_apps, uint32_t grace_ms) -> bool once no job runs (SIGTERM: the
//       running job ends at its next boundary, after grace_ms at once; queued ones stay queued)
//   (ready_atom)                       -> bool: the start-up reconciliation is done
//   (crash_atom)                       -> throws (fault injection)
// Every reply is a typed view (messages/views.hpp); JSON is made of them in http/.
#pragma once
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/environment.hpp"
#include "actors/keeper.hpp"
#include "actors/production_route.hpp"
#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "messages/views.hpp"
#include "runtime/pipeline/deploy.hpp"
#include "runtime/pipeline/deploy_log.hpp"

namespace berth {

// A command waiting for its turn: a deployment (by id, its record is in the fold) or a stop/start.
struct production_command {
  enum class kind : uint8_t { deployment, stop, start } what = kind::deployment;
  std::string id;
  caf::response_promise rp;  // stop/start: answered when done
};

// The job running now.
struct running_job {
  std::string id;  // the deployment ("" for stop/start)
  std::shared_ptr<std::atomic<stop_request>> stop = std::make_shared<std::atomic<stop_request>>(stop_request::none);
  std::shared_ptr<deploy_log> log;  // deployments: its log (the last lines are in memory)
  // Someone follows it: its log lines are pushed to this actor (else they stay in the log).
  std::shared_ptr<std::atomic<bool>> followed = std::make_shared<std::atomic<bool>>(false);
  // A person's promote/abort during its canary, read by the pipeline; and where the canary
  // stands (sent by the pipeline, shown in its views).
  std::shared_ptr<std::atomic<canary_verdict>> verdict =
      std::make_shared<std::atomic<canary_verdict>>(canary_verdict::none);
  std::optional<canary_status> canary;
};

struct production_state {
  environment env;
  manifest spec;
  uint16_t stable_port = 0;
  production_record prod;  // the fold of production's events
  std::deque<production_command> queue;
  std::optional<running_job> job;
  keeper release;  // the serving release
  std::shared_ptr<production_route> route;  // proxy mode: the route, with the manifest's domains
  std::map<std::string, std::vector<caf::actor>> followers;  // deployment id -> subscribers
  std::vector<std::function<void()>> when_idle;              // delete: once nothing runs
  bool stopping = false;  // berth is stopping: no new job starts
  bool stop_apps = false;
  caf::response_promise shutdown_rp;
  ~production_state() {
    // A worker still running belongs to a dead incarnation: it stops at once and undoes
    // nothing (the next incarnation's start-up sweeps what it left).
    if (job) job->stop->store(stop_request::abandoned);
  }
  static inline const char* name = "production";
};

using production_actor_ptr = caf::stateful_actor<production_state>*;

// At start it folds the project's stream and reconciles before it takes any command (messages
// wait in the mailbox): deployments that were running end by the interruption rule, processes
// of the project that the log does not own are stopped, half-made folders removed, and the
// serving release is adopted (same identity) or restarted.
caf::behavior production_actor(production_actor_ptr self, environment env, manifest spec, uint16_t stable_port);

}  // namespace berth
