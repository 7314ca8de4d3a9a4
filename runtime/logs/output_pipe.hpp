// A named pipe (FIFO) that a child process is given as its output path, read by berth as it
// is written: what the child prints reaches berth without ever being a file on disk, so it can
// be masked (or filtered) before it is stored. No actor code; one reader thread at a time.
#pragma once
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/status.hpp"

namespace berth {

class output_pipe {
 public:
  // Makes the FIFO at `path` (mode 0600; whatever was there is replaced) and opens it, read
  // end and a write end of its own: a writer's open never blocks, and the pipe never reports
  // end-of-file while the child comes and goes. io_error naming the path on failure.
  static status create(const std::filesystem::path& path, std::unique_ptr<output_pipe>* out);
  ~output_pipe();  // closes both ends and removes the FIFO
  output_pipe(const output_pipe&) = delete;
  output_pipe& operator=(const output_pipe&) = delete;

  // Waits up to `wait` for output, then returns what is there (at most `max_bytes`; "" if none).
  std::string read_for(std::chrono::milliseconds wait, size_t max_bytes = 1 << 20);
  // Everything written so far, without waiting: for when the writers are gone.
  std::string drain(size_t max_bytes = 8 << 20);
  const std::filesystem::path& path() const { return path_; }

 private:
  output_pipe(std::filesystem::path path, int read_fd, int write_fd)
      : path_(std::move(path)), read_fd_(read_fd), write_fd_(write_fd) {}
  std::filesystem::path path_;
  int read_fd_ = -1, write_fd_ = -1;
};

}  // namespace berth
