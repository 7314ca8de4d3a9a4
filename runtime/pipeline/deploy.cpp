// The production deploy, top to bottom (see deploy.hpp). One line per phase; in_phase() is the
// wrapper that records the phase's event, arms its time limit and ends the deploy at the
// boundary when a cancel or a shutdown asks for it. Durable records: the release activated and
// the outcome (the `queued` event was made durable by the owner before the job started); every
// other event rides in the next durable batch.
#include "runtime/pipeline/deploy.hpp"

#include <type_traits>

#include <fmt/format.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/pipeline/job.hpp"
#include "runtime/release/release.hpp"

namespace berth {

namespace pipeline {
namespace {

using json = nlohmann::json;

// How long a phase may take. The build and the health check have their own limits (enforced
// inside the step); the phase limit adds slack to those and caps every other phase.
std::chrono::seconds limit_of(const job& j, phase p) {
  auto& health = j.in.spec.production_health;
  if (p == phase::building) return j.in.build_timeout + std::chrono::seconds(30);
  if (p == phase::starting && j.in.spec.containers()) return j.in.build_timeout + j.in.phase_timeout;  // the image
  if (p == phase::canary) {  // every step's interval, and the switch's own slack
    auto& c = j.in.spec.canary;
    return std::chrono::seconds(int64_t(c.interval_s) * int64_t(c.steps.size()) + 60);
  }
  if (p == phase::health_checking || p == phase::switching)
    return std::chrono::seconds(health.timeout_s + health.min_healthy_s + 30);
  if (p == phase::draining && j.in.proxy)
    return std::chrono::duration_cast<std::chrono::seconds>(j.in.drain) + j.in.phase_timeout;
  return j.in.phase_timeout;
}

// A phase: stop at its boundary when asked to (until the release serves: then a late cancel
// changes nothing), record its event, run the step under its time limit. The first boundary
// after the activation is synced (the activation rides in that batch) before the phase acts;
// then nothing of the deploy is undone any more.
template <class Step>
auto in_phase(job& j, phase p, const std::string& message, Step step) {
  if (!j.committed && j.host.stop_requested() != stop_request::none) j.gave_up();
  j.current = p;
  j.deadline = clock_type::now() + limit_of(j, p);
  j.log().line(std::string("phase ") + to_string(p) + ": " + message);
  bool seals = j.committed && !j.sealed;
  j.record({j.phase_event(p, message)}, /*durable=*/seals);
  if (seals) {
    j.undo.clear();
    j.sealed = true;
  }
  auto finished = [&] {
    if (!j.committed && clock_type::now() > j.deadline)
      j.fail("timeout", fmt::format("{} did not finish within {} s", to_string(p), limit_of(j, p).count()));
  };
  if constexpr (std::is_void_v<decltype(step())>) {
    step();
    finished();
  } else {
    auto result = step();
    finished();
    return result;
  }
}

// production/current flips and release_activated is recorded (with release_packaged for a new
// release, once its files are): from here on the new release is what production serves, and a
// late cancel changes nothing. It is made durable with the next phase boundary.
void activate(job& j, const std::string& hash, const instance_ref& live) {
  record_packaged(j);
  if (auto s = switch_current(j.in.paths.production, hash); !s)
    j.fail("switch_failed", "cannot switch production/current: " + s.message());
  j.undo.push("point production/current back", [&j] {
    if (j.in.current.empty()) {  // a first deploy: no link at all, as before
      std::error_code ec;
      std::filesystem::remove(j.in.paths.production / "current", ec);
    } else {
      switch_current(j.in.paths.production, j.in.current);
    }
  });
  auto data = to_json(live);
  data["hash"] = hash;
  data["deployment"] = j.in.id;
  data["kind"] = to_string(j.in.kind);
  data["previous"] = j.in.current;
  j.add_event(ev::release_activated, data);
  j.committed = true;
}

// Records how the deploy ended (durable), with what is still pending (pruned releases).
phase finish(job& j, phase end, const std::string& hash) {
  std::string message;
  if (end == phase::unchanged) {
    message = "release " + hash + " is already current; nothing was changed";
  } else {
    auto gap = j.resources.value("gap_ms", int64_t{-1});
    message = fmt::format("{} {} on port {}{}", j.in.kind == job_kind::rollback ? "rolled back to" : "deployed", hash,
                          j.in.stable_port, gap >= 0 ? fmt::format(" (switch gap {} ms)", gap) : "");
  }
  j.record({j.phase_event(end, message)}, /*durable=*/true);
  j.log().line(std::string("deployment ") + to_string(end));
  return end;
}

// Unwinds what the deploy made, newest first, then records the failure (durable). A deploy
// whose owner is gone undoes nothing: the owner's successor sweeps what it left.
phase roll_back(job& j, const failure& f) {
  if (j.host.stop_requested() == stop_request::abandoned) return phase::failed;
  auto failed_in = j.current;
  j.current = phase::rolling_back;
  j.log().line("rolling back: " + f.message);
  try {
    j.record({j.phase_event(phase::rolling_back, "rolling back: " + f.message)}, /*durable=*/false);
  } catch (const failure&) {  // the log refused: the outcome below says so again
  }
  j.undo.unwind(j.log());
  deployment_error err{to_string(failed_in), f.message, f.code};
  auto end = f.code == "cancelled" ? phase::cancelled : phase::failed;
  try {
    j.record({j.phase_event(end, f.message, &err)}, /*durable=*/true);
  } catch (const failure&) {
    return phase::failed;
  }
  j.log().line(std::string("deployment ") + to_string(end));
  return end;
}

}  // namespace
}  // namespace pipeline

phase run_deploy(deploy_host& host, const deploy_tools& tools, const deploy_inputs& in) {
  using namespace pipeline;
  job j{host, tools, in};
  auto sw = make_switcher(in);
  std::filesystem::path workspace;
  // Made in preparing; gone once packaged, and before any end is recorded: whoever sees the
  // deploy end finds no build folder left.
  struct remove_workspace {
    std::filesystem::path& dir;
    void now() {
      if (!dir.empty()) fsutil::force_remove(dir);
      dir.clear();
    }
    ~remove_workspace() { now(); }
  } cleanup{workspace};
  try {
    std::string hash = in.target;
    if (!in.current.empty()) j.resources["previous"] = in.current;
    if (in.kind == job_kind::deploy) {
      workspace = in_phase(j, phase::preparing, "snapshotting the source", [&] { return prepare_source(j); });
      in_phase(j, phase::building, "building", [&] { build(j, workspace); });
      hash = in_phase(j, phase::packaging, "packaging the artifacts", [&] { return package(j, workspace); });
      cleanup.now();
      if (is_unchanged(j, hash)) return finish(j, phase::unchanged, hash);
    } else {
      j.resources["hash"] = hash;
    }
    auto candidate = in_phase(j, phase::starting, "starting the candidate on a spare port",
                              [&] { return start_candidate(j, hash); });
    in_phase(j, phase::health_checking, "checking the candidate's health", [&] { check_health(j, candidate); });
    serving_release old;
    bool asked = false;
    if (in.spec.canary.enabled() && in.kind == job_kind::deploy && in.proxy) {
      old = host.serving();
      asked = true;
      if (wants_canary(j, old))
        in_phase(j, phase::canary, "sending a share of requests to the candidate",
                 [&] { run_canary(j, candidate, old); });
      else
        j.log().line("canary skipped: nothing serves through the proxy to compare the candidate with");
    }
    in_phase(j, phase::switching, sw->switch_message(), [&] {
      if (!asked) old = host.serving();
      activate(j, hash, sw->switch_to(j, hash, candidate, old));
    });
    in_phase(j, phase::draining, sw->drain_message(), [&] {
      sw->drain(j, candidate, old);
      prune(j, hash);
    });
    return finish(j, phase::completed, hash);
  } catch (const failure& f) {
    cleanup.now();
    return roll_back(j, f);
  } catch (const std::exception& e) {
    cleanup.now();
    return roll_back(j, {"internal", std::string("unexpected error: ") + e.what()});
  }
}

}  // namespace berth
