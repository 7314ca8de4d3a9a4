#include "http/listener.hpp"

#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "http/connection.hpp"
#include "http/dispatch.hpp"
#include "messages/event.hpp"
#include "runtime/logs/logging.hpp"

namespace berth::http {

namespace cd = connection_detail;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr size_t closing_limit = 4096;  // connections being refused or lingering at once

std::string refusal_text(size_t queued) {
  auto body = dump_json({{"error",
                          {{"code", "saturated"},
                           {"message", "berth is saturated: " + std::to_string(queued) +
                                           " connections are already waiting for an HTTP worker; retry in " +
                                           std::to_string(refused_retry_after_s) + " s"}}}});
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nRetry-After: " + std::to_string(refused_retry_after_s) +
         "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

// Writes `answer` (if any), ends sending, then reads and drops what the client still sends
// until it closes, it has been silent for linger_idle, or linger_limit has passed.
struct listener::closing {
  std::shared_ptr<transport> conn;
  std::string answer;
  size_t sent = 0;
  bool half_closed = false;
  size_t drained = 0;
  clock_type::time_point deadline, idle_deadline;
  io_want want = io_want::read;

  // True when the connection is finished (it is then closed by dropping it).
  bool step(clock_type::time_point now) {
    if (now >= deadline) return true;
    if (!half_closed) {
      if (!conn->handshake_done()) {
        auto s = conn->handshake();
        if (s.would_block()) {
          want = s.want;
          return false;
        }
        if (s.n <= 0) return true;
      }
      while (sent < answer.size()) {
        auto s = conn->write_some(answer.data() + sent, answer.size() - sent);
        if (s.would_block()) {
          want = s.want;
          return false;
        }
        if (s.n <= 0) return true;
        sent += static_cast<size_t>(s.n);
      }
      conn->close_sending();
      half_closed = true;
      idle_deadline = now + cd::linger_idle;
    }
    want = io_want::read;
    char scratch[16384];
    for (;;) {
      ssize_t n = ::recv(conn->fd(), scratch, sizeof scratch, MSG_DONTWAIT);
      if (n > 0) {
        drained += static_cast<size_t>(n);
        idle_deadline = now + cd::linger_idle;
        if (drained >= cd::linger_bytes) return true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return now >= idle_deadline;
      return true;  // the client closed (or the connection failed)
    }
  }
  clock_type::time_point next_deadline() const { return half_closed ? std::min(deadline, idle_deadline) : deadline; }
};

listener::listener(const tls_context* tls, dispatcher& workers, serve_fn serve)
    : tls_(tls),
      workers_(workers),
      serve_(std::move(serve)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      idle_fd_(::epoll_create1(EPOLL_CLOEXEC)) {}

listener::~listener() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (idle_fd_ >= 0) ::close(idle_fd_);
}

bool listener::bind(const std::string& host, uint16_t port, std::string& error) {
  auto h = host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2) : host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(h.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = "cannot listen on " + host + ":" + service + ": " + ::gai_strerror(rc);
    return false;
  }
  std::string why = "no address";
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, listen_backlog) == 0) {
      listen_fd_ = fd;
      break;
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) {
    error = "cannot listen on " + host + ":" + service + ": " + why;
    return false;
  }
  return true;
}

void listener::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void listener::stop() {
  stopping_ = true;
  wake();
}

void listener::linger(std::shared_ptr<transport> conn) {
  {
    std::lock_guard<std::mutex> lock(handed_mu_);
    handed_.push_back(std::move(conn));
  }
  wake();
}

void listener::park(std::shared_ptr<transport> conn, size_t served) {
  auto deadline = clock_type::now() + std::chrono::seconds(cd::keep_alive_idle_s);
  int fd = conn->fd();
  bool sooner = false;
  {
    std::lock_guard<std::mutex> lock(handed_mu_);
    if (stopping_) return;  // dropping it closes it
    idle_[fd] = idle{std::move(conn), served, deadline};
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.fd = fd;
    if (::epoll_ctl(idle_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      idle_.erase(fd);
      return;
    }
    // The loop only needs waking when it would otherwise sleep past this one's deadline.
    sooner = deadline < loop_wakes_at_;
    if (sooner) loop_wakes_at_ = deadline;
  }
  if (sooner) wake();
}

void listener::dispatch(std::shared_ptr<transport> conn, size_t served) {
  ++dispatched_since_trim_;
  if (!workers_.submit([serve = &serve_, conn, served] { (*serve)(conn, served); })) refuse(std::move(conn));
}

void listener::adopt(std::shared_ptr<transport> conn, std::string answer) {
  if (closing_.size() >= closing_limit) return;  // dropping it closes it
  auto c = std::make_unique<closing>();
  c->conn = std::move(conn);
  c->half_closed = answer.empty();  // handed over by a worker: the answer is out
  c->answer = std::move(answer);
  auto now = clock_type::now();
  c->deadline = now + cd::linger_limit;
  c->idle_deadline = now + cd::linger_idle;
  if (!c->step(now)) closing_.push_back(std::move(c));
}

void listener::refuse(std::shared_ptr<transport> conn) {
  adopt(std::move(conn), refusal_text(workers_.queued()));
}

void listener::accept_all() {
  for (int i = 0; i < 256; ++i) {  // then look at the closing connections again
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: leave the rest in the kernel's backlog for a moment.
        log_kv(spdlog::level::warn, "cannot accept connections now", {{"error", std::strerror(errno)}});
        accept_paused_until_ = clock_type::now() + 100ms;
      }
      return;
    }
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    dispatch(std::make_shared<transport>(fd, tls_), 0);
  }
}

// The kept-alive connections whose client sent something (or closed): the next request goes to
// a worker; a closed one is dropped (nothing unread, so closing is clean).
void listener::take_requests() {
  epoll_event events[64];
  int n = ::epoll_wait(idle_fd_, events, 64, 0);
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    idle c;
    {
      std::lock_guard<std::mutex> lock(handed_mu_);
      auto it = idle_.find(fd);
      if (it == idle_.end()) continue;
      c = std::move(it->second);
      idle_.erase(it);
      ::epoll_ctl(idle_fd_, EPOLL_CTL_DEL, fd, nullptr);
    }
    char byte;
    auto got = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got > 0) {
      dispatch(std::move(c.conn), c.served);
    } else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      park(std::move(c.conn), c.served);  // woken for nothing: it waits again
    }
  }
}

// Closes the kept-alive connections silent past their deadline; returns the next deadline.
listener::clock_type_point listener::expire_idle(clock_type_point now) {
  std::vector<std::shared_ptr<transport>> expired;  // closed outside the lock
  std::lock_guard<std::mutex> lock(handed_mu_);
  auto next = clock_type_point::max();
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (it->second.deadline <= now) {
      ::epoll_ctl(idle_fd_, EPOLL_CTL_DEL, it->first, nullptr);
      expired.push_back(std::move(it->second.conn));
      it = idle_.erase(it);
      continue;
    }
    next = std::min(next, it->second.deadline);
    ++it;
  }
  loop_wakes_at_ = next;  // park() wakes the loop for a sooner one
  return next;
}

void listener::run() {
  std::vector<pollfd> fds;
  while (!stopping_) {
    std::vector<std::shared_ptr<transport>> handed;
    {
      std::lock_guard<std::mutex> lock(handed_mu_);
      handed.swap(handed_);
    }
    for (auto& c : handed) adopt(std::move(c), "");

    auto now = clock_type::now();
    bool accepting = now >= accept_paused_until_;
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    fds.push_back({idle_fd_, POLLIN, 0});
    // Nothing waits for a time of its own: sleep until a connection, a request or stop().
    auto wake_at = expire_idle(now);
    if (!accepting) wake_at = std::min(wake_at, accept_paused_until_);
    for (auto& c : closing_) {
      fds.push_back({c->conn->fd(), static_cast<short>(c->want == io_want::write ? POLLOUT : POLLIN), 0});
      wake_at = std::min(wake_at, c->next_deadline());
    }
    int wait_ms = -1;
    if (wake_at == clock_type::time_point::max() && dispatched_since_trim_ > 0) {
      // Requests were served and no connection is left: the heap the burst grew (every thread's
      // share of glibc's arenas, freed but kept) goes back to the kernel before the long sleep.
      ::malloc_trim(0);
      dispatched_since_trim_ = 0;
    }
    if (wake_at != clock_type::time_point::max())
      wait_ms = static_cast<int>(std::clamp<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now).count() + 1, 0, 1 << 30));
    int r = ::poll(fds.data(), fds.size(), wait_ms);
    if (r < 0 && errno != EINTR) {
      log_kv(spdlog::level::err, "http accept loop: poll failed", {{"error", std::strerror(errno)}});
      std::this_thread::sleep_for(10ms);
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t count;
      [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
    }
    // The closing connections that were polled (refusals made below are stepped when made).
    now = clock_type::now();
    size_t polled = closing_.size();
    std::vector<std::unique_ptr<closing>> still;
    still.reserve(closing_.size());
    for (size_t i = 0; i < polled; ++i) {
      auto& c = closing_[i];
      bool done = (fds[i + 3].revents != 0 || now >= c->next_deadline()) && c->step(now);
      if (!done) still.push_back(std::move(c));
    }
    closing_.swap(still);
    if (fds[2].revents != 0) take_requests();
    if (accepting && fds[1].revents != 0) accept_all();
  }
  closing_.clear();
  {
    std::lock_guard<std::mutex> lock(handed_mu_);
    idle_.clear();
  }
  ::close(listen_fd_);
  listen_fd_ = -1;
}

}  // namespace berth::http
