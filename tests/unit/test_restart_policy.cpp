#include <catch2/catch.hpp>

#include "runtime/resilience/restart_policy.hpp"

using namespace berth;
using namespace std::chrono_literals;

namespace {
constexpr int64_t kSecond = 1'000'000;
}

TEST_CASE("restart_policy: a kept app's first death restarts at once and the backoff grows with repeated deaths",
          "[restart]") {
  restart_policy p{250ms, 30000ms, 5, 60s, true};
  std::mt19937_64 rng{42};
  int64_t now = 1000 * kSecond;
  std::vector<int64_t> exits{now};
  for (int i = 0; i < 50; ++i) CHECK(*restart_delay(p, now, exits, rng) == 0ms);
  // An old death (outside the window) does not count: it ran cleanly since.
  exits = {now - 120 * kSecond, now};
  CHECK(*restart_delay(p, now, exits, rng) == 0ms);
  // n-th death within the window: uniform in [cap/2, cap], cap = base * 2^(n-2).
  for (int n = 2; n <= 5; ++n) {
    exits.clear();
    for (int k = 0; k < n; ++k) exits.push_back(now - k * kSecond);
    auto cap = 250 << (n - 2);
    for (int i = 0; i < 50; ++i) {
      auto d = restart_delay(p, now, exits, rng)->count();
      CHECK(d >= cap / 2);
      CHECK(d <= cap);
    }
  }
  exits.push_back(now - 10 * kSecond);  // 6 within the window: a crash loop
  CHECK(!restart_delay(p, now, exits, rng));
  // The cap holds.
  restart_policy capped{250ms, 1000ms, 100, 60s, true};
  exits.assign(20, now);
  for (int i = 0; i < 20; ++i) CHECK(restart_delay(capped, now, exits, rng)->count() <= 1000);
}

TEST_CASE("restart_policy: without first_at_once every delay is full jitter up to base * 2^(n-1)", "[restart]") {
  restart_policy p{250ms, 30000ms, 5, 60s, false};
  std::mt19937_64 rng{7};
  int64_t now = 1000 * kSecond;
  std::vector<int64_t> exits{now, now - kSecond};
  for (int i = 0; i < 50; ++i) CHECK(restart_delay(p, now, exits, rng)->count() <= 500);
}
