#include "runtime/metrics/berth_metrics.hpp"

#include "messages/deployment.hpp"

namespace berth {

namespace {

using seconds_d = std::chrono::duration<double>;

double unix_now() {
  return std::chrono::duration_cast<seconds_d>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// How a deployment ended, as a bounded label: interrupted is a failure with that code.
std::string result_of(const deployment_record& d) {
  if (d.current == phase::failed && d.has_error && d.error.code == "interrupted") return "interrupted";
  return d.status();
}

}  // namespace

berth_metrics::berth_metrics(const std::string& version)
    : breaker_state(reg_.gauges("berth_breaker_state",
                                "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open", {"backend"})),
      eventlog_disk_bytes(reg_.gauges("berth_eventlog_disk_bytes",
                                      "Live size of the event log's RocksDB files (sampled when scraped)")
                              .with()),
      actors(reg_.gauges("berth_actors", "Actors running in berth's actor system").with()),
      projects(reg_.gauges("berth_projects", "Projects that exist").with()),
      instances(reg_.gauges("berth_instances_running",
                            "Instances (processes, containers, services) berth keeps running, by environment",
                            {"env"})),
      http_streams_open(reg_.gauges("berth_http_streams_open", "Event streams (SSE) open now").with()),
      http_queued(reg_.gauges("berth_http_connections_queued", "Connections waiting for an HTTP worker").with()),
      deployments_(reg_.counters("berth_deployments_total", "Deployments and rollbacks that ended, by kind and result",
                                 {"kind", "result"})),
      phase_seconds_(reg_.histograms("berth_deployment_phase_duration_seconds",
                                     "Time spent in each deployment phase (queued: waiting for the job before)",
                                     {"phase"},
                                     {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600})),
      health_seconds_(reg_.histograms("berth_health_check_duration_seconds",
                                      "Time a deploy's candidate took to pass its health check (min_healthy_s "
                                      "included), or to fail it, by result",
                                      {"result"},
                                      {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300})),
      crashes_(reg_.counters("berth_instance_crashes_total",
                             "Kept instances that went down unasked, by environment and reason class",
                             {"env", "reason"})),
      restarts_(reg_.counters("berth_instance_restarts_total",
                              "Kept instances brought back up by their keeper, by environment", {"env"})),
      crash_loops_(reg_.counters("berth_instance_crash_loops_total",
                                 "Kept instances given up on after too many exits within the window", {"env"})),
      appends_(reg_.counters("berth_eventlog_appended_events_total",
                             "Events appended to the event log, by whether their commit was synced", {"sync"})),
      commits_(reg_.counters("berth_eventlog_commits_total", "Group commits (WriteBatches) written").with()),
      commit_events_(reg_.histograms("berth_eventlog_commit_events", "Events per group commit", {},
                                     {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})
                         .with()),
      http_requests_(reg_.counters("berth_http_requests_total",
                                   "HTTP requests answered, by method, route pattern and status",
                                   {"method", "route", "status"})),
      http_seconds_(reg_.histograms("berth_http_request_duration_seconds",
                                    "Time from a request's first byte to the end of its answer (streams: until "
                                    "they close), by method and route pattern",
                                    {"method", "route"},
                                    {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                     30, 60})) {
  reg_.gauges("berth_build_info", "Always 1; the version of berth that serves", {"version"}).with({version}).set(1);
  auto& start = reg_.gauges("berth_start_time_seconds", "When berth started, seconds since the Unix epoch").with();
  start.set(unix_now());
  auto& uptime = reg_.gauges("berth_uptime_seconds", "Seconds since berth started").with();
  reg_.on_scrape([&uptime, started = std::chrono::steady_clock::now()] {
    uptime.set(std::chrono::duration_cast<seconds_d>(std::chrono::steady_clock::now() - started).count());
  });
  // Every series a dashboard plots from zero exists from the start, so rate() sees the first one.
  for (auto kind : {job_kind::deploy, job_kind::rollback})
    for (auto result : {"completed", "unchanged", "failed", "cancelled", "interrupted"})
      deployments_.with({to_string(kind), result});
  for (auto sync : {"synced", "unsynced"}) appends_.with({sync});
}

void berth_metrics::deployment_ended(const deployment_record& d) {
  deployments_.with({to_string(d.kind), result_of(d)}).inc();
  for (auto& span : d.phases)
    if (!is_terminal(span.p) && span.ended_us >= span.started_us && span.ended_us > 0)
      phase_seconds_.with({to_string(span.p)}).observe(static_cast<double>(span.ended_us - span.started_us) / 1e6);
}

void berth_metrics::health_check(bool healthy, std::chrono::steady_clock::duration took) {
  health_seconds_.with({healthy ? "healthy" : "unhealthy"})
      .observe(std::chrono::duration_cast<seconds_d>(took).count());
}

void berth_metrics::instance_down(const std::string& env, const std::string& reason) {
  crashes_.with({env, reason_class(reason)}).inc();
}

void berth_metrics::instance_restarted(const std::string& env) { restarts_.with({env}).inc(); }

void berth_metrics::crash_loop(const std::string& env) { crash_loops_.with({env}).inc(); }

void berth_metrics::committed(size_t events, bool synced) {
  commits_.inc();
  commit_events_.observe(static_cast<double>(events));
  appends_.with({synced ? "synced" : "unsynced"}).inc(static_cast<double>(events));
}

void berth_metrics::http_request(const std::string& method, const std::string& route, int status, double seconds) {
  http_requests_.with({method, route, std::to_string(status)}).inc();
  http_seconds_.with({method, route}).observe(seconds);
}

std::string reason_class(const std::string& why) {
  if (why.rfind("oom:", 0) == 0) return "oom";
  if (why.rfind("restart failed", 0) == 0) return "restart_failed";
  if (why.find("health checks in a row") != std::string::npos) return "unhealthy";
  if (why.find("process is gone") != std::string::npos) return "gone";
  return "exited";
}

}  // namespace berth
