#include "runtime/logs/log_writer.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace berth {

void copy_into_rotating_file(int in_fd, const std::string& path, log_rotation rotation) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ::signal(sig, SIG_IGN);
  rotating_file out(path, rotation);
  bool writable = static_cast<bool>(out.open());
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (writable) out.write(buf, static_cast<size_t>(n));
  }
}

}  // namespace berth
