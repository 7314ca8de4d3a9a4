// The project manifest (DESIGN.md) and the name rule. Parsing is strict: unknown fields,
// wrong types and out-of-range numbers are errors, so nothing half-valid reaches an actor.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

#include "messages/limits.hpp"

namespace berth {

struct name_check {
  bool valid = false;
  std::string reason;  // empty when valid
};
// DNS label, 3-63 chars, [a-z][a-z0-9-]*[a-z0-9], not reserved.
name_check check_name(const std::string& name);

struct health_spec {
  std::string path = "/";
  int timeout_s = 60;
  int interval_ms = 500;
  int min_healthy_s = 0;
};

// production.canary: the candidate gets steps[i] % of requests, each step watched for interval_s
// and compared with the serving release as the proxy measured both (README "Canary releases").
// Absent (no steps): all traffic moves at once, as before.
struct canary_spec {
  std::vector<int> steps;         // ascending percentages in 1-99; empty = no canary
  int interval_s = 30;            // how long a step is watched before the next one
  int min_requests = 100;         // the candidate's requests a step needs for a verdict
  double max_error_rate = 0.01;   // how far the candidate's error rate may exceed the serving's
  double max_p99_ratio = 1.5;     // the candidate's p99 may be this many times the serving's...
  int p99_slack_ms = 20;          // ...or this many ms above it, whichever is more
  std::string on_no_traffic = "promote";  // a step that ends under min_requests: promote | fail
  bool sticky = false;            // a client keeps the side it first got (cookie berth_canary)
  bool enabled() const { return !steps.empty(); }
};

struct manifest {
  std::string name;
  std::string source_path;  // exactly one of source_path / source_git / source_workspace
  std::string source_git;
  std::string source_ref;   // git only; default "main"
  // source.workspace: preview/src is the source (edited live, uploaded, shipped as it is),
  // seeded once at create time from seed_path or seed_git @ seed_ref when given.
  bool source_workspace = false;
  std::string seed_path, seed_git, seed_ref;
  std::string source_credentials_secret;  // git over http(s) only: the secret holding the credential
  std::vector<std::string> preview_command;
  health_spec preview_health;
  std::vector<std::string> build_command;
  std::vector<std::string> artifacts;
  std::vector<std::string> build_secrets;  // the only secrets the build gets (names of `secrets`)
  std::vector<std::string> production_command;
  health_spec production_health;
  int keep = 5;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> secrets;  // values never enter events or responses
  resource_limits preview_limits, build_limits, production_limits;  // as given (0 = default)
  // Which runtime driver runs the preview and the releases: "process" | "docker" | "swarm".
  std::string runtime = "process";
  // Container runtimes (docker, swarm) only; refused with "process".
  std::string image_base;                      // image.base: FROM of a generated Dockerfile
  int image_port = 0;                          // image.port: the app's port inside (0: PORT)
  std::vector<std::string> image_healthcheck;  // image.healthcheck: argv run inside the container
  std::string image_registry;                  // image.registry: host[:port] images are pushed to (swarm)
  std::string image_registry_secret;           // image.registry_secret: the secret holding "user:password"
  std::map<std::string, std::string> volumes;  // name -> absolute path inside; data kept across releases
  int replicas = 1;                            // production.replicas (swarm)
  canary_spec canary;                          // production.canary
  // Custom domains the production site also answers on (messages/domains.hpp), unique across
  // projects (the projects actor keeps the index).
  std::vector<std::string> domains;
  const char* source_kind() const { return source_workspace ? "workspace" : source_git.empty() ? "path" : "git"; }
  bool containers() const { return runtime == "docker" || runtime == "swarm"; }
  bool sets_limits() const { return preview_limits.any() || build_limits.any() || production_limits.any(); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_spec& x) {
  return f(caf::meta::type_name("health_spec"), x.path, x.timeout_s, x.interval_ms,
           x.min_healthy_s);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, canary_spec& x) {
  return f(caf::meta::type_name("canary_spec"), x.steps, x.interval_s, x.min_requests, x.max_error_rate,
           x.max_p99_ratio, x.p99_slack_ms, x.on_no_traffic, x.sticky);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, manifest& x) {
  return f(caf::meta::type_name("manifest"), x.name, x.source_path, x.source_git, x.source_ref,
           x.preview_command, x.preview_health, x.build_command, x.artifacts,
           x.production_command, x.production_health, x.keep, x.env, x.secrets,
           x.source_credentials_secret, x.build_secrets, x.preview_limits, x.build_limits,
           x.production_limits, x.runtime, x.image_base, x.image_port, x.image_healthcheck, x.image_registry,
           x.image_registry_secret, x.volumes, x.replicas, x.domains, x.source_workspace, x.seed_path,
           x.seed_git, x.seed_ref, x.canary);
}

struct manifest_result {
  bool ok = false;
  std::string error;  // "field: what is wrong"
  manifest value;
};
// `from_log`: the manifest is being read back from an event an older berth may have written,
// so rules added since that refuse what was once accepted (credentials in source.git) are not
// applied; every manifest a client sends is parsed without it.
manifest_result parse_manifest(const nlohmann::json& j, bool from_log = false);

// Whether a git URL carries a credential (user info with a password, or any user info over
// http(s): https://TOKEN@host is a token), which berth refuses to store.
bool git_url_has_credentials(const std::string& url);
// source.git as shown in answers: credentials before the host masked (https://***@host/x).
std::string git_url_for_display(const std::string& url);

// JSON form. Secrets are written as {"NAME": "********"} unless `with_secret_values`.
nlohmann::json to_json(const manifest& m, bool with_secret_values = false);

}  // namespace berth
