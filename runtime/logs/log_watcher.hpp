// Wakes whoever follows a log when it grows or rotates: ONE inotify instance and ONE thread for
// every followed log of the process (a stream per follower would cost a thread or a poll loop
// each). It watches the log's folder, since a rotation renames and recreates the file itself.
// No actor or HTTP code.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace berth {

class log_watcher;

// One follower's wake-up: signalled on every change to its log or its rotations.
class log_signal {
 public:
  ~log_signal();  // stops watching (the folder's watch goes with its last follower)
  log_signal(const log_signal&) = delete;
  log_signal& operator=(const log_signal&) = delete;
  // Blocks until the log changed since the last wait() (or since watch()) or `timeout` passed;
  // true when it changed.
  bool wait(std::chrono::milliseconds timeout);
  // Marks a change and wakes the waiter (the watcher thread calls it; tests may too).
  void notify();
  const std::string& file_name() const { return file_; }

 private:
  friend class log_watcher;
  log_signal(log_watcher& w, int wd, std::string file) : watcher_(w), wd_(wd), file_(std::move(file)) {}
  log_watcher& watcher_;
  int wd_;  // -1: the folder could not be watched (nothing will wake it)
  std::string file_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t changes_ = 0, seen_ = 0;
};

class log_watcher {
 public:
  // The process's watcher; its thread starts with the first watch().
  static log_watcher& instance();
  ~log_watcher();  // stops and joins the thread
  // Follows `path` (a log file): its signal fires when PATH, a rotation PATH.N or its sidecar
  // is written, created, renamed or removed. Thread-safe. Never null; a folder that cannot be
  // watched (missing) gives a signal that only times out (valid() false).
  std::shared_ptr<log_signal> watch(const std::string& path);
  bool valid(const log_signal& s) const { return s.wd_ >= 0; }
  size_t watched_folders() const;

 private:
  friend class log_signal;
  struct impl;
  log_watcher();
  void forget(log_signal* s);
  std::unique_ptr<impl> impl_;
};

}  // namespace berth
