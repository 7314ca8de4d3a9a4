// A test server's plumbing: listens on 127.0.0.1:<free port> until destroyed, accepts on its
// own thread and serves each connection on a thread of its own. What a connection gets is the
// owner's `serve(fd)`; the fd is closed when it returns. The destructor shuts every open
// connection down (a blocked read returns), then joins all the threads, so an owner declares
// its loopback_server after whatever its serve() uses.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace berth::it {

class loopback_server {
 public:
  // `what` names the owner in the exception thrown when it cannot listen.
  loopback_server(const std::string& what, std::function<void(int fd)> serve);
  ~loopback_server();
  loopback_server(const loopback_server&) = delete;
  loopback_server& operator=(const loopback_server&) = delete;
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }  // connections so far

 private:
  void accept_loop();
  void serve_and_close(int fd);
  std::function<void(int)> serve_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  bool stopping_ = false;
  std::vector<int> conns_;
  std::atomic<int> accepted_{0};
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace berth::it
