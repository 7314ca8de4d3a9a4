#include "runtime/files/fs_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <random>
#include <vector>

#include <fmt/format.h>

namespace berth::fsutil {

namespace fs = std::filesystem;

std::string errstr(int e) { return std::strerror(e); }

status read_chunks(int fd, const std::string& shown, const std::function<status(const char*, size_t)>& chunk) {
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return status::io_error(fmt::format("read {}: {}", shown, errstr(errno)));
    if (n == 0) return status::ok();
    if (auto s = chunk(buf.data(), static_cast<size_t>(n)); !s) return s;
  }
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::vector<std::string> split_slash(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

std::string random_suffix() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  return fmt::format("{:016x}", v);
}

bool inside(const fs::path& root, const fs::path& p) {
  auto r = p.lexically_relative(root);
  return !r.empty() && *r.begin() != "..";
}

void force_remove(const fs::path& p) {
  std::error_code ec;
  std::vector<fs::path> stack{p};
  while (!stack.empty()) {
    fs::path d = stack.back();
    stack.pop_back();
    if (!fs::is_directory(fs::symlink_status(d, ec))) continue;
    ::chmod(d.c_str(), 0700);
    for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) stack.push_back(it->path());
  }
  fs::remove_all(p, ec);
}

status write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp-" + fsutil::random_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return status::io_error("cannot create " + tmp + ": " + fsutil::errstr(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return status::io_error("cannot write " + tmp + ": " + fsutil::errstr(e));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return status::io_error("cannot rename onto " + path + ": " + fsutil::errstr(e));
  }
  return status::ok();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace berth::fsutil
