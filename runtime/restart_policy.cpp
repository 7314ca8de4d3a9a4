#include "runtime/restart_policy.hpp"

#include <algorithm>

namespace berth {

std::optional<std::chrono::milliseconds> restart_tracker::next(const restart_policy& p, clock::time_point now,
                                                               std::mt19937_64& rng) {
  while (!times_.empty() && now - times_.front() > p.window) times_.pop_front();
  if (times_.size() >= p.limit) return std::nullopt;
  auto shift = std::min<size_t>(times_.size(), 30);
  auto cap = std::min<int64_t>(p.max.count(), p.base.count() << shift);
  times_.push_back(now);
  std::uniform_int_distribution<int64_t> draw(0, std::max<int64_t>(cap, 0));
  return std::chrono::milliseconds(draw(rng));
}

std::mt19937_64& jitter_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace berth
