#include "actors/environment.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {
// The folders are the environment's own: it recreates them when it starts, and a start that
// cannot makes it fail so its supervisor sees the problem.
void ensure_dirs(std::initializer_list<fs::path> dirs) {
  for (auto& d : dirs) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) throw std::runtime_error("cannot create " + d.string() + ": " + ec.message());
  }
}
}  // namespace

caf::behavior production_actor(caf::stateful_actor<production_state>* self, std::string project,
                               project_paths paths) {
  ensure_dirs({paths.production, paths.production_logs});
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
