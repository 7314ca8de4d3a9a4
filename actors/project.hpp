// project:<name> — serialises this project's commands and owns its state, which is the fold
// of the stream `project/<name>`. It supervises preview:<name> and production:<name>.
//   (get_atom)                        -> std::string project JSON (with environment status)
//   (update_atom, manifest)           -> std::string project JSON
//   (status_atom)                     -> std::string project JSON without environments
#pragma once
#include <string>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"
#include "messages/project_state.hpp"
#include "runtime/layout.hpp"

namespace berth {

struct project_actor_state {
  supervisor_core sup;
  project_state project;
  project_paths paths;
  static inline const char* name = "project";
};

caf::behavior project_actor(caf::stateful_actor<project_actor_state>* self, std::string name,
                            std::string data_dir);

}  // namespace berth
