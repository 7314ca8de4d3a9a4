#include "runtime/process/uid_pool.hpp"

namespace berth {

bool uid_pool::hold(const std::string& project, uint32_t uid) {
  auto it = owner_.find(uid);
  if (it != owner_.end()) return it->second == project;
  give_back(project);
  owner_[uid] = project;
  uid_[project] = uid;
  return true;
}

std::optional<uint32_t> uid_pool::take(const std::string& project) {
  if (auto held = of(project); held != 0) return held;
  uint64_t candidate = lo_;
  for (auto it = owner_.lower_bound(lo_); it != owner_.end() && it->first == candidate; ++it) ++candidate;
  if (candidate > hi_) return std::nullopt;
  hold(project, static_cast<uint32_t>(candidate));
  return static_cast<uint32_t>(candidate);
}

void uid_pool::give_back(const std::string& project) {
  auto it = uid_.find(project);
  if (it == uid_.end()) return;
  owner_.erase(it->second);
  uid_.erase(it);
}

uint32_t uid_pool::of(const std::string& project) const {
  auto it = uid_.find(project);
  return it == uid_.end() ? 0 : it->second;
}

}  // namespace berth
