// production:<name> — owns production/ and reports the current release. The deploy pipeline
// (issue 3) grows here; the preview environment is in actors/preview.
//   (status_atom) -> std::string JSON {"env", "status", ...}
#pragma once
#include <string>

#include <caf/all.hpp>

#include "runtime/layout.hpp"

namespace berth {

struct production_state {
  std::string project;
  project_paths paths;
  static inline const char* name = "production";
};

caf::behavior production_actor(caf::stateful_actor<production_state>* self, std::string project,
                               project_paths paths);

}  // namespace berth
