// What bench_surfaces reads streams with: a raw HTTP connection that stays open (an SSE
// stream, read as bytes), a process whose stdout is a pipe (`tail -F`), and a record of when
// each numbered line of the lines app ("<tag> 000123") was first seen in one of them.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace berth::bench {

using steady = std::chrono::steady_clock;

// When each line number was first seen (steady clock); safe from any thread.
class arrivals {
 public:
  explicit arrivals(size_t capacity) : at_(capacity) {}
  void mark(long number, steady::time_point t);
  bool seen(long number) const;
  steady::time_point at(long number) const;  // {} when not seen

 private:
  mutable std::mutex mu_;
  std::vector<steady::time_point> at_;
};

// Finds "<tag> " + 6 digits in a byte stream fed in arbitrary pieces (a match may straddle
// two pieces) and marks each number in `into` with the time the piece arrived.
class line_scanner {
 public:
  line_scanner(std::string tag, arrivals& into) : tag_(std::move(tag) + " "), into_(into) {}
  void feed(const char* data, size_t n, steady::time_point t);

 private:
  std::string tag_, carry_;
  arrivals& into_;
};

// A GET that stays open: connect to 127.0.0.1:port, send the request (with a bearer token
// unless it is ""), read the response head. open() false with *error when there is no 200 head within `timeout`.
class raw_stream {
 public:
  ~raw_stream() { close(); }
  bool open(uint16_t port, const std::string& path, const std::string& token, std::chrono::milliseconds timeout,
            std::string* error);
  // Bytes after the head (already read by open()); then read() until it returns <= 0.
  std::string take_leftover() { return std::move(leftover_); }
  ssize_t read(char* buf, size_t n);
  bool write(const std::string& data);  // all of it (more requests on the same connection)
  bool still_open();  // no EOF or error pending, without blocking
  void shutdown();    // wakes a blocked read() (it returns 0); the fd stays until close()
  void close();

 private:
  std::atomic<int> fd_{-1};
  std::string leftover_;
};

// fork + execv of args[0] with stdout on a pipe (read end in out_fd), stdin and stderr on
// /dev/null, dying with us (PR_SET_PDEATHSIG). -1 on error.
pid_t spawn_piped(const std::vector<std::string>& args, int* out_fd);
void stop_process(pid_t pid);  // SIGKILL and reap

// A thread feeding a scanner: from a pipe fd until EOF (then it closes the fd), or from a
// raw_stream until it ends or is shut down. join() waits for that.
class stream_reader {
 public:
  stream_reader(const std::string& tag, arrivals& into) : scan_(tag, into) {}
  ~stream_reader() { join(); }
  void start_fd(int fd, std::string leftover = "");
  void start_stream(raw_stream& s);
  void join();

 private:
  line_scanner scan_;
  std::thread thread_;
};

}  // namespace berth::bench
