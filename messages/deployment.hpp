// Production vocabulary: deployments (one event per phase), releases and the production
// process, all persisted in the project's stream `project/<name>` and folded into
// `production_record` by the same pure function the actors and `berth audit replay` use.
//
// A deployment id is "<project>.<seq of its deployment_queued event>": unique forever (also
// across a delete and re-create of the name) and it names its project, so no request path
// has to scan all projects to find it. '.' never occurs in a project name.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

#include "messages/event.hpp"
#include "messages/instance.hpp"
#include "messages/preview.hpp"

namespace berth {

// The phases of a deployment, in pipeline order, then the ends. A rollback runs the same
// phases from `starting`.
enum class phase : uint8_t {
  queued,
  preparing,        // snapshot the source into a build workspace
  building,         // build command, with timeout and captured log
  packaging,        // artifacts -> production/<hash>/ (content-addressed)
  starting,         // candidate on a spare port
  health_checking,  // GET health path until 2xx/3xx, then stay healthy min_healthy_s
  canary,           // production.canary: a share of requests to the candidate, step by step
  switching,        // the stable port moves to the candidate; `current` is switched
  draining,         // what served before is stopped after a grace period
  completed,
  unchanged,        // same hash as current and not forced: nothing was touched
  rolling_back,     // compensating in reverse order of creation
  failed,
  cancelled,
};
const char* to_string(phase p);
bool parse_phase(const std::string& s, phase& out);
bool is_terminal(phase p);  // completed, unchanged, failed, cancelled
int progress_of(phase p);   // 0-100
// Event type of a phase: "deployment_<phase>".
std::string event_type(phase p);
// The phase an event type stands for; false for other events.
bool phase_of_event(const std::string& type, phase& out);

namespace ev {
constexpr const char* deployment_cancel_requested = "deployment_cancel_requested";  // {id}
// One verdict of the canary (to_json(canary_status) + id): a step begun, passed, failed,
// promoted early, aborted. Folded into the deployment's resources["canary"].
constexpr const char* canary_step = "canary_step";
// A person's decision during the canary: {id, verdict: promote|abort}.
constexpr const char* canary_verdict_requested = "canary_verdict_requested";
constexpr const char* release_packaged = "release_packaged";    // {hash, deployment}
constexpr const char* release_activated = "release_activated";  // {hash, deployment, kind, previous, instance, pid, port}
constexpr const char* release_pruned = "release_pruned";        // {hash, reason}: retention
constexpr const char* release_removed = "release_removed";      // {hash, reason}: its deploy failed
constexpr const char* production_started = "production_started";  // {hash, instance, pid, port, cause}
constexpr const char* production_stopped = "production_stopped";  // {reason}
constexpr const char* production_exited = "production_exited";    // {reason}: died ("oom: …" over its memory limit); restarted
constexpr const char* production_crashed = "production_crashed";  // {reason}: a crash loop; not
                                                                  // restarted until a deploy/start
}  // namespace ev

// What the proxy measured of one side of a canary (the candidate or the serving release) in
// the current step. Latencies are the response-header times, whole milliseconds (-1: none).
struct side_figures {
  uint64_t requests = 0;
  uint64_t errors = 0;  // 5xx answers, resets and timeouts
  int64_t p50_ms = -1, p99_ms = -1;
  double error_rate() const { return requests == 0 ? 0.0 : double(errors) / double(requests); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, side_figures& x) {
  return f(caf::meta::type_name("side_figures"), x.requests, x.errors, x.p50_ms, x.p99_ms);
}

// Where a canary stands: its step, the share of requests, the two sides' figures and what
// was decided. Sent live by the pipeline (canary_live_atom) and recorded at every verdict.
struct canary_status {
  int step = 0;      // 1-based index into production.canary.steps
  int steps = 0;     // how many there are
  int percent = 0;   // of requests sent to the candidate now (0: reverted)
  int64_t step_started_us = 0;
  int64_t step_ends_us = 0;   // when the step's interval is over
  side_figures candidate, serving;
  // watching | passed (next step) | promoted (to 100 %) | failed (reverted) | aborted
  std::string verdict = "watching";
  std::string reason;  // why, in words, with the figures that decided
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, canary_status& x) {
  return f(caf::meta::type_name("canary_status"), x.step, x.steps, x.percent, x.step_started_us,
           x.step_ends_us, x.candidate, x.serving, x.verdict, x.reason);
}

nlohmann::json to_json(const side_figures& f);
nlohmann::json to_json(const canary_status& c);

std::string deployment_id(const std::string& project, uint64_t queued_seq);
// Splits "<project>.<seq>"; false when it is not of that form (the project name is checked
// with check_name by the caller).
bool split_deployment_id(const std::string& id, std::string& project, uint64_t& seq);

enum class job_kind : uint8_t { deploy, rollback };
const char* to_string(job_kind k);

// A queued deploy or rollback as the project actor hands it to production:<name>.
struct deployment_job {
  std::string id;
  job_kind kind = job_kind::deploy;
  bool force = false;
  std::string target;  // rollback: the release to go back to (resolved when queued)
  std::vector<std::string> in_use;  // releases retention must keep (targets of queued rollbacks)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deployment_job& x) {
  return f(caf::meta::type_name("deployment_job"), x.id, x.kind, x.force, x.target, x.in_use);
}

struct phase_span {
  phase p = phase::queued;
  int64_t started_us = 0;
  int64_t ended_us = 0;  // 0 while it runs
};

struct deployment_error {
  std::string phase;  // where it failed
  std::string message;
  std::string code;  // e.g. build_failed, health_check_failed, cancelled, timeout
};

struct deployment_record {
  std::string id;
  std::string project;
  job_kind kind = job_kind::deploy;
  bool force = false;
  std::string target;  // rollback target
  phase current = phase::queued;
  int progress = 0;
  std::string message;
  std::vector<phase_span> phases;
  nlohmann::json resources = nlohmann::json::object();  // hash, port, pid, previous, gap_ms …
  bool has_error = false;
  deployment_error error;
  bool cancel_requested = false;
  bool activated = false;  // its release became current (release_activated names it)
  int64_t created_us = 0;
  int64_t finished_us = 0;
  uint64_t queued_seq = 0;
  // queued | running | completed | unchanged | failed | cancelled
  std::string status() const;
};

struct release_record {
  std::string hash;
  std::string deployment;        // the deployment that packaged it
  int64_t created_us = 0;
  int64_t last_used_us = 0;      // packaged again or activated: retention ranks by this
  int64_t deployed_us = 0;       // last time a deploy made it active
  int64_t rolled_back_to_us = 0;   // last time a rollback made it active
  int64_t rolled_back_from_us = 0; // last time a rollback replaced it
  uint64_t activations = 0;
};

// What production serves and what it has done, folded from the project's stream.
struct production_record {
  std::string status = "none";  // none | running | stopped | exited | crashed
  std::string current;          // hash of the active release ("" = none yet)
  instance_ref process;         // the serving instance while running
  std::string reason;           // why it stopped/exited
  std::vector<int64_t> exits_us;  // deaths since the release was last started by request (the budget)
  std::map<std::string, release_record> releases;       // kept on disk
  std::map<std::string, deployment_record> deployments;  // by id
  std::vector<std::string> order;                        // deployment ids, oldest first
  uint64_t last_seq = 0;
  uint64_t events = 0;  // production events folded
};

// Folds one event of the project's stream; ignores event types that are not production's.
void fold(production_record& s, const event_record& e);

// Releases to prune: all but the newest `keep` by last_used, never `current` nor `in_use`.
std::vector<std::string> releases_to_prune(const production_record& s, int keep,
                                           const std::vector<std::string>& in_use);
// The release a rollback without a hash goes to: the most recently active kept release
// other than current ("" when there is none).
std::string previous_release(const production_record& s);
// Ids of the deployments still queued, in arrival order.
std::vector<std::string> queued_ids(const production_record& s);

// Event payloads. deployment_queued carries no id: the fold derives it from the event's seq.
std::string deployment_queued_data(const deployment_job& job);
// Data of a phase event: the id, a message, resources learnt in the phase (merged into the
// record's), and for `failed` the error.
std::string phase_event_data(const std::string& id, const std::string& message,
                             const nlohmann::json& resources = nlohmann::json::object(),
                             const deployment_error* error = nullptr);

}  // namespace berth
