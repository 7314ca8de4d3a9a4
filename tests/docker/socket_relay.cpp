#include "tests/docker/socket_relay.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace berth::dk {

namespace {
sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}
}  // namespace

socket_relay::socket_relay(std::string listen_path, std::string engine_path)
    : path_(std::move(listen_path)), engine_(std::move(engine_path)) {
  resume();
}

socket_relay::~socket_relay() {
  cut();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void socket_relay::resume() {
  std::lock_guard<std::mutex> l(mu_);
  ::unlink(path_.c_str());
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = address(path_);
  ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listener_, 64);
  up_ = true;
  int fd = listener_;
  threads_.emplace_back([this, fd] { accept_loop(fd); });
}

void socket_relay::cut() {
  std::lock_guard<std::mutex> l(mu_);
  up_ = false;
  for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  fds_.clear();
  if (listener_ >= 0) ::shutdown(listener_, SHUT_RDWR);
  listener_ = -1;
  ::unlink(path_.c_str());
}

void socket_relay::accept_loop(int listener) {
  while (up_) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) break;
    int engine = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = address(engine_);
    if (::connect(engine, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(client);
      ::close(engine);
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    fds_.push_back(client);
    fds_.push_back(engine);
    threads_.emplace_back([this, client, engine] { pump(client, engine); });
  }
  ::close(listener);
}

void socket_relay::pump(int a, int b) {
  char buf[16384];
  pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  for (;;) {
    if (::poll(p, 2, 100) < 0) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n <= 0 || ::write(p[1 - i].fd, buf, static_cast<size_t>(n)) != n) done = true;
    }
    if (done) break;
  }
  ::close(a);
  ::close(b);
}

}  // namespace berth::dk
