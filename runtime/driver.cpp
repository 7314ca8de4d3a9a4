#include "runtime/driver.hpp"

#include <fmt/format.h>

#include "runtime/usage_cache.hpp"

namespace berth {

std::string instance_status::describe() const {
  switch (state) {
    case instance_state::running: return "running";
    case instance_state::exited:
      if (oom) return "killed: out of memory (over its memory limit)";
      if (signal > 0) return fmt::format("killed by signal {}", signal);
      if (exit_code >= 0) return fmt::format("exited with code {}", exit_code);
      return "exited";
    case instance_state::gone: return "gone";
  }
  return "gone";
}

usage_view usage_view_of(const runtime_driver& driver, const instance_ref& ref) {
  static usage_cache cache{usage_max_age};
  return cache.get(driver, ref);
}

}  // namespace berth
