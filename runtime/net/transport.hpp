// One accepted TCP connection, plain or TLS (OpenSSL), with the two ways berth uses it: the
// non-blocking steps the acceptor multiplexes (a refusal written without a worker) and
// blocking reads and writes bounded by a deadline (a worker serving a request). No HTTP here.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace berth {

// A server certificate and key, loaded once at start; shared read-only by every connection
// (OpenSSL's SSL_CTX is thread-safe once configured).
class tls_context {
 public:
  // Loads a PEM certificate chain and its private key; null (with a reason naming the file and
  // OpenSSL's error) when either cannot be read or they do not match. TLS 1.2 or newer.
  static std::unique_ptr<tls_context> load(const std::string& cert_file, const std::string& key_file,
                                           std::string& error);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;
  SSL_CTX* native() const { return ctx_; }

 private:
  explicit tls_context(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// What a non-blocking step did: n > 0 bytes moved, 0 at the peer's end of stream, < 0 on an
// error; when the step must wait, n < 0 and `want` says for what.
enum class io_want { nothing, read, write };
struct io_step {
  ssize_t n = -1;
  io_want want = io_want::nothing;
  bool would_block() const { return want != io_want::nothing; }
};

// Owns the socket (closed on destruction) and, for TLS, its session. Not thread-safe: one
// thread uses it at a time (the acceptor or a worker; handing it over is the caller's fence).
class transport {
 public:
  using clock_type = std::chrono::steady_clock;

  // `fd` becomes non-blocking. `tls` (may be null: plain) must outlive the transport.
  transport(int fd, const tls_context* tls);
  ~transport();
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  int fd() const { return fd_; }
  bool is_tls() const { return ssl_ != nullptr; }

  // Non-blocking steps. handshake() is done at once for plain connections.
  io_step handshake();
  io_step read_some(char* buf, size_t size);
  io_step write_some(const char* buf, size_t size);
  bool handshake_done() const { return handshake_done_; }
  // Decrypted bytes already read from the socket but not yet returned (TLS only).
  bool pending() const;

  // Blocking with a deadline (a deadline in the past still takes what has already arrived).
  // -1 on error or timeout (timed_out() tells which), 0 at end of stream.
  bool handshake(clock_type::time_point deadline);
  ssize_t read(char* buf, size_t size, clock_type::time_point deadline);
  ssize_t write(const char* buf, size_t size, clock_type::time_point deadline);
  bool timed_out() const { return timed_out_; }

  // Ends what berth sends: TLS close_notify (best effort), then a TCP half-close. What the
  // client still sends can be read (and dropped) from fd() afterwards.
  void close_sending();

 private:
  io_step finish(int rc);
  bool wait_for(io_want want, clock_type::time_point deadline);

  int fd_;
  SSL* ssl_ = nullptr;
  bool handshake_done_;
  bool timed_out_ = false;
};

}  // namespace berth
