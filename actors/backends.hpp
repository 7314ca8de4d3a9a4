// backends — the runtime backends' circuit breakers and fault injector as an actor, so that
// http/ asks instead of reading globals, and so that every breaker state change becomes an
// event in the stream `backends` (breaker_opened | breaker_half_open | breaker_closed).
//   (status_atom)                                          -> std::vector<breaker_snapshot>
//   (fail_atom, std::string backend, int32_t count, std::string kind) -> int32_t faults pending
//       (fault injection: the next `count` calls to the backend fail; kind transient|permanent)
#pragma once
#include <memory>
#include <vector>

#include <caf/all.hpp>

#include "runtime/resilience/backends.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<berth::breaker_snapshot>)

namespace berth {

struct backends_state {
  std::shared_ptr<backend_guards> shared;
  static inline const char* name = "backends";
};

caf::behavior backends_actor(caf::stateful_actor<backends_state>* self, std::shared_ptr<backend_guards> shared);

}  // namespace berth
