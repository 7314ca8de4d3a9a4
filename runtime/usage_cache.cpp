#include "runtime/usage_cache.hpp"

#include "runtime/driver.hpp"

namespace berth {

namespace {
// Samples older than this are dropped: their instance has ended or nobody asks for it.
constexpr std::chrono::seconds forget_after{10};
}  // namespace

usage_view sample_usage(const runtime_driver& driver, const instance_ref& ref) {
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

usage_view usage_cache::get(const runtime_driver& driver, const instance_ref& ref) {
  if (ref.empty()) return {};
  auto now = clock_type::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = samples_.find(ref.id);
    if (it != samples_.end() && it->second.driver == &driver && now - it->second.taken < max_age_)
      return it->second.view;
  }
  auto view = sample_usage(driver, ref);
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = samples_[ref.id];
  if (s.driver != &driver || s.taken <= now) s = sample{&driver, now, view};  // never replace a newer one
  prune(now);
  return view;
}

size_t usage_cache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_.size();
}

void usage_cache::prune(clock_type::time_point now) {
  if (now - pruned_ < forget_after) return;
  pruned_ = now;
  for (auto it = samples_.begin(); it != samples_.end();)
    it = now - it->second.taken > forget_after ? samples_.erase(it) : std::next(it);
}

}  // namespace berth
