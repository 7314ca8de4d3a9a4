// The runtime backends' resilience in one object: a circuit breaker per backend, the retry
// policy, and the fault injector tests use. The actor tree makes one and hands it to whatever
// calls a backend (the deploy pipeline, the process keepers, the proxy) and to the `backends`
// actor, which answers GET /health and POST /api/debug/fail. No actor code; thread-safe.
#pragma once
#include <chrono>
#include <functional>
#include <string>

#include "runtime/resilience/breaker.hpp"
#include "runtime/resilience/faults.hpp"
#include "runtime/status.hpp"

namespace berth {

struct call_options {
  std::function<bool()> cancelled;  // stops retrying (retry_options::cancelled)
  std::function<void(int attempt, const status& failure, std::chrono::milliseconds delay)> on_retry;
  bool essential = false;  // circuit_breaker::mode::essential
  int max_retries = -1;    // < 0: the configured policy's; else at most this many retries
};

class backend_guards {
 public:
  breaker_registry& breakers() { return breakers_; }
  fault_injector& faults() { return faults_; }

  // Runs `op` for `backend` with the registry's retry policy, every attempt through the
  // backend's breaker, after the fault injector had its say: a pending injected fault is
  // returned instead of calling op, and counts like a real failure. Transient failures are
  // retried; permanent ones and a refusal by the open breaker return at once. Blocking.
  // *attempts (optional): attempts made (a refused call is one attempt).
  status call(const std::string& backend, const std::function<status()>& op, const call_options& o = {},
              int* attempts = nullptr);

 private:
  breaker_registry breakers_;
  fault_injector faults_;
};

}  // namespace berth
