// The control endpoint: berth's own accept loop and worker pool around cpp-httplib's request
// parser and router, behind bearer-token auth, with body, header and time limits so that slow
// or large requests cannot pin the server, and an answer for every connection.
//
// Admission (listener.hpp, dispatch.hpp): the listening socket has a backlog of 4096 (httplib's
// is 5); every connection is accepted at once and queued for one of --http-threads workers.
// When --http-queue connections already wait, the acceptor itself answers 503 `saturated` with
// Retry-After. Calls that wait long for the actors (preview start/stop/restart, production
// stop/start, deployment event streams) give their worker back while they wait, up to
// --http-long-calls at once (then 503 `saturated`). Served over TLS when --tls-cert/--tls-key
// are given; a non-loopback address needs them or --insecure-http.
//
// httplib 0.11.4 is a compiled library here, so its own limits are fixed: a request line over
// 8192 bytes gets 414, a header line over 8192 bytes 400 (answered here as 431). It times
// out only single reads, so a client sending one byte every few seconds would hold a worker
// thread for ever, and it reads chunked or length-less bodies without any size limit. berth
// therefore runs each connection itself (on httplib's request parser) with:
//   - the request line and headers (and the TLS handshake): at most 64 KiB (431 / 414),
//     complete within 5 s of a worker taking the connection (or of the first byte of a
//     kept-alive request), else 408 and the connection is closed. Time spent queued for a
//     worker does not count: the queue is bounded instead;
//   - the body: only with Content-Length (no Transfer-Encoding: 411), at most
//     --max-body-bytes (413, refused before it is read), complete within 30 s (408); a source
//     upload (PUT …/source[/<path>]) needs Content-Length, may carry --max-upload-bytes and
//     gets 30 s plus 1 s per MiB declared;
//     a request without Content-Length has no body (RFC 9112);
//   - an idle kept-alive connection waits in the accept loop (not on a worker) and is closed
//     after 2 s, and after 100 requests;
//   - a request refused before its body was read (401, 413, ...) closes the connection after
//     the answer; what the client still sends is read and dropped for up to 2 s (by the accept
//     loop, not a worker) so that it gets the answer instead of a reset.
// Every answer, including httplib's own, is a JSON error {"error":{"code","message"}}.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "config/config.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace berth {
class berth_metrics;
class tls_context;
}

namespace berth::http {

class dispatcher;
class listener;
namespace connection_detail {
class guarded_server;
}

// What route handlers may use: the actor system to ask actors, and the config.
struct context {
  caf::actor_system& sys;
  const config& cfg;
  std::chrono::steady_clock::time_point started;
  // Set once the server stops: streams end (the client reconnects to the next berth) so that
  // stopping never waits for them.
  const std::atomic<bool>* stopping = nullptr;
  bool is_stopping() const { return stopping != nullptr && stopping->load(); }
  // The HTTP workers, for their load in /health (null before the server is bound).
  const dispatcher* workers = nullptr;
  // What GET /metrics renders and every answer is counted in (null: no /metrics route).
  berth_metrics* metrics = nullptr;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(cfg.request_timeout_ms);
  }
};
void add_health_routes(httplib::Server& svr, const context& ctx);
void add_project_routes(httplib::Server& svr, const context& ctx);
void add_state_routes(httplib::Server& svr, const context& ctx);  // routes_state.cpp
void add_deployment_routes(httplib::Server& svr, const context& ctx);
// GET /api/projects/{name}/logs (http/routes_logs.cpp).
void add_log_routes(httplib::Server& svr, const context& ctx);
// GET|PUT /api/projects/{name}/source and GET|PUT|DELETE …/source/{path}: a workspace
// project's tree (http/routes_source.cpp).
void add_source_routes(httplib::Server& svr, const context& ctx);
// GET /metrics: registered when ctx.metrics is set.
void add_metrics_routes(httplib::Server& svr, const context& ctx);
// Counts an answered request in ctx.metrics (by method, route pattern and status, with its time).
void count_request(const context& ctx, const httplib::Request& req, const httplib::Response& res);
// The dashboard's files at / (routes_web.cpp) and its sign-in, /api/session (routes_session.cpp).
void add_web_routes(httplib::Server& svr, const context& ctx);
void add_session_routes(httplib::Server& svr, const context& ctx);
// POST /api/debug/{fail,crash}: only registered with cfg.enable_fault_injection.
void add_debug_routes(httplib::Server& svr, const context& ctx);

// Decides, before anything is created, how the endpoint may be served, and says so in the
// log: HTTPS when a certificate and key are given (they must load), plain HTTP on loopback,
// plain HTTP on another address only with insecure_http. False (logged as critical) when berth
// must not start.
bool check_listen_security(const config& cfg);

class server {
 public:
  // cfg.token must be set: every route but /health (and /metrics with cfg.metrics_public)
  // needs it. `metrics` (optional) must outlive the server.
  server(caf::actor_system& sys, const config& cfg, berth_metrics* metrics = nullptr);
  ~server();
  // Loads the TLS certificate (when given) and binds the listen address; false (with a
  // reason) when it cannot.
  bool bind(std::string& error);
  // Serves until stop(); call from a dedicated thread.
  void run();
  // Stops accepting, lets the requests in progress finish (event streams end with a comment
  // saying so); thread-safe.
  void stop();

 private:
  caf::actor_system& sys_;
  config cfg_;
  context ctx_;
  std::unique_ptr<connection_detail::guarded_server> svr_;
  std::unique_ptr<tls_context> tls_;
  std::unique_ptr<dispatcher> workers_;
  std::unique_ptr<listener> listener_;
  std::atomic<bool> stopping_{false};
};

}  // namespace berth::http
