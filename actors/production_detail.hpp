// Internal to production:<name>: what its files share.
//   production.cpp       the behaviour, the fold, views and followers
//   production_jobs.cpp  the job queue and the pipeline's runs
//   production_host.cpp  deploy_host for the pipeline's worker
//   production_keep.cpp  the serving release: start-up reconciliation, keeper, stop/start
//   production_plan.cpp  plans: what a deploy would change (runtime/plan/plan.hpp)
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/production.hpp"
#include "messages/plan.hpp"

namespace berth::production_detail {

using self_ptr = production_actor_ptr;

// production.cpp
new_event event(self_ptr self, const std::string& type, const nlohmann::json& data);
// A phase event of deployment `id` (phase_event_data's payload).
new_event phase_record(self_ptr self, const std::string& id, phase p, const std::string& message,
                       const nlohmann::json& resources = nlohmann::json::object(),
                       const deployment_error* error = nullptr);
// Appends (synced unless `durable` is false), folds into the state, tells followers, then
// continues. If the log refuses, the actor quits: without the log berth cannot keep its promises.
void record(self_ptr self, std::vector<new_event> events, bool durable,
            std::function<void(const std::vector<event_record>&)> then = {});
production_view status_view(self_ptr self);
deployment_view view_of(self_ptr self, const deployment_record& d);

// production_jobs.cpp
caf::result<deployment_view> enqueue(self_ptr self, deployment_job job);
caf::result<deployment_view> cancel(self_ptr self, const std::string& id);
caf::result<deployment_view> decide_canary(self_ptr self, const std::string& verdict, const std::string& id);
caf::result<production_view> control(self_ptr self, production_command::kind what);
void pump(self_ptr self);
void log_lines(self_ptr self, const std::string& id, std::vector<std::string>& lines);
caf::result<bool> delete_all(self_ptr self);
caf::result<bool> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms);
// The rule for a deployment whose job died with berth or with this actor: completed once its
// release was activated, else failed with code `interrupted`, naming the phase it was in.
new_event interrupted_end(self_ptr self, const deployment_record& d, const std::string& what);

// production_host.cpp
// Runs the deployment `id` (in the fold, queued) on a blocking worker; `done` when it ended
// ("" or what went wrong outside the pipeline).
void run_pipeline(self_ptr self, const std::string& id, std::function<void(const std::string& failure)> done);
// The host's requests, handled in the actor.
caf::result<bool> on_record(self_ptr self, std::vector<new_event>& events, bool durable);
caf::result<std::string, instance_ref> on_serving(self_ptr self);

// production_keep.cpp
// Start-up: the interruption rule, strays, folders, adoption; then `ready`.
void reconcile_at_start(self_ptr self, std::function<void()> ready);
void init_keeper(self_ptr self);
// The keeper follows what the log says serves (after a job, at start).
void keep_what_the_log_says(self_ptr self);
// production/stop and production/start; `done` with "" or the error.
void stop_release(self_ptr self, const std::string& reason, std::function<void()> done);
void start_release_now(self_ptr self, std::function<void(const std::string& error)> done);
// The manifest changed: keeps its custom domains for the production route, re-sent (on a
// worker) when they differ.
void update_route_domains(self_ptr self);

// production_plan.cpp
// What a deploy would change now, worked out on a worker (not queued behind jobs); records
// nothing. Errors: internal when the worker fails.
caf::result<plan_view> plan(self_ptr self, const plan_request& request);

}  // namespace berth::production_detail
