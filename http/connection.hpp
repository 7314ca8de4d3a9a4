// Internal to http/: the connection and request limits described in server.hpp. connection.cpp
// runs each connection under them, admission.cpp checks each request once its headers are in.
// listener.hpp accepts the connections, dispatch.hpp runs them on the workers.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include <httplib.h>

#include "runtime/net/transport.hpp"

namespace berth::http::connection_detail {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The limits described in server.hpp.
constexpr size_t head_limit = 64 * 1024;  // request line + headers
constexpr size_t line_limit = 8192;       // httplib's CPPHTTPLIB_HEADER_MAX_LENGTH
constexpr auto head_timeout = 5s;
constexpr auto body_timeout = 30s;
constexpr auto io_timeout = 5s;  // one read or write waiting for the socket
constexpr time_t keep_alive_idle_s = 2;
constexpr size_t keep_alive_requests = 100;
constexpr auto linger_limit = 2s;
constexpr auto linger_idle = 500ms;
constexpr size_t linger_bytes = 64u << 20;

// What one request on a connection has done so far. Lives on the worker thread's stack while
// httplib parses and answers the request; admission.cpp reaches it through t_request.
struct request_state {
  clock_type::time_point started;  // the request's first byte (or the connection's handshake)
  clock_type::time_point head_deadline, body_deadline;
  bool head_done = false;    // headers parsed: auth and the framing checks have run
  size_t head_bytes = 0;     // bytes of the request line and headers
  size_t line_bytes = 0;     // bytes of the current head line
  bool request_line_done = false;
  bool head_too_large = false;
  bool line_too_long = false;
  bool timed_out = false;    // a read gave up waiting
  uint64_t body_left = 0;    // declared body bytes not read yet
  bool must_close = false;   // refused: the connection ends after the answer
  size_t written = 0;        // bytes of the answer sent
  bool close_after() const { return !head_done || body_left > 0 || must_close; }
};

// The request the calling worker thread is serving (null outside one).
extern thread_local request_state* t_request;

// connection.cpp: httplib's request parsing and routing, with berth's connection handling.
// Connections come from the listener (listener.hpp), not from httplib's own accept loop.
class guarded_server final : public httplib::Server {
 public:
  using linger_fn = std::function<void(std::shared_ptr<transport>)>;
  using park_fn = std::function<void(std::shared_ptr<transport>, size_t served)>;
  // Serves one accepted connection (`served` requests already answered on it) under the limits
  // above, until it closes, goes idle, or is handed to `linger` when the client may still be
  // sending. Called on a worker; the head deadline starts here, so time spent queued for a
  // worker does not count.
  void serve(std::shared_ptr<transport> conn, size_t served);
  // Before serving: where closing connections go (default: closed at once), and where a
  // kept-alive connection waits for its next request without a worker (default: on the worker).
  void set_linger(linger_fn linger) { linger_ = std::move(linger); }
  void set_park(park_fn park) { park_ = std::move(park); }
  // Serving starts (on the listening socket) / stops: once stopped, kept-alive connections
  // end after their current request. httplib's own shutdown flag (svr_sock_) stays set: it
  // would cut streams without their last chunk; they end themselves (context::stopping).
  void open(socket_t listening) { svr_sock_ = listening; }
  void close() { stopping_ = true; }

 private:
  bool process_and_close_socket(socket_t sock) override;  // httplib's accept loop: unused
  static void answer_unparsed(httplib::Stream& strm, const request_state& r);
  void finish(std::shared_ptr<transport> conn, const request_state& r);
  linger_fn linger_;
  park_fn park_;
  std::atomic<bool> stopping_{false};
};

// admission.cpp
// What a request's body may be: --max-body-bytes for every route but the source uploads
// (is_upload_route), which may carry --max-upload-bytes.
struct admission_limits {
  size_t max_body = 1 << 20;
  uint64_t max_upload = 512ull << 20;
  bool metrics_public = false;  // GET /metrics without the token
};
// Runs once the headers are parsed (from the Expect: 100-continue hook or before routing):
// starts the body clock, then checks the token, then how the body is framed. False when the
// request is refused; the answer is then in `res` and the connection closes after it.
// An upload route needs Content-Length (411) and no Content-Encoding (415); its body clock is
// upload_body_timeout() of the declared size instead of body_timeout.
bool admit(const httplib::Request& req, httplib::Response& res, const std::string& token,
           const admission_limits& limits);
// PUT /api/projects/<name>/source and PUT /api/projects/<name>/source/<path> (what
// http/routes_source.cpp streams to disk).
bool is_upload_route(const httplib::Request& req);
// How long an upload of `declared` bytes may take to arrive: body_timeout plus one second per
// MiB (a client sending at 1 MiB/s or faster finishes in time).
clock_type::duration upload_body_timeout(uint64_t declared);
// httplib answers some requests itself (unknown route, bad request line, ...) with an empty
// body: give those the same JSON error shape as everything else. Always "Handled": that also
// makes httplib add Content-Length to an error it writes without routing (the answer to
// Expect: 100-continue), which it otherwise leaves out.
httplib::Server::HandlerResponse json_errors(const httplib::Request&, httplib::Response& res);
// Post-routing: tells the client when this answer ends the connection.
void mark_close(const httplib::Request&, httplib::Response& res);

}  // namespace berth::http::connection_detail
