#include "actors/environment.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth {

namespace fs = std::filesystem;


caf::behavior production_actor(caf::stateful_actor<production_state>* self, std::string project,
                               project_paths paths) {
  // The folders are the environment's own: a start that cannot make them fails, so its
  // supervisor sees the problem.
  if (auto s = make_dirs({paths.production, paths.production_logs}); !s)
    throw std::runtime_error(s.message());
  self->state.project = std::move(project);
  self->state.paths = std::move(paths);
  return {
      [=](status_atom) {
        std::error_code ec;
        auto current = fs::read_symlink(self->state.paths.production / "current", ec);
        nlohmann::json j{{"env", "production"},
                         {"status", ec ? "none" : "stopped"},
                         {"folder", self->state.paths.production.string()},
                         {"current", ec ? nlohmann::json(nullptr) : nlohmann::json(current.string())}};
        return j.dump();
      },
      [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); },
  };
}

}  // namespace berth
