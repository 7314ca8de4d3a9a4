// berth's own series (README "Metrics" lists them), declared once over one registry. Made by
// `berth serve` next to the actor tree and handed to what records (event_store, production and
// preview actors and their keepers, the deploy pipeline, the HTTP server); a null pointer
// anywhere means "not measured" (unit tests). Thread-safe; no actor code.
#pragma once
#include <chrono>
#include <string>

#include "runtime/metrics/registry.hpp"

namespace berth {

struct deployment_record;

class berth_metrics {
  metrics::registry reg_;  // first: the references below point into it

 public:
  explicit berth_metrics(const std::string& version);

  // The ended deployment: its result, and how long each of its phases took.
  void deployment_ended(const deployment_record& d);
  // A deploy's candidate passed (or failed) its health check after `took`.
  void health_check(bool healthy, std::chrono::steady_clock::duration took);
  // A kept instance (env: production | preview | proxy) went down (reason: a bounded class:
  // exited, oom, gone, unhealthy, restart_failed), or crash-looped.
  void instance_down(const std::string& env, const std::string& reason);
  void instance_restarted(const std::string& env);
  void crash_loop(const std::string& env);
  // One group commit of the event log.
  void committed(size_t events, bool synced);
  // One HTTP answer; route is the matched route pattern, or "none".
  void http_request(const std::string& method, const std::string& route, int status, double seconds);

  metrics::registry& registry() { return reg_; }

  // Set at scrape time by whoever knows them (actors/tree.cpp, http/routes_metrics.cpp).
  metrics::family<metrics::gauge>& breaker_state;
  metrics::gauge& eventlog_disk_bytes;
  metrics::gauge& actors;
  metrics::gauge& projects;
  metrics::family<metrics::gauge>& instances;  // by env; kept up to date by the keepers
  metrics::gauge& http_streams_open;
  metrics::gauge& http_queued;

 private:
  metrics::family<metrics::counter>& deployments_;
  metrics::family<metrics::histogram>& phase_seconds_;
  metrics::family<metrics::histogram>& health_seconds_;
  metrics::family<metrics::counter>& crashes_;
  metrics::family<metrics::counter>& restarts_;
  metrics::family<metrics::counter>& crash_loops_;
  metrics::family<metrics::counter>& appends_;
  metrics::counter& commits_;
  metrics::histogram& commit_events_;
  metrics::family<metrics::counter>& http_requests_;
  metrics::family<metrics::histogram>& http_seconds_;
};

// The bounded reason class of a keeper's free-text reason ("oom: …", "… failed 3 health checks …").
std::string reason_class(const std::string& why);

}  // namespace berth
