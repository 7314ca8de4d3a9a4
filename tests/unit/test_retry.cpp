// The retry policy (runtime/resilience/retry.hpp): backoff caps, full jitter, which errors are retried,
// cancel.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "runtime/resilience/breaker.hpp"
#include "runtime/resilience/retry.hpp"

using namespace berth;
using namespace std::chrono_literals;

namespace {

// A fake sleep that records the delays instead of sleeping.
struct recorded_sleeps {
  std::vector<std::chrono::milliseconds> delays;
  std::function<void(std::chrono::milliseconds)> hook() {
    return [this](std::chrono::milliseconds d) { delays.push_back(d); };
  }
};

// An operation that fails with `failure` the first `failures` times, then succeeds.
struct flaky_op {
  int failures;
  status failure;
  int calls = 0;
  status operator()() { return ++calls <= failures ? failure : status::ok(); }
};

}  // namespace

TEST_CASE("retry - backoff caps double from base up to max", "[retry]") {
  retry_policy p{5, 1000ms, 16000ms};
  CHECK(backoff_cap(p, 0) == 1000ms);
  CHECK(backoff_cap(p, 1) == 2000ms);
  CHECK(backoff_cap(p, 2) == 4000ms);
  CHECK(backoff_cap(p, 3) == 8000ms);
  CHECK(backoff_cap(p, 4) == 16000ms);
  CHECK(backoff_cap(p, 5) == 16000ms);
  CHECK(backoff_cap(p, 1000) == 16000ms);  // no overflow
  retry_policy odd{5, 10ms, 40ms};
  CHECK(backoff_cap(odd, 0) == 10ms);
  CHECK(backoff_cap(odd, 2) == 40ms);
  CHECK(backoff_cap(odd, 3) == 40ms);
  CHECK(backoff_cap(retry_policy{5, 0ms, 100ms}, 3) == 0ms);
  CHECK(backoff_cap(retry_policy{5, 50ms, 20ms}, 0) == 20ms);  // max wins over base
}

TEST_CASE("retry - full jitter draws uniformly from zero to the cap", "[retry]") {
  retry_policy p{5, 1000ms, 16000ms};
  std::mt19937_64 rng{42};
  for (int n = 0; n < 6; ++n) {
    auto cap = backoff_cap(p, n).count();
    int64_t lo = cap, hi = 0;
    double sum = 0;
    const int draws = 4000;
    for (int i = 0; i < draws; ++i) {
      auto d = full_jitter(p, n, rng).count();
      REQUIRE(d >= 0);
      REQUIRE(d <= cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      sum += static_cast<double>(d);
    }
    INFO("n=" << n << " cap=" << cap << " lo=" << lo << " hi=" << hi << " mean=" << sum / draws);
    // Full jitter spreads over the whole range, not around the cap ("equal jitter") or at it.
    CHECK(lo < cap / 20);
    CHECK(hi > cap - cap / 20);
    CHECK(sum / draws == Approx(cap / 2.0).epsilon(0.06));
  }
  // The same seed gives the same delays.
  std::mt19937_64 a{7}, b{7};
  for (int i = 0; i < 20; ++i) CHECK(full_jitter(p, 3, a) == full_jitter(p, 3, b));
}

TEST_CASE("retry - transient failures are retried with jittered delays until success", "[retry]") {
  retry_policy p{5, 100ms, 1600ms};
  recorded_sleeps sleeps;
  std::mt19937_64 rng{1};
  std::vector<int> reported;
  std::vector<std::chrono::milliseconds> announced;
  retry_options o;
  o.sleep = sleeps.hook();
  o.rng = &rng;
  o.on_retry = [&](int attempt, const status& failure, std::chrono::milliseconds delay) {
    reported.push_back(attempt);
    announced.push_back(delay);
    CHECK(failure.which() == status::code::io_error);
  };
  flaky_op op{3, status::io_error("fork: Resource temporarily unavailable")};
  int attempts = 0;
  auto s = retry(p, std::ref(op), o, &attempts);
  CHECK(s.is_ok());
  CHECK(op.calls == 4);
  CHECK(attempts == 4);
  CHECK(reported == std::vector<int>{1, 2, 3});
  REQUIRE(sleeps.delays.size() == 3);
  CHECK(announced == sleeps.delays);  // the delay reported is the one slept
  for (size_t n = 0; n < sleeps.delays.size(); ++n) CHECK(sleeps.delays[n] <= backoff_cap(p, static_cast<int>(n)));
}

TEST_CASE("retry - gives up after the configured attempts with the last failure", "[retry]") {
  recorded_sleeps sleeps;
  retry_options o;
  o.sleep = sleeps.hook();
  int calls = 0;
  auto op = [&] { return status::io_error("attempt " + std::to_string(++calls)); };
  int attempts = 0;
  auto s = retry(retry_policy{5, 10ms, 40ms}, op, o, &attempts);
  CHECK(!s.is_ok());
  CHECK(s.message() == "attempt 6");
  CHECK(calls == 6);  // the first attempt and 5 retries
  CHECK(attempts == 6);
  CHECK(sleeps.delays.size() == 5);
  for (auto d : sleeps.delays) CHECK(d <= 40ms);

  calls = 0;
  sleeps.delays.clear();
  s = retry(retry_policy{0, 10ms, 40ms}, op, o, &attempts);
  CHECK(calls == 1);  // attempts 0: try once
  CHECK(attempts == 1);
  CHECK(sleeps.delays.empty());
}

TEST_CASE("retry - permanent failures fail at once", "[retry]") {
  recorded_sleeps sleeps;
  retry_options o;
  o.sleep = sleeps.hook();
  for (auto failure : {status::not_found("start nope: exec: No such file or directory"),
                       status::invalid_argument("start: empty argv"), status::corruption("bad record"),
                       status::io_error("start app: exec: Permission denied"),
                       backend_unavailable("process", "the breaker is open")}) {
    INFO(failure.message());
    int calls = 0;
    auto s = retry(retry_policy{5, 10ms, 40ms}, [&] { ++calls; return failure; }, o);
    CHECK(calls == 1);
    CHECK(s.message() == failure.message());
    CHECK(s.which() == failure.which());
  }
  CHECK(sleeps.delays.empty());
}

TEST_CASE("retry - classification of berth statuses", "[retry]") {
  CHECK(is_transient(status::io_error("fork: Resource temporarily unavailable")));
  CHECK(is_transient(status::io_error("timeout: build still running after 5 ms")));
  CHECK(is_transient(status::io_error("caddy POST /load: HTTP 502: bad gateway")));
  CHECK(is_transient(status::io_error("injected transient fault in the process backend")));
  CHECK_FALSE(is_transient(status::ok()));
  CHECK_FALSE(is_transient(status::not_found("no such program")));
  CHECK_FALSE(is_transient(status::invalid_argument("bad env")));
  CHECK_FALSE(is_transient(status::corruption("chain broken")));
  CHECK_FALSE(is_transient(status::io_error("start x: exec: Permission denied")));
  CHECK_FALSE(is_transient(status::io_error("kill: Operation not permitted")));
  CHECK_FALSE(is_transient(backend_unavailable("proxy", "open")));
  CHECK(classify(status::io_error("x")) == failure_kind::transient);
  CHECK(classify(status::not_found("x")) == failure_kind::permanent);
}

TEST_CASE("retry - a cancel stops the retries and interrupts the sleep", "[retry]") {
  SECTION("cancelled after a failure: no more attempts") {
    std::atomic<bool> cancel{false};
    recorded_sleeps sleeps;
    retry_options o;
    o.sleep = sleeps.hook();
    o.cancelled = [&] { return cancel.load(); };
    int calls = 0;
    auto s = retry(retry_policy{5, 10ms, 40ms}, [&] {
      ++calls;
      cancel = true;
      return status::io_error("down");
    }, o);
    CHECK(!s.is_ok());
    CHECK(calls == 1);
    CHECK(sleeps.delays.empty());
  }
  SECTION("the default sleep returns soon after a cancel") {
    std::atomic<bool> cancel{false};
    retry_options o;
    o.cancelled = [&] { return cancel.load(); };
    std::mt19937_64 rng{3};
    o.rng = &rng;
    // Delays of up to 10 minutes: only the cancel can end this quickly.
    retry_policy p{5, 600000ms, 600000ms};
    std::thread canceller([&] {
      std::this_thread::sleep_for(100ms);
      cancel = true;
    });
    int calls = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto s = retry(p, [&] { ++calls; return status::io_error("down"); }, o);
    auto took = std::chrono::steady_clock::now() - t0;
    canceller.join();
    CHECK(!s.is_ok());
    CHECK(calls == 1);
    CHECK(took < 2s);
  }
}

TEST_CASE("retry - the default sleep really waits for the drawn delay", "[retry]") {
  retry_options o;
  std::mt19937_64 rng{5};
  o.rng = &rng;
  std::vector<std::chrono::milliseconds> drawn;
  o.on_retry = [&](int, const status&, std::chrono::milliseconds d) { drawn.push_back(d); };
  flaky_op op{2, status::io_error("down")};
  auto t0 = std::chrono::steady_clock::now();
  auto s = retry(retry_policy{5, 100ms, 100ms}, std::ref(op), o);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(s.is_ok());
  REQUIRE(drawn.size() == 2);
  CHECK(took >= drawn[0] + drawn[1]);
  CHECK(took < drawn[0] + drawn[1] + 500ms);
}
