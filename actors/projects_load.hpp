// The projects supervisor's start-up (actors/projects.hpp): the index rebuilt from the log,
// sandbox uids held again (or assigned and recorded), the children started, and folders and
// leases that belong to no live project removed.
#pragma once
#include <string>

#include "actors/projects.hpp"

namespace berth {

// The child spec of project:<name> (its environment: paths, settings, driver, sandbox uid).
child_spec project_spec(const std::string& name, const projects_state& st);

// Takes the live projects, their uids and custom domains from the project index, holds the
// uids, starts the actors of the projects that need one (the others are dormant), marks the
// state loaded, then reconciles folders and leases.
void load_projects(caf::stateful_actor<projects_state>* self);

}  // namespace berth
