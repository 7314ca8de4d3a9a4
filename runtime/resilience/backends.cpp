#include "runtime/resilience/backends.hpp"

#include <algorithm>

namespace berth {

status backend_guards::call(const std::string& backend, const std::function<status()>& op, const call_options& o,
                      int* attempts) {
  auto& breaker = breakers_.get(backend);
  auto policy = breakers_.policy();
  if (o.max_retries >= 0) policy.attempts = std::min(policy.attempts, o.max_retries);
  auto mode = o.essential ? circuit_breaker::mode::essential : circuit_breaker::mode::normal;
  retry_options ro;
  ro.cancelled = o.cancelled;
  ro.on_retry = o.on_retry;
  return retry(
      policy,
      [&] {
        return breaker.call(
            [&] {
              if (auto injected = faults_.take(backend)) return *injected;
              return op();
            },
            mode);
      },
      ro, attempts);
}

}  // namespace berth
