// project:<name> — owns the project's manifest (the fold of its project_* events) and
// supervises its environments, preview:<name> and production:<name>, to which it forwards
// their commands. It folds nothing of theirs.
//   (get_atom)                       -> project_view with both environments
//   (status_atom)                    -> project_view without them (the list)
//   (update_atom, manifest)          -> project_view; the environments get the new manifest
//   (source_atom, source_change)     -> source_view: a workspace change applied and recorded
//                                       (actors/project_source.hpp)
//   (preview_atom, action)           -> preview_view (start | stop | restart)
//   deploy, rollback, deployment, cancel, subscribe, status/history/stop/start of production
//                                    -> forwarded to production:<name> (see actors/production.hpp)
//   (delete_atom)                    -> bool once nothing of the project runs
//   (shutdown_atom, stop_apps, grace_ms) -> bool once the environments stopped their jobs
//   (crash_atom, actor)              -> std::string: "project", "preview" or "production" throws
//                                       (fault injection; the supervisors restart it)
#pragma once
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "actors/environment.hpp"
#include "actors/supervisor.hpp"
#include "messages/project_state.hpp"

namespace berth {

struct project_actor_state {
  supervisor_core sup;
  project_record project;
  uint64_t last_seq = 0;  // of the last project event folded
  uint64_t events = 0;    // project events since it was created
  environment env;        // handed to the environments
  // Folds one event of the stream if it is the project's own (created, updated, deleted).
  void note(const event_record& e);
  static inline const char* name = "project";
};

caf::behavior project_actor(caf::stateful_actor<project_actor_state>* self, environment env);

}  // namespace berth
