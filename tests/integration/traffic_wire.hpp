// The wire under traffic_support's clients: one TCP connection (optionally TLS through OpenSSL,
// verified against a CA file, SNI and name check = the Host header's name), HTTP/1.1 response
// parsing (Content-Length, chunked, close-delimited) and WebSocket frames. No Catch2 here: also
// compiled into bench/bench_switch.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/traffic_support.hpp"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace berth::it::wire {

using std::chrono::milliseconds;

// "<host>:<port>" unless the target names its own Host header.
std::string host_header(const target& t);
// The Host header's name without the port (the TLS server name).
std::string server_name(const target& t);

enum read_result { got_bytes = 1, peer_closed = 0, broken = -1, nothing_yet = -2 };

// One connection. Not thread-safe: one per client thread.
class connection {
 public:
  connection() = default;
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  // Connects (2 s) and, with t.tls.on, handshakes offering `alpn` and verifying the server's
  // certificate. "" on success, else what went wrong (the connection is then closed).
  std::string open(const target& t, const std::vector<std::string>& alpn = {"http/1.1"});
  // Sends everything; false when the connection broke (then `error` says how).
  bool send_all(const std::string& bytes);
  // Appends what arrives within `wait` (0 = only what is there) to `buf`. peer_closed: an
  // orderly end (FIN or TLS close_notify); broken: reset or TLS failure (see `error`).
  read_result read_some(std::string& buf, milliseconds wait);
  void close();
  bool is_open() const { return fd_ >= 0; }
  std::string alpn() const;  // the protocol the server chose ("" without TLS or ALPN)
  std::string error;

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

struct response {
  int status = -1;
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;
  bool complete = false;  // head and the whole body arrived
  bool connection_close() const;  // the server said "Connection: close"
  bool chunked() const;
  std::string header(const std::string& lower_name) const;
};

// Parses the head at the front of `buf` into `r` and removes it; false while incomplete.
// A malformed head sets r.status = 0.
bool take_head(std::string& buf, response& r);
// Takes one chunk of a chunked body off the front of `buf`: 1 = a data chunk (in `data`),
// 2 = the last chunk and its trailers, 0 = incomplete, -1 = malformed.
int take_chunk(std::string& buf, std::string& data);
// Reads one whole response (head and body) from `c` until `deadline`; `buf` holds bytes that
// came before and keeps those after. `closed` is set when the peer closed or broke the
// connection. r.complete tells whether it all came.
response read_response(connection& c, std::string& buf, std::chrono::steady_clock::time_point deadline,
                       bool& closed);

// WebSocket (RFC 6455).
std::string ws_key();                                  // a random Sec-WebSocket-Key
std::string ws_accept(const std::string& key);         // what Sec-WebSocket-Accept must be
std::string ws_frame(int opcode, const std::string& payload);  // one final, masked frame
struct ws_message {
  int opcode = 0;
  std::string payload;
};
// Takes one whole (unmasked, final) frame off the front of `buf`: 1 taken, 0 incomplete,
// -1 malformed (fragmented or masked by the server).
int take_ws_frame(std::string& buf, ws_message& m);

// The HTTP clients over libcurl (HTTP/2 by ALPN; traffic_curl.cpp), used when tls.http2.
// libcurl resends a request once when a reused connection turns out dead before any answer
// byte (it cannot be turned off); such a resend is not seen here.
enum class curl_kind { keepalive_post, new_connection, streaming };
std::unique_ptr<traffic_client> curl_client(curl_kind kind, target t, std::string path, milliseconds every);

}  // namespace berth::it::wire
