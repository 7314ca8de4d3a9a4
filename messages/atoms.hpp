// CAF type IDs and atoms for every message berth's actors exchange.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "messages/deployment.hpp"
#include "messages/event.hpp"
#include "messages/manifest.hpp"
#include "messages/plan.hpp"
#include "messages/preview.hpp"
#include "messages/project_state.hpp"
#include "messages/proxy.hpp"
#include "messages/source.hpp"
#include "messages/supervision.hpp"
#include "messages/views.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(berth, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(berth, (berth::new_event))
  CAF_ADD_TYPE_ID(berth, (berth::event_record))
  CAF_ADD_TYPE_ID(berth, (std::vector<berth::new_event>))
  CAF_ADD_TYPE_ID(berth, (std::vector<berth::event_record>))
  CAF_ADD_TYPE_ID(berth, (berth::child_spec))
  CAF_ADD_TYPE_ID(berth, (berth::log_stats))
  CAF_ADD_TYPE_ID(berth, (berth::manifest))
  CAF_ADD_TYPE_ID(berth, (berth::port_assignment))
  CAF_ADD_TYPE_ID(berth, (std::vector<std::string>))
  CAF_ADD_TYPE_ID(berth, (berth::port_kind))
  CAF_ADD_TYPE_ID(berth, (berth::proxy_route))
  CAF_ADD_TYPE_ID(berth, (berth::instance_ref))
  CAF_ADD_TYPE_ID(berth, (berth::production_view))
  CAF_ADD_TYPE_ID(berth, (berth::deployment_view))
  CAF_ADD_TYPE_ID(berth, (berth::history_view))
  CAF_ADD_TYPE_ID(berth, (berth::preview_view))
  CAF_ADD_TYPE_ID(berth, (berth::project_view))
  CAF_ADD_TYPE_ID(berth, (std::vector<berth::project_view>))
  CAF_ADD_TYPE_ID(berth, (berth::proxy_view))
  CAF_ADD_TYPE_ID(berth, (berth::source_change))
  CAF_ADD_TYPE_ID(berth, (berth::source_view))
  CAF_ADD_TYPE_ID(berth, (berth::traffic_split))
  CAF_ADD_TYPE_ID(berth, (berth::canary_status))
  CAF_ADD_TYPE_ID(berth, (berth::plan_request))
  CAF_ADD_TYPE_ID(berth, (berth::plan_view))

  // event_store
  CAF_ADD_ATOM(berth, berth, append_atom, "append")
  CAF_ADD_ATOM(berth, berth, append_unsynced_atom, "appendfast")  // written in order, synced by the next append
  CAF_ADD_ATOM(berth, berth, read_stream_atom, "readstream")
  CAF_ADD_ATOM(berth, berth, read_all_atom, "readall")
  CAF_ADD_ATOM(berth, berth, last_event_atom, "lastevent")
  CAF_ADD_ATOM(berth, berth, list_streams_atom, "streams")
  CAF_ADD_ATOM(berth, berth, stats_atom, "stats")
  CAF_ADD_ATOM(berth, berth, committed_atom, "committed")

  // supervision
  CAF_ADD_ATOM(berth, berth, start_child_atom, "startchild")
  CAF_ADD_ATOM(berth, berth, terminate_child_atom, "termchild")
  CAF_ADD_ATOM(berth, berth, which_child_atom, "whichchild")
  CAF_ADD_ATOM(berth, berth, which_children_atom, "children")
  CAF_ADD_ATOM(berth, berth, restart_count_atom, "restarts")

  // projects, ports, environments
  CAF_ADD_ATOM(berth, berth, create_atom, "create")
  CAF_ADD_ATOM(berth, berth, update_atom, "update")
  CAF_ADD_ATOM(berth, berth, delete_atom, "delete")
  CAF_ADD_ATOM(berth, berth, list_atom, "list")
  CAF_ADD_ATOM(berth, berth, get_atom, "get")
  CAF_ADD_ATOM(berth, berth, check_atom, "check")
  CAF_ADD_ATOM(berth, berth, events_atom, "events")
  CAF_ADD_ATOM(berth, berth, lease_atom, "lease")
  CAF_ADD_ATOM(berth, berth, release_atom, "release")
  CAF_ADD_ATOM(berth, berth, leases_atom, "leases")
  CAF_ADD_ATOM(berth, berth, reconcile_atom, "reconcile")
  CAF_ADD_ATOM(berth, berth, status_atom, "status")
  CAF_ADD_ATOM(berth, berth, ready_atom, "ready")
  CAF_ADD_ATOM(berth, berth, crash_atom, "crash")
  CAF_ADD_ATOM(berth, berth, ping_atom, "ping")
  CAF_ADD_ATOM(berth, berth, preview_atom, "preview")
  CAF_ADD_ATOM(berth, berth, start_atom, "start")
  CAF_ADD_ATOM(berth, berth, stop_atom, "stop")
  CAF_ADD_ATOM(berth, berth, restart_atom, "restart")
  CAF_ADD_ATOM(berth, berth, launch_atom, "launch")

  // process keepers (actors/keeper.hpp)
  CAF_ADD_ATOM(berth, berth, keeper_exit_atom, "kexit")
  CAF_ADD_ATOM(berth, berth, keeper_pass_atom, "kpass")
  CAF_ADD_ATOM(berth, berth, keeper_restart_atom, "krestart")

  // production and deployments
  CAF_ADD_ATOM(berth, berth, deploy_atom, "deploy")
  CAF_ADD_ATOM(berth, berth, rollback_atom, "rollback")
  CAF_ADD_ATOM(berth, berth, production_atom, "production")
  CAF_ADD_ATOM(berth, berth, deployment_atom, "deployment")
  CAF_ADD_ATOM(berth, berth, cancel_atom, "cancel")
  CAF_ADD_ATOM(berth, berth, oneshot_atom, "oneshot")
  CAF_ADD_ATOM(berth, berth, shutdown_atom, "shutdown")    // berth is stopping (SIGTERM)
  CAF_ADD_ATOM(berth, berth, history_atom, "history")
  CAF_ADD_ATOM(berth, berth, subscribe_atom, "subscribe")  // follow a deployment (pushed updates)
  CAF_ADD_ATOM(berth, berth, log_lines_atom, "loglines")   // lines of a deployment's log
  CAF_ADD_ATOM(berth, berth, record_atom, "record")        // the deploy pipeline's events
  CAF_ADD_ATOM(berth, berth, serving_atom, "serving")      // the release serving, for a switch
  CAF_ADD_ATOM(berth, berth, job_done_atom, "jobdone")
  CAF_ADD_ATOM(berth, berth, fail_atom, "fail")            // fault injection

  // proxy
  CAF_ADD_ATOM(berth, berth, route_atom, "route")
  CAF_ADD_ATOM(berth, berth, unroute_atom, "unroute")
  CAF_ADD_ATOM(berth, berth, canary_atom, "canary")         // (canary_atom, route id, traffic_split) -> bool

  // failure containment (actors/project_parking.hpp)
  CAF_ADD_ATOM(berth, berth, project_up_atom, "projup")     // project:<name> came up
  CAF_ADD_ATOM(berth, berth, retry_project_atom, "projretry")
  CAF_ADD_ATOM(berth, berth, broken_atom, "broken")         // -> std::vector<broken_project>

  // workspace sources (messages/source.hpp)
  CAF_ADD_ATOM(berth, berth, source_atom, "source")         // (source_atom, name, source_change) -> source_view

  // progressive delivery
  CAF_ADD_ATOM(berth, berth, verdict_atom, "verdict")       // (verdict_atom, deployment id, "promote"|"abort") -> deployment_view
  CAF_ADD_ATOM(berth, berth, canary_live_atom, "canarylive")  // (canary_live_atom, id, canary_figures) from the pipeline
  CAF_ADD_ATOM(berth, berth, plan_atom, "plan")             // (plan_atom, name, plan_request) -> plan_view
CAF_END_TYPE_ID_BLOCK(berth)
