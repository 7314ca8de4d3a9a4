#include "runtime/resilience/retry.hpp"

#include <algorithm>
#include <thread>

#include "runtime/resilience/breaker.hpp"

namespace berth {

using namespace std::chrono_literals;

const char* to_string(failure_kind k) { return k == failure_kind::transient ? "transient" : "permanent"; }

failure_kind classify(const status& s) {
  if (is_backend_unavailable(s)) return failure_kind::permanent;
  switch (s.which()) {
    case status::code::io_error: {
      auto& m = s.message();
      if (m.find("Permission denied") != std::string::npos ||
          m.find("Operation not permitted") != std::string::npos)
        return failure_kind::permanent;
      return failure_kind::transient;
    }
    case status::code::ok:  // not a failure; never retried
    case status::code::not_found:
    case status::code::invalid_argument:
    case status::code::corruption:
      return failure_kind::permanent;
  }
  return failure_kind::permanent;
}

std::chrono::milliseconds backoff_cap(const retry_policy& p, int n) {
  auto base = std::max<int64_t>(p.base.count(), 0);
  auto max = std::max<int64_t>(p.max.count(), 0);
  if (base == 0) return 0ms;
  // base * 2^n reaches max after at most 63 doublings; stop doubling once past it.
  int64_t cap = base;
  for (int i = 0; i < n && cap < max; ++i) cap = cap > max / 2 ? max : cap * 2;
  return std::chrono::milliseconds(std::min(cap, max));
}

std::chrono::milliseconds full_jitter(const retry_policy& p, int n, std::mt19937_64& rng) {
  auto cap = backoff_cap(p, n).count();
  if (cap <= 0) return 0ms;
  std::uniform_int_distribution<int64_t> pick(0, cap);
  return std::chrono::milliseconds(pick(rng));
}

namespace {

std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

void sliced_sleep(std::chrono::milliseconds d, const std::function<bool()>& cancelled) {
  auto until = std::chrono::steady_clock::now() + d;
  for (;;) {
    if (cancelled && cancelled()) return;
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, 20ms));
  }
}

}  // namespace

status retry(const retry_policy& p, const std::function<status()>& op, const retry_options& o,
             int* attempts_made) {
  auto& rng = o.rng ? *o.rng : thread_rng();
  int retries = std::max(p.attempts, 0);
  int made = 0;
  status last;
  for (int n = 0;; ++n) {
    if (made > 0 && o.cancelled && o.cancelled()) break;
    last = op();
    ++made;
    if (last.is_ok() || classify(last) == failure_kind::permanent || n >= retries) break;
    if (o.cancelled && o.cancelled()) break;
    auto delay = full_jitter(p, n, rng);
    if (o.on_retry) o.on_retry(made, last, delay);
    if (o.sleep)
      o.sleep(delay);
    else
      sliced_sleep(delay, o.cancelled);
  }
  if (attempts_made) *attempts_made = made;
  return last;
}

}  // namespace berth
