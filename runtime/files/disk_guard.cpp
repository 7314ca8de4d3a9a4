#include "runtime/files/disk_guard.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace berth {

namespace {

struct guard_state {
  std::mutex mu;
  std::string data_dir, reserve_path;
  uint64_t reserve = 0, low_water = 0;
  bool installed = false;
  std::atomic<bool> full{false};
  std::atomic<uint64_t> free{0};
  std::atomic<bool> held{false};
};

guard_state& g() {
  static guard_state s;
  return s;
}

uint64_t available(const std::string& dir) {
  struct statvfs v;
  if (::statvfs(dir.c_str(), &v) != 0) return UINT64_MAX;  // unknown: do not refuse
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

// Allocates the reserve for real (fallocate: a sparse file would hold nothing back).
bool make_reserve(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  ::close(fd);
  if (rc != 0) {
    ::unlink(path.c_str());
    return false;
  }
  return true;
}

bool reserve_exists(const std::string& path, uint64_t bytes) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_blocks) * 512 >= bytes;
}

}  // namespace

void disk_guard::install(const std::string& data_dir, uint64_t reserve_bytes, uint64_t low_water_bytes) {
  auto& s = g();
  std::lock_guard<std::mutex> lock(s.mu);
  s.data_dir = data_dir;
  s.reserve_path = data_dir + "/.reserve";
  s.reserve = reserve_bytes;
  s.low_water = low_water_bytes;
  s.installed = reserve_bytes > 0;
  s.held = s.installed && reserve_exists(s.reserve_path, s.reserve);
  if (s.installed) refresh_locked();
}

// Full while the reserve is not held and cannot be made again (which also holds across a
// restart: the reserve's absence is the memory of a full disk), or when free space falls under
// the low-water mark (then the reserve goes, to leave RocksDB room).
void disk_guard::refresh_locked() {
  auto& s = g();
  auto free = available(s.data_dir);
  bool was_full = s.full;
  if (s.held && free < s.low_water) {
    ::unlink(s.reserve_path.c_str());
    s.held = false;
    free = available(s.data_dir);
  }
  if (!s.held && free != UINT64_MAX && free >= s.reserve + s.low_water) {
    s.held = make_reserve(s.reserve_path, s.reserve);
    free = available(s.data_dir);
  }
  s.full = !s.held && free != UINT64_MAX;
  s.free = free == UINT64_MAX ? 0 : free;
  if (s.full && !was_full)
    spdlog::error("disk full under {} ({} bytes free, the reserve of {} bytes released or not makeable); "
                  "writes are refused", s.data_dir, s.free.load(), s.reserve);
  else if (!s.full && was_full)
    spdlog::info("disk has room again under {} ({} bytes free); writes resume", s.data_dir, s.free.load());
}

status disk_guard::room(const std::string& what) {
  auto& s = g();
  if (!s.installed) return status::ok();
  std::lock_guard<std::mutex> lock(s.mu);
  refresh_locked();
  if (!s.full) return status::ok();
  return status::no_space(fmt::format("{}: the disk holding berth's data is full (it needs {} bytes free to "
                                      "go on; {} are); nothing was written; writes resume by themselves once "
                                      "space is freed",
                                      what, s.reserve + s.low_water, s.free.load()));
}

void disk_guard::note_no_space() {
  auto& s = g();
  if (!s.installed) return;
  std::lock_guard<std::mutex> lock(s.mu);
  spdlog::error("disk full: a write failed with ENOSPC under {}", s.data_dir);
  if (s.held) {
    ::unlink(s.reserve_path.c_str());
    s.held = false;
  }
  refresh_locked();
}

bool disk_guard::full() {
  auto& s = g();
  if (!s.installed) return false;
  std::lock_guard<std::mutex> lock(s.mu);
  refresh_locked();
  return s.full;
}

uint64_t disk_guard::free_bytes() { return g().free; }
bool disk_guard::reserve_held() { return g().held; }

}  // namespace berth
