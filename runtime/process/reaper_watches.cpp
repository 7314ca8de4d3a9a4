// Exit watches: one per process (pid + start time). Our children fire when reaped; other
// processes through a pidfd in the reaper's epoll set, or /proc every 100 ms without one.
// A fired watch is queued on `due_` and called by the reaper thread without the lock.
#include <algorithm>

#include "runtime/process/proc_stat.hpp"
#include "runtime/process/reaper.hpp"

namespace berth::detail {

namespace {

constexpr auto kPollPeriod = std::chrono::milliseconds(100);

// A watched process that ended may already be reaped by its parent: /proc no longer knows
// it, so it exited with an unknown code.
process_info ended(process_info info) {
  if (info.status == process_status::not_found) info.status = process_status::exited;
  return info;
}

}  // namespace

uint64_t reaper::watch(const process_handle& h, exit_fn on_exit) {
  if (!on_exit) on_exit = [](const process_info&) {};
  std::vector<exit_fn> dropped;  // released after the lock
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t token = next_token_++;
  drop_watches_of_locked(h, &dropped);
  process_info info;  // not_found
  bool watching = false;
  if (h.pid <= 0) {
    // nothing to watch: fires at once
  } else if (child* c = find_child_locked(h)) {
    harvest_locked(h.pid, *c);
    if (!c->exited) insert_watch_locked(token, {h, std::move(on_exit), watch_kind::child, -1});
    watching = !c->exited;
    info = info_of(*c);
  } else {
    lock.unlock();
    watching = watch_foreign(token, h, on_exit, &info);
  }
  if (lock.owns_lock()) lock.unlock();
  dropped.clear();
  if (!watching) on_exit(info);
  return token;
}

void reaper::unwatch(uint64_t token) {
  std::vector<exit_fn> dropped;
  std::unique_lock<std::mutex> lock(mu_);
  dropped.push_back(take_watch_locked(token));
  for (auto it = due_.begin(); it != due_.end();) {
    if (it->token != token) {
      ++it;
      continue;
    }
    dropped.push_back(std::move(it->on_exit));
    it = due_.erase(it);
  }
  lock.unlock();
}

void reaper::set_watch_pidfds(bool use) { watch_pidfds_ = use; }

// Not our child: pin it with a pidfd, check it is the process of h, then add the pidfd to
// the epoll set. False (with what /proc says in *now) when it is not running.
bool reaper::watch_foreign(uint64_t token, const process_handle& h, exit_fn& on_exit, process_info* now) {
  int fd = epfd_ >= 0 && watch_pidfds_ ? pidfd_open(h.pid) : -1;
  *now = inspect_via_proc(h);
  if (now->status != process_status::running) {
    close_fd(fd);
    return false;
  }
  std::vector<exit_fn> dropped;
  std::unique_lock<std::mutex> lock(mu_);
  drop_watches_of_locked(h, &dropped);  // watched by another thread meanwhile: replaced too
  watch_entry w{h, std::move(on_exit), watch_kind::pidfd, fd};
  if (fd < 0 || !epoll_add_locked(fd, kWatchBit | token)) {
    close_fd(fd);
    w.pidfd = -1;
    start_polling_locked(w);
  }
  insert_watch_locked(token, std::move(w));
  lock.unlock();
  return true;
}

exit_fn reaper::take_watch_locked(uint64_t token) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return nullptr;
  watch_entry& w = it->second;
  auto k = watch_of_.find({w.h.pid, w.h.start_time});
  if (k != watch_of_.end() && k->second == token) watch_of_.erase(k);
  if (w.pidfd >= 0) {
    epoll_del_locked(w.pidfd);
    close_fd(w.pidfd);
  }
  if (w.kind == watch_kind::proc_poll) --polled_watches_;
  exit_fn fn = std::move(w.on_exit);
  watches_.erase(it);
  return fn;
}

// The watch of h, waiting or already fired but not yet called: a new watch replaces it.
void reaper::drop_watches_of_locked(const process_handle& h, std::vector<exit_fn>* dropped) {
  const proc_key key{h.pid, h.start_time};
  if (auto k = watch_of_.find(key); k != watch_of_.end()) dropped->push_back(take_watch_locked(k->second));
  for (auto it = due_.begin(); it != due_.end();) {
    if (it->key != key) {
      ++it;
      continue;
    }
    dropped->push_back(std::move(it->on_exit));
    it = due_.erase(it);
  }
}

void reaper::insert_watch_locked(uint64_t token, watch_entry w) {
  watch_of_[{w.h.pid, w.h.start_time}] = token;
  watches_.emplace(token, std::move(w));
}

void reaper::start_polling_locked(watch_entry& w) {
  w.kind = watch_kind::proc_poll;
  if (polled_watches_++ == 0) next_poll_ = clock::now() + kPollPeriod;
  wake_locked();  // the thread's timeout changes
}

void reaper::fire_locked(uint64_t token, const process_info& info) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return;
  proc_key key{it->second.h.pid, it->second.h.start_time};
  exit_fn fn = take_watch_locked(token);
  due_.push_back({token, key, info, std::move(fn)});
  wake_locked();
}

void reaper::fire_child_watch_locked(int pid, const child& c) {
  if (auto k = watch_of_.find({pid, c.start_time}); k != watch_of_.end()) fire_locked(k->second, info_of(c));
}

void reaper::watch_event_locked(uint64_t token) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return;  // unwatched after epoll_wait returned
  process_info info = inspect_via_proc(it->second.h);
  if (info.status != process_status::running) {
    fire_locked(token, ended(info));
    return;
  }
  // Readable while /proc says it runs: not expected; /proc decides from now on.
  watch_entry& w = it->second;
  epoll_del_locked(w.pidfd);
  close_fd(w.pidfd);
  w.pidfd = -1;
  start_polling_locked(w);
}

void reaper::poll_watches_locked() {
  next_poll_ = clock::now() + kPollPeriod;
  std::vector<std::pair<uint64_t, process_info>> done;
  for (auto& [token, w] : watches_) {
    if (w.kind != watch_kind::proc_poll) continue;
    process_info info = inspect_via_proc(w.h);
    if (info.status != process_status::running) done.emplace_back(token, ended(info));
  }
  for (auto& [token, info] : done) fire_locked(token, info);
}

}  // namespace berth::detail
