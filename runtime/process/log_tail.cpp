// process_driver::tail: the end of a log file, read backwards.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "runtime/logs/rotating_file.hpp"
#include "runtime/process/process_driver.hpp"

namespace berth {

namespace {

std::vector<std::string> tail_of_file(const std::string& path, size_t n) {
  std::vector<std::string> lines;
  if (n == 0) return lines;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lines;
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || sb.st_size <= 0) {
    ::close(fd);
    return lines;
  }
  constexpr off_t kChunk = 64 * 1024;
  constexpr off_t kMaxScan = 8 * 1024 * 1024;
  const off_t size = sb.st_size;
  off_t pos = size;
  std::string data;  // the bytes [pos, size)
  size_t newlines = 0;
  bool skip_last = true;  // a '\n' ending the file terminates the last line, no new line
  while (pos > 0 && size - pos < kMaxScan) {
    off_t len = std::min<off_t>(kChunk, pos);
    pos -= len;
    std::string chunk(static_cast<size_t>(len), '\0');
    off_t got = 0;
    while (got < len) {
      ssize_t r = ::pread(fd, chunk.data() + got, static_cast<size_t>(len - got), pos + got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += r;
    }
    if (got < len) {  // the file shrank or failed: use what was read so far
      pos += len;
      break;
    }
    for (off_t i = len - 1; i >= 0; --i) {
      if (chunk[static_cast<size_t>(i)] != '\n') continue;
      if (skip_last && pos + i == size - 1) continue;
      ++newlines;
    }
    data.insert(0, chunk);
    if (newlines >= n) break;
  }
  ::close(fd);
  if (!data.empty() && data.back() == '\n') data.pop_back();
  // Split from the end, keeping at most n lines; a line cut by the scan limit stays partial.
  size_t end = data.size();
  while (lines.size() < n) {
    size_t nl = end == 0 ? std::string::npos : data.rfind('\n', end - 1);
    if (nl == std::string::npos) {
      if (pos == 0 || !data.empty()) lines.push_back(data.substr(0, end));
      break;
    }
    lines.push_back(data.substr(nl + 1, end - nl - 1));
    end = nl;
  }
  std::reverse(lines.begin(), lines.end());
  return lines;
}

}  // namespace

// Across a rotation (runtime/logs/rotating_file.hpp): what PATH lacks comes from PATH.1, etc.
std::vector<std::string> process_driver::tail(const std::string& path, size_t n) {
  auto lines = tail_of_file(path, n);
  for (int i = 1; lines.size() < n && i < 1000; ++i) {
    auto older_path = rotated_name(path, i);
    if (::access(older_path.c_str(), F_OK) != 0) break;
    auto older = tail_of_file(older_path, n - lines.size());
    lines.insert(lines.begin(), older.begin(), older.end());
  }
  return lines;
}

}  // namespace berth
