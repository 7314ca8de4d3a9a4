// The HTTP workers: a bounded admission queue in front of a fixed number of worker slots, and
// a separate bounded allowance for calls that wait long (a preview start waiting for health, a
// stream following a deployment). Such a call gives its slot back while it waits, so that it
// never holds one of the --http-threads workers; its thread sleeps until the answer comes.
//
// Why threads and not callbacks: httplib's handlers are synchronous (the answer must be in the
// Response when the handler returns, and the code that writes it is private to httplib), so
// the thread of a waiting call stays with it. What is bounded is the CPU work (the slots) and
// the number of such sleepers (--http-long-calls); past either bound berth answers 503.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace berth::http {

struct dispatch_limits {
  size_t workers = 16;      // jobs running at once (--http-threads)
  size_t queue = 1024;      // jobs waiting for a worker (--http-queue); more are refused
  size_t long_calls = 256;  // calls waiting without a slot (--http-long-calls)
  size_t streams = 128;     // of those, open event streams (--http-streams)
};

class dispatcher {
 public:
  explicit dispatcher(dispatch_limits limits);
  // Runs what is still queued, then joins every thread (after every long call has ended).
  ~dispatcher();
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Queues a job; false (job not taken) when the queue is full or the dispatcher is stopping.
  // Thread-safe; never blocks on the jobs.
  bool submit(std::function<void()> job);
  // Stops taking jobs; the queued ones still run. Thread-safe.
  void stop();
  // stop(), then waits until every job (long calls included) has ended. Idempotent.
  void join();

  // The caller (a job on one of this dispatcher's threads) is about to wait long: its slot
  // goes to the next queued job. False when --http-long-calls calls already wait: the caller
  // must not wait (answer 503). Each true is ended by exactly one end_long_wait().
  bool begin_long_wait();
  // The wait is over: the job continues (over the slot count until it ends, by design: it
  // only has its answer to write).
  void end_long_wait();
  // A long wait that is an event stream (SSE): also counted against --http-streams, so that
  // open dashboards and `logs -f` never use up the allowance of calls that wait for an answer.
  // False when either bound is reached (answer 503). Each true is ended by end_stream().
  bool begin_stream();
  void end_stream();

  // The dispatcher whose job the calling thread runs (null outside one).
  static dispatcher* current();

  size_t queued() const;
  // A snapshot for /health: jobs running on a slot, queued, and calls in a long wait.
  struct load {
    size_t running = 0, queued = 0, waiting_long = 0, streams = 0;
  };
  load current_load() const;
  const dispatch_limits& limits() const { return limits_; }

 private:
  void work();
  void add_thread_if_needed();  // with mu_ held

  const dispatch_limits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  long free_slots_;    // may go below zero while long calls that ended finish their answer
  size_t idle_ = 0;    // threads waiting for a job
  size_t waiting_long_ = 0;
  size_t streams_ = 0;  // of waiting_long_
  bool stopping_ = false;
};

// Scope of a long wait on the current dispatcher; in a thread without one (unit tests) it is
// always granted and does nothing. Check granted() before waiting.
class long_wait {
 public:
  long_wait();
  ~long_wait();
  long_wait(const long_wait&) = delete;
  long_wait& operator=(const long_wait&) = delete;
  bool granted() const { return granted_; }

 private:
  dispatcher* d_;
  bool granted_;
};

// Scope of an open event stream (a long wait counted against --http-streams); as long_wait.
class stream_slot {
 public:
  stream_slot();
  ~stream_slot();
  stream_slot(const stream_slot&) = delete;
  stream_slot& operator=(const stream_slot&) = delete;
  bool granted() const { return granted_; }

 private:
  dispatcher* d_;
  bool granted_;
};

}  // namespace berth::http
