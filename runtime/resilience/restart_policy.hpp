// When to restart an instance that died: exponential backoff with jitter, and a crash-loop
// limit (more than `limit` exits within `window` → give up and say so). Pure: the exits are the
// ones berth recorded in its log, so a restarted berth keeps counting where it left off.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace berth {

struct restart_policy {
  std::chrono::milliseconds base{250};
  std::chrono::milliseconds max{30000};
  size_t limit = 5;
  std::chrono::seconds window{60};
  // A kept app's policy: the first exit within the window (a release that ran cleanly, then
  // died) restarts at once; the n-th (n >= 2) waits uniform in [cap/2, cap], cap = min(max,
  // base * 2^(n-2)), so the backoff really grows for repeated crashes. false: full jitter below.
  bool first_at_once = false;
};

// Exits (µs since the Unix epoch) within the policy's window before `now_us`.
size_t exits_within(const restart_policy& p, int64_t now_us, const std::vector<int64_t>& exits_us);

// An exit was just recorded (it is among `exits_us`): the delay before the restart, uniform in
// [0, min(max, base * 2^(n-1))] with n the exits within the window (first_at_once: see above);
// nullopt when n is more than `limit` (a crash loop).
std::optional<std::chrono::milliseconds> restart_delay(const restart_policy& p, int64_t now_us,
                                                       const std::vector<int64_t>& exits_us, std::mt19937_64& rng);

// One RNG per thread for jitter, seeded from the OS.
std::mt19937_64& jitter_rng();

}  // namespace berth
