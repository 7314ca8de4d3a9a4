#include "runtime/process/cgroup_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace berth::detail {

namespace fs = std::filesystem;

namespace {
constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC
constexpr uint64_t kV1Unlimited = uint64_t(1) << 62;  // v1 writes "unlimited" as ~2^63 rounded to pages
}  // namespace

std::string read_text(const std::string& path, bool* ok) {
  std::ifstream in(path);
  if (ok) *ok = bool(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

status write_text(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return status::io_error(fmt::format("open {}: {}", path, std::strerror(errno)));
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size()))
    return status::io_error(fmt::format("write '{}' to {}: {}", value, path, std::strerror(n < 0 ? err : EIO)));
  return status::ok();
}

bool is_cgroup2(const std::string& dir) {
  struct statfs sfs {};
  return ::statfs(dir.c_str(), &sfs) == 0 && static_cast<long>(sfs.f_type) == kCgroup2Magic;
}

uint64_t read_number(const std::string& path) {
  auto text = read_text(path);
  if (text.rfind("max", 0) == 0) return 0;
  try {
    auto v = std::stoull(text);
    return v >= kV1Unlimited ? 0 : v;
  } catch (...) {
    return 0;
  }
}

uint64_t read_key(const std::string& path, const std::string& key) {
  std::istringstream in(read_text(path));
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

status make_dir(const std::string& dir, bool v2) {
  if (v2) {
    auto parent = fs::path(dir).parent_path().string();
    if (auto s = write_text(parent + "/cgroup.subtree_control", "+memory +cpu +pids"); !s) return s;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return status::io_error(fmt::format("mkdir {}: {}", dir, std::strerror(errno)));
  return status::ok();
}

}  // namespace berth::detail
