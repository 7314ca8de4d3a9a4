#include "runtime/driver.hpp"

#include <fmt/format.h>

namespace berth {

std::string instance_status::describe() const {
  switch (state) {
    case instance_state::running: return "running";
    case instance_state::exited:
      if (signal > 0) return fmt::format("killed by signal {}", signal);
      if (exit_code >= 0) return fmt::format("exited with code {}", exit_code);
      return "exited";
    case instance_state::gone: return "gone";
  }
  return "gone";
}

}  // namespace berth
