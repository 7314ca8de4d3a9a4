// runtime/process/exec_gate: forks and writes of exec'able files never overlap (an app exec'd
// from a file a forked child still holds open for writing fails with ETXTBSY).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/process/exec_gate.hpp"

using namespace berth;
using namespace std::chrono_literals;

TEST_CASE("exec gate: a write waits for open forks and forks wait for open writes", "[exec_gate]") {
  auto& gate = exec_gate::instance();
  std::atomic<bool> writing{false};
  gate.enter(exec_gate::kind::fork);
  gate.enter(exec_gate::kind::fork);  // forks run together
  std::thread writer([&] {
    exec_gate_scope w(exec_gate::kind::write);
    writing = true;
    std::this_thread::sleep_for(50ms);
  });
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(writing);  // two forks are open
  gate.leave(exec_gate::kind::fork);
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(writing);  // one still is
  gate.leave(exec_gate::kind::fork);
  writer.join();
  CHECK(writing);
}

TEST_CASE("exec gate: under a stream of both kinds no fork ever overlaps a write and neither starves",
          "[exec_gate]") {
  std::atomic<int> forks{0}, writes{0}, overlaps{0}, done_forks{0}, done_writes{0};
  auto worker = [&](exec_gate::kind k, std::atomic<int>& mine, std::atomic<int>& other, std::atomic<int>& done) {
    for (int i = 0; i < 300; ++i) {
      exec_gate_scope s(k);
      ++mine;
      if (other.load() != 0) ++overlaps;
      std::this_thread::sleep_for(50us);
      --mine;
      ++done;
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back(worker, exec_gate::kind::fork, std::ref(forks), std::ref(writes), std::ref(done_forks));
    ts.emplace_back(worker, exec_gate::kind::write, std::ref(writes), std::ref(forks), std::ref(done_writes));
  }
  for (auto& t : ts) t.join();
  CHECK(overlaps == 0);
  CHECK(done_forks == 900);
  CHECK(done_writes == 900);
}
