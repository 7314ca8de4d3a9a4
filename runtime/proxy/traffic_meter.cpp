// The traffic meter (traffic_meter.hpp): a unix datagram socket HAProxy logs to, one reader
// thread, and per-port windows of request counts and latencies.
#include "runtime/proxy/traffic_meter.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/proxy/haproxy_files.hpp"

namespace berth {

namespace {

// The per_10000-th 10000-quantile of the n latencies counted (nearest rank: the smallest
// value with at least ceil(n * per_10000 / 10000) values at or below it), -1 with none.
// Integer ranks: 99 % of 300 is rank 297, not 298 by a rounding error.
int64_t percentile(const std::map<int64_t, uint64_t>& latencies, uint64_t n, uint64_t per_10000) {
  if (n == 0) return -1;
  uint64_t rank = (n * per_10000 + 9999) / 10000;
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (auto& [ms, count] : latencies) {
    seen += count;
    if (seen >= rank) return ms;
  }
  return latencies.rbegin()->first;
}

}  // namespace

bool request_sample::error() const {
  if (status >= 500) return true;
  char side = termination.empty() ? '-' : termination[0];
  if (side == 'C' || side == 'c') return false;  // the client ended it
  return status < 0 || side == 'S' || side == 's';
}

bool request_sample::client_gave_up() const {
  return status < 0 && !termination.empty() && (termination[0] == 'C' || termination[0] == 'c');
}

int64_t request_sample::latency_ms() const { return header_ms >= 0 ? header_ms : total_ms; }

bool parse_request_line(const std::string& line, request_sample* out) {
  std::istringstream in(line);
  long port = 0;
  request_sample s;
  if (!(in >> port >> s.status >> s.header_ms >> s.total_ms >> s.termination)) return false;
  if (port <= 0 || port > 65535 || s.termination.size() < 2 || s.termination.size() > 4) return false;
  std::string rest;
  if (in >> rest) return false;
  s.port = static_cast<uint16_t>(port);
  *out = std::move(s);
  return true;
}

std::string traffic_socket_path(const std::string& haproxy_dir) { return haproxy_files::traffic_socket(haproxy_dir); }

status traffic_meter::open(const std::string& path, std::shared_ptr<traffic_meter>* out) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return status::io_error("traffic meter: the socket path '" + path + "' does not fit a unix socket address");
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return status::io_error("traffic meter: cannot make " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return status::io_error(std::string("traffic meter: socket: ") + std::strerror(errno));
  ::unlink(path.c_str());  // a socket a previous berth left
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(fd);
    return status::io_error("traffic meter: cannot bind " + path + ": " + std::strerror(e));
  }
  ::chmod(path.c_str(), 0600);
  // Bursts of requests must not be dropped while the reader sleeps: a large receive buffer.
  // (The kernel also caps the queue at net.unix.max_dgram_qlen datagrams; HAProxy drops a
  // line that finds it full and counts it in `show info` DroppedLogs.)
  int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return status::io_error(std::string("traffic meter: pipe: ") + std::strerror(e));
  }
  out->reset(new traffic_meter(path, fd, wake));
  return status::ok();
}

traffic_meter::traffic_meter(std::string path, int fd, const int wake[2]) : path_(std::move(path)), fd_(fd) {
  wake_[0] = wake[0];
  wake_[1] = wake[1];
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) dev_ = st.st_dev, ino_ = st.st_ino;
  reader_ = std::thread([this] { read_loop(); });
}

traffic_meter::~traffic_meter() {
  char c = 1;
  (void)!::write(wake_[1], &c, 1);
  reader_.join();
  for (int fd : {fd_, wake_[0], wake_[1]}) ::close(fd);
  // Another meter may have bound the path since (a test, or a berth started while this one
  // stops): its socket stays.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

void traffic_meter::read_loop() {
  char buf[2048];
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    while (true) {
      ssize_t got = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (got <= 0) break;
      received_.fetch_add(1);
      std::string line(buf, static_cast<size_t>(got));
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == '\0')) line.pop_back();
      request_sample s;
      if (!parse_request_line(line, &s)) {
        malformed_.fetch_add(1);
        continue;
      }
      count(s);
    }
  }
}

void traffic_meter::count(const request_sample& s) {
  std::lock_guard<std::mutex> lock(m_);
  if (s.client_gave_up()) return;
  auto it = windows_.find(s.port);
  if (it == windows_.end()) return;  // not watched
  auto& w = it->second;
  ++w.requests;
  if (s.error()) ++w.errors;
  if (auto ms = s.latency_ms(); ms >= 0) ++w.latencies[ms];
}

void traffic_meter::restart(const std::vector<uint16_t>& ports) {
  std::lock_guard<std::mutex> lock(m_);
  for (auto p : ports) windows_[p] = window{};
}

side_figures traffic_meter::read(uint16_t port) const {
  std::lock_guard<std::mutex> lock(m_);
  side_figures f;
  auto it = windows_.find(port);
  if (it == windows_.end()) return f;
  auto& w = it->second;
  f.requests = w.requests;
  f.errors = w.errors;
  uint64_t timed = 0;
  for (auto& [ms, c] : w.latencies) timed += c;
  f.p50_ms = percentile(w.latencies, timed, 5000);
  f.p99_ms = percentile(w.latencies, timed, 9900);
  return f;
}

void traffic_meter::forget(const std::vector<uint16_t>& ports) {
  std::lock_guard<std::mutex> lock(m_);
  for (auto p : ports) windows_.erase(p);
}

}  // namespace berth
