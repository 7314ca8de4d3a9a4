#include "http/dispatch.hpp"

#include <algorithm>

#include "runtime/logs/logging.hpp"

namespace berth::http {

namespace {
thread_local dispatcher* t_current = nullptr;
}

dispatcher::dispatcher(dispatch_limits limits)
    : limits_{std::max<size_t>(1, limits.workers), limits.queue, limits.long_calls,
              std::min(limits.streams, limits.long_calls)},
      free_slots_(static_cast<long>(limits_.workers)) {}  // threads start with the first jobs

dispatcher::~dispatcher() { join(); }

void dispatcher::join() {
  stop();
  // A job still running may add a thread (a long wait with jobs queued): join until none is left.
  for (;;) {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
    }
    if (threads.empty()) return;
    for (auto& t : threads) t.join();
  }
}

bool dispatcher::submit(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || jobs_.size() >= limits_.queue) return false;
  jobs_.push_back(std::move(job));
  add_thread_if_needed();
  cv_.notify_one();
  return true;
}

void dispatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool dispatcher::begin_long_wait() {
  std::lock_guard<std::mutex> lock(mu_);
  if (waiting_long_ >= limits_.long_calls) return false;
  ++waiting_long_;
  ++free_slots_;
  add_thread_if_needed();
  cv_.notify_one();
  return true;
}

void dispatcher::end_long_wait() {
  std::lock_guard<std::mutex> lock(mu_);
  --waiting_long_;
  --free_slots_;
}

bool dispatcher::begin_stream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (streams_ >= limits_.streams) return false;
    ++streams_;
  }
  if (begin_long_wait()) return true;
  std::lock_guard<std::mutex> lock(mu_);
  --streams_;
  return false;
}

void dispatcher::end_stream() {
  end_long_wait();
  std::lock_guard<std::mutex> lock(mu_);
  --streams_;
}

dispatcher* dispatcher::current() { return t_current; }

size_t dispatcher::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

dispatcher::load dispatcher::current_load() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto running = static_cast<long>(limits_.workers) - free_slots_;
  return {static_cast<size_t>(std::max(0L, running)), jobs_.size(), waiting_long_, streams_};
}

// Threads are made when needed, not up front: a queued job could run now (a slot is free) and
// no idle thread is there to take it. A server that only ever serves a few requests at once
// keeps only a few threads (each costs its stack and its share of the heap). There are never
// more than workers + long_calls threads, as only that many jobs run at once; they stay.
void dispatcher::add_thread_if_needed() {
  if (jobs_.empty() || free_slots_ <= 0) return;
  if (idle_ >= std::min(jobs_.size(), static_cast<size_t>(free_slots_))) return;
  if (threads_.size() >= limits_.workers + limits_.long_calls) return;
  ++idle_;  // counted idle from now, so a burst of jobs does not make a thread for each
  threads_.emplace_back([this] { work(); });
}

void dispatcher::work() {
  t_current = this;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {  // idle_ counts this thread while it waits (add_thread_if_needed counted it first)
    cv_.wait(lock, [this] { return (free_slots_ > 0 && !jobs_.empty()) || (stopping_ && jobs_.empty()); });
    --idle_;
    if (jobs_.empty()) return;  // stopping, and nothing left to run
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    --free_slots_;
    lock.unlock();
    try {
      job();
    } catch (const std::exception& e) {
      log_kv(spdlog::level::err, "http job failed", {{"error", e.what()}});
    } catch (...) {
      log_kv(spdlog::level::err, "http job failed", {{"error", "unknown"}});
    }
    job = nullptr;  // whatever it holds goes before the slot is given back
    lock.lock();
    ++free_slots_;
    ++idle_;
    if (free_slots_ > 0 && !jobs_.empty()) cv_.notify_one();
  }
}

long_wait::long_wait() : d_(dispatcher::current()), granted_(d_ == nullptr || d_->begin_long_wait()) {}

long_wait::~long_wait() {
  if (d_ != nullptr && granted_) d_->end_long_wait();
}

stream_slot::stream_slot() : d_(dispatcher::current()), granted_(d_ == nullptr || d_->begin_stream()) {}

stream_slot::~stream_slot() {
  if (d_ != nullptr && granted_) d_->end_stream();
}

}  // namespace berth::http
