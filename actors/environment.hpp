// What a project's environment actors (preview:<name>, production:<name>) work with: where the
// project lives, how deploys run, the one runtime driver, the backends' breakers and the metrics
// (made once by the actor tree and shared).
#pragma once
#include <memory>
#include <string>

#include "config/config.hpp"
#include "runtime/driver.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/metrics/berth_metrics.hpp"
#include "runtime/proxy/traffic_meter.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth {

struct environment {
  std::string project;
  project_paths paths;
  deploy_settings settings;
  std::shared_ptr<runtime_driver> driver;
  std::shared_ptr<backend_guards> guards;
  sandbox_identity sandbox;  // the project's own uid/gid (0: berth's, in a user namespace)
  std::shared_ptr<berth_metrics> metrics;  // null: not measured
  std::shared_ptr<traffic_meter> meter;    // the proxy's per-upstream figures (null: no canaries)
};

}  // namespace berth
