// Internal to the process driver: the process-wide table of the children any process_driver
// started, the exit watches, and the one reaper thread serving both.
//
// The thread waits on one epoll set holding a pidfd per live child and per watched process
// that is not our child (plus an eventfd to wake it). Without pidfds it sweeps the children
// every 10 ms and checks the watched processes through /proc every 100 ms. Exit callbacks run
// on this thread, one at a time, never with the lock held.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/process/process_driver.hpp"

namespace berth::detail {

using exit_fn = std::function<void(const process_info&)>;

class reaper {
 public:
  using clock = std::chrono::steady_clock;
  static reaper& get();

  // --- our children (reaper_children.cpp)
  void add(int pid, uint64_t start_time, int pgid);
  // True if h is a child we started (same start time); fills *info after a non-blocking reap.
  bool inspect(const process_handle& h, process_info* info);
  // True if h is our child; then blocks until it has been reaped or the deadline passes.
  bool wait(const process_handle& h, clock::time_point deadline, process_info* info);
  enum class liveness { not_child, alive, dead };
  liveness alive(const process_handle& h);
  // Signals h if it is our child not yet reaped (the lock keeps its pid from being reused).
  liveness signal(const process_handle& h, int sig);
  // Reaps members of a group we created that became our children; never other children.
  void reap_group(int pgid);

  // --- exit watches (reaper_watches.cpp); contracts in process_driver.hpp
  uint64_t watch(const process_handle& h, exit_fn on_exit);
  void unwatch(uint64_t token);
  // Tests: watch processes that are not our children through /proc, as without pidfds.
  void set_watch_pidfds(bool use);

 private:
  struct child {
    uint64_t start_time = 0;
    int pgid = 0;
    int pidfd = -1;
    bool exited = false;
    bool status_known = false;
    int wait_status = 0;
  };
  enum class watch_kind { child, pidfd, proc_poll };
  struct watch_entry {
    process_handle h;
    exit_fn on_exit;
    watch_kind kind = watch_kind::child;
    int pidfd = -1;
  };
  using proc_key = std::pair<int, uint64_t>;  // pid, start time
  struct due_call {
    uint64_t token;
    proc_key key;
    process_info info;
    exit_fn on_exit;
  };

  static constexpr uint64_t kWakeKey = ~uint64_t{0};
  static constexpr uint64_t kWatchBit = uint64_t{1} << 62;  // epoll keys of watches

  reaper();
  // reaper.cpp: the thread.
  void loop();
  int next_timeout_ms();
  void wait_events(std::vector<uint64_t>* keys);
  bool handle_keys_locked(const std::vector<uint64_t>& keys);
  void run_due(std::unique_lock<std::mutex>& lock);
  void wake_locked();
  bool epoll_add_locked(int fd, uint64_t key);
  void epoll_del_locked(int fd);

  // reaper_children.cpp
  static process_info info_of(const child& c);
  void drop_pidfd_locked(child& c);
  void record_locked(int pid, child& c, int ws, bool known);
  void harvest_locked(int pid, child& c);
  void sweep_locked();
  child* find_child_locked(const process_handle& h);

  // reaper_watches.cpp
  exit_fn take_watch_locked(uint64_t token);
  void drop_watches_of_locked(const process_handle& h, std::vector<exit_fn>* dropped);
  void insert_watch_locked(uint64_t token, watch_entry w);
  void start_polling_locked(watch_entry& w);
  void fire_locked(uint64_t token, const process_info& info);
  void fire_child_watch_locked(int pid, const child& c);
  void watch_event_locked(uint64_t token);
  void poll_watches_locked();
  bool watch_foreign(uint64_t token, const process_handle& h, exit_fn& on_exit, process_info* ended);

  std::mutex mu_;
  std::condition_variable cv_;       // a child was reaped
  std::condition_variable loop_cv_;  // wakes the thread when there is no epoll
  bool wake_pending_ = false;
  std::unordered_map<int, child> children_;
  std::deque<proc_key> exited_;  // reaped children, oldest first (the table is bounded)
  size_t unwatched_live_ = 0;    // live children without a pidfd (swept every 10 ms)

  std::unordered_map<uint64_t, watch_entry> watches_;
  std::map<proc_key, uint64_t> watch_of_;  // at most one watch per process
  std::deque<due_call> due_;               // fired, waiting for the thread to call them
  size_t polled_watches_ = 0;
  clock::time_point next_poll_{};
  uint64_t next_token_ = 1;
  std::atomic<bool> watch_pidfds_{true};

  int epfd_ = -1;
  int evfd_ = -1;
};

}  // namespace berth::detail
