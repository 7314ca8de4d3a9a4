// berth's own handling of one HTTP connection on httplib's request parser: reads under the
// head and body deadlines of connection.hpp, evicts slow clients, lingers before closing.
#include "http/connection.hpp"

#include "messages/event.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

namespace berth::http::connection_detail {

thread_local request_state* t_request = nullptr;

namespace {

int poll_one(int fd, short events, clock_type::duration wait) {
  auto until = clock_type::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r;
    return (p.revents & (events | POLLHUP | POLLERR)) ? 1 : 0;
  }
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  ip = host;
  port = std::atoi(serv);
}

// One connection's socket as httplib's Stream, reading under the limits of request_state.
// One per connection (not per request), so pipelined bytes stay in its buffer.
class guarded_stream final : public httplib::Stream {
 public:
  explicit guarded_stream(transport& conn) : conn_(conn), sock_(conn.fd()) {}
  void track(request_state* r) { r_ = r; }
  bool buffered() const { return off_ < len_ || conn_.pending(); }

  bool is_readable() const override {
    return buffered() || poll_one(sock_, POLLIN, std::min<clock_type::duration>(io_timeout, left())) > 0;
  }

  bool is_writable() const override {
    return poll_one(sock_, POLLOUT, io_timeout) > 0 && alive();
  }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) return 0;
    if (r_->head_done) {
      if (r_->body_left == 0) return 0;  // the declared body is read (or there is none)
      size = static_cast<size_t>(std::min<uint64_t>(size, r_->body_left));
    }
    if (off_ == len_) {
      auto n = fill();
      if (n <= 0) return n;
    }
    size_t n = std::min(size, len_ - off_);
    if (!r_->head_done && !account_head(buf_ + off_, n)) return -1;
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    if (r_->head_done) r_->body_left -= n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    auto n = conn_.write(ptr, size, clock_type::now() + io_timeout);
    if (n > 0 && r_ != nullptr) r_->written += static_cast<size_t>(n);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

  // Between kept-alive requests: true when the next one starts within `idle` (checking
  // every 100 ms whether the server is stopping).
  bool wait_request(const std::atomic<bool>& stopping, clock_type::duration idle) {
    if (buffered()) return true;
    auto until = clock_type::now() + idle;
    while (!stopping) {
      auto left = until - clock_type::now();
      if (left <= clock_type::duration::zero()) return false;
      int r = poll_one(sock_, POLLIN, std::min<clock_type::duration>(left, 100ms));
      if (r != 0) return r > 0;
    }
    return false;
  }

 private:
  clock_type::duration left() const {
    auto deadline = r_->head_done ? r_->body_deadline : r_->head_deadline;
    return std::max(clock_type::duration::zero(), deadline - clock_type::now());
  }

  // Waits (within the request's deadline) and receives; -1 on timeout or error, 0 at EOF.
  // Past the deadline only what has already arrived is read.
  ssize_t fill() {
    auto n = conn_.read(buf_, sizeof buf_, clock_type::now() + std::min<clock_type::duration>(io_timeout, left()));
    if (n < 0 && conn_.timed_out()) r_->timed_out = true;
    if (n <= 0) return n < 0 ? -1 : 0;
    off_ = 0;
    len_ = static_cast<size_t>(n);
    return n;
  }

  // httplib reads the head one byte at a time: count bytes and line lengths.
  bool account_head(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      ++r_->head_bytes;
      if (p[i] == '\n') {
        r_->request_line_done = true;
        r_->line_bytes = 0;
      } else if (++r_->line_bytes > line_limit && r_->request_line_done) {
        r_->line_too_long = true;
      }
    }
    if (r_->head_bytes > head_limit) {
      r_->head_too_large = true;
      return false;
    }
    return true;
  }

  bool alive() const {
    if (poll_one(sock_, POLLIN, clock_type::duration::zero()) == 0) return true;
    char c;
    return ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }

  transport& conn_;
  int sock_;
  request_state* r_ = nullptr;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
};

std::string json_error_text(const std::string& code, const std::string& message) {
  return dump_json({{"error", {{"code", code}, {"message", message}}}});
}

}  // namespace

void guarded_server::serve(std::shared_ptr<transport> conn, size_t served) {
  guarded_stream strm(*conn);
  request_state r;
  bool ok = true;
  auto head_start = clock_type::now();  // not when it was accepted: queue time does not count
  r.head_deadline = head_start + head_timeout;
  if (!conn->handshake(r.head_deadline)) return;  // TLS: no handshake, nothing to answer on
  // Once berth stops, a connection still gets its request answered, not the next kept-alive one.
  for (size_t n = served; n < keep_alive_max_count_ && (n == served || !stopping_); ++n) {
    if (n > served) {
      // Nothing of the next request here yet: wait for it without holding the worker.
      if (!strm.buffered() && park_) return park_(std::move(conn), n);
      if (!strm.wait_request(stopping_, std::chrono::seconds(keep_alive_timeout_sec_))) break;
      head_start = clock_type::now();
    }
    r = request_state{};
    r.started = head_start;
    r.head_deadline = head_start + head_timeout;
    strm.track(&r);
    t_request = &r;
    bool closed = false;
    ok = process_request(strm, n + 1 == keep_alive_max_count_, closed, nullptr);
    if (!ok && r.written == 0) answer_unparsed(strm, r);
    t_request = nullptr;
    if (!ok || closed || r.close_after()) break;
  }
  t_request = nullptr;
  finish(std::move(conn), r);
}

bool guarded_server::process_and_close_socket(socket_t sock) {
  ::close(sock);
  return false;
}

// httplib gave up on the request without answering (it could not read a request line):
// say why when the client sent something.
void guarded_server::answer_unparsed(httplib::Stream& strm, const request_state& r) {
  int status = 0;
  std::string code, message;
  if (r.head_too_large) {
    status = r.request_line_done ? 431 : 414;
    code = r.request_line_done ? "headers_too_large" : "uri_too_long";
    message = r.request_line_done ? "the request headers are larger than " + std::to_string(head_limit) + " bytes"
                                  : "the request line is longer than " + std::to_string(line_limit) + " bytes";
  } else if (r.timed_out && r.head_bytes > 0) {
    status = 408;
    code = "request_timeout";
    message = "the request was not received in time";
  } else {
    return;
  }
  auto body = json_error_text(code, message);
  const char* reason = status == 408 ? "Request Timeout" : status == 414 ? "URI Too Long" : "Request Header Fields Too Large";
  std::string text = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body;
  for (size_t off = 0; off < text.size();) {
    auto n = strm.write(text.data() + off, text.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Ends the connection. When the client may still be sending what berth did not read (a
// refused body, the rest of an oversized head), it goes to the listener, which reads and drops
// that for a while before closing: closing with unread data would reset the connection, and
// the client would lose the answer. Not for a client that timed out: it is not sending.
void guarded_server::finish(std::shared_ptr<transport> conn, const request_state& r) {
  conn->close_sending();
  bool unread = r.body_left > 0 || r.must_close || poll_one(conn->fd(), POLLIN, clock_type::duration::zero()) > 0;
  if (unread && !r.timed_out && linger_) linger_(std::move(conn));
}

}  // namespace berth::http::connection_detail
