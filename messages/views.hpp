// What actors answer about what they own: typed views. JSON is made of them only at the edge
// (http/render.hpp). They travel between local actors only (never serialised), so they are
// allowed as unsafe message types.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>

#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "messages/project_state.hpp"

namespace berth {

// production:<name>'s status (GET …/production, and the project's environments).
struct production_view {
  std::string status = "none";  // none | running | stopped | exited | crashed
  std::string current;          // the current release ("" = none yet)
  uint16_t port = 0;            // the stable port
  std::string url;              // http://127.0.0.1:<port>
  std::string public_url;       // the site's address (config/urls.hpp)
  int pid = 0;                  // while running
  size_t releases = 0;          // kept on disk
  size_t queued = 0;            // deployments waiting
  std::string running;          // the deployment running now ("" = none)
  std::string reason;           // why it stopped, exited or crashed
  uint64_t last_seq = 0;        // of the last event folded
  uint64_t events = 0;          // production events folded
  usage_view usage;             // memory and CPU of the serving release, and its limits
};

// One deployment (GET /api/deployments/{id}, the SSE stream).
struct deployment_view {
  deployment_record record;
  size_t position = 0;          // in the queue, 1 = next; 0 = not queued
  std::string url, public_url;
  std::vector<std::string> log;  // the last lines of its log (detail answers only)
  std::optional<canary_status> canary;  // live, while its canary phase runs
};

// GET …/production/history.
struct history_view {
  std::string current;
  std::string status;
  std::vector<release_record> releases;  // newest first
};

// preview:<name>'s status.
struct preview_view {
  std::string status = "stopped";  // stopped | starting | running | restarting | crashed
  uint16_t port = 0;
  std::string url, public_url, folder;
  size_t restarts = 0;             // within the crash-loop window
  int pid = 0;                     // while starting or running
  std::string reason;
  uint64_t last_seq = 0;
  uint64_t events = 0;
  usage_view usage;                // memory and CPU of the running preview, and its limits
};

// A project (GET /api/projects/{name}); environments only when asked for.
struct project_view {
  std::string name;
  manifest spec;  // secret values masked
  uint16_t production_port = 0, preview_port = 0;
  int64_t created_us = 0, updated_us = 0;
  uint64_t last_seq = 0, events = 0;  // all of the project's events
  bool with_environments = false;
  production_view production;
  preview_view preview;
  std::string production_unavailable, preview_unavailable;  // "restarting" | "unavailable" | ""
  std::string broken_reason;  // non-empty: the project is parked as broken (nothing else is known)
  int64_t broken_since_us = 0, next_retry_us = 0;
  uint64_t start_failures = 0;
  source_view source;  // workspace projects: the last recorded tree (hash empty: none yet)
};

// A project whose actor keeps failing while it starts (GET /health).
struct broken_project {
  std::string name, reason;
  int64_t since_us = 0, next_retry_us = 0;
  uint64_t start_failures = 0;
};

// The project part of a view: its record, its last event and how many it has.
project_view project_view_of(const project_record& p, uint64_t last_seq, uint64_t events);

// The preview's status view from its fold: `status` and `reason` are what its actor holds (the
// fold's own when no actor runs), `restarts` the exits within the keeper's window. Usage is
// the actor's to fill (a live measure). Shared by preview:<name> and the project index.
preview_view preview_view_of(const preview_record& rec, const std::string& status, const std::string& reason,
                             uint16_t port, std::string public_url, std::string folder, size_t restarts);

// Production's status view from its fold; `running` is the deployment running now ("" none).
// Usage is the actor's to fill. Shared by production:<name> and the project index.
production_view production_view_of(const production_record& p, uint16_t stable_port, std::string public_url,
                                   std::string running);

// GET /api/projects/{name}/state?at=: the project as its events up to `at_us` say
// (messages/replay.hpp, the folds of `berth audit replay --until`).
struct state_view {
  int64_t at_us = 0;
  project_state state;     // manifest secrets masked as in the log
  int64_t deleted_us = 0;  // when this incarnation was deleted after at_us (0: it was not)
};

// The proxy's status (GET /health, in proxy mode). No pid and no admin address: /health is
// unauthenticated, and Caddy's admin API is berth's alone.
struct proxy_view {
  std::string status;  // starting | running | restarting
  std::string engine;  // haproxy | caddy
  std::string sites_tls;  // off | acme | internal
  uint16_t http_port = 0, https_port = 0;
  size_t routes = 0, restarts = 0;
  std::string tcp_migrate_req, reason;
};

}  // namespace berth

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::production_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::deployment_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::history_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::preview_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::project_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<berth::project_view>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::proxy_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::state_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<berth::broken_project>)
