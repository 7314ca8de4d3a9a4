// The client kinds bench_switch measures, on top of tests/integration/traffic_support (which
// has the new-connection GET, kept-alive POST, streaming and WebSocket clients): a kept-alive
// GET client, the set of all five on one target, and the figures each one reports.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/traffic_support.hpp"

namespace berth::bench {

// What one client kind reported over one window. p50/p99 are nearest-rank over its ok requests.
struct kind_figures {
  std::string kind;      // "new-conn GET", "kept-alive GET", "kept-alive POST", "stream", "websocket"
  std::string protocol;  // "http/1.1" or "h2"
  uint64_t requests = 0, failed = 0, unexpected_closes = 0, clean_closes = 0;
  double p50 = 0, p99 = 0, longest_stall_ms = 0;
  std::vector<std::string> errors;  // the client's descriptions (first 20)
  nlohmann::json to_json() const;
};

// The five kinds on one target, started together: new-connection GET / and kept-alive GET /
// every 20 ms, kept-alive POST /echo every 20 ms, back-to-back GET /stream, and a WebSocket
// on /ws echoing every 100 ms that reconnects after a clean close.
class client_set {
 public:
  explicit client_set(const berth::it::target& t);
  void start();
  std::vector<kind_figures> stop();  // in the order of the kinds above

 private:
  std::vector<std::pair<std::string, std::unique_ptr<berth::it::traffic_client>>> clients_;
};

}  // namespace berth::bench
