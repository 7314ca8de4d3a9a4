// The reaper thread: waits for pidfds (or sweeps), reaps children, fires exit watches.
#include "runtime/process/reaper.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "runtime/process/proc_stat.hpp"

namespace berth::detail {

namespace {
constexpr int kSweepMs = 10;  // children without a pidfd
}  // namespace

reaper& reaper::get() {
  static reaper* r = new reaper;  // never destroyed: the thread outlives main
  return *r;
}

reaper::reaper() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  evfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  bool ok = epfd_ >= 0 && evfd_ >= 0 && epoll_add_locked(evfd_, kWakeKey);
  // pidfds may be missing (old kernel) or forbidden (seccomp): then sweep instead.
  if (ok) {
    int fd = pidfd_open(::getpid());
    ok = fd >= 0;
    close_fd(fd);
  }
  if (!ok) {
    close_fd(epfd_);
    close_fd(evfd_);
    epfd_ = evfd_ = -1;
  }
  std::thread([this] { loop(); }).detach();
}

void reaper::loop() {
  std::vector<uint64_t> keys;
  for (;;) {
    keys.clear();
    wait_events(&keys);
    std::unique_lock<std::mutex> lock(mu_);
    bool stalled = handle_keys_locked(keys);
    if (unwatched_live_ > 0) sweep_locked();
    if (polled_watches_ > 0 && clock::now() >= next_poll_) poll_watches_locked();
    run_due(lock);
    lock.unlock();
    if (stalled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int reaper::next_timeout_ms() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!due_.empty()) return 0;
  int timeout = -1;
  if (unwatched_live_ > 0) timeout = kSweepMs;
  if (polled_watches_ > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll_ - clock::now()).count();
    int poll_in = static_cast<int>(std::clamp<long long>(left + 1, 0, 100));
    timeout = timeout < 0 ? poll_in : std::min(timeout, poll_in);
  }
  return timeout;
}

void reaper::wait_events(std::vector<uint64_t>* keys) {
  int timeout = next_timeout_ms();
  if (epfd_ < 0) {
    std::unique_lock<std::mutex> lock(mu_);
    auto woken = [&] { return wake_pending_; };
    if (timeout < 0) loop_cv_.wait(lock, woken);
    else loop_cv_.wait_for(lock, std::chrono::milliseconds(timeout), woken);
    wake_pending_ = false;
    return;
  }
  epoll_event evs[64];
  int n = ::epoll_wait(epfd_, evs, 64, timeout);
  if (n < 0 && errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(kSweepMs));
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.u64 != kWakeKey) {
      keys->push_back(evs[i].data.u64);
      continue;
    }
    uint64_t v;
    while (::read(evfd_, &v, sizeof v) > 0) {
    }
  }
}

// Returns true if a child's pidfd was readable but the child not yet reapable.
bool reaper::handle_keys_locked(const std::vector<uint64_t>& keys) {
  bool stalled = false;
  for (uint64_t key : keys) {
    if (key & kWatchBit) {
      watch_event_locked(key & ~kWatchBit);
      continue;
    }
    int pid = static_cast<int>(key);
    auto it = children_.find(pid);
    if (it == children_.end()) continue;
    harvest_locked(pid, it->second);
    if (!it->second.exited) stalled = true;
  }
  return stalled;
}

// One callback at a time, without the lock: a callback may watch or unwatch. Once taken
// off `due_` a call counts as running, which unwatch() cannot cancel.
void reaper::run_due(std::unique_lock<std::mutex>& lock) {
  while (!due_.empty()) {
    due_call call = std::move(due_.front());
    due_.pop_front();
    lock.unlock();
    try {
      call.on_exit(call.info);
    } catch (...) {  // nothing to report to on this thread; the watch is done either way
    }
    call.on_exit = nullptr;  // its captures are released without the lock too
    lock.lock();
  }
}

void reaper::wake_locked() {
  if (epfd_ < 0) {
    wake_pending_ = true;
    loop_cv_.notify_one();
    return;
  }
  uint64_t one = 1;
  ssize_t w = ::write(evfd_, &one, sizeof one);
  (void)w;
}

bool reaper::epoll_add_locked(int fd, uint64_t key) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = key;
  return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void reaper::epoll_del_locked(int fd) {
  if (epfd_ >= 0 && fd >= 0) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

}  // namespace berth::detail
