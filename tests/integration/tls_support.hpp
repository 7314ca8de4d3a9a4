// What the TLS front tests (test_tls_front.cpp) stand on besides the TLS client
// (tls_client.hpp): a tiny upstream standing in for HAProxy's host listener (plain GETs, a
// streamed answer, WebSocket echo), an ask server, pebble through scripts/pebble.sh, and a real
// Caddy running tls_front_config. Each helper kills what it started when it goes out of scope.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/proxy/tls_front.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/tls_client.hpp"

namespace berth::it {

// The stand-in for HAProxy's host listener on 127.0.0.1:port(). Answers
//   GET /stream   "chunk 1\n", then "chunk 2\n" once release_streams() is called (at most
//                 10 s later), chunked: a front that buffers holds chunk 1 back until then
//   an Upgrade: websocket request  101, then echoes every text frame until a close frame
//   anything else "upstream host=<Host> proto=<X-Forwarded-Proto> path=<path>\n"
// Every answer but the WebSocket closes its connection. Threads are joined on destruction.
class front_upstream {
 public:
  front_upstream();
  ~front_upstream();
  uint16_t port() const { return port_; }
  void release_streams() { streams_released_ = true; }

 private:
  void serve(int fd);
  std::atomic<bool> streams_released_{false};
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// Caddy's on-demand "ask" stand-in on 127.0.0.1:port(): GET /ask?domain=D is 200 for the names
// given, 404 for any other. Remembers every name it was asked about.
class ask_server {
 public:
  explicit ask_server(std::set<std::string> allowed);
  ~ask_server();
  uint16_t port() const { return port_; }
  std::set<std::string> asked();
  int times_asked(const std::string& name);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  uint16_t port_ = 0;
};

// pebble and pebble-challtestsrv via scripts/pebble.sh, stopped on destruction.
class pebble_ca {
 public:
  // Starts it (validating against 127.0.0.1:http_port / :https_port). On failure ok() is false
  // and skip_reason() says why (pebble not installed: the test skips).
  // validity_s: how long its certificates last (0 = pebble's default, 5 years).
  pebble_ca(const std::string& dir, uint16_t http_port, uint16_t https_port, unsigned validity_s = 0);
  ~pebble_ca();
  bool ok() const { return !directory.empty(); }
  std::string skip_reason;
  std::string directory;  // https://127.0.0.1:<port>/dir
  std::string ca_file;    // pebble's own HTTPS certificate (acme_ca_root)
  std::string root_file;  // pebble's issuing root: what sites' certificates chain to

 private:
  std::string dir_;
};

// A real Caddy running tls_front_config(settings) from <dir>/caddy.json, killed on destruction.
// start() waits until its admin socket and both site ports answer.
class tls_front_process {
 public:
  tls_front_process(std::string caddy_binary, std::string dir) : binary_(std::move(caddy_binary)), dir_(std::move(dir)) {}
  ~tls_front_process();
  // Settings for this dir: admin socket and storage in it, free ports, the given upstream/ask.
  tls_front_settings settings(const std::string& mode, uint16_t upstream_port, uint16_t ask_port) const;
  // `adjust` may change the generated config before it is written (e.g. to force one challenge).
  bool start(const tls_front_settings& s, std::string* error,
             const std::function<void(nlohmann::json&)>& adjust = nullptr);
  void kill();  // SIGKILL (start() may follow: a restart on the same storage)
  std::string log() const;

 private:
  std::string binary_, dir_;
  process proc_;
};

// Absolute path of an installed caddy ("" when none).
std::string caddy_binary();

}  // namespace berth::it
