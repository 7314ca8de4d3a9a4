// The projects supervisor: a project:<name> child per awake project (a new project is
// dormant until a command needs its actor), plus the name index
// that makes creation and deletion atomic per name. At start it rebuilds the index from the
// log, starts the children, and reconciles leases and folders with it.
//   (check_atom, name)                  -> bool available
//   (create_atom, manifest)             -> project_view
//   (list_atom, cursor, limit)          -> project_page: live projects after `cursor` by name,
//                                          from the index (runtime/state/project_index.hpp)
//   (get_atom, name)                    -> project_view: a dormant project's from the index,
//                                          an awake one's from project:<name>
//   (update_atom, name, manifest), (preview_atom, name, action)
//                                       -> delegated to project:<name>
// Dormant projects: at start only projects where something runs or must be reconciled get
// their actor (project_index's needs_actor); any command for a dormant project starts it
// first (it folds its stream and makes its folder as at start), then delegates. Delete does
// not: nothing of a dormant project runs.
//       create and update refuse custom domains under the domain suffix (invalid_manifest)
//       or that another project has (conflict, naming it); a domain is free once its
//       project is deleted or no longer names it.
//   (events_atom, name, from, limit)    -> std::vector<event_record>
//   (delete_atom, name)                 -> bool once everything of it is gone
//   (deploy_atom, name, force), (rollback_atom, name, hash), (production_atom, name, action),
//   (plan_atom, name, plan_request)     -> delegated to project:<name>
//   (deployment_atom, id), (cancel_atom, id), (subscribe_atom, id)
//                                       -> delegated to the project the id names
//   (shutdown_atom, stop_apps, grace_ms) -> bool once every project's running job reached a
//                                          phase boundary (SIGTERM)
//   (crash_atom, name, actor)           -> std::string actor: fault injection, makes
//                                          project:<name> or one of its children throw
//   (oneshot_atom, name)                -> deployment_view: create from the configured
//                                          template, then deploy (portal style)
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/domain_index.hpp"
#include "actors/environment.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "runtime/process/uid_pool.hpp"
#include "runtime/state/project_index.hpp"

namespace berth {

enum class name_status : uint8_t { creating, live, deleting };

// How a project's actor has been failing (actors/project_parking.hpp).
struct project_failures {
  std::vector<int64_t> exits_us;  // recent abnormal exits (µs since epoch), for the backoff
  uint64_t in_a_row = 0;          // exits since it last came up
  bool broken = false;
  std::string reason;
  int64_t broken_since_us = 0, next_retry_us = 0;
  uint64_t retry_id = 0;          // the pending retry; older ones are ignored
};

struct projects_state {
  supervisor_core sup;
  std::map<std::string, name_status> index;
  std::map<std::string, project_failures> failures;
  domain_index domains;  // custom domains of the projects in `index`
  std::string data_dir;
  deploy_settings settings;
  std::shared_ptr<runtime_driver> driver;
  std::shared_ptr<backend_guards> guards;
  std::shared_ptr<berth_metrics> metrics;  // null: not measured
  std::shared_ptr<traffic_meter> meter;    // the proxy's per-upstream figures (null: no canaries)
  std::shared_ptr<project_index> projects;  // the read model every live project is in
  // Sandbox uids of the live projects, when berth is root and sandboxes (else none).
  std::optional<uid_pool> uids;
  bool loaded = false;
  static inline const char* name = "projects";
};

caf::behavior projects_actor(caf::stateful_actor<projects_state>* self, std::string data_dir,
                             deploy_settings settings, std::shared_ptr<runtime_driver> driver,
                             std::shared_ptr<backend_guards> guards, std::shared_ptr<project_index> projects,
                             std::shared_ptr<berth_metrics> metrics = nullptr,
                             std::shared_ptr<traffic_meter> meter = nullptr);

// Sets the projects gauge from the index (live and being deleted); call after changing it.
void count_projects(const projects_state& st);

}  // namespace berth
