// The children started by any process_driver: registered by start(), reaped by the thread
// (or by whoever asks first), their exit statuses kept in a bounded table.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/process/proc_stat.hpp"
#include "runtime/process/reaper.hpp"

namespace berth::detail {

namespace {
constexpr size_t kMaxExitedKept = 1024;  // exit statuses remembered for our children
}  // namespace

void reaper::add(int pid, uint64_t start_time, int pgid) {
  int pidfd = epfd_ >= 0 ? pidfd_open(pid) : -1;
  std::lock_guard<std::mutex> lock(mu_);
  // An old generation of this pid: reaped by someone else if we have not seen it end.
  auto it = children_.find(pid);
  if (it != children_.end() && !it->second.exited) record_locked(pid, it->second, 0, false);
  child& c = children_[pid];
  c = child{};
  c.start_time = start_time;
  c.pgid = pgid;
  if (pidfd >= 0 && epoll_add_locked(pidfd, static_cast<uint64_t>(pid))) {
    c.pidfd = pidfd;
  } else {
    close_fd(pidfd);
    ++unwatched_live_;
    wake_locked();
  }
}

bool reaper::inspect(const process_handle& h, process_info* info) {
  std::lock_guard<std::mutex> lock(mu_);
  child* c = find_child_locked(h);
  if (!c) return false;
  harvest_locked(h.pid, *c);
  *info = info_of(*c);
  return true;
}

bool reaper::wait(const process_handle& h, clock::time_point deadline, process_info* info) {
  std::unique_lock<std::mutex> lock(mu_);
  if (child* c = find_child_locked(h)) harvest_locked(h.pid, *c);
  else return false;
  // find again after each wake-up: the entry may be evicted (or replaced) meanwhile
  cv_.wait_until(lock, deadline, [&] {
    child* c = find_child_locked(h);
    return !c || c->exited;
  });
  if (child* c = find_child_locked(h)) {
    *info = info_of(*c);
    return true;
  }
  lock.unlock();
  *info = inspect_via_proc(h);  // evicted (very old): what /proc says
  return true;
}

reaper::liveness reaper::alive(const process_handle& h) {
  std::lock_guard<std::mutex> lock(mu_);
  child* c = find_child_locked(h);
  if (!c) return liveness::not_child;
  harvest_locked(h.pid, *c);
  return c->exited ? liveness::dead : liveness::alive;
}

reaper::liveness reaper::signal(const process_handle& h, int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  child* c = find_child_locked(h);
  if (!c) return liveness::not_child;
  if (c->exited) return liveness::dead;
  ::kill(h.pid, sig);
  return liveness::alive;
}

// The leader, or orphans of the group when berth is a subreaper or PID 1.
void reaper::reap_group(int pgid) {
  std::lock_guard<std::mutex> lock(mu_);
  for (;;) {
    int ws = 0;
    pid_t r = ::waitpid(-pgid, &ws, WNOHANG);
    if (r <= 0) break;
    auto it = children_.find(r);
    if (it != children_.end() && !it->second.exited) record_locked(r, it->second, ws, true);
  }
}

reaper::child* reaper::find_child_locked(const process_handle& h) {
  auto it = children_.find(h.pid);
  return it != children_.end() && it->second.start_time == h.start_time ? &it->second : nullptr;
}

process_info reaper::info_of(const child& c) {
  process_info info;
  if (!c.exited) info.status = process_status::running;
  else if (c.status_known) fill_from_wait_status(c.wait_status, &info);
  else info.status = process_status::exited;  // reaped elsewhere: code unknown
  return info;
}

void reaper::drop_pidfd_locked(child& c) {
  if (c.pidfd >= 0) {
    epoll_del_locked(c.pidfd);
    close_fd(c.pidfd);
    c.pidfd = -1;
  } else if (!c.exited && unwatched_live_ > 0) {
    --unwatched_live_;
  }
}

void reaper::record_locked(int pid, child& c, int ws, bool known) {
  drop_pidfd_locked(c);
  c.exited = true;
  c.status_known = known;
  c.wait_status = ws;
  fire_child_watch_locked(pid, c);
  exited_.emplace_back(pid, c.start_time);
  while (exited_.size() > kMaxExitedKept) {
    auto [old_pid, old_start] = exited_.front();
    exited_.pop_front();
    auto it = children_.find(old_pid);
    if (it != children_.end() && it->second.exited && it->second.start_time == old_start) children_.erase(it);
  }
  cv_.notify_all();
}

// Non-blocking reap of one child.
void reaper::harvest_locked(int pid, child& c) {
  if (c.exited) return;
  int ws = 0;
  pid_t r;
  do r = ::waitpid(pid, &ws, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == pid) record_locked(pid, c, ws, true);
  else if (r < 0 && errno == ECHILD) record_locked(pid, c, 0, false);  // someone else reaped it
}

void reaper::sweep_locked() {
  for (auto& [pid, c] : children_)
    if (!c.exited && c.pidfd < 0) harvest_locked(pid, c);
}

}  // namespace berth::detail
