// Circuit breakers, one per runtime backend ("process": the process driver's starts;
// "proxy": Caddy's admin API). backend_guards::call (runtime/resilience/backends.hpp) runs an
// operation through the backend's breaker and the retry policy (runtime/resilience/retry.hpp).
// No actor code; thread-safe.
//
// States: closed (calls go through) -> open after `failures` consecutive failed calls (calls
// are rejected at once with a backend_unavailable status) -> half_open once `open_for` has
// passed (one trial call goes through, others are still rejected) -> closed when the trial
// succeeds, open again (for another `open_for`) when it fails. The open -> half_open move
// happens when someone looks: a call, or a snapshot (GET /health).
//
// What counts: every attempt of a retried operation is one call. A transient failure
// (runtime/resilience/retry.hpp's classify) counts as a failure. Success and permanent failures (a
// missing program, a bad request: the backend answered, the request was wrong) reset the
// consecutive count and close a half-open breaker: one project's broken manifest must not
// open the breaker for everybody.
//
// The listener is called on every state change with the breaker's lock held, in the order
// the changes happen: it must be quick and must not call back into the breaker (the actor
// tree sends an event to the event store from it).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/resilience/retry.hpp"
#include "runtime/status.hpp"

namespace berth {

// The event stream the actor tree records breaker state changes in (actors/tree.cpp).
constexpr const char* backends_stream = "backends";

// `text` with every absolute filesystem path ("/a/b...", two components or more) replaced by
// "<path>", except the admin API paths of Caddy's errors ("/config/...", "/id/..."): a
// breaker's last error is shown by the unauthenticated GET /health and must not map the host.
std::string without_paths(const std::string& text);

enum class breaker_state { closed, open, half_open };
const char* to_string(breaker_state s);  // "closed" | "open" | "half_open"

struct breaker_settings {
  int failures = 5;                           // consecutive failures that open it (>= 1)
  std::chrono::milliseconds open_for{60000};  // open -> half_open after this long
};

struct breaker_snapshot {
  std::string backend;
  breaker_state state = breaker_state::closed;
  int consecutive_failures = 0;
  int threshold = 0;
  uint64_t calls = 0;       // calls let through (each attempt of a retried operation)
  uint64_t failures = 0;    // of those, failures that counted (transient)
  uint64_t rejections = 0;  // calls refused while open (or half-open with a trial running)
  uint64_t opened = 0;      // times it opened
  std::string last_error;   // the last failure that counted ("" = none yet)
  int64_t since_us = 0;     // wall time of the last state change (µs since the Unix epoch)
  std::chrono::milliseconds retry_in{0};  // open: time left until a trial call is let through
};
// {state, failures (consecutive), threshold, calls, failures_total, rejections, opened,
//  last_error (null when none), since (ISO-8601), retry_in_ms (open only)}
nlohmann::json to_json(const breaker_snapshot& s);

struct breaker_change {
  std::string backend;
  breaker_state from = breaker_state::closed, to = breaker_state::closed;
  int failures = 0;  // consecutive failures at the change
  std::string last_error;
};
using breaker_listener = std::function<void(const breaker_change&)>;

// The status of a call an open breaker refused: io_error whose message contains
// "backend unavailable: " (also when a caller wraps the message in its own).
status backend_unavailable(const std::string& backend, const std::string& why);
bool is_backend_unavailable(const status& s);

class circuit_breaker {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
  // `now` is the clock for the open timeout (tests pass a fake one); default steady_clock.
  explicit circuit_breaker(std::string backend, breaker_settings s = {}, clock_fn now = {});
  circuit_breaker(const circuit_breaker&) = delete;
  circuit_breaker& operator=(const circuit_breaker&) = delete;

  const std::string& backend() const { return backend_; }
  void configure(const breaker_settings& s);
  void set_listener(breaker_listener l);

  // normal: refused while open (and while a half-open trial runs). essential: always runs
  // (bringing back the release that served before a failed switch must not be refused); its
  // outcome counts like any other (a success closes the breaker).
  enum class mode { normal, essential };
  // Runs `op` unless refused (then backend_unavailable(...)); returns what op returned. An
  // exception from op counts as a failure and is rethrown.
  status call(const std::function<status()>& op, mode m = mode::normal);

  breaker_snapshot snapshot();
  breaker_state state() { return snapshot().state; }
  // Closed, counters zero (tests).
  void reset();

 private:
  std::chrono::steady_clock::time_point now() const;
  void maybe_half_open(std::chrono::steady_clock::time_point now);  // lock held
  void move_to(breaker_state to);                                   // lock held
  void finish(bool trial, const status& s);

  std::string backend_;
  clock_fn now_;
  std::mutex mu_;
  breaker_settings settings_;
  breaker_listener listener_;
  breaker_state state_ = breaker_state::closed;
  bool trial_running_ = false;
  int consecutive_ = 0;
  uint64_t calls_ = 0, failures_ = 0, rejections_ = 0, opened_ = 0;
  std::string last_error_;
  std::chrono::steady_clock::time_point opened_at_{};
  int64_t since_us_ = 0;
};

// The breakers, one per backend, and the retry policy backend_guards::call uses.
// The known_backends() always exist (so GET /health lists them); others are made on first use.
class breaker_registry {
 public:
  breaker_registry();
  circuit_breaker& get(const std::string& backend);
  // Once at start (actors/tree.cpp, from cfg.resilience); applies to every breaker.
  void configure(const breaker_settings& s, const retry_policy& p);
  retry_policy policy();
  // Replaces the listener of every breaker (and of those made later); {} removes it.
  void set_listener(breaker_listener l);
  std::vector<breaker_snapshot> snapshots();  // sorted by backend
  // Every breaker closed with zero counters, default settings, no listener (tests).
  void reset();

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<circuit_breaker>> by_name_;
  breaker_settings settings_;
  retry_policy policy_;
  breaker_listener listener_;
};
// The backends berth has: "process", "proxy" and "docker" (the engine behind the docker and
// swarm runtimes).
const std::vector<std::string>& known_backends();

}  // namespace berth
