// The project actor's job queue: deploys, rollbacks and production stop/start run one at a
// time in arrival order (no global lock: each project has its own queue). Deployments are
// events first (`deployment_queued`), so a restarted project actor finds its queue again in
// the log. Internal to actors/project.cpp.
#pragma once
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/project.hpp"

namespace berth::project_jobs {

using self_ptr = caf::stateful_actor<project_actor_state>*;

// After the fold at start: queued deployments go back into the queue; one that was running
// when berth stopped is recorded as failed with code `interrupted`.
void resume(self_ptr self);

caf::result<std::string> deploy(self_ptr self, bool force);
caf::result<std::string> rollback(self_ptr self, const std::string& hash);
caf::result<std::string> production(self_ptr self, const std::string& action);
// {env, status, current, port, url, public_url, pid, …} from the fold.
nlohmann::json production_status(self_ptr self);
caf::result<std::string> detail(self_ptr self, const std::string& id);
caf::result<std::string> cancel(self_ptr self, const std::string& id);
// production:<name> was restarted by its supervisor: the command it was running is over (a
// deployment ends `interrupted`, a stop/start gets an error); the queue moves on.
void production_restarted(self_ptr self);
// SIGTERM: no new command starts (queued deployments stay queued in the log, for the next
// start); the running one ends at its next phase boundary; the apps stop only if asked.
caf::result<std::string> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms);
// Events a child appended: folded into the project's state.
void committed(self_ptr self, const std::vector<event_record>& events);
// Cancels everything queued and running, waits for the running job, stops production and the
// preview. Replies once nothing of the project runs any more.
caf::result<std::string> stop_everything(self_ptr self);

}  // namespace berth::project_jobs
