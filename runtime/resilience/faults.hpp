// Fault injection for tests: makes the next N calls to a backend fail (transiently or
// permanently) without touching the real driver. backend_guards::call (runtime/resilience/backends.hpp)
// consults it for every attempt it lets through its breaker, so an injected failure goes
// through the same retry policy and counts against the same breaker as a real one.
// Set only through POST /api/debug/fail, which exists only with --enable-fault-injection.
// Thread-safe.
#pragma once
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/status.hpp"

namespace berth {

enum class fault_kind { transient, permanent };
const char* to_string(fault_kind k);
// "transient" | "permanent"; false for anything else.
bool parse_fault_kind(const std::string& text, fault_kind& out);

class fault_injector {
 public:
  // The next `count` calls to `backend` fail with `kind` (replacing what was pending;
  // count 0 clears). transient: io_error; permanent: invalid_argument.
  void fail_next(const std::string& backend, int count, fault_kind kind);
  // Consumes one pending fault of `backend`: its status, or nullopt when none is pending.
  std::optional<status> take(const std::string& backend);
  int pending(const std::string& backend);
  void clear();

 private:
  struct pending_faults {
    int count = 0;
    fault_kind kind = fault_kind::transient;
  };
  std::mutex mu_;
  std::map<std::string, pending_faults> by_backend_;
};

}  // namespace berth
