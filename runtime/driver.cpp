#include "runtime/driver.hpp"

#include <fmt/format.h>

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
  usage_view v;
  resource_usage u;
  if (ref.empty() || !driver.usage(ref, &u)) return v;
  v.known = true;
  v.from_cgroup = u.from_cgroup;
  v.memory_bytes = u.rss_bytes;
  v.cpu_seconds = u.cpu_seconds;
  v.processes = u.processes;
  v.limits = u.limits;
  return v;
}

}  // namespace berth
