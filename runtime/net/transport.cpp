#include "runtime/net/transport.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace berth {

namespace {

std::string openssl_error() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace

std::unique_ptr<tls_context> tls_context::load(const std::string& cert_file, const std::string& key_file,
                                               std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = "cannot create a TLS context: " + openssl_error();
    return nullptr;
  }
  std::unique_ptr<tls_context> out{new tls_context(ctx)};
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A client that closes without close_notify has simply gone (as over plain TCP).
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    error = "cannot use the TLS certificate " + cert_file + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot use the TLS key " + key_file + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "the TLS key " + key_file + " does not belong to the certificate " + cert_file + ": " + openssl_error();
    return nullptr;
  }
  return out;
}

tls_context::~tls_context() { SSL_CTX_free(ctx_); }

transport::transport(int fd, const tls_context* tls) : fd_(fd), handshake_done_(tls == nullptr) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  if (tls != nullptr) {
    ssl_ = SSL_new(tls->native());
    if (ssl_ != nullptr) SSL_set_fd(ssl_, fd_);
  }
}

transport::~transport() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

// The outcome of an SSL_* call as a step.
io_step transport::finish(int rc) {
  if (rc > 0) return {rc, io_want::nothing};
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ: return {-1, io_want::read};
    case SSL_ERROR_WANT_WRITE: return {-1, io_want::write};
    case SSL_ERROR_ZERO_RETURN: return {0, io_want::nothing};
    default: return {-1, io_want::nothing};
  }
}

io_step transport::handshake() {
  if (handshake_done_) return {1, io_want::nothing};
  if (ssl_ == nullptr) return {-1, io_want::nothing};
  ERR_clear_error();
  auto s = finish(SSL_accept(ssl_));
  if (s.n > 0) handshake_done_ = true;
  if (s.n == 0) s.n = -1;  // a handshake that ends the stream failed
  return s;
}

io_step transport::read_some(char* buf, size_t size) {
  if (ssl_ == nullptr) {
    ssize_t n;
    do {
      n = ::recv(fd_, buf, size, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {-1, io_want::read};
    return {n, io_want::nothing};
  }
  if (!handshake_done_) {
    auto s = handshake();
    if (s.n <= 0) return s;
  }
  ERR_clear_error();
  return finish(SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(size, 1 << 30))));
}

io_step transport::write_some(const char* buf, size_t size) {
  if (ssl_ == nullptr) {
    ssize_t n;
    do {
      n = ::send(fd_, buf, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {-1, io_want::write};
    return {n, io_want::nothing};
  }
  if (!handshake_done_) {
    auto s = handshake();
    if (s.n <= 0) return s;
  }
  if (size == 0) return {0, io_want::nothing};
  ERR_clear_error();
  auto s = finish(SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(size, 1 << 30))));
  if (s.n == 0) s.n = -1;  // nothing written and no reason to wait: the peer is gone
  return s;
}

bool transport::pending() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }

bool transport::wait_for(io_want want, clock_type::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
    pollfd p{fd_, static_cast<short>(want == io_want::write ? POLLOUT : POLLIN), 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, left)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) timed_out_ = true;
    return r > 0;  // readable, writable, or an error/hang-up the next call reports
  }
}

bool transport::handshake(clock_type::time_point deadline) {
  for (;;) {
    auto s = handshake();
    if (s.n > 0) return true;
    if (!s.would_block() || !wait_for(s.want, deadline)) return false;
  }
}

ssize_t transport::read(char* buf, size_t size, clock_type::time_point deadline) {
  timed_out_ = false;
  for (;;) {
    auto s = read_some(buf, size);
    if (!s.would_block()) return s.n;
    if (!wait_for(s.want, deadline)) return -1;
  }
}

ssize_t transport::write(const char* buf, size_t size, clock_type::time_point deadline) {
  timed_out_ = false;
  for (;;) {
    auto s = write_some(buf, size);
    if (!s.would_block()) return s.n;
    if (!wait_for(s.want, deadline)) return -1;
  }
}

void transport::close_sending() {
  if (ssl_ != nullptr && handshake_done_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify; a full send buffer just loses it
  }
  ::shutdown(fd_, SHUT_WR);
}

}  // namespace berth
