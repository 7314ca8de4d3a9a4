// Failure containment for the projects supervisor: a project actor that dies is never
// restarted in a tight loop. Each death is parked and retried after a full-jitter exponential
// delay (runtime/resilience/restart_policy, capped by --restart-max-ms); a project that dies
// twice in a row before it came up is `broken` (a project_broken event with the reason, shown
// by GET /api/projects/{name}, the list and /health) until a retry comes up (project_recovered).
// A broken project therefore never escalates to berth's root supervisor.
#pragma once
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/projects.hpp"
#include "messages/views.hpp"

namespace berth {

using projects_self = caf::stateful_actor<projects_state>*;

// Installs the failure hook on the projects supervisor. Call once after sup.init.
void park_failing_projects(projects_self self);

// project:<name> reports that it folded its stream and made its folder: the start
// failures in a row end, and a broken project is ok again (an event).
void project_came_up(projects_self self, const std::string& name);

// Scheduled retry `retry_id` of a parked project: starts it again unless it was deleted or
// retried meanwhile.
void retry_parked(projects_self self, const std::string& name, uint64_t retry_id);

// Forgets a deleted project's failures (a pending retry becomes a no-op).
void forget_failures(projects_self self, const std::string& name);

// The project's broken state, if it is broken (for its GET and the list).
bool broken_view(projects_self self, const std::string& name, project_view& out);

// Every broken project (for /health).
std::vector<broken_project> broken_projects(projects_self self);

}  // namespace berth
