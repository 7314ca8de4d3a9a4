// Circuit breakers (runtime/resilience/breaker.hpp): transitions with a fake clock, what counts as a
// failure, counters, the listener, concurrent calls; call_backend with the fault injector.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/resilience/backends.hpp"
#include "runtime/resilience/faults.hpp"

using namespace berth;
using namespace std::chrono_literals;

namespace {

struct fake_clock {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::time_point{} + 1000h;
  circuit_breaker::clock_fn fn() {
    return [this] { return t; };
  }
};

struct change_log {
  std::mutex mu;
  std::vector<breaker_change> changes;
  breaker_listener fn() {
    return [this](const breaker_change& c) {
      std::lock_guard<std::mutex> lock(mu);
      changes.push_back(c);
    };
  }
  std::vector<std::string> states() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (auto& c : changes) out.push_back(to_string(c.to));
    return out;
  }
};

status fail_op() { return status::io_error("connection refused"); }
status ok_op() { return status::ok(); }

// Fresh breakers and faults for a test that calls a backend.
struct clean_registry {
  backend_guards reg;
  breaker_registry& breakers() { return reg.breakers(); }
  fault_injector& faults() { return reg.faults(); }
  status call_backend(const std::string& backend, const std::function<status()>& op, const call_options& o = {},
                      int* attempts = nullptr) {
    return reg.call(backend, op, o, attempts);
  }
};

}  // namespace

TEST_CASE("breaker - opens after N consecutive failures and fails fast while open", "[breaker]") {
  fake_clock clock;
  change_log log;
  circuit_breaker b("process", {3, 1000ms}, clock.fn());
  b.set_listener(log.fn());
  CHECK(b.state() == breaker_state::closed);
  CHECK_FALSE(b.call(fail_op));
  CHECK_FALSE(b.call(fail_op));
  CHECK(b.call(ok_op));  // a success resets the count
  CHECK_FALSE(b.call(fail_op));
  CHECK_FALSE(b.call(fail_op));
  CHECK(b.state() == breaker_state::closed);
  CHECK(log.changes.empty());
  CHECK_FALSE(b.call(fail_op));  // third in a row
  CHECK(b.state() == breaker_state::open);
  REQUIRE(log.changes.size() == 1);
  CHECK(log.changes[0].backend == "process");
  CHECK(log.changes[0].from == breaker_state::closed);
  CHECK(log.changes[0].to == breaker_state::open);
  CHECK(log.changes[0].failures == 3);
  CHECK(log.changes[0].last_error == "connection refused");

  int ran = 0;
  auto s = b.call([&] { ++ran; return status::ok(); });
  CHECK(ran == 0);  // refused without calling the backend
  CHECK(is_backend_unavailable(s));
  CHECK(s.message().find("process") != std::string::npos);
  CHECK(s.message().find("connection refused") != std::string::npos);
  CHECK_FALSE(is_transient(s));

  auto snap = b.snapshot();
  CHECK(snap.state == breaker_state::open);
  CHECK(snap.consecutive_failures == 3);
  CHECK(snap.threshold == 3);
  CHECK(snap.calls == 6);
  CHECK(snap.failures == 5);
  CHECK(snap.rejections == 1);
  CHECK(snap.opened == 1);
  CHECK(snap.last_error == "connection refused");
  CHECK(snap.retry_in == 1000ms);
  clock.t += 400ms;
  CHECK(b.snapshot().retry_in == 600ms);
}

TEST_CASE("breaker - half-open after the timeout lets one trial through which closes or reopens it",
          "[breaker]") {
  fake_clock clock;
  change_log log;
  circuit_breaker b("proxy", {2, 1000ms}, clock.fn());
  b.set_listener(log.fn());
  b.call(fail_op);
  b.call(fail_op);
  REQUIRE(b.state() == breaker_state::open);
  clock.t += 999ms;
  CHECK(b.state() == breaker_state::open);
  CHECK(is_backend_unavailable(b.call(ok_op)));
  clock.t += 1ms;
  CHECK(b.state() == breaker_state::half_open);  // noticed by looking

  // A failed trial opens it again, for another full timeout.
  CHECK(b.call([] { return status::io_error("still down"); }).message() == "still down");
  CHECK(b.state() == breaker_state::open);
  CHECK(b.snapshot().opened == 2);
  CHECK(b.snapshot().last_error == "still down");
  clock.t += 500ms;
  CHECK(is_backend_unavailable(b.call(ok_op)));
  clock.t += 500ms;
  // The trial goes through from the call itself (no snapshot needed).
  int ran = 0;
  CHECK(b.call([&] { ++ran; return status::ok(); }));
  CHECK(ran == 1);
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.snapshot().consecutive_failures == 0);
  CHECK(log.states() == std::vector<std::string>{"open", "half_open", "open", "half_open", "closed"});
  CHECK(log.changes[2].from == breaker_state::half_open);
  CHECK(log.changes[4].from == breaker_state::half_open);
  auto snap = b.snapshot();
  CHECK(snap.calls == 4);
  CHECK(snap.failures == 3);
  CHECK(snap.rejections == 2);
  CHECK(snap.opened == 2);
}

TEST_CASE("breaker - permanent failures do not count and close a half-open breaker", "[breaker]") {
  fake_clock clock;
  circuit_breaker b("process", {2, 1000ms}, clock.fn());
  for (int i = 0; i < 10; ++i) CHECK(b.call([] { return status::not_found("no such program"); }).which() == status::code::not_found);
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.snapshot().failures == 0);
  CHECK(b.snapshot().calls == 10);
  // A permanent failure between transient ones breaks the streak: the backend answered.
  b.call(fail_op);
  b.call([] { return status::invalid_argument("empty argv"); });
  b.call(fail_op);
  CHECK(b.state() == breaker_state::closed);
  b.call(fail_op);
  CHECK(b.state() == breaker_state::open);
  clock.t += 1s;
  b.call([] { return status::not_found("no such program"); });
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker - half-open refuses other calls while its trial runs", "[breaker]") {
  fake_clock clock;
  circuit_breaker b("process", {1, 100ms}, clock.fn());
  b.call(fail_op);
  clock.t += 100ms;
  REQUIRE(b.state() == breaker_state::half_open);
  std::mutex mu;
  std::condition_variable cv;
  bool trial_started = false, release = false;
  std::thread trial([&] {
    b.call([&] {
      std::unique_lock<std::mutex> lock(mu);
      trial_started = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      return status::ok();
    });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, 5s, [&] { return trial_started; }));
  }
  auto s = b.call(ok_op);
  CHECK(is_backend_unavailable(s));
  CHECK(s.message().find("trial") != std::string::npos);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  trial.join();
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.call(ok_op));
}

TEST_CASE("breaker - essential calls run while open and an exception counts as a failure", "[breaker]") {
  fake_clock clock;
  circuit_breaker b("process", {2, 1000ms}, clock.fn());
  b.call(fail_op);
  b.call(fail_op);
  REQUIRE(b.state() == breaker_state::open);
  int ran = 0;
  CHECK_FALSE(b.call([&] { ++ran; return status::io_error("nope"); }, circuit_breaker::mode::essential));
  CHECK(ran == 1);
  CHECK(b.state() == breaker_state::open);
  CHECK(b.snapshot().rejections == 0);
  CHECK(b.call([&] { ++ran; return status::ok(); }, circuit_breaker::mode::essential));
  CHECK(ran == 2);
  CHECK(b.state() == breaker_state::closed);

  b.call(fail_op);
  CHECK_THROWS_AS(b.call([]() -> status { throw std::runtime_error("boom"); }), std::runtime_error);
  CHECK(b.state() == breaker_state::open);
  CHECK(b.snapshot().last_error.find("boom") != std::string::npos);
}

TEST_CASE("breaker - concurrent calls keep the counters and the transitions consistent", "[breaker]") {
  change_log log;
  circuit_breaker b("process", {3, 1ms});  // the real clock: it reopens and recovers many times
  b.set_listener(log.fn());
  const int threads = 8, per_thread = 3000;
  std::atomic<int> refused{0}, ran{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < per_thread; ++i) {
        bool fails = rng() % 3 != 0;
        auto s = b.call([&] {
          ++ran;
          return fails ? status::io_error("flaky") : status::ok();
        });
        if (is_backend_unavailable(s)) ++refused;
      }
    });
  for (auto& th : pool) th.join();
  auto snap = b.snapshot();
  CHECK(snap.calls + snap.rejections == static_cast<uint64_t>(threads * per_thread));
  CHECK(snap.calls == static_cast<uint64_t>(ran.load()));
  CHECK(snap.rejections == static_cast<uint64_t>(refused.load()));
  CHECK(snap.failures <= snap.calls);
  CHECK(snap.opened > 0);
  // The listener saw every change, in order: each starts where the previous one ended.
  std::lock_guard<std::mutex> lock(log.mu);
  REQUIRE(!log.changes.empty());
  CHECK(log.changes.front().from == breaker_state::closed);
  uint64_t opens = 0;
  for (size_t i = 0; i < log.changes.size(); ++i) {
    auto& c = log.changes[i];
    if (i > 0) CHECK(c.from == log.changes[i - 1].to);
    CHECK(c.from != c.to);
    if (c.to == breaker_state::open) ++opens;
  }
  CHECK(opens == snap.opened);
  CHECK(log.changes.back().to == snap.state);
}

TEST_CASE("breaker - call_backend retries injected transient faults and recovers", "[breaker]") {
  clean_registry clean;
  clean.breakers().configure({5, 60000ms}, {5, 1ms, 2ms});
  clean.faults().fail_next("process", 2, fault_kind::transient);
  int ran = 0, attempts = 0;
  std::vector<int> retried;
  call_options o;
  o.on_retry = [&](int attempt, const status& failure, std::chrono::milliseconds) {
    retried.push_back(attempt);
    CHECK(failure.message() == "injected transient fault in the process backend");
  };
  auto s = clean.call_backend("process", [&] { ++ran; return status::ok(); }, o, &attempts);
  CHECK(s.is_ok());
  CHECK(ran == 1);  // the two injected failures replaced the first two calls
  CHECK(attempts == 3);
  CHECK(retried == std::vector<int>{1, 2});
  CHECK(clean.faults().pending("process") == 0);
  auto snap = clean.breakers().get("process").snapshot();
  CHECK(snap.state == breaker_state::closed);
  CHECK(snap.calls == 3);
  CHECK(snap.failures == 2);
  CHECK(snap.consecutive_failures == 0);
  CHECK(clean.breakers().get("proxy").snapshot().calls == 0);  // faults are per backend
}

TEST_CASE("breaker - call_backend fails at once on a permanent fault", "[breaker]") {
  clean_registry clean;
  clean.breakers().configure({5, 60000ms}, {5, 1ms, 2ms});
  clean.faults().fail_next("process", 1, fault_kind::permanent);
  int ran = 0, attempts = 0;
  auto s = clean.call_backend("process", [&] { ++ran; return status::ok(); }, {}, &attempts);
  CHECK(s.which() == status::code::invalid_argument);
  CHECK(s.message() == "injected permanent fault in the process backend");
  CHECK(ran == 0);
  CHECK(attempts == 1);
  CHECK(clean.breakers().get("process").snapshot().failures == 0);
  // The fault was used up: the next call reaches the backend.
  CHECK(clean.call_backend("process", [&] { ++ran; return status::ok(); }));
  CHECK(ran == 1);
}

TEST_CASE("breaker - call_backend opens the breaker and then refuses without calling", "[breaker]") {
  clean_registry clean;
  change_log log;
  clean.breakers().set_listener(log.fn());
  clean.breakers().configure({3, 200ms}, {5, 1ms, 2ms});
  int ran = 0, attempts = 0;
  auto down = [&] { ++ran; return status::io_error("fork: Resource temporarily unavailable"); };
  auto s = clean.call_backend("proxy", down, {}, &attempts);
  // Three attempts failed and opened it; the fourth was refused, which ends the retries.
  CHECK(ran == 3);
  CHECK(attempts == 4);
  CHECK(is_backend_unavailable(s));
  CHECK(log.states() == std::vector<std::string>{"open"});
  auto snap = clean.breakers().get("proxy").snapshot();
  CHECK(snap.state == breaker_state::open);
  CHECK(snap.rejections == 1);

  s = clean.call_backend("proxy", down, {}, &attempts);
  CHECK(is_backend_unavailable(s));
  CHECK(ran == 3);
  CHECK(attempts == 1);
  // Essential calls still run.
  call_options essential;
  essential.essential = true;
  essential.max_retries = 0;
  CHECK_FALSE(clean.call_backend("proxy", down, essential));
  CHECK(ran == 4);
  // Faults are not used up while the breaker refuses.
  clean.faults().fail_next("proxy", 1, fault_kind::transient);
  clean.call_backend("proxy", down);
  CHECK(clean.faults().pending("proxy") == 1);
  clean.faults().clear();

  std::this_thread::sleep_for(250ms);
  CHECK(clean.call_backend("proxy", [&] { ++ran; return status::ok(); }));
  CHECK(clean.breakers().get("proxy").state() == breaker_state::closed);
  CHECK(log.states() == std::vector<std::string>{"open", "half_open", "closed"});
  // The process backend was never involved.
  CHECK(clean.breakers().get("process").snapshot().calls == 0);
  std::vector<std::string> names;
  for (auto& b : clean.breakers().snapshots()) names.push_back(b.backend);
  CHECK(names == std::vector<std::string>{"docker", "process", "proxy"});  // every backend, used or not
}

TEST_CASE("breaker - the JSON form shows state and counters", "[breaker]") {
  fake_clock clock;
  circuit_breaker b("process", {1, 5000ms}, clock.fn());
  auto j = to_json(b.snapshot());
  CHECK(j["state"] == "closed");
  CHECK(j["last_error"].is_null());
  CHECK_FALSE(j.contains("retry_in_ms"));
  b.call(fail_op);
  b.call(ok_op);
  j = to_json(b.snapshot());
  CHECK(j["state"] == "open");
  CHECK(j["failures"] == 1);
  CHECK(j["threshold"] == 1);
  CHECK(j["calls"] == 1);
  CHECK(j["failures_total"] == 1);
  CHECK(j["rejections"] == 1);
  CHECK(j["opened"] == 1);
  CHECK(j["last_error"] == "connection refused");
  CHECK(j["retry_in_ms"] == 5000);
  CHECK(j["since"].get<std::string>().size() >= 20);
}

TEST_CASE("a breaker's last error carries no filesystem paths", "[breaker]") {
  CHECK(without_paths("open /srv/berth-data/projects/shop/production/logs/production.log: No space left") ==
        "open <path>: No space left");
  CHECK(without_paths("cannot start '/tmp/x/run.sh' (in /tmp/x)") == "cannot start '<path>' (in <path>)");
  // Caddy's admin API paths stay: they say which call failed.
  CHECK(without_paths("caddy PATCH /id/shop-production-host/handle/0/upstreams: HTTP 500: boom") ==
        "caddy PATCH /id/shop-production-host/handle/0/upstreams: HTTP 500: boom");
  CHECK(without_paths("caddy POST /load: cannot connect") == "caddy POST /load: cannot connect");
  CHECK(without_paths("a/b and 1/2") == "a/b and 1/2");

  breaker_settings s;
  s.failures = 1;
  circuit_breaker b("process", s);
  b.call([] { return status::io_error("open /var/lib/berth/projects/a/x.log: EIO"); });
  auto snap = b.snapshot();
  CHECK(snap.last_error == "open <path>: EIO");
}
