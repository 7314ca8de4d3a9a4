#include "actors/keeper.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "messages/atoms.hpp"
#include "messages/preview.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/net/health_probe.hpp"

namespace berth {

namespace {

// Why an instance ended, as its *_exited event records it: an OOM kill is named first ("oom: …").
std::string exit_reason(const std::string& what, const instance_status& end) {
  if (end.oom) return fmt::format("oom: {} went over its memory limit and was killed", what);
  return what + " " + end.describe();
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::function<bool(std::string*)> http_probe(const health_spec& health, uint16_t port) {
  auto timeout = std::chrono::milliseconds(std::max(1000, health.interval_ms * 4));
  return [path = health.path, port, timeout](std::string* why) {
    auto result = probe_once("127.0.0.1", port, path, timeout);
    *why = result.error;
    return result.healthy;
  };
}

keeper_policy keeper_policy_of(const deploy_settings& s) {
  keeper_policy p;
  p.restart = {std::chrono::milliseconds(s.restart_base_ms), std::chrono::milliseconds(s.restart_max_ms),
               static_cast<size_t>(s.crash_loop_restarts), std::chrono::seconds(s.crash_loop_window_s),
               /*first_at_once=*/true};
  p.pass_interval = std::chrono::milliseconds(s.reconcile_interval_ms);
  p.stop_grace = std::chrono::milliseconds(s.stop_grace_ms);
  return p;
}

keeper::~keeper() {
  forget_watch();
  set_kept({});
}

void keeper::measure(std::shared_ptr<berth_metrics> metrics, std::string env) {
  metrics_ = std::move(metrics);
  env_ = std::move(env);
}

void keeper::set_kept(const instance_ref& r) {
  kept_ = r;
  if (!metrics_ || counted_ == !kept_.empty()) return;
  counted_ = !counted_;
  metrics_->instances.with({env_}).add(counted_ ? 1 : -1);
}

void keeper::died(const std::string& why) {
  if (metrics_) metrics_->instance_down(env_, why);
  hooks_.died(why, [this, why] { restart_later(why); });
}

void keeper::init(caf::event_based_actor* self, std::shared_ptr<runtime_driver> driver, keeper_policy policy,
                  hooks h) {
  self_ = self;
  driver_ = std::move(driver);
  policy_ = policy;
  hooks_ = std::move(h);
}

void keeper::forget_watch() {
  if (watch_token_ != 0 && driver_) driver_->unwatch(watch_token_);
  watch_token_ = 0;
}

void keeper::keep(const instance_ref& r) {
  if (!r.empty() && r == kept_ && watch_token_ != 0) return;  // already watched: one watch per instance
  forget_watch();
  ++gen_;
  set_kept(r);
  failed_probes_ = 0;
  restart_due_ = false;
  if (r.empty()) return;
  auto me = caf::actor_cast<caf::actor>(self_);
  auto gen = gen_;
  watch_token_ = driver_->watch(r, [me, gen, what = hooks_.what](const instance_status& end) {
    caf::anon_send(me, keeper_exit_atom_v, gen, exit_reason(what, end));
  });
  arm_pass();
}

void keeper::release() {
  forget_watch();
  ++gen_;
  set_kept({});
  restart_due_ = false;
}

void keeper::hold(bool on) {
  held_ = on;
  if (!on && restart_due_) restart_later(restart_why_);
}

void keeper::stop(std::chrono::milliseconds grace, std::function<void()> then) {
  auto r = kept_;
  release();
  // A restart's start still runs: `then` once its instance, now unwanted, has been stopped.
  if (r.empty() && restarting_) return after_restart_.push_back(std::move(then));
  if (r.empty()) return then();
  auto driver = driver_;
  run_blocking(self_, [=] { driver->stop(r, grace); }, [then](const std::string&) { then(); });
}

void keeper::arm_pass() {
  if (pass_armed_ || kept_.empty() || policy_.pass_interval.count() <= 0) return;
  pass_armed_ = true;
  self_->delayed_send(self_, policy_.pass_interval, keeper_pass_atom_v, gen_);
}

// The instance is down: the owner records it, then it comes back after the backoff.
void keeper::down(const std::string& why) {
  forget_watch();
  ++gen_;
  set_kept({});
  log_kv(spdlog::level::warn, hooks_.what + ": " + why, hooks_.log_fields);
  died(why);
}

void keeper::restart_later(const std::string& why) {
  restart_why_ = why;
  restart_due_ = true;
  if (held_ || restarting_) return;  // hold(false), or the running restart's outcome, picks it up
  auto exits = hooks_.exits();
  exits.insert(exits.end(), failed_restarts_us_.begin(), failed_restarts_us_.end());
  auto delay = restart_delay(policy_.restart, now_us(), exits, jitter_rng());
  if (!delay) {
    restart_due_ = false;
    failed_restarts_us_.clear();
    auto& p = policy_.restart;
    auto reason = fmt::format("{} ({} restarts within {} s)", why, exits_within(p, now_us(), exits) - 1,
                              p.window.count());
    log_kv(spdlog::level::warn, hooks_.what + ": crash loop, giving up until it is started again: " + reason,
           hooks_.log_fields);
    if (metrics_) metrics_->crash_loop(env_);
    return hooks_.crash_loop(reason);
  }
  log_kv(spdlog::level::info, fmt::format("{}: {}; restarting in {} ms", hooks_.what, why, delay->count()),
         hooks_.log_fields);
  self_->delayed_send(self_, *delay, keeper_restart_atom_v, ++gen_);
}

// Runs a blocking start on a worker; `then` (in the actor) gets its instance or its failure.
void keeper::launch(std::function<status(instance_ref*)> start,
                    std::function<void(const instance_ref& r, const status& failure)> then) {
  auto started = std::make_shared<instance_ref>();
  auto result = std::make_shared<status>();
  run_blocking(
      self_, [=] { *result = start(started.get()); },
      [started, result, then](const std::string& failure) {
        then(*started, failure.empty() ? *result : status::io_error(failure));
      });
}

void keeper::start_now(std::function<status(instance_ref*)> start, std::function<void(const status&)> done) {
  release();
  auto gen = gen_;
  launch(std::move(start), [this, gen, done](const instance_ref& r, const status& failure) {
    if (!failure) return done(failure);
    if (gen != gen_) {  // stopped (or started again) meanwhile: this one is not wanted
      auto driver = driver_;
      auto grace = policy_.stop_grace;
      run_blocking(self_, [=] { driver->stop(r, grace); }, [](const std::string&) {});
      return done(status::io_error("stopped before it was up"));
    }
    hooks_.started(r, cause::start, [this, r, done] {
      keep(r);
      done(status::ok());
    });
  });
}

void keeper::on_restart(uint64_t gen) {
  if (gen != gen_ || !restart_due_ || held_ || restarting_) return;
  restart_due_ = false;
  restarting_ = true;
  launch(hooks_.start(), [this, gen](const instance_ref& r, const status& failure) {
    restarting_ = false;
    bool released = gen != gen_;  // a stop (or a new keep) came while it started: not wanted
    auto waiting = std::move(after_restart_);  // stops that came meanwhile, answered once it is down
    after_restart_.clear();
    auto answer = [waiting] {
      for (auto& f : waiting) f();
    };
    if (!failure) {
      if (released) return answer();
      // Counted like an exit: a release that cannot come back is not retried at once for ever.
      failed_restarts_us_.push_back(now_us());
      return restart_later("restart failed: " + failure.message());
    }
    failed_restarts_us_.clear();
    if (released || restart_due_) {  // it must not keep running beside what the owner wants now
      auto driver = driver_;
      auto grace = policy_.stop_grace;
      return run_blocking(self_, [=] { driver->stop(r, grace); }, [answer](const std::string&) { answer(); });
    }
    answer();
    if (metrics_) metrics_->instance_restarted(env_);
    hooks_.started(r, cause::restart, [this, r] { keep(r); });
  });
}

void keeper::on_exit(uint64_t gen, const std::string& why) {
  if (gen != gen_ || kept_.empty()) return;  // an instance stopped on purpose, or an older one
  down(why);
}

void keeper::on_pass(uint64_t gen) {
  pass_armed_ = false;
  if (gen != gen_ || kept_.empty()) return arm_pass();
  if (probing_ || held_) return arm_pass();  // a deploy runs: it owns what happens to the release
  auto r = kept_;
  if (auto end = driver_->inspect(r); !end.running())
    return down(end.oom ? exit_reason(hooks_.what, end) : hooks_.what + "'s process is gone");
  if (!hooks_.probe) return arm_pass();
  probing_ = true;
  auto healthy = std::make_shared<bool>(false);
  auto why = std::make_shared<std::string>();
  auto probe = hooks_.probe(r);
  run_blocking(
      self_, [=] { *healthy = probe(why.get()); },
      [this, r, healthy, why](const std::string&) {
        probing_ = false;
        if (kept_ != r) return arm_pass();  // the world moved on while we probed
        failed_probes_ = *healthy ? 0 : failed_probes_ + 1;
        if (failed_probes_ < policy_.unhealthy_limit) return arm_pass();
        auto reason = fmt::format("{} failed {} health checks in a row ({})", hooks_.what, failed_probes_, *why);
        failed_probes_ = 0;
        forget_watch();  // stopped on purpose: its exit is not news
        ++gen_;
        auto driver = driver_;
        auto grace = policy_.stop_grace;
        run_blocking(self_, [=] { driver->stop(r, grace); },
                     [this, reason](const std::string&) {
                       set_kept({});
                       log_kv(spdlog::level::warn, reason, hooks_.log_fields);
                       died(reason);
                     });
      });
}

caf::message_handler keeper::handlers() {
  return {
      [this](keeper_exit_atom, uint64_t gen, const std::string& how) { on_exit(gen, how); },
      [this](keeper_pass_atom, uint64_t gen) { on_pass(gen); },
      [this](keeper_restart_atom, uint64_t gen) { on_restart(gen); },
  };
}

}  // namespace berth
