// Usage figures of running instances, sampled at most once per `max_age` per instance. Reading
// them costs a handful of cgroup files (or a scan of /proc, or a Docker API call) per instance:
// far more than the rest of a GET, which clients (dashboards, scripts, load balancers' health
// pages) may send thousands of times a second. So GET views show figures at most `max_age` old.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "messages/instance.hpp"
#include "messages/limits.hpp"

namespace berth {

class runtime_driver;

// How old the usage figures in GET views may be.
constexpr std::chrono::milliseconds usage_max_age{200};

class usage_cache {
 public:
  using clock_type = std::chrono::steady_clock;
  explicit usage_cache(std::chrono::milliseconds max_age) : max_age_(max_age) {}

  // driver.usage(ref) as a usage_view (known = false when it is not running or has no ref):
  // the last sample of ref when it is younger than max_age, else a new one. Thread-safe; the
  // driver is called without the lock held, so instances are sampled in parallel.
  usage_view get(const runtime_driver& driver, const instance_ref& ref);
  // Entries held (ended instances are dropped once their sample is a few seconds old).
  size_t size() const;

 private:
  struct sample {
    const runtime_driver* driver = nullptr;
    clock_type::time_point taken;
    usage_view view;
  };
  void prune(clock_type::time_point now);  // with mu_ held

  const std::chrono::milliseconds max_age_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, sample> samples_;  // by instance id
  clock_type::time_point pruned_{};
};

// Samples driver.usage(ref) now, uncached.
usage_view sample_usage(const runtime_driver& driver, const instance_ref& ref);

}  // namespace berth
