// The HTTP workers (http/dispatch.hpp): the queue bound, a long wait giving its slot to the next
// job, the bound on long waits, and stopping with jobs still queued.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "http/dispatch.hpp"

using namespace berth::http;
using namespace std::chrono_literals;

namespace {

// A latch the jobs wait on, opened by the test.
struct gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

template <class F>
bool eventually(F f) {
  for (int i = 0; i < 500 && !f(); ++i) std::this_thread::sleep_for(10ms);
  return f();
}

}  // namespace

TEST_CASE("dispatch - jobs beyond the workers wait in a bounded queue, more are refused", "[http][dispatch]") {
  gate g;
  std::atomic<int> started{0}, done{0};
  dispatcher d({2, 3, 8});
  auto job = [&] {
    ++started;
    g.wait();
    ++done;
  };
  for (int i = 0; i < 2; ++i) REQUIRE(d.submit(job));
  REQUIRE(eventually([&] { return started == 2; }));
  for (int i = 0; i < 3; ++i) CHECK(d.submit(job));
  CHECK(d.queued() == 3);
  CHECK_FALSE(d.submit(job));  // 2 running + 3 queued: full
  std::this_thread::sleep_for(50ms);
  CHECK(started == 2);  // never more running than workers
  g.release();
  CHECK(eventually([&] { return done == 5; }));
  CHECK(d.submit(job));  // room again
  d.join();
  CHECK(done == 6);
}

TEST_CASE("dispatch - a long wait gives its worker to the next job, up to the long-call bound", "[http][dispatch]") {
  gate long_calls_end, blocker_ends;
  std::atomic<int> waiting{0}, refused{0}, quick_done{0};
  dispatcher d({1, 16, 2});
  // Three jobs that wait long on one worker: two are granted, the third is refused.
  auto long_job = [&] {
    long_wait w;
    if (!w.granted()) {
      ++refused;
      return;
    }
    ++waiting;
    long_calls_end.wait();
  };
  for (int i = 0; i < 3; ++i) REQUIRE(d.submit(long_job));
  REQUIRE(eventually([&] { return waiting == 2 && refused == 1; }));
  // The single worker slot is free while they wait: quick jobs run.
  for (int i = 0; i < 5; ++i) REQUIRE(d.submit([&] { ++quick_done; }));
  CHECK(eventually([&] { return quick_done == 5; }));
  // A job that holds the slot (no long wait) keeps the next one queued.
  std::atomic<bool> blocker_running{false}, after_ran{false};
  REQUIRE(d.submit([&] {
    blocker_running = true;
    blocker_ends.wait();
  }));
  REQUIRE(eventually([&] { return blocker_running.load(); }));
  REQUIRE(d.submit([&] { after_ran = true; }));
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(after_ran);
  blocker_ends.release();
  CHECK(eventually([&] { return after_ran.load(); }));
  long_calls_end.release();
  d.join();
}

TEST_CASE("dispatch - stopping refuses new jobs and still runs the queued ones", "[http][dispatch]") {
  gate g;
  std::atomic<int> done{0};
  dispatcher d({1, 8, 1});
  REQUIRE(d.submit([&] { g.wait(); }));
  for (int i = 0; i < 3; ++i) REQUIRE(d.submit([&] { ++done; }));
  d.stop();
  CHECK_FALSE(d.submit([&] { ++done; }));
  g.release();
  d.join();
  CHECK(done == 3);
}

TEST_CASE("dispatch - outside a dispatcher a long wait is granted and changes nothing", "[http][dispatch]") {
  CHECK(dispatcher::current() == nullptr);
  long_wait w;
  CHECK(w.granted());
}
