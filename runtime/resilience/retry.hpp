// One retry policy for runtime operations that can fail transiently (process starts, proxy
// admin calls): exponential backoff with full jitter, a bounded number of attempts, and only
// for errors classified transient. No actor code: retry() blocks the calling thread (it
// sleeps between attempts), so callers run it off CAF's scheduler threads.
//
// Backoff: before retry n (n = 0 for the first retry) the caller sleeps a uniform draw from
// [0, min(max, base * 2^n)] ("full jitter", as in the AWS architecture blog's "Exponential
// Backoff And Jitter"): concurrent callers that failed together do not come back together.
// With the seeds (base 1 s, max 16 s, 5 retries) the caps are 1-2-4-8-16 s.
//
// Transient or permanent (classify below), from berth's status codes:
// - io_error is transient: fork/pipe failures (EAGAIN, ENOMEM), a log file that cannot be
//   opened right now, timeouts, an unreachable peer, HTTP 5xx from Caddy's admin API. Retrying
//   later can succeed.
//   Exception: an io_error whose message carries "Permission denied" or "Operation not
//   permitted" (EACCES/EPERM, e.g. a program that is not executable) is permanent: the same
//   call fails the same way until someone changes the files.
// - not_found (a missing program, cwd or release; HTTP 404), invalid_argument (empty argv, a
//   bad env name, ENOEXEC; HTTP 400) and corruption are permanent: the request itself is
//   wrong, so it fails at once and does not count against the backend's circuit breaker.
// - A call rejected by an open circuit breaker (is_backend_unavailable in runtime/resilience/breaker.hpp)
//   is permanent for this loop: the point of the breaker is to fail fast.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

#include "runtime/status.hpp"

namespace berth {

enum class failure_kind { transient, permanent };
const char* to_string(failure_kind k);

// ok statuses are neither; callers ask only about failures.
failure_kind classify(const status& s);
inline bool is_transient(const status& s) { return !s.is_ok() && classify(s) == failure_kind::transient; }

struct retry_policy {
  int attempts = 5;                      // retries after the first attempt (0: try once)
  std::chrono::milliseconds base{1000};  // cap of the first retry's delay; doubles per retry
  std::chrono::milliseconds max{16000};  // cap of any delay
};

// min(max, base * 2^n), without overflow for any n >= 0.
std::chrono::milliseconds backoff_cap(const retry_policy& p, int n);
// A uniform draw from [0, backoff_cap(p, n)] (milliseconds, both ends included).
std::chrono::milliseconds full_jitter(const retry_policy& p, int n, std::mt19937_64& rng);

struct retry_options {
  // Polled after a failure, before every retry and while sleeping (every <= 20 ms with the
  // default sleep): true stops the loop, which returns the last failure. The first attempt
  // always runs.
  std::function<bool()> cancelled;
  // Called before each retry's sleep: attempt (1-based) that failed, its status, the delay.
  std::function<void(int attempt, const status& failure, std::chrono::milliseconds delay)> on_retry;
  // Test hooks. sleep: default sleeps in slices of <= 20 ms, returning early on a cancel.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::mt19937_64* rng = nullptr;  // default: one per thread, seeded from std::random_device
};

// Runs `op` until it succeeds, fails permanently, is cancelled, or 1 + p.attempts attempts
// have failed; returns the last status. *attempts_made (optional) gets the number of calls.
status retry(const retry_policy& p, const std::function<status()>& op, const retry_options& o = {},
             int* attempts_made = nullptr);

}  // namespace berth
