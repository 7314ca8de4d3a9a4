// The control endpoint: cpp-httplib on a bounded thread pool, behind bearer-token auth, with
// body, header and time limits so that slow or large requests cannot pin the server.
//
// httplib 0.11.4 is a compiled library here, so its own limits are fixed: a request line over
// 8192 bytes gets 414, a header line over 8192 bytes 400 (answered here as 431). It times
// out only single reads, so a client sending one byte every few seconds would hold a worker
// thread for ever, and it reads chunked or length-less bodies without any size limit. berth
// therefore runs each connection itself (on httplib's request parser) with:
//   - the request line and headers: at most 64 KiB (431 / 414), complete within 5 s of the
//     connection being accepted (or of the first byte of a kept-alive request), else 408 and
//     the connection is closed. Time spent queued for a worker counts, so connections that
//     stall behind busy workers are dropped as soon as a worker looks at them;
//   - the body: only with Content-Length (no Transfer-Encoding: 411), at most
//     --max-body-bytes (413, refused before it is read), complete within 30 s (408);
//     a request without Content-Length has no body (RFC 9112);
//   - an idle kept-alive connection is closed after 2 s, and after 100 requests;
//   - a request refused before its body was read (401, 413, ...) closes the connection after
//     the answer, reading and discarding what the client still sends for up to 2 s so that it
//     gets the answer instead of a reset.
// Every answer, including httplib's own, is a JSON error {"error":{"code","message"}}.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "config/config.hpp"

namespace httplib {
class Server;
}

namespace berth::http {

// What route handlers may use: the actor system to ask actors, and the config.
struct context {
  caf::actor_system& sys;
  const config& cfg;
  std::chrono::steady_clock::time_point started;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(cfg.request_timeout_ms);
  }
};
void add_health_routes(httplib::Server& svr, const context& ctx);
void add_project_routes(httplib::Server& svr, const context& ctx);
void add_deployment_routes(httplib::Server& svr, const context& ctx);
// POST /api/debug/{fail,crash}: only registered with cfg.enable_fault_injection.
void add_debug_routes(httplib::Server& svr, const context& ctx);

class server {
 public:
  // cfg.token must be set: every route but /health and /metrics needs it.
  server(caf::actor_system& sys, const config& cfg);
  ~server();
  // Binds the listen address; false (with a reason) when it cannot.
  bool bind(std::string& error);
  // Serves until stop(); call from a dedicated thread.
  void run();
  void stop();

 private:
  caf::actor_system& sys_;
  config cfg_;
  context ctx_;
  std::unique_ptr<httplib::Server> svr_;
};

}  // namespace berth::http
