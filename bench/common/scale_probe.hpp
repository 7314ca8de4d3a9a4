// What bench_scale measures from outside berth: its RSS and CPU time (/proc), many HTTP calls
// from a few keep-alive clients at once, and wrk's figures for one URL.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

namespace berth::bench {

// VmRSS of `pid` in MB (/proc/<pid>/status); NAN when the process is gone.
double rss_mb(pid_t pid);
// utime + stime of every thread of `pid`, in seconds (/proc/<pid>/stat); NAN when gone.
double cpu_seconds(pid_t pid);
// CPU used by `pid` over `window`, in % of one core (sampled at both ends).
double cpu_percent_over(pid_t pid, std::chrono::milliseconds window);

// Runs `work(index, client_slot)` for every index in [0, n) on `threads` threads, each index
// once (taken in order from a shared counter); `client_slot` is the thread's number, so each
// thread can keep its own keep-alive client. Returns when all are done; `work` may block.
void for_each_concurrently(size_t n, int threads, const std::function<void(size_t index, int slot)>& work);

// wrk's answer for one run: requests/s, p99 latency (ms), requests that failed (non-2xx/3xx
// and socket errors), or ok=false with the reason.
struct wrk_result {
  bool ok = false;
  double req_per_s = 0, p99_ms = 0;
  long failed = 0;
  std::string error;
};
// Runs `wrk -t<threads> -c<connections> -d<seconds>s --latency -H <header> <url>` (no shell) with
// its output in `log`; parses it (wrk 4.x output).
wrk_result run_wrk(const std::string& wrk, int threads, int connections, int seconds, const std::string& header,
                   const std::string& url, const std::string& log);
// The wrk latency text ("812.00us", "4.12ms", "1.02s") in ms; NAN when not one.
double wrk_latency_ms(const std::string& text);

}  // namespace berth::bench
