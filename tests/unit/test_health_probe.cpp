#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <httplib.h>

#include "runtime/net/health_probe.hpp"

using namespace berth;
using namespace std::chrono_literals;

namespace {

// A real HTTP server on 127.0.0.1:<any port>.
struct test_server {
  httplib::Server svr;
  std::thread th;
  int port = 0;
  std::atomic<int> flaky_calls{0};   // /flaky: 503 for the first 3 requests, then 200
  std::atomic<int> fading_calls{0};  // /fading: 200 for the first 3 requests, then 500

  test_server() {
    svr.Get("/ok", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
    svr.Get("/redirect", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/nowhere"); });
    svr.Get("/missing", [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
    svr.Get("/error", [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    svr.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(600ms);
      res.set_content("late", "text/plain");
    });
    svr.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(1 << 20, 'x'), "text/plain");
    });
    svr.Get("/flaky", [this](const httplib::Request&, httplib::Response& res) {
      res.status = ++flaky_calls <= 3 ? 503 : 200;
    });
    svr.Get("/fading", [this](const httplib::Request&, httplib::Response& res) {
      res.status = ++fading_calls <= 3 ? 200 : 500;
    });
    port = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    th = std::thread([this] { svr.listen_after_bind(); });
    for (int i = 0; i < 200 && !svr.is_running(); ++i) std::this_thread::sleep_for(5ms);
    REQUIRE(svr.is_running());
  }
  void stop() {
    if (th.joinable()) {
      svr.stop();
      th.join();
    }
  }
  ~test_server() { stop(); }
  uint16_t p() const { return static_cast<uint16_t>(port); }
};

// A port on 127.0.0.1 that is bound but not listening: connecting is refused, and nobody else
// can take it while this lives.
struct closed_port {
  int fd = -1;
  uint16_t port = 0;
  closed_port() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~closed_port() { ::close(fd); }
};

}  // namespace

TEST_CASE("probe_once: 2xx and 3xx are healthy, redirects are not followed", "[health]") {
  test_server s;
  auto r = probe_once("127.0.0.1", s.p(), "/ok", 1s);
  CHECK(r.healthy);
  CHECK(r.status_code == 200);
  CHECK(r.error.empty());
  CHECK(r.elapsed < 1s);

  r = probe_once("127.0.0.1", s.p(), "/redirect", 1s);  // /nowhere would be a 404
  CHECK(r.healthy);
  CHECK(r.status_code == 302);

  r = probe_once("127.0.0.1", s.p(), "ok", 1s);  // a missing leading slash is added
  CHECK(r.healthy);

  r = probe_once("127.0.0.1", s.p(), "/big", 1s);  // body dropped past 64 KiB
  CHECK(r.healthy);
  CHECK(r.status_code == 200);
}

TEST_CASE("probe_once: 4xx, 5xx, timeouts and refused connections are unhealthy", "[health]") {
  test_server s;
  auto r = probe_once("127.0.0.1", s.p(), "/missing", 1s);
  CHECK(!r.healthy);
  CHECK(r.status_code == 404);
  CHECK(r.error == "HTTP 404");

  r = probe_once("127.0.0.1", s.p(), "/error", 1s);
  CHECK(!r.healthy);
  CHECK(r.status_code == 500);
  CHECK(r.error == "HTTP 500");

  r = probe_once("127.0.0.1", s.p(), "/slow", 200ms);
  CHECK(!r.healthy);
  CHECK(r.status_code == 0);
  CHECK(r.error == "timeout");
  CHECK(r.elapsed >= 150ms);
  CHECK(r.elapsed < 550ms);

  closed_port closed;
  r = probe_once("127.0.0.1", closed.port, "/", 1s);
  CHECK(!r.healthy);
  CHECK(r.status_code == 0);
  CHECK(r.error == "connection refused");
  CHECK(r.elapsed < 500ms);

  r = probe_once("127.0.0.1", s.p(), "/bad\r\nX-Injected: 1", 1s);
  CHECK(!r.healthy);
  CHECK(r.error == "invalid health path");
}

TEST_CASE("wait_healthy: retries until healthy, gives up at the timeout or when the process is gone",
          "[health]") {
  test_server s;
  auto r = wait_healthy("127.0.0.1", s.p(), "/flaky", 3s, 50ms);
  CHECK(r.healthy);
  CHECK(r.status_code == 200);
  CHECK(s.flaky_calls == 4);
  CHECK(r.elapsed < 1s);

  r = wait_healthy("127.0.0.1", s.p(), "/error", 300ms, 50ms);
  CHECK(!r.healthy);
  CHECK(r.error == "HTTP 500");
  CHECK(r.elapsed >= 300ms);
  CHECK(r.elapsed < 1s);

  closed_port closed;
  r = wait_healthy("127.0.0.1", closed.port, "/", 300ms, 50ms);
  CHECK(!r.healthy);
  CHECK(r.error == "connection refused");
  CHECK(r.elapsed >= 300ms);
  CHECK(r.elapsed < 1s);

  auto t0 = std::chrono::steady_clock::now();
  r = wait_healthy("127.0.0.1", closed.port, "/", 5s, 50ms,
                   [&] { return std::chrono::steady_clock::now() - t0 < 150ms; });
  CHECK(!r.healthy);
  CHECK(r.error == "process exited");
  CHECK(r.elapsed < 500ms);

  // A slow health endpoint within a short overall timeout: bounded by it.
  r = wait_healthy("127.0.0.1", s.p(), "/slow", 250ms, 50ms);
  CHECK(!r.healthy);
  CHECK(r.error == "timeout");
  CHECK(r.elapsed < 1s);
}

TEST_CASE("wait_healthy: a server that starts listening late is seen within a few ms, not an interval later",
          "[health]") {
  // A port nobody listens on yet; the server binds it 150 ms later.
  closed_port reserved;
  uint16_t port = reserved.port;
  httplib::Server svr;
  svr.Get("/ok", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  std::atomic<int64_t> listening_us{0};
  std::atomic<bool> bound{false};
  std::thread late([&] {
    std::this_thread::sleep_for(150ms);
    ::close(reserved.fd);  // held (bound, not listening) until now: connects were refused
    reserved.fd = -1;
    if (!svr.bind_to_port("127.0.0.1", port)) return;
    bound = true;
    listening_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now().time_since_epoch()).count();
    svr.listen_after_bind();
  });
  constexpr auto interval = 5s;  // the pause between probes never grows past it
  auto r = wait_healthy("127.0.0.1", port, "/ok", 30s, interval);
  auto seen_us = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::now().time_since_epoch()).count();
  svr.stop();
  late.join();
  REQUIRE(bound);
  CHECK(r.healthy);
  INFO("seen healthy " << (seen_us - listening_us) / 1000.0 << " ms after the server listened");
  CHECK(r.elapsed >= 150ms);
  CHECK(r.elapsed < interval);  // the retry after a refused probe did not wait an interval
  WARN("seen healthy " << (seen_us - listening_us) / 1000.0 << " ms after the server listened");
}

TEST_CASE("stay_healthy: must keep passing for the whole duration", "[health]") {
  test_server s;
  SECTION("duration 0 is healthy at once") {
    auto r = stay_healthy("127.0.0.1", s.p(), "/error", 0ms, 50ms);
    CHECK(r.healthy);
    CHECK(r.elapsed < 50ms);
  }
  SECTION("a steady server passes after the duration") {
    auto r = stay_healthy("127.0.0.1", s.p(), "/ok", 400ms, 50ms);
    CHECK(r.healthy);
    CHECK(r.status_code == 200);
    CHECK(r.elapsed >= 400ms);
    CHECK(r.elapsed < 1500ms);
  }
  SECTION("an app that answers, then starts failing") {
    REQUIRE(wait_healthy("127.0.0.1", s.p(), "/fading", 1s, 50ms).healthy);
    auto r = stay_healthy("127.0.0.1", s.p(), "/fading", 3s, 50ms);
    CHECK(!r.healthy);
    CHECK(r.error == "HTTP 500");
    CHECK(s.fading_calls == 4);
    CHECK(r.elapsed < 1s);
  }
  SECTION("a server that answers, then goes away") {
    REQUIRE(wait_healthy("127.0.0.1", s.p(), "/ok", 1s, 50ms).healthy);
    std::thread killer([&] {
      std::this_thread::sleep_for(250ms);
      s.stop();
    });
    auto r = stay_healthy("127.0.0.1", s.p(), "/ok", 3s, 50ms);
    killer.join();
    CHECK(!r.healthy);
    // Refused, or cut if a probe was in flight when the server went away.
    CHECK((r.error == "connection refused" || r.error == "connection closed"));
    CHECK(r.elapsed >= 200ms);
    CHECK(r.elapsed < 1500ms);
  }
  SECTION("the process exiting ends it") {
    auto t0 = std::chrono::steady_clock::now();
    auto r = stay_healthy("127.0.0.1", s.p(), "/ok", 3s, 50ms,
                          [&] { return std::chrono::steady_clock::now() - t0 < 200ms; });
    CHECK(!r.healthy);
    CHECK(r.error == "process exited");
    CHECK(r.elapsed < 1s);
  }
}
