// Following a deployment (deploy, rollback) over its event stream GET
// /api/deployments/{id}/events until it ends, shown phase by phase.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "cli/client/http_client.hpp"

namespace berth::cli {

struct watch_options {
  bool logs = false;      // show the build log lines
  bool json = false;      // print each event as {"event","data"} on its own line instead
  bool terminal = false;  // redraw the current phase's line (a spinner and its progress)
};

// Follows deployment `id` to its end (reconnecting when the stream breaks) and returns
// exit_ok when it completed (or was unchanged), else prints "<what> failed in phase P: message
// (code)" on stderr and returns exit_failed. Throws a failure when the stream is refused.
int watch_deployment(http_client& api, const std::string& id, const std::string& what, const watch_options& opts);

// A job the server just accepted (its 202 detail): prints "<what> <project>: deployment <id>"
// (or the detail as JSON with --json), then follows it as watch_deployment does.
int follow_job(http_client& api, const nlohmann::json& detail, const std::string& what, bool logs);

// `berth deploy NAME [--force]`: starts a production deploy of `name` and follows it
// (follow_job); `berth push --deploy` runs the same.
int deploy_and_follow(http_client& api, const std::string& name, bool force, bool logs);

}  // namespace berth::cli
