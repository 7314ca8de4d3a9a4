// Cutting a byte stream into lines, and following a file that is being appended to (a
// deployment's log, an app's output) by byte offset. No actor or HTTP code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

// Cuts a byte stream into lines. A line ends at '\n' (dropped, as is a '\r' before it);
// bytes after the last '\n' are kept until more arrive or flush(). A line longer than
// `max_line` bytes is cut into pieces of that size so that memory stays bounded.
class line_splitter {
 public:
  explicit line_splitter(size_t max_line = 64 * 1024) : max_line_(max_line ? max_line : 1) {}
  // The lines completed by `chunk`, oldest first.
  std::vector<std::string> feed(std::string_view chunk);
  // The unterminated rest, if any; afterwards nothing is pending.
  std::optional<std::string> flush();
  const std::string& pending() const { return partial_; }
  void reset() { partial_.clear(); }

 private:
  size_t max_line_;
  std::string partial_;
};

// Follows a file that is being appended to (a deployment log) by byte offset. The file may
// not exist yet. If it shrinks (truncated or replaced), it is followed again from the start.
class log_follower {
 public:
  explicit log_follower(std::string path, size_t max_line = 64 * 1024)
      : path_(std::move(path)), split_(max_line) {}
  // Starts following at the current end of the file and returns the last `n` complete lines
  // before it (read from at most the last `window` bytes). An unterminated last line is kept
  // pending: it comes out of poll() once completed, or from flush().
  std::vector<std::string> backlog(size_t n, size_t window = 8 << 20);
  // Complete lines appended since the last call (reads at most `max_bytes` per call).
  std::vector<std::string> poll(size_t max_bytes = 1 << 20);
  // Everything still in the file, then the unterminated rest: for when the writer is done.
  std::vector<std::string> drain(size_t max_bytes = 8 << 20);
  uint64_t offset() const { return offset_; }

 private:
  std::string path_;
  uint64_t offset_ = 0;
  line_splitter split_;
};

}  // namespace berth
