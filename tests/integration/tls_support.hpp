// What the TLS front tests (test_tls_front.cpp) stand on: a TLS client on OpenSSL, a tiny
// upstream standing in for HAProxy's host listener (plain GETs, a streamed answer, WebSocket
// echo), an ask server, pebble through scripts/pebble.sh, and a real Caddy running
// tls_front_config. Each helper kills what it started when it goes out of scope.
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

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace berth::it {

// One TLS connection to 127.0.0.1:port with SNI `name`, verifying the server's certificate
// against `ca_file` (chain and name). Blocking calls, each bounded by the timeout given.
class tls_connection {
 public:
  tls_connection() = default;
  ~tls_connection();
  tls_connection(const tls_connection&) = delete;
  tls_connection& operator=(const tls_connection&) = delete;

  // Connects and completes the handshake; false with error() set when either fails.
  bool open(uint16_t port, const std::string& name, const std::string& ca_file,
            const std::vector<std::string>& alpn = {"http/1.1"},
            std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool write(const std::string& bytes);
  // Reads what arrives within `wait` into received(); false once the peer closed (or failed).
  bool read_for(std::chrono::milliseconds wait);
  // Reads until `received()` contains `needle`, the peer closes, or `timeout` passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout);

  const std::string& error() const { return error_; }
  const std::string& received() const { return received_; }
  void clear_received() { received_.clear(); }
  std::string alpn() const;             // the protocol the server selected ("" = none)
  std::string peer_subject() const;     // "CN=..." of the leaf certificate
  std::string peer_issuer() const;      // "CN=..." of its issuer
  std::vector<std::string> peer_names() const;  // DNS names of the leaf's subjectAltName
  std::string peer_serial() const;      // the leaf's serial number, hex
  int64_t peer_seconds_left() const;    // seconds from now to the leaf's notAfter

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string error_, received_;
};

// "GET <path>" over a fresh verified connection with Connection: close; the whole answer as
// received ("" and *error set when the handshake or the exchange failed).
std::string tls_get(uint16_t port, const std::string& name, const std::string& ca_file,
                    const std::string& path, std::string* error = nullptr);

// A WebSocket frame as a client sends it (masked, FIN, text) and the payload of the first
// complete server frame in `bytes` ("" when there is none yet).
std::string ws_client_text_frame(const std::string& text);
std::string ws_first_server_text(const std::string& bytes);

// The stand-in for HAProxy's host listener on 127.0.0.1:port(). Answers
//   GET /stream   "chunk 1\n", 1.5 s later "chunk 2\n" (chunked; tests a front that buffers)
//   an Upgrade: websocket request  101, then echoes every text frame until a close frame
//   anything else "upstream host=<Host> proto=<X-Forwarded-Proto> path=<path>\n"
// Every answer but the WebSocket closes its connection. Threads are joined on destruction.
class tiny_upstream {
 public:
  tiny_upstream();
  ~tiny_upstream();
  uint16_t port() const { return port_; }

 private:
  void serve(int fd);
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
