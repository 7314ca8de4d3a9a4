// The accepting side of the control endpoint: berth's own listening socket and accept loop
// instead of httplib's (whose compiled-in listen backlog is 5, so a burst of connections was
// dropped by the kernel before berth saw it, and whose queue had no bound).
//
// One thread runs the loop. It accepts every connection at once (backlog `listen_backlog`) and
// hands it to the dispatcher; when the dispatcher's queue is full it answers 503 `saturated`
// with Retry-After itself, without a worker. It also holds the connections no worker needs:
// kept-alive ones waiting for their next request (back to the dispatcher when it comes, closed
// after keep_alive_idle_s), and closing ones, whose client may still send after its answer
// (read and dropped for up to linger_limit so that it gets the answer instead of a reset).
// Kept-alive connections wait in an epoll set that the worker that parks one adds it to
// itself: the loop wakes when a request comes, not also each time a worker parks a connection
// (two wakeups per request under load otherwise). Nothing wakes the loop while nothing happens;
// before it sleeps with no connection left after serving requests, it returns the heap's free
// memory to the kernel (malloc_trim), so a burst of requests does not stay in berth's RSS.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/net/transport.hpp"

namespace berth::http {

class dispatcher;

constexpr int listen_backlog = 4096;  // capped by the kernel at net.core.somaxconn
constexpr int refused_retry_after_s = 1;

class listener {
 public:
  // Serves a connection on which `served` requests have been answered already.
  using serve_fn = std::function<void(std::shared_ptr<transport>, size_t served)>;
  // `tls` (null: plain HTTP) and `workers` must outlive the listener. `serve` runs on a worker
  // for each admitted connection.
  listener(const tls_context* tls, dispatcher& workers, serve_fn serve);
  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // Opens the listening socket; false (with a reason) when it cannot.
  bool bind(const std::string& host, uint16_t port, std::string& error);
  int fd() const { return listen_fd_; }
  // Accepts until stop(); call from one dedicated thread.
  void run();
  // Thread-safe; run() returns soon after and the listening socket is closed.
  void stop();
  // Takes a connection whose answer is sent and whose sending side is closed: drops what the
  // client still sends (at most linger_limit), then closes it. Thread-safe.
  void linger(std::shared_ptr<transport> conn);
  // Takes a kept-alive connection with `served` requests answered and nothing of the next one
  // read: it goes back to the dispatcher when the client sends again. Thread-safe.
  void park(std::shared_ptr<transport> conn, size_t served);

 private:
  struct closing;  // a connection the loop is finishing (a refusal being written, or lingering)
  using clock_type_point = std::chrono::steady_clock::time_point;
  struct idle {    // a kept-alive connection between requests
    std::shared_ptr<transport> conn;
    size_t served = 0;
    std::chrono::steady_clock::time_point deadline;
  };
  void accept_all();
  void dispatch(std::shared_ptr<transport> conn, size_t served);
  void refuse(std::shared_ptr<transport> conn);
  void adopt(std::shared_ptr<transport> conn, std::string answer);
  void wake();

  const tls_context* tls_;
  dispatcher& workers_;
  serve_fn serve_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() and linger() wake the loop
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<closing>> closing_;  // loop thread only
  void take_requests();                          // kept-alive connections the epoll set says are readable
  clock_type_point expire_idle(clock_type_point now);  // closes the silent ones; the next deadline

  std::mutex handed_mu_;
  std::vector<std::shared_ptr<transport>> handed_;  // from linger(), taken by the loop
  int idle_fd_ = -1;                                 // epoll set of the kept-alive connections
  std::unordered_map<int, idle> idle_;               // by fd; with handed_mu_
  clock_type_point loop_wakes_at_ = clock_type_point::max();  // the next idle deadline the loop wakes for; with handed_mu_
  std::chrono::steady_clock::time_point accept_paused_until_{};
  size_t dispatched_since_trim_ = 0;  // loop thread only
};

}  // namespace berth::http
