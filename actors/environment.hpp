// The two environments every project has. Each owns its folders under the project root.
// Their deploy and run logic grows here; today they keep their folders and report status.
//   (status_atom) -> std::string JSON {"env", "status", ...}
#pragma once
#include <string>

#include <caf/all.hpp>

#include "runtime/layout.hpp"

namespace berth {

struct preview_state {
  std::string project;
  project_paths paths;
  static inline const char* name = "preview";
};

struct production_state {
  std::string project;
  project_paths paths;
  static inline const char* name = "production";
};

caf::behavior preview_actor(caf::stateful_actor<preview_state>* self, std::string project,
                            project_paths paths);
caf::behavior production_actor(caf::stateful_actor<production_state>* self, std::string project,
                               project_paths paths);

}  // namespace berth
