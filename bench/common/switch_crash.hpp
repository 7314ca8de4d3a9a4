// bench_switch's crash part: steady new-connection GETs through a project's routes while the
// router's master process or berth itself is SIGKILLed, and what those requests saw.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/traffic_support.hpp"

namespace berth::bench {

// A new connection per GET / every 10 ms on its own thread, each request's start and outcome
// kept (not only counts: the recovery time needs the first success after the last failure).
class crash_probe {
 public:
  crash_probe(std::string route, berth::it::target t);
  ~crash_probe();
  void start();
  void stop();
  // Figures for the requests that started at or after `from`: requests, failed, the first
  // failure's description, and recovery_ms = from `from` to the first success after the last
  // failure (0 without failures; -1 when it never recovered), slowest_ok_ms = the longest
  // successful request (a crash a proxy in front hides by retrying shows here).
  nlohmann::json figures_since(std::chrono::steady_clock::time_point from) const;
  const std::string& route() const { return route_; }

 private:
  struct sample {
    std::chrono::steady_clock::time_point start;
    double ms;  // until the answer or the failure
    bool ok;
    std::string error;
  };
  void loop();
  std::string route_;
  berth::it::target t_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<sample> samples_;
  std::thread th_;
};

// The router's master process for the berth whose data dir is `data_dir`: a haproxy or caddy
// process whose command line names <data_dir>/proxy/ but not the TLS front's proxy/front/, and
// whose parent is not such a process (HAProxy's workers are children of its master). -1: none.
pid_t router_master_pid(const std::string& data_dir, const std::string& engine);

}  // namespace berth::bench
