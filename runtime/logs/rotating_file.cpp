#include "runtime/logs/rotating_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "runtime/logs/rotated_log.hpp"

namespace berth {

namespace {
std::atomic<uint64_t> g_max_bytes{0};
std::atomic<int> g_files{5};
}  // namespace

void set_app_log_rotation(log_rotation r) {
  g_max_bytes = r.max_bytes;
  g_files = r.files;
}

log_rotation app_log_rotation() { return {g_max_bytes.load(), g_files.load()}; }

std::string rotated_name(const std::string& path, int i) { return i == 0 ? path : path + "." + std::to_string(i); }

rotating_file::~rotating_file() {
  if (fd_ >= 0) ::close(fd_);
}

status rotating_file::open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);  // logs may hold what apps print
  if (fd_ < 0) return status::io_error(fmt::format("open {}: {}", path_, std::strerror(errno)));
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  // The sidecar names the file it describes: a restarted writer keeps its base; a new PATH
  // (first start, or after a rotation) gets one. Without it, offsets would only be per file.
  auto known = read_log_base(path_);
  auto inode = static_cast<uint64_t>(st.st_ino);
  if (known && known->inode == inode) {
    base_ = known->offset;  // a restarted writer goes on with the same file
    return status::ok();
  }
  if (known && !rotating_) base_ = known->offset;  // PATH removed by hand: count on from there
  write_log_base(path_, {base_, inode});
  return status::ok();
}

status rotating_file::rotate() {
  ::close(fd_);
  fd_ = -1;
  base_ += size_;  // the next PATH starts where this one ended
  int files = rotation_.files < 1 ? 1 : rotation_.files;
  ::unlink(rotated_name(path_, files - 1).c_str());
  for (int i = files - 2; i >= 0; --i) ::rename(rotated_name(path_, i).c_str(), rotated_name(path_, i + 1).c_str());
  if (files == 1) ::unlink(path_.c_str());
  rotating_ = true;
  auto s = open();
  rotating_ = false;
  return s;
}

// Whole lines go to one file where they can: a chunk that does not fit is cut after its last
// newline that does (or at the limit, for a line longer than a whole file).
status rotating_file::write(const char* data, size_t n) {
  if (fd_ < 0)
    if (auto s = open(); !s) return s;
  while (n > 0) {
    size_t part = n;
    if (rotation_.max_bytes > 0 && size_ + n > rotation_.max_bytes) {
      size_t room = size_ < rotation_.max_bytes ? static_cast<size_t>(rotation_.max_bytes - size_) : 0;
      const void* nl = room > 0 ? ::memrchr(data, '\n', room) : nullptr;
      if (nl != nullptr) {
        part = static_cast<size_t>(static_cast<const char*>(nl) - data) + 1;
      } else if (size_ > 0) {
        if (auto s = rotate(); !s) return s;
        continue;
      } else {
        part = room;  // one line longer than a file: split
      }
    }
    if (auto s = write_all(data, part); !s) return s;
    data += part;
    n -= part;
    if (n > 0)
      if (auto s = rotate(); !s) return s;
  }
  return status::ok();
}

status rotating_file::write_all(const char* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::write(fd_, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = errno;
      auto what = fmt::format("write {}: {}", path_, std::strerror(err));
      return err == ENOSPC ? status::no_space(what) : status::io_error(what);
    }
    done += static_cast<size_t>(w);
  }
  size_ += n;
  return status::ok();
}

}  // namespace berth
