// preview:<name> — the project's dev service. Runs the manifest's preview command on the
// project's preview port from a fresh copy of the source, health-checks it, and keeps it
// running (actors/keeper.hpp: restarts with backoff, `crashed` after too many restarts in a
// window, restarts on failed health checks; the budget is in the log).
//   (start_atom, manifest, uint16_t port)   -> preview_view once healthy
//   (restart_atom, manifest, uint16_t port) -> the same, after stopping the current process
//   (stop_atom)                             -> preview_view
//   (status_atom)                           -> preview_view
//   (update_atom, manifest)                 -> void: used by the next start
//   (delete_atom)                           -> bool once stopped and its route is gone
//   (shutdown_atom, bool stop_apps, uint32_t grace_ms) -> bool: berth stops; no more restarts
#pragma once
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/environment.hpp"
#include "actors/keeper.hpp"
#include "messages/manifest.hpp"
#include "messages/preview.hpp"
#include "messages/views.hpp"

namespace berth {

struct preview_state {
  environment env;
  manifest spec;
  uint16_t port = 0;
  preview_record rec;              // the fold of the preview's events
  std::string status = "stopped";  // stopped | starting | running | restarting | crashed
  std::string reason;              // last failure
  keeper service;
  std::vector<caf::response_promise> waiting;  // start requests until healthy
  static inline const char* name = "preview";
};

// At start it folds the project's stream: processes of the preview that are not its own are
// stopped; a preview the log says is running is adopted if it is still the same instance,
// otherwise started again.
caf::behavior preview_actor(caf::stateful_actor<preview_state>* self, environment env, manifest spec, uint16_t port);

}  // namespace berth
