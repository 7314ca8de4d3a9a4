// What the deploy benchmarks share: starting processes (berth, apps), free ports, a JSON API
// client for berth, and medians. Used by bench_deploy and bench_switch.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace berth::bench {

using json = nlohmann::json;

// "0.42 0.30 0.25": /proc/loadavg's first three fields.
std::string loadavg();

// fork + execve, no shell; stdout/stderr to `log`; the child dies with us (PR_SET_PDEATHSIG).
// Its environment is ours without any BERTH_* variable. -1 (and *error) when it cannot start.
pid_t spawn(const std::vector<std::string>& args, const std::string& log, std::string* error);

// A port that was free on 127.0.0.1 a moment ago; 0 on error.
uint16_t free_port();

// Keep-alive JSON client for berth's API: {status, body} (-1 with transport_error on no answer).
struct api_client {
  httplib::Client cli;
  explicit api_client(uint16_t port);
  std::pair<int, json> get(const std::string& path);
  std::pair<int, json> post(const std::string& path, const json& body);
  static std::pair<int, json> convert(const httplib::Result& r);
};

double median(std::vector<double> v);  // of the values that are not NAN; NAN when none

}  // namespace berth::bench
