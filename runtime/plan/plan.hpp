// A plan: what a deploy of the project would change now, worked out without changing anything.
// The owner (production:<name>, actors/production_plan.cpp) gathers what its log says about the
// current release; this does the blocking part on a worker: the source's hash, the manifest
// differences, and with `build` a scratch build (scratch_build.hpp) diffed against the current
// release's folder. It appends no event, leases no port, and leaves no file or process behind.
// Plans of one project may run at once, and beside its deploys.
#pragma once
#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "messages/manifest.hpp"
#include "messages/plan.hpp"
#include "runtime/driver.hpp"
#include "runtime/files/layout.hpp"

namespace berth {

class backend_guards;

struct plan_inputs {
  std::string project;
  plan_request request;
  manifest spec;                 // the manifest now
  project_paths paths;
  sandbox_identity sandbox;
  std::chrono::seconds build_timeout{600};
  std::string current;           // the release production serves per the log ("" none yet)
  std::string deployed_by;       // the deployment that made it current
  nlohmann::json resources;      // that deployment's resources (deployed_with, source_hash)
  std::string current_source_hash;  // what current was built from ("" unknown)
  std::function<bool()> stopped;  // true once a scratch build must stop (its owner is gone)
};

// Never throws; what it could not find out is said in the view's notes (and build_error).
plan_view make_plan(const plan_inputs& in, runtime_driver& driver, backend_guards& guards);

}  // namespace berth
