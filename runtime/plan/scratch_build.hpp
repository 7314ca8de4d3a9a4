// A deploy's preparing and building phases run for a plan, in a scratch folder of their own:
// the pipeline's own steps (runtime/pipeline: the source snapshot, the build command with the
// project's sandbox identity, build limits, build env and build timeout, its output masked),
// so that a plan builds exactly what a deploy would. Nothing is recorded, no port is leased,
// and the scratch folder (production/plan.tmp-<random>/: the workspace, the build's HOME, its
// log) is removed before the call returns, whatever happened; a crash leaves it to the next
// start's tidy-up of production/ (tidy.hpp: temporary folders). No actor code; blocks (up to the
// build timeout, plus the snapshot's own limits); safe beside a deploy or another plan of the
// same project (each has its own folder).
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "messages/manifest.hpp"
#include "messages/plan.hpp"
#include "runtime/driver.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/logs/mask.hpp"

namespace berth {

class backend_guards;

struct scratch_build_request {
  std::string project;
  manifest spec;
  project_paths paths;                            // the project's own (source, production)
  std::map<std::string, std::string> build_env;   // as a deploy's build gets it
  std::string git_credential;                     // source.credentials_secret's value ("" none)
  sandbox_identity sandbox;
  std::chrono::seconds build_timeout{600};
  secret_mask mask;                               // the project's secrets, hidden from the log
  bool build = true;                              // false: the source snapshot and its hash only
  std::function<bool()> stopped;                  // true once the plan must end now (berth stops)
  std::filesystem::path compare_with;             // the release folder to diff against ("" none)
};

struct scratch_build_result {
  std::string error_code;   // "" ok; else source_failed, source_busy, build_failed, build_timeout, package_failed …
  std::string error;
  std::string source_hash;  // what the snapshot hashed to (also when the build failed)
  std::string release_hash; // build only, no error
  std::vector<file_change> files;
  std::vector<std::string> log;  // the last lines of the scratch build's log (masked)
};

scratch_build_result scratch_build(const scratch_build_request& r, runtime_driver& driver, backend_guards& guards);

}  // namespace berth
