// starting and health_checking: a release as a running, healthy instance; and retention.
#include <chrono>
#include <limits>

#include <fmt/format.h>

#include "runtime/logs/mask.hpp"
#include "runtime/logs/rotated_log.hpp"
#include "runtime/net/health_probe.hpp"
#include "runtime/metrics/berth_metrics.hpp"
#include "runtime/pipeline/job.hpp"
#include "runtime/pipeline/launch.hpp"
#include "runtime/plan/deployed_with.hpp"
#include "runtime/release/release.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth::pipeline {

namespace {

bool alive(const job& j, const instance_ref& r) { return j.tools.driver.inspect(r).running(); }

std::string attempts_note(int attempts) {
  return attempts > 1 ? fmt::format(" (after {} attempts)", attempts) : std::string();
}

}  // namespace

release_launch launch_of(job& j, const std::string& hash, uint16_t port) {
  release_launch l;
  l.project = j.in.project;
  l.hash = hash;
  l.spec = &j.in.spec;
  l.paths = &j.in.paths;
  l.env = &j.in.env;
  l.port = port;
  l.sandbox = j.in.sandbox;
  l.stop_grace = j.in.stop_grace;
  l.give_up = [&j] { return j.give_up(); };
  l.log = [&j](const std::string& line) { j.log().line(line); };
  return l;
}

void stop_instance(job& j, const instance_ref& r, const std::string& what) {
  if (r.empty()) return;
  j.log().line(fmt::format("stopping {} (pid {}, port {})", what, r.pid, r.port));
  j.tools.driver.stop(r, j.in.stop_grace);
}

// The release as its runtime runs it: the folder itself for processes, an image for containers
// (built from the release folder unless the image is already there, as for a rollback).
void prepare_artifact(job& j, const std::string& hash) {
  auto spec = release_spec(launch_of(j, hash, 0));
  artifact built;
  if (!j.in.spec.containers()) {  // the folder itself: nothing to build, no backend to guard
    if (auto s = j.tools.driver.prepare(spec, {}, {}, &built); !s)
      j.fail("start_failed", "cannot prepare release " + hash + ": " + s.message());
    return;
  }
  auto t0 = clock_type::now();
  call_options o;
  o.cancelled = [&j] { return j.give_up(); };
  o.on_retry = [&j](int attempt, const status& failure, std::chrono::milliseconds delay) {
    j.log().line(fmt::format("preparing the release failed (transient): {}; retrying in {} ms", failure.message(),
                             delay.count()));
  };
  auto s = j.tools.guards.call(
      backend_of(j.in.spec.runtime),
      [&] {
        masked_lines lines(j.log().mask());  // an image build's output, as a build's: masked
        return j.tools.driver.prepare(
            spec, [&](const std::string& line) { j.log().build_output(lines.feed(line + "\n")); },
            [&j] { return j.give_up(); }, &built);
      },
      o);
  if (!s && j.give_up() && !is_backend_unavailable(s)) j.gave_up();
  if (!s && (is_backend_unavailable(s) || s.which() == status::code::io_error))
    j.fail("backend_unavailable", "cannot prepare release " + hash + ": " + s.message());
  if (!s) j.fail("image_build_failed", "cannot prepare release " + hash + ": " + s.message());
  record_duration(j, "image", t0);
  if (j.packaged == hash)  // a release this deploy made: its image goes with it if the deploy fails
    j.undo.push("remove the image of release " + hash, [&j, hash] {
      if (auto s = j.tools.driver.remove_artifact({j.in.project, "production", hash, j.in.spec.runtime}); !s)
        j.log().line("error: cannot remove the image of release " + hash + ": " + s.message());
    });
}

instance_ref start_candidate(job& j, const std::string& hash) {
  j.once["deployed_with"] = deployed_with(j.in);  // what a later plan compares with (runtime/plan)
  uint16_t port = 0;
  if (auto s = j.host.lease_port(&port); !s)
    j.fail("ports_exhausted", "no spare port for the candidate: " + s.message());
  j.undo.push("give back the candidate's port", [&j, port] { j.host.release_port(port, "candidate of " + j.in.id); });
  prepare_artifact(j, hash);
  j.candidate_started = clock_type::now();
  instance_ref candidate;
  int attempts = 0;
  if (auto s = start_release(j.tools.driver, j.tools.guards, launch_of(j, hash, port), &candidate, &attempts); !s) {
    if (j.give_up() && !is_backend_unavailable(s)) j.gave_up();
    j.fail(is_backend_unavailable(s) ? "backend_unavailable" : "start_failed", "cannot start the release: " + s.message());
  }
  j.undo.push("stop the candidate", [&j, candidate] {
    stop_instance(j, candidate, "the candidate");
    j.resources["candidate"] = nullptr;  // reported as gone rather than by a dead pid
  });
  j.resources["candidate"] = {{"pid", candidate.pid}, {"port", port}};
  j.log().line(fmt::format("candidate {} started as pid {} on port {}{}", hash, candidate.pid, port,
                           attempts_note(attempts)));
  return candidate;
}

void check_health(job& j, const instance_ref& candidate) {
  auto& health = j.in.spec.production_health;
  auto wanted = [&] { return alive(j, candidate) && !j.give_up(); };
  auto t0 = clock_type::now();
  j.log().line(fmt::format("probing http://127.0.0.1:{}{} every {} ms for up to {} s", candidate.port, health.path,
                           health.interval_ms, health.timeout_s));
  auto interval = std::chrono::milliseconds(health.interval_ms);
  auto probe = wait_healthy("127.0.0.1", candidate.port, health.path, std::chrono::seconds(health.timeout_s),
                            interval, wanted);
  if (probe.healthy && health.min_healthy_s > 0) {
    record_duration(j, "candidate_boot", j.candidate_started);
    j.log().line(fmt::format("healthy; must stay healthy for {} s", health.min_healthy_s));
    probe = stay_healthy("127.0.0.1", candidate.port, health.path, std::chrono::seconds(health.min_healthy_s),
                         interval, wanted);
  }
  if (j.tools.metrics && !(!probe.healthy && j.give_up()))  // a cancel is not the app's latency
    j.tools.metrics->health_check(probe.healthy, clock_type::now() - t0);
  if (!probe.healthy && j.give_up()) j.gave_up();
  if (!probe.healthy) {
    auto end = after_failed_probe(j.tools.driver, candidate);
    if (!end.running())
      j.fail("health_check_failed", "the candidate " + how_it_ended(end) + " before passing its health check");
    j.fail("health_check_failed", "health check of " + health.path + " failed: " + probe.error);
  }
  if (!j.resources.contains("candidate_boot_ms")) record_duration(j, "candidate_boot", j.candidate_started);
  j.log().line(fmt::format("candidate healthy after {} ms", ms_since(t0)));
}

void prune(job& j, const std::string& hash) {
  production_record kept;
  kept.releases = j.in.releases;
  kept.current = hash;
  auto& now_current = kept.releases[hash];
  now_current.hash = hash;
  now_current.last_used_us = std::numeric_limits<int64_t>::max();  // the newest
  auto keep = j.in.spec.keep;
  for (auto& h : releases_to_prune(kept, keep, j.in.in_use)) {
    if (!remove_release(j.in.paths.production, h)) continue;
    remove_rotated_log(j.in.paths.release_log(h).string());
    j.tools.driver.remove_artifact({j.in.project, "production", h, j.in.spec.runtime});
    j.add_event(ev::release_pruned, {{"hash", h}, {"reason", "retention keeps " + std::to_string(keep)}});
  }
}

}  // namespace berth::pipeline
