#include "runtime/logs/output_pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace berth {

status output_pipe::create(const std::filesystem::path& path, std::unique_ptr<output_pipe>* out) {
  ::unlink(path.c_str());
  auto fail = [&](const char* what) {
    return status::io_error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
  };
  if (::mkfifo(path.c_str(), 0600) != 0) return fail("mkfifo");
  // Read end first (non-blocking open of a FIFO for reading always succeeds), then our own
  // write end, which then does not block either.
  int rfd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (rfd < 0) {
    auto s = fail("open");
    ::unlink(path.c_str());
    return s;
  }
  int wfd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (wfd < 0) {
    auto s = fail("open");
    ::close(rfd);
    ::unlink(path.c_str());
    return s;
  }
  out->reset(new output_pipe(path, rfd, wfd));
  return status::ok();
}

output_pipe::~output_pipe() {
  ::close(write_fd_);
  ::close(read_fd_);
  ::unlink(path_.c_str());
}

std::string output_pipe::read_for(std::chrono::milliseconds wait, size_t max_bytes) {
  pollfd p{read_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return {};
  return drain(max_bytes);
}

std::string output_pipe::drain(size_t max_bytes) {
  std::string got;
  char buf[65536];
  while (got.size() < max_bytes) {
    ssize_t n = ::read(read_fd_, buf, sizeof buf);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EAGAIN: nothing more now (never EOF: we hold a write end)
  }
  return got;
}

}  // namespace berth
