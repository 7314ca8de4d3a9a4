#include "bench/common/stream_probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace berth::bench {

void arrivals::mark(long number, steady::time_point t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (number < 0 || static_cast<size_t>(number) >= at_.size()) return;
  if (at_[number] == steady::time_point{}) at_[number] = t;
}

bool arrivals::seen(long number) const { return at(number) != steady::time_point{}; }

steady::time_point arrivals::at(long number) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (number < 0 || static_cast<size_t>(number) >= at_.size()) return {};
  return at_[number];
}

void line_scanner::feed(const char* data, size_t n, steady::time_point t) {
  carry_.append(data, n);
  const size_t match = tag_.size() + 6;
  size_t pos = 0, done = 0;
  while ((pos = carry_.find(tag_, pos)) != std::string::npos) {
    if (pos + match > carry_.size()) break;  // the rest may come with the next piece
    bool digits = true;
    for (size_t i = pos + tag_.size(); i < pos + match; ++i) digits = digits && std::isdigit(static_cast<unsigned char>(carry_[i]));
    if (digits) into_.mark(std::strtol(carry_.c_str() + pos + tag_.size(), nullptr, 10), t);
    pos += digits ? match : 1;
    done = pos;
  }
  // Keep only what could still begin a match.
  size_t keep_from = carry_.size() > match ? carry_.size() - match : 0;
  carry_.erase(0, std::max(done, keep_from));
}

bool raw_stream::open(uint16_t port, const std::string& path, const std::string& token,
                      std::chrono::milliseconds timeout, std::string* error) {
  close();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  fd_ = fd;
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds connect()
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);  // only while reading the head
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    *error = std::string("send: ") + std::strerror(errno);
    return false;
  }
  std::string head;
  char buf[4096];
  size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n == 0 ? "closed before the response head" : std::string("recv: ") + std::strerror(errno);
      return false;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  if (head.compare(0, 13, "HTTP/1.1 200 ") != 0) {
    *error = "answer: " + head.substr(0, std::min<size_t>(head.size(), 400));
    return false;
  }
  leftover_ = head.substr(end + 4);
  timeval none{0, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);  // now wait as long as it lives
  return true;
}

ssize_t raw_stream::read(char* buf, size_t n) {
  for (;;) {
    ssize_t got = ::recv(fd_, buf, n, 0);
    if (got < 0 && errno == EINTR) continue;
    return got;
  }
}

bool raw_stream::write(const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool raw_stream::still_open() {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) < 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) return false;
  if (!(p.revents & POLLIN)) return true;
  char c;  // readable: data (a keep-alive) or EOF
  return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void raw_stream::shutdown() {
  int fd = fd_;
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void raw_stream::close() {
  int fd = fd_.exchange(-1);
  if (fd >= 0) ::close(fd);
  leftover_.clear();
}

pid_t spawn_piped(const std::vector<std::string>& args, int* out_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls from here
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(p[1], 1);
    ::dup2(null_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) {
    ::close(p[0]);
    return -1;
  }
  *out_fd = p[0];
  return pid;
}

void stop_process(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

void stream_reader::start_fd(int fd, std::string leftover) {
  thread_ = std::thread([this, fd, leftover = std::move(leftover)] {
    if (!leftover.empty()) scan_.feed(leftover.data(), leftover.size(), steady::now());
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      scan_.feed(buf, static_cast<size_t>(n), steady::now());
    }
    ::close(fd);
  });
}

void stream_reader::start_stream(raw_stream& s) {
  thread_ = std::thread([this, &s, leftover = s.take_leftover()] {
    auto t = steady::now();
    if (!leftover.empty()) scan_.feed(leftover.data(), leftover.size(), t);
    char buf[16384];
    for (ssize_t n; (n = s.read(buf, sizeof buf)) > 0;) scan_.feed(buf, static_cast<size_t>(n), steady::now());
  });
}

void stream_reader::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace berth::bench
