#include "tests/integration/traffic_support.hpp"

#include <signal.h>

#include <algorithm>

#include "tests/integration/traffic_wire.hpp"

namespace berth::it {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto echo_timeout = milliseconds(2000);    // a WebSocket echo
constexpr auto answer_timeout = milliseconds(5000);  // a whole HTTP answer
constexpr auto stream_stall = milliseconds(2000);    // between two chunks of a stream
constexpr size_t max_errors = 20, max_bodies = 50;

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string first_line(const std::string& body) { return body.substr(0, body.find('\n')); }

}  // namespace

// ---- the base: thread and figures -------------------------------------------------------------

traffic_client::~traffic_client() {
  stopping_.store(true);
  if (th_.joinable()) th_.join();
}

void traffic_client::start() {
  ::signal(SIGPIPE, SIG_IGN);  // TLS writes on a closed socket must fail, not kill the process
  started_ = last_progress_ = clock_type::now();
  th_ = std::thread([this] { run(stopping_); });
}

traffic_report traffic_client::stop() {
  stopping_.store(true);
  if (th_.joinable()) th_.join();
  return snapshot();
}

traffic_report traffic_client::snapshot() {
  std::lock_guard<std::mutex> g(mu_);
  auto r = rep_;
  // A client stuck right now is stalled too.
  auto now = clock_type::now();
  if (ms_between(last_progress_, now) > r.longest_stall_ms) {
    r.longest_stall_ms = ms_between(last_progress_, now);
    r.longest_stall_end_ms = ms_between(started_, now);
  }
  return r;
}

double traffic_client::ms_since_start() const { return ms_between(started_, clock_type::now()); }

bool traffic_client::pause(milliseconds d) {
  auto until = clock_type::now() + d;
  while (!stopping_.load()) {
    auto left = until - clock_type::now();
    if (left <= clock_type::duration::zero()) return false;
    std::this_thread::sleep_for(std::min<clock_type::duration>(left, milliseconds(20)));
  }
  return true;
}

void traffic_client::note_progress() {
  std::lock_guard<std::mutex> g(mu_);
  auto now = clock_type::now();
  if (ms_between(last_progress_, now) > rep_.longest_stall_ms) {
    rep_.longest_stall_ms = ms_between(last_progress_, now);
    rep_.longest_stall_end_ms = ms_between(started_, now);
  }
  last_progress_ = now;
}

void traffic_client::note_ok(double latency_ms, const std::string& body) {
  note_progress();
  std::lock_guard<std::mutex> g(mu_);
  ++rep_.ok;
  rep_.latencies_ms.push_back(latency_ms);
  auto line = first_line(body);
  if (rep_.bodies_seen.size() < max_bodies &&
      std::find(rep_.bodies_seen.begin(), rep_.bodies_seen.end(), line) == rep_.bodies_seen.end())
    rep_.bodies_seen.push_back(line);
}

void traffic_client::note_error(const std::string& what) {
  if (rep_.errors.size() < max_errors)
    rep_.errors.push_back("t+" + std::to_string(static_cast<long>(ms_since_start())) + "ms " + what);
}

void traffic_client::note_failed(const std::string& what) {
  std::lock_guard<std::mutex> g(mu_);
  ++rep_.failed;
  note_error("failed: " + what);
}

void traffic_client::note_unexpected_close(const std::string& what) {
  std::lock_guard<std::mutex> g(mu_);
  ++rep_.unexpected_closes;
  note_error("unexpected close: " + what);
}

void traffic_client::note_clean_close() {
  std::lock_guard<std::mutex> g(mu_);
  ++rep_.clean_closes;
  rep_.clean_close_at_ms.push_back(ms_since_start());
}

void traffic_client::note_protocol(const std::string& p) {
  std::lock_guard<std::mutex> g(mu_);
  rep_.protocol = p;
}

namespace {

// ---- HTTP/1.1 on our own sockets ---------------------------------------------------------------

class http1_client : public traffic_client {
 public:
  http1_client(target t, std::string path, milliseconds every)
      : t_(std::move(t)), path_(std::move(path)), every_(every) {}

 protected:
  // Opens the connection when there is none; false (and counted as failed) when it cannot.
  bool ensure_open() {
    if (c_.is_open()) return true;
    buf_.clear();
    if (auto e = c_.open(t_); !e.empty()) {
      note_failed("connect: " + e);
      return false;
    }
    note_protocol("http/1.1");
    return true;
  }
  // Before reusing an idle kept-alive connection: did the server close it under us (without
  // announcing it)? Then a client would have to open a new one: counted, and closed here.
  void check_idle() {
    if (!c_.is_open()) return;
    auto got = c_.read_some(buf_, milliseconds(0));
    if (got == wire::peer_closed || got == wire::broken) {
      note_unexpected_close("idle kept-alive connection closed by the server: " + c_.error);
      c_.close();
    } else if (got == wire::got_bytes) {
      note_failed("bytes nobody asked for on an idle connection: '" + buf_.substr(0, 80) + "'");
      c_.close();
    }
  }
  std::string request_head(const std::string& method, const std::string& extra = "") const {
    return method + " " + path_ + " HTTP/1.1\r\nHost: " + wire::host_header(t_) + "\r\nUser-Agent: berth-traffic\r\n" +
           extra + "\r\n";
  }
  // After a complete answer: "Connection: close" is a clean close.
  void after_answer(const wire::response& r) {
    if (r.connection_close()) {
      note_clean_close();
      c_.close();
    }
  }

  target t_;
  std::string path_;
  milliseconds every_;
  wire::connection c_;
  std::string buf_;
};

// GET `path` on one kept-alive HTTP/1.1 connection, never resent.
class keepalive_get : public http1_client {
 public:
  keepalive_get(target t, std::string path, milliseconds every) : http1_client(std::move(t), std::move(path), every) {
    t_.tls.http2 = false;  // our own HTTP/1.1 parser, over TLS too
  }
  ~keepalive_get() override { stop(); }  // the thread uses our members: joined first

 protected:
  void run(std::atomic<bool>& stopping) override {
    for (uint64_t i = 0; !stopping.load(); ++i) {
      check_idle();
      if (!ensure_open()) {
        if (pause(std::max(every_, milliseconds(100)))) return;
        continue;
      }
      auto t0 = clock_type::now();
      bool sent = c_.send_all(request_head("GET"));
      bool closed = false;
      wire::response r;
      if (sent) r = wire::read_response(c_, buf_, t0 + answer_timeout, closed);
      if (!sent || !r.complete) {
        note_failed("GET #" + std::to_string(i) + " got no complete answer (" + c_.error + ")");
        if (!sent || closed) note_unexpected_close("with a GET outstanding: " + c_.error);
        c_.close();
      } else {
        if (r.status >= 500 || r.status < 200)
          note_failed("GET #" + std::to_string(i) + ": HTTP " + std::to_string(r.status) + " '" +
                      r.body.substr(0, 100) + "'");
        else
          note_ok(ms_between(t0, clock_type::now()), r.body);
        after_answer(r);
      }
      if (pause(every_)) return;
    }
  }
};

class keepalive_post : public http1_client {
 public:
  using http1_client::http1_client;
  ~keepalive_post() override { stop(); }  // the thread uses our members: joined first

 protected:
  void run(std::atomic<bool>& stopping) override {
    for (uint64_t i = 0; !stopping.load(); ++i) {
      check_idle();
      if (!ensure_open()) {
        if (pause(std::max(every_, milliseconds(100)))) return;
        continue;
      }
      std::string body = "post " + std::to_string(i) + "\n";
      auto t0 = clock_type::now();
      bool sent = c_.send_all(request_head("POST", "Content-Type: text/plain\r\nContent-Length: " +
                                                       std::to_string(body.size()) + "\r\n") +
                              body);
      bool closed = false;
      wire::response r;
      if (sent) r = wire::read_response(c_, buf_, t0 + answer_timeout, closed);
      if (!sent || !r.complete) {
        // Never resent: the user's POST is lost.
        note_failed("POST #" + std::to_string(i) + " got no complete answer (" + c_.error + ")");
        if (!sent || closed) note_unexpected_close("with a POST outstanding: " + c_.error);
        c_.close();
      } else if (r.status >= 500 || r.status < 200) {
        note_failed("POST #" + std::to_string(i) + ": HTTP " + std::to_string(r.status) + " '" +
                    r.body.substr(0, 100) + "'");
        after_answer(r);
      } else if (r.body != body) {
        note_failed("POST #" + std::to_string(i) + " echoed '" + r.body.substr(0, 100) + "'");
        after_answer(r);
      } else {
        auto release = r.header("x-release");  // the traffic app says which release answered
        note_ok(ms_between(t0, clock_type::now()), release.empty() ? "echo" : "echo from release " + release);
        after_answer(r);
      }
      if (pause(every_)) return;
    }
  }
};

class new_connection_get : public http1_client {
 public:
  using http1_client::http1_client;
  ~new_connection_get() override { stop(); }

 protected:
  void run(std::atomic<bool>& stopping) override {
    while (!stopping.load()) {
      auto t0 = clock_type::now();
      if (ensure_open()) {
        bool closed = false;
        wire::response r;
        if (c_.send_all(request_head("GET", "Connection: close\r\n")))
          r = wire::read_response(c_, buf_, t0 + answer_timeout, closed);
        if (!r.complete)
          note_failed("GET got no complete answer (" + c_.error + ")");
        else if (r.status >= 500 || r.status < 200)
          note_failed("GET: HTTP " + std::to_string(r.status) + " '" + r.body.substr(0, 100) + "'");
        else
          note_ok(ms_between(t0, clock_type::now()), r.body);
        c_.close();  // one connection per request, closed by us
      }
      if (pause(every_)) return;
    }
  }
};

class streaming_get : public http1_client {
 public:
  streaming_get(target t, std::string path) : http1_client(std::move(t), std::move(path), milliseconds(0)) {}
  ~streaming_get() override { stop(); }

 protected:
  void run(std::atomic<bool>& stopping) override {
    while (!stopping.load()) {
      check_idle();
      if (!ensure_open()) {
        if (pause(milliseconds(100))) return;
        continue;
      }
      one_stream(stopping);
    }
  }

 private:
  void one_stream(std::atomic<bool>& stopping) {
    auto t0 = clock_type::now();
    if (!c_.send_all(request_head("GET"))) {
      note_failed("stream request not sent: " + c_.error);
      note_unexpected_close("before the stream request: " + c_.error);
      return c_.close();
    }
    wire::response r;
    auto last = t0;
    bool closed = false;
    while (!wire::take_head(buf_, r)) {
      if (clock_type::now() - last > stream_stall || !read(closed)) {
        note_failed("stream: no answer head (" + c_.error + ")");
        if (closed) note_unexpected_close("before the stream's head: " + c_.error);
        return c_.close();
      }
    }
    if (r.status != 200 || !r.chunked()) {
      note_failed("stream: HTTP " + std::to_string(r.status) + (r.chunked() ? "" : " not chunked"));
      return c_.close();
    }
    double first_ms = ms_between(t0, clock_type::now());
    note_progress();
    std::string first_chunk;
    for (;;) {
      std::string data;
      int got = wire::take_chunk(buf_, data);
      if (got == 1) {
        if (first_chunk.empty()) first_chunk = data;
        note_progress();
        last = clock_type::now();
        continue;
      }
      if (got == 2) break;
      if (got == -1) {
        note_failed("stream: malformed chunk");
        return c_.close();
      }
      if (stopping.load()) return c_.close();  // our own end: not counted
      if (clock_type::now() - last > stream_stall) {
        note_failed("stream stalled for " + std::to_string(stream_stall.count()) + " ms");
        return c_.close();
      }
      if (!read(closed)) {
        note_failed("stream broken before its end (" + c_.error + ")");
        note_unexpected_close("in the middle of a stream: " + c_.error);
        return c_.close();
      }
    }
    note_ok(first_ms, first_chunk.empty() ? "(empty stream)" : first_chunk);
    after_answer(r);
  }
  // Reads for up to 100 ms; false when the connection ended.
  bool read(bool& closed) {
    auto got = c_.read_some(buf_, milliseconds(100));
    closed = got == wire::peer_closed || got == wire::broken;
    return !closed;
  }
};

// ---- WebSocket ---------------------------------------------------------------------------------

class websocket : public traffic_client {
 public:
  websocket(target t, std::string path, milliseconds every, bool reconnect)
      : t_(std::move(t)), path_(std::move(path)), every_(every), reconnect_(reconnect) {}
  ~websocket() override { stop(); }

 protected:
  void run(std::atomic<bool>& stopping) override {
    while (!stopping.load()) {
      if (!handshake()) {
        c_.close();
        if (pause(milliseconds(100))) return;
        continue;
      }
      bool again = talk(stopping);
      c_.close();
      if (!again || !reconnect_) break;
    }
    pause(milliseconds(24 * 3600 * 1000));  // without reconnecting: idle until stop()
  }

 private:
  bool handshake() {
    buf_.clear();
    if (auto e = c_.open(t_, {"http/1.1"}); !e.empty()) return note_failed("websocket connect: " + e), false;
    note_protocol("http/1.1");
    auto key = wire::ws_key();
    auto t0 = clock_type::now();
    if (!c_.send_all("GET " + path_ + " HTTP/1.1\r\nHost: " + wire::host_header(t_) +
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                     "\r\nSec-WebSocket-Version: 13\r\n\r\n"))
      return note_failed("websocket upgrade not sent: " + c_.error), false;
    bool closed = false;
    auto r = wire::read_response(c_, buf_, t0 + echo_timeout, closed);
    if (!r.complete || r.status != 101)
      return note_failed("websocket upgrade: HTTP " + std::to_string(r.status) + " " + c_.error), false;
    if (r.header("sec-websocket-accept") != wire::ws_accept(key))
      return note_failed("websocket upgrade: wrong Sec-WebSocket-Accept"), false;
    // The app greets with "release <version>": which release this socket reached.
    wire::ws_message m;
    if (next_frame(m, t0 + echo_timeout) != 1 || m.opcode != 1)
      return note_failed("websocket: no greeting (" + c_.error + ")"), false;
    note_ok(ms_between(t0, clock_type::now()), m.payload);
    return true;
  }

  // 1: a frame in m; 0: nothing before the deadline; -1: the connection ended (c_.error).
  int next_frame(wire::ws_message& m, clock_type::time_point deadline) {
    for (;;) {
      int got = wire::take_ws_frame(buf_, m);
      if (got == 1) return 1;
      if (got == -1) return c_.error = "malformed frame", -1;
      auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0) return 0;
      auto r = c_.read_some(buf_, left);
      if (r == wire::peer_closed || r == wire::broken) return -1;
    }
  }

  // Handles a control frame; returns false when it was a close (answered, counted).
  bool control(const wire::ws_message& m) {
    if (m.opcode == 9) c_.send_all(wire::ws_frame(10, m.payload));
    if (m.opcode != 8) return true;
    note_clean_close();
    c_.send_all(wire::ws_frame(8, m.payload.substr(0, 2)));
    std::string rest;
    c_.read_some(rest, milliseconds(500));  // the server ends the TCP connection
    return false;
  }

  // Echo rounds until stop (false) or a close (true: reconnect).
  bool talk(std::atomic<bool>& stopping) {
    for (uint64_t i = 0; !stopping.load(); ++i) {
      std::string text = "message " + std::to_string(i);
      auto t0 = clock_type::now();
      if (!c_.send_all(wire::ws_frame(1, text))) {
        note_failed("websocket message not sent: " + c_.error);
        note_unexpected_close("websocket (write): " + c_.error);
        return true;
      }
      for (bool answered = false; !answered;) {
        wire::ws_message m;
        int got = next_frame(m, t0 + echo_timeout);
        if (got == 0) {
          note_failed("websocket echo of '" + text + "' not within 2 s");
          return true;
        }
        if (got == -1) {
          note_failed("websocket broke with '" + text + "' unanswered (" + c_.error + ")");
          note_unexpected_close("websocket without a close frame: " + c_.error);
          return true;
        }
        if (m.opcode >= 8) {
          // A close announced by the server: the message in flight is dropped by the protocol.
          if (!control(m)) return true;
          continue;
        }
        if (m.payload != text) {
          note_failed("websocket echoed '" + m.payload.substr(0, 80) + "' for '" + text + "'");
          return true;
        }
        note_ok(ms_between(t0, clock_type::now()), "echo");
        answered = true;
      }
      // Wait `every`, but notice a close that comes meanwhile.
      auto until = clock_type::now() + every_;
      while (!stopping.load() && clock_type::now() < until) {
        wire::ws_message m;
        int got = next_frame(m, std::min(until, clock_type::now() + milliseconds(50)));
        if (got == -1) {
          note_unexpected_close("idle websocket without a close frame: " + c_.error);
          return true;
        }
        if (got == 1 && m.opcode >= 8 && !control(m)) return true;
        if (got == 1 && m.opcode < 8) {
          note_failed("websocket: a message nobody asked for: '" + m.payload.substr(0, 80) + "'");
          return true;
        }
      }
    }
    c_.send_all(wire::ws_frame(8, std::string("\x03\xe8", 2)));  // 1000: we are done
    return false;
  }

  target t_;
  std::string path_;
  milliseconds every_;
  bool reconnect_;
  wire::connection c_;
  std::string buf_;
};

}  // namespace

std::unique_ptr<traffic_client> websocket_client(target t, std::string path, milliseconds every, bool reconnect) {
  return std::make_unique<websocket>(std::move(t), std::move(path), every, reconnect);
}

std::unique_ptr<traffic_client> keepalive_post_client(target t, std::string path, milliseconds every) {
  if (t.tls.on && t.tls.http2) return wire::curl_client(wire::curl_kind::keepalive_post, std::move(t), std::move(path), every);
  return std::make_unique<keepalive_post>(std::move(t), std::move(path), every);
}

std::unique_ptr<traffic_client> keepalive_get_client(target t, std::string path, milliseconds every) {
  return std::make_unique<keepalive_get>(std::move(t), std::move(path), every);
}

std::unique_ptr<traffic_client> new_connection_client(target t, std::string path, milliseconds every) {
  if (t.tls.on && t.tls.http2) return wire::curl_client(wire::curl_kind::new_connection, std::move(t), std::move(path), every);
  return std::make_unique<new_connection_get>(std::move(t), std::move(path), every);
}

std::unique_ptr<traffic_client> streaming_client(target t, std::string path) {
  if (t.tls.on && t.tls.http2) return wire::curl_client(wire::curl_kind::streaming, std::move(t), std::move(path), milliseconds(0));
  return std::make_unique<streaming_get>(std::move(t), std::move(path));
}

// ---- GET clients on one port -------------------------------------------------------------------

get_clients::get_clients(uint16_t port, int count, milliseconds every) {
  for (int i = 0; i < count; ++i) clients_.push_back(keepalive_get_client({"127.0.0.1", port, "", {}}, "/", every));
  for (auto& c : clients_) c->start();
}

get_clients::~get_clients() { stop(); }

get_clients::totals get_clients::now() {
  totals t;
  if (!reports_.empty()) {
    for (auto& r : reports_) t.ok += r.ok, t.failed += r.failed;
    return t;
  }
  for (auto& c : clients_) {
    auto r = c->snapshot();
    t.ok += r.ok;
    t.failed += r.failed;
  }
  return t;
}

get_clients::totals get_clients::stop() {
  if (reports_.empty())
    for (auto& c : clients_) reports_.push_back(c->stop());
  return now();
}

std::vector<std::string> get_clients::errors() const {
  std::vector<std::string> out;
  for (auto& r : reports_) out.insert(out.end(), r.errors.begin(), r.errors.end());
  return out;
}

std::vector<std::string> get_clients::answers() const {
  std::vector<std::string> out;
  for (auto& r : reports_)
    for (auto& b : r.bodies_seen)
      if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  return out;
}

}  // namespace berth::it
