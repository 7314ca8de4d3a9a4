#include "runtime/resilience/restart_policy.hpp"

#include <algorithm>

namespace berth {

size_t exits_within(const restart_policy& p, int64_t now_us, const std::vector<int64_t>& exits_us) {
  auto from = now_us - std::chrono::duration_cast<std::chrono::microseconds>(p.window).count();
  return static_cast<size_t>(std::count_if(exits_us.begin(), exits_us.end(), [&](int64_t t) { return t >= from; }));
}

std::optional<std::chrono::milliseconds> restart_delay(const restart_policy& p, int64_t now_us,
                                                       const std::vector<int64_t>& exits_us, std::mt19937_64& rng) {
  auto n = std::max<size_t>(exits_within(p, now_us, exits_us), 1);
  if (n > p.limit) return std::nullopt;
  if (p.first_at_once) {
    if (n == 1) return std::chrono::milliseconds(0);
    auto cap = std::min<int64_t>(p.max.count(), p.base.count() << std::min<size_t>(n - 2, 30));
    std::uniform_int_distribution<int64_t> draw(cap / 2, std::max<int64_t>(cap, 0));
    return std::chrono::milliseconds(draw(rng));
  }
  auto shift = std::min<size_t>(n - 1, 30);
  auto cap = std::min<int64_t>(p.max.count(), p.base.count() << shift);
  std::uniform_int_distribution<int64_t> draw(0, std::max<int64_t>(cap, 0));
  return std::chrono::milliseconds(draw(rng));
}

std::mt19937_64& jitter_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace berth
