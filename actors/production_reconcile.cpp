// production:<name> keeping production up: the start-up reconciliation after a crash or a
// restart, and the level-triggered pass that compares what the log wants (a release running)
// with the world (the process alive, its health check answering) and restarts with backoff.
#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_support.hpp"
#include "messages/atoms.hpp"
#include "runtime/health_probe.hpp"
#include "runtime/strays.hpp"

namespace berth::production_detail {

namespace {

using json = nlohmann::json;

// Consecutive failed probes after which a live but unresponsive release is restarted.
constexpr int unhealthy_limit = 3;

// The log wants a release serving: it runs, or it died and has not been given up on.
bool wants_running(const production_state& st) {
  return !st.prod.current.empty() && (st.prod.status == "running" || st.prod.status == "exited");
}

restart_policy policy_of(const deploy_settings& s) {
  return {std::chrono::milliseconds(s.restart_base_ms), std::chrono::milliseconds(s.restart_max_ms),
          static_cast<size_t>(s.crash_loop_restarts), std::chrono::seconds(s.crash_loop_window_s)};
}

void schedule_restart(self_ptr self, const std::string& why) {
  auto& st = self->state;
  if (st.job || st.restart_pending || st.stopping || !wants_running(st)) return;
  auto policy = policy_of(st.settings);
  auto delay = st.restarts.next(policy, std::chrono::steady_clock::now(), jitter_rng());
  if (!delay) {
    auto reason = fmt::format("{} ({} restarts within {} s)", why, st.restarts.recent(), policy.window.count());
    spdlog::warn("production {}: crash loop, giving up until the next deploy or start: {}", st.project, reason);
    append(self, {event(self, ev::production_crashed, {{"reason", reason}})});
    return;
  }
  st.restart_pending = true;
  spdlog::info("production {}: {}; restarting release {} in {} ms", st.project, why, st.prod.current, delay->count());
  self->delayed_send(self, *delay, retry_atom_v, ++st.restart_generation);
}

}  // namespace

void reconcile_at_start(self_ptr self, std::function<void()> ready) {
  auto& st = self->state;
  auto prod = st.prod;
  bool ours = prod.status == "running" && driver().is_ours(handle_of(prod.process));
  std::vector<process_handle> keep;
  if (ours) keep.push_back(handle_of(prod.process));
  std::set<std::string> known;
  for (auto& [hash, r] : prod.releases) known.insert(hash);
  auto dir = st.paths.production;
  auto grace = std::chrono::milliseconds(st.settings.stop_grace_ms);
  // Behind the proxy the route may still point at a candidate of the interrupted job.
  std::function<status(uint16_t)> set_route;
  if (ours && st.settings.proxy) set_route = route_setter(self);
  auto report = std::make_shared<std::vector<std::string>>();
  run_blocking(
      self,
      [=] {
        for (auto& p : stop_strays(dir, keep, grace))
          report->push_back(fmt::format("stopped stray process group {}", p.pgid ? p.pgid : p.pid));
        for (auto& change : tidy_production_dir(dir, known, prod.current)) report->push_back(change);
        if (set_route)
          if (auto s = set_route(prod.process.port); !s) report->push_back("re-routing failed: " + s.message());
      },
      [=](const std::string& failure) {
        auto& st = self->state;
        if (!failure.empty()) report->push_back(failure);
        for (auto& line : *report) spdlog::info("production {}: start-up reconciliation: {}", st.project, line);
        ready();
        if (ours) {
          spdlog::info("production {}: adopted release {} (pid {})", st.project, prod.current, prod.process.pid);
          watch(self);
        } else if (prod.status == "running") {
          release_died(self, "the release was gone when production started");
        }
        arm_reconciler(self);
      });
}

void release_died(self_ptr self, const std::string& why) {
  auto& st = self->state;
  spdlog::warn("production {}: release {}: {}", st.project, st.prod.current, why);
  ++st.watch_generation;
  st.failed_probes = 0;
  release_port(self, st.prod.process.port, "production release died");
  append(self, {event(self, ev::production_exited, {{"reason", why}})}, [=] { schedule_restart(self, why); });
}

void arm_reconciler(self_ptr self) {
  auto& st = self->state;
  if (st.pass_armed || !wants_running(st)) return;
  st.pass_armed = true;
  self->delayed_send(self, std::chrono::milliseconds(st.settings.reconcile_interval_ms), reconcile_atom_v);
}

void on_reconcile_pass(self_ptr self) {
  auto& st = self->state;
  st.pass_armed = false;
  if (!wants_running(st) || st.stopping) return;  // stopped, crashed, never deployed, berth stopping
  auto rearm = [self] { arm_reconciler(self); };
  if (st.job || st.restart_pending || st.probing) return rearm();
  if (st.prod.status == "exited") {
    schedule_restart(self, "the release is down (" + st.prod.reason + ")");
    return rearm();
  }
  auto process = st.prod.process;
  if (!driver().is_ours(handle_of(process))) {
    release_died(self, "the release's process is gone");
    return rearm();
  }
  auto& health = st.spec.production_health;
  auto result = std::make_shared<probe_result>();
  auto path = health.path;
  auto timeout = std::chrono::milliseconds(std::max(1000, health.interval_ms * 4));
  st.probing = true;
  run_blocking(
      self, [=] { *result = probe_once("127.0.0.1", process.port, path, timeout); },
      [=](const std::string&) {
        auto& st = self->state;
        st.probing = false;
        // The world moved on while we probed (a deploy, a stop): this answer is about the past.
        if (st.prod.status != "running" || st.prod.process.pid != process.pid || st.job) return arm_reconciler(self);
        if (result->healthy) {
          st.failed_probes = 0;
          return arm_reconciler(self);
        }
        if (++st.failed_probes < unhealthy_limit) return arm_reconciler(self);
        auto why = fmt::format("the release failed {} health checks in a row ({})", st.failed_probes, result->error);
        ++st.watch_generation;  // stopped on purpose: its watcher must not report the exit
        auto grace = std::chrono::milliseconds(st.settings.stop_grace_ms);
        run_blocking(
            self, [=] { driver().stop(handle_of(process), grace); },
            [=](const std::string&) {
              release_died(self, why);
              arm_reconciler(self);
            });
      });
}

void on_restart_due(self_ptr self, uint64_t generation) {
  auto& st = self->state;
  if (generation != st.restart_generation || !st.restart_pending) return;
  if (st.job || st.prod.status != "exited") {  // a deploy or a start got there first
    st.restart_pending = false;
    return;
  }
  start_current(self, [=](const std::string& error) {
    self->state.restart_pending = false;
    if (!error.empty()) schedule_restart(self, "restart failed: " + error);
  });
}

}  // namespace berth::production_detail
