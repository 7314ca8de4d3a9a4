// The process keeper: one instance berth wants running (a production release, a preview,
// Caddy), kept running. It lives in its owner actor's state (as supervisor_core does) and is
// driven by that actor's messages:
// - keep(r): r is what runs now. One exit watch on it (through the runtime driver), and while
//   the owner wants it, a periodic pass: alive, and answering its health probe.
// - It died (its exit came, or the pass found it gone, or it failed `unhealthy_limit` probes in
//   a row and was stopped): the owner records why (hooks.died), then the keeper restarts it:
//   at once after its first exit within the window (it ran cleanly), then after a growing
//   backoff with jitter, or, past `limit` exits (and failed restarts) within `window`, it
//   gives up (hooks.crash_loop). The exits counted are those the owner's fold saw (the log), so a
//   restarted berth does not hand a crash-looping instance a fresh budget.
// - release(): the owner takes over (a stop, a deploy's switch): no watch, no pass, no restart.
// - hold(true): no restart starts and no health probe runs (a deploy runs); a restart that was
//   due runs at hold(false). Exits are still seen and recorded.
// Blocking work (starts, probes, stops) runs on detached workers; stale messages of an earlier
// instance are recognised by a generation number and dropped.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "messages/instance.hpp"
#include "messages/manifest.hpp"
#include "runtime/driver.hpp"
#include "runtime/metrics/berth_metrics.hpp"
#include "runtime/resilience/restart_policy.hpp"
#include "runtime/status.hpp"

namespace berth {

struct keeper_policy {
  restart_policy restart;
  std::chrono::milliseconds pass_interval{5000};
  int unhealthy_limit = 3;  // failed probes in a row that restart a live instance
  std::chrono::milliseconds stop_grace{3000};  // stopping one that stopped answering
};
// One health probe of an app on 127.0.0.1:<port> (blocking): GET health.path, a timeout of four
// probe intervals (at least 1 s). The probe a keeper of an app runs on its pass.
std::function<bool(std::string* why)> http_probe(const health_spec& health, uint16_t port);

// The policy of a project's environments: --restart-*, --crash-loop-*, --reconcile-interval-ms,
// --stop-grace-ms.
keeper_policy keeper_policy_of(const deploy_settings& s);

class keeper {
 public:
  struct hooks {
    std::string what;  // "the release", "the preview", "Caddy": how log lines and reasons name it
    nlohmann::json log_fields = nlohmann::json::object();  // on its log lines: project and env
    // Called in the actor: the blocking start of a new instance (it runs on a worker and
    // returns once the instance serves), made of what the actor knows now.
    std::function<std::function<status(instance_ref* out)>()> start;
    // Called in the actor: one blocking health probe of `r` (runs on a worker; true = healthy,
    // else *why says what failed). Empty: being alive is enough.
    std::function<std::function<bool(std::string* why)>(const instance_ref& r)> probe;
    // The instance is down: record it, then call `then` (in the owner actor). `why` starts with
    // "oom: " when the kernel killed it for going over its memory limit.
    std::function<void(const std::string& why, std::function<void()> then)> died;
    // A start brought it up (`cause`: cause::start or cause::restart): record it, then `then`.
    std::function<void(const instance_ref& r, const char* cause, std::function<void()> then)> started;
    // Too many exits within the window: record it; nothing restarts until the owner starts it.
    std::function<void(const std::string& why)> crash_loop;
    // The exits the owner's fold has seen recently (µs since the Unix epoch).
    std::function<std::vector<int64_t>()> exits;
  };

  keeper() = default;
  keeper(const keeper&) = delete;
  keeper& operator=(const keeper&) = delete;
  ~keeper();

  void init(caf::event_based_actor* self, std::shared_ptr<runtime_driver> driver, keeper_policy policy, hooks h);
  // Counts this keeper's instance (running, crashes by reason class, restarts, crash loops)
  // under env (production | preview | proxy); null: not measured. Once, after init.
  void measure(std::shared_ptr<berth_metrics> metrics, std::string env);
  // Starts an instance now (no backoff: a person asked, or a first start) with `start` (blocking,
  // run on a worker), records it (hooks.started, cause::start) and keeps it; `done` gets "" or
  // what went wrong (then nothing runs and nothing was recorded).
  void start_now(std::function<status(instance_ref*)> start, std::function<void(const status& failure)> done);
  void keep(const instance_ref& r);
  void release();
  // The instance is down and recorded as such: restart it after the backoff (or a crash loop).
  void restart_later(const std::string& why);
  void hold(bool on);
  // Stops the kept instance (off the scheduler), releases it, then calls `then` in the actor.
  void stop(std::chrono::milliseconds grace, std::function<void()> then);
  const instance_ref& kept() const { return kept_; }
  bool restarting() const { return restart_due_ || restarting_; }

  // The keeper's own messages; combine with the owner's handlers.
  caf::message_handler handlers();

 private:
  void forget_watch();
  void launch(std::function<status(instance_ref*)> start,
              std::function<void(const instance_ref& r, const status& failure)> then);
  void on_exit(uint64_t gen, const std::string& why);
  void on_pass(uint64_t gen);
  void on_restart(uint64_t gen);
  void down(const std::string& why);
  void arm_pass();
  void set_kept(const instance_ref& r);  // kept_ = r, and the running gauge follows
  void died(const std::string& why);     // hooks_.died, counted, then the restart

  std::shared_ptr<berth_metrics> metrics_;
  std::string env_;
  bool counted_ = false;  // kept_ is counted in metrics_'s running gauge

  caf::event_based_actor* self_ = nullptr;
  std::shared_ptr<runtime_driver> driver_;
  keeper_policy policy_;
  hooks hooks_;
  instance_ref kept_;
  uint64_t gen_ = 0;          // bumps on every change of what is kept
  uint64_t watch_token_ = 0;  // the driver's exit watch of kept_ (0: none)
  bool pass_armed_ = false;
  bool probing_ = false;
  int failed_probes_ = 0;
  bool held_ = false;
  bool restart_due_ = false;  // a restart waits for its backoff or for hold(false)
  bool restarting_ = false;   // a restart's start runs
  std::vector<std::function<void()>> after_restart_;  // stop()s waiting for that start to end
  std::string restart_why_;
  std::vector<int64_t> failed_restarts_us_;  // restarts that failed since the last one that came up
};

}  // namespace berth
