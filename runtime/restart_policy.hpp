// When to restart a process that died: exponential backoff with full jitter, and a crash-loop
// limit (more than `limit` restarts within `window` → give up and say so). Pure; the caller
// keeps one tracker per process it supervises.
#pragma once
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <random>

namespace berth {

struct restart_policy {
  std::chrono::milliseconds base{250};
  std::chrono::milliseconds max{30000};
  size_t limit = 5;
  std::chrono::seconds window{60};
};

class restart_tracker {
 public:
  using clock = std::chrono::steady_clock;
  // A restart is due at `now`: the delay to wait (uniform in [0, min(max, base * 2^n)], n =
  // restarts within the window so far), recorded as a restart; nullopt when that would be more
  // than `limit` restarts within the window (a crash loop).
  std::optional<std::chrono::milliseconds> next(const restart_policy& p, clock::time_point now,
                                                std::mt19937_64& rng);
  // Restarts within the window as of the last call.
  size_t recent() const { return times_.size(); }
  void clear() { times_.clear(); }

 private:
  std::deque<clock::time_point> times_;
};

// One RNG per thread for jitter, seeded from the OS.
std::mt19937_64& jitter_rng();

}  // namespace berth
