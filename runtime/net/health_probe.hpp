// HTTP health probing of a started process (plain HTTP GET with cpp-httplib). No actor code:
// these calls block the calling thread, so an actor runs them on a detached/blocking worker.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace berth {

struct probe_result {
  bool healthy = false;
  int status_code = 0;  // 0 when no HTTP response was received
  // "" when healthy; otherwise e.g. "HTTP 500", "connection refused", "timeout",
  // "process exited", "read error".
  std::string error;
  // probe_once: that request. wait_healthy / stay_healthy: the whole wait.
  std::chrono::milliseconds elapsed{0};
};

// One GET http://host:port/path (an empty path means "/"). The timeout bounds the connect and
// each read/write; the body is read up to 64 KiB, then dropped. Healthy iff the status is 2xx
// or 3xx; redirects are NOT followed.
probe_result probe_once(const std::string& host, uint16_t port, const std::string& path,
                        std::chrono::milliseconds timeout);

// Probes until one is healthy or `overall_timeout` has passed; returns the last result. The
// first probe is at once; each pause is a tenth of the wait so far, at least 1 ms, at most
// `interval` (an app is seen within ~1 ms of its first answer, or 10 % of a slower boot). Each probe's timeout is max(interval, 2 s) clamped to the time left (at least
// 100 ms, so overall_timeout 0 still makes one attempt). If `still_wanted` is set and returns
// false (checked before each probe, after a failed one and while sleeping), it stops early
// with error "process exited".
probe_result wait_healthy(const std::string& host, uint16_t port, const std::string& path,
                          std::chrono::milliseconds overall_timeout, std::chrono::milliseconds interval,
                          std::function<bool()> still_wanted = {});

// After wait_healthy passed: keeps probing every `interval` for `duration` (Nomad's
// min_healthy_time), with a last probe at the end of it. Any failed probe, or `still_wanted`
// returning false, ends it unhealthy. duration 0 -> healthy at once, without a probe.
// Each probe's timeout is max(interval, 2 s).
probe_result stay_healthy(const std::string& host, uint16_t port, const std::string& path,
                          std::chrono::milliseconds duration, std::chrono::milliseconds interval,
                          std::function<bool()> still_wanted = {});

}  // namespace berth
