#include "runtime/resilience/faults.hpp"

namespace berth {

const char* to_string(fault_kind k) { return k == fault_kind::transient ? "transient" : "permanent"; }

bool parse_fault_kind(const std::string& text, fault_kind& out) {
  if (text == "transient") out = fault_kind::transient;
  else if (text == "permanent") out = fault_kind::permanent;
  else return false;
  return true;
}

void fault_injector::fail_next(const std::string& backend, int count, fault_kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  if (count <= 0) {
    by_backend_.erase(backend);
    return;
  }
  by_backend_[backend] = {count, kind};
}

std::optional<status> fault_injector::take(const std::string& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_backend_.find(backend);
  if (it == by_backend_.end()) return std::nullopt;
  auto kind = it->second.kind;
  if (--it->second.count <= 0) by_backend_.erase(it);
  auto what = "injected " + std::string(to_string(kind)) + " fault in the " + backend + " backend";
  if (kind == fault_kind::transient) return status::io_error(what);
  return status::invalid_argument(what);
}

int fault_injector::pending(const std::string& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_backend_.find(backend);
  return it == by_backend_.end() ? 0 : it->second.count;
}

void fault_injector::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  by_backend_.clear();
}

}  // namespace berth
