#include "runtime/net/health_probe.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include <httplib.h>

namespace berth {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxBody = 64 * 1024;
constexpr milliseconds kMinProbeTimeout{100};
constexpr milliseconds kDefaultProbeTimeout{2000};
constexpr milliseconds kMinInterval{10};
// wait_healthy's pause between probes: a tenth of the wait so far, at least 1 ms, at most the
// interval. An app is seen within ~1 ms of its first answer when it boots in ~10 ms, within 10 %
// of its boot time when slower, with about 10 probes per tenfold of boot time (a refused
// connect costs some µs).
constexpr milliseconds kFirstRetry{1};
constexpr int kPauseFraction = 10;
constexpr milliseconds kSleepSlice{50};

milliseconds since(steady::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(steady::now() - t0);
}

bool good_code(int code) { return code >= 200 && code < 400; }

bool resolves(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  ::freeaddrinfo(res);
  return true;
}

probe_result exited_result() {
  probe_result r;
  r.error = "process exited";
  return r;
}

// Sleeps until `until`, in short slices; false if still_wanted() turned false meanwhile.
bool sleep_until(steady::time_point until, const std::function<bool()>& still_wanted) {
  for (;;) {
    auto now = steady::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<steady::duration>(until - now, kSleepSlice));
    if (still_wanted && !still_wanted()) return false;
  }
}

}  // namespace

probe_result probe_once(const std::string& host, uint16_t port, const std::string& path,
                        milliseconds timeout) {
  auto t0 = steady::now();
  probe_result r;
  std::string p = path.empty() ? "/" : path;
  if (p[0] != '/') p = "/" + p;
  if (p.find_first_of("\r\n ") != std::string::npos) {
    r.error = "invalid health path";
    return r;
  }
  if (timeout < kMinProbeTimeout) timeout = kMinProbeTimeout;

  httplib::Client cli(host, port);
  cli.set_connection_timeout(timeout);
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(timeout);
  cli.set_follow_location(false);
  cli.set_keep_alive(false);

  int code = 0;
  size_t received = 0;
  bool truncated = false;
  auto deadline = t0 + timeout;
  auto res = cli.Get(
      p, httplib::Headers{{"User-Agent", "berth-health-probe"}},
      [&](const httplib::Response& resp) {
        code = resp.status;
        return true;
      },
      [&](const char*, size_t n) {
        // The status is what counts: drop the body past 64 KiB or once the time is up.
        received += n;
        if (received > kMaxBody || steady::now() > deadline) {
          truncated = true;
          return false;
        }
        return true;
      });
  r.elapsed = since(t0);
  if (res) code = res->status;

  if (code != 0 && (res || truncated)) {
    r.status_code = code;
    r.healthy = good_code(code);
    if (!r.healthy) r.error = "HTTP " + std::to_string(code);
    return r;
  }
  r.status_code = code;
  switch (res.error()) {
    case httplib::Error::Connection:
      if (r.elapsed >= timeout)
        r.error = "timeout";
      else
        r.error = resolves(host) ? "connection refused" : "cannot resolve host " + host;
      break;
    case httplib::Error::ConnectionTimeout:
      r.error = "timeout";
      break;
    case httplib::Error::Read:
    case httplib::Error::Write:
      // A read that hit the timeout, or a peer that closed without (a full) response.
      r.error = r.elapsed + milliseconds(20) >= timeout ? "timeout" : "connection closed";
      break;
    default:
      r.error = httplib::to_string(res.error());
      break;
  }
  return r;
}

probe_result wait_healthy(const std::string& host, uint16_t port, const std::string& path,
                          milliseconds overall_timeout, milliseconds interval,
                          std::function<bool()> still_wanted) {
  auto start = steady::now();
  auto deadline = start + overall_timeout;
  interval = std::max(interval, kMinInterval);
  auto gone = [&] { return still_wanted && !still_wanted(); };
  probe_result last;
  for (;;) {
    if (gone()) {
      last = exited_result();
      break;
    }
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    auto t = std::max(kMinProbeTimeout, std::min(std::max(interval, kDefaultProbeTimeout), left));
    last = probe_once(host, port, path, t);
    if (last.healthy) break;
    if (gone()) {
      last = exited_result();
      break;
    }
    auto now = steady::now();
    if (now >= deadline) break;
    // The wake-up is capped at the deadline, so there is one last probe right at it.
    auto pause = std::clamp<steady::duration>((now - start) / kPauseFraction, kFirstRetry, interval);
    sleep_until(std::min<steady::time_point>(now + pause, deadline), still_wanted);
  }
  last.elapsed = since(start);
  return last;
}

probe_result stay_healthy(const std::string& host, uint16_t port, const std::string& path,
                          milliseconds duration, milliseconds interval,
                          std::function<bool()> still_wanted) {
  auto start = steady::now();
  probe_result last;
  if (duration <= milliseconds(0)) {
    last.healthy = true;
    return last;
  }
  auto deadline = start + duration;
  interval = std::max(interval, kMinInterval);
  auto t = std::max(interval, kDefaultProbeTimeout);
  auto next = start + interval;
  auto gone = [&] { return still_wanted && !still_wanted(); };
  for (;;) {
    if (!sleep_until(std::min(next, deadline), still_wanted) || gone()) {
      last = exited_result();
      break;
    }
    last = probe_once(host, port, path, t);
    if (!last.healthy) break;
    if (gone()) {
      last = exited_result();
      break;
    }
    if (steady::now() >= deadline) break;  // healthy for the whole duration
    next += interval;
  }
  last.elapsed = since(start);
  return last;
}

}  // namespace berth
