#include "runtime/logs/log_follower.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace berth {

namespace {

// Reads [from, from + max) of an open file; stops early at its end.
std::string read_at(int fd, uint64_t from, size_t max) {
  std::string buf(max, '\0');
  size_t got = 0;
  while (got < max) {
    auto n = ::pread(fd, buf.data() + got, max - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return buf;
}

struct open_file {
  int fd = -1;
  uint64_t size = 0;
  explicit open_file(const std::string& path) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && ::fstat(fd, &st) == 0) {
      size = static_cast<uint64_t>(st.st_size);
    } else if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~open_file() {
    if (fd >= 0) ::close(fd);
  }
  open_file(const open_file&) = delete;
  open_file& operator=(const open_file&) = delete;
};

}  // namespace

std::vector<std::string> line_splitter::feed(std::string_view chunk) {
  std::vector<std::string> lines;
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    auto piece = chunk.substr(0, nl);  // npos: all of it
    // Cut over-long lines into max_line_ pieces.
    while (partial_.size() + piece.size() > max_line_) {
      auto take = max_line_ - partial_.size();
      partial_.append(piece.substr(0, take));
      lines.push_back(std::move(partial_));
      partial_.clear();
      piece.remove_prefix(take);
    }
    partial_.append(piece);
    if (nl == std::string_view::npos) break;
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    lines.push_back(std::move(partial_));
    partial_.clear();
    chunk.remove_prefix(nl + 1);
  }
  return lines;
}

std::optional<std::string> line_splitter::flush() {
  if (partial_.empty()) return std::nullopt;
  std::string rest = std::move(partial_);
  partial_.clear();
  if (!rest.empty() && rest.back() == '\r') rest.pop_back();
  return rest;
}

std::vector<std::string> log_follower::backlog(size_t n, size_t window) {
  split_.reset();
  offset_ = 0;
  open_file f(path_);
  if (f.fd < 0) return {};
  uint64_t start = f.size > window ? f.size - window : 0;
  auto text = read_at(f.fd, start, static_cast<size_t>(f.size - start));
  offset_ = start + text.size();
  std::string_view view(text);
  if (start > 0) {  // began inside a line: drop its end
    auto nl = view.find('\n');
    view.remove_prefix(nl == std::string_view::npos ? view.size() : nl + 1);
  }
  auto lines = split_.feed(view);
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
  return lines;
}

std::vector<std::string> log_follower::poll(size_t max_bytes) {
  open_file f(path_);
  if (f.fd < 0) return {};
  if (f.size < offset_) {  // truncated or replaced: start over
    offset_ = 0;
    split_.reset();
  }
  if (f.size == offset_) return {};
  auto len = static_cast<size_t>(std::min<uint64_t>(f.size - offset_, max_bytes));
  auto text = read_at(f.fd, offset_, len);
  offset_ += text.size();
  return split_.feed(text);
}

std::vector<std::string> log_follower::drain(size_t max_bytes) {
  std::vector<std::string> lines;
  for (size_t read = 0; read < max_bytes;) {
    auto before = offset_;
    auto more = poll(std::min<size_t>(1 << 20, max_bytes - read));
    lines.insert(lines.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    if (offset_ <= before) break;  // nothing new (or started over)
    read += static_cast<size_t>(offset_ - before);
  }
  if (auto rest = split_.flush()) lines.push_back(std::move(*rest));
  return lines;
}

}  // namespace berth
