// runtime/proxy/traffic_meter: the request lines HAProxy logs for canaries, the per-port windows
// (exact percentiles at ms resolution), and the real unix datagram socket the meter binds.
// HAProxy itself sending to it: tests/integration/test_haproxy_canary.cpp.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "runtime/proxy/traffic_meter.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using berth::test::temp_dir;
using namespace std::chrono_literals;

namespace {

request_sample line(const std::string& text) {
  request_sample s;
  INFO(text);
  REQUIRE(parse_request_line(text, &s));
  return s;
}

// Polls `done` every 5 ms for at most 10 s (a busy machine may be slow to run the reader).
bool within_10s(const std::function<bool()>& done) {
  for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Sends one datagram to the unix socket at `path`, as HAProxy does (an unconnected socket).
bool send_datagram(const std::string& path, const std::string& text) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  bool sent = ::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
              static_cast<ssize_t>(text.size());
  ::close(fd);
  return sent;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("traffic meter: parse_request_line reads HAProxy's canary log line and nothing else", "[traffic_meter]") {
  auto ok = line("41007 200 3 4 --");
  CHECK(ok.port == 41007);
  CHECK(ok.status == 200);
  CHECK(ok.header_ms == 3);
  CHECK(ok.total_ms == 4);
  CHECK(ok.termination == "--");
  auto aborted = line("41007 -1 -1 300 CD");
  CHECK(aborted.status == -1);
  CHECK(aborted.header_ms == -1);
  CHECK(aborted.total_ms == 300);
  CHECK(line("1 200 0 0 --NI").termination == "--NI");
  CHECK(line("65535 502 -1 13 SH").port == 65535);

  request_sample untouched;
  untouched.port = 7;
  for (const char* bad : {"", "\n", "- 200 1 1 --",  // a request with no upstream (var unset)
                          "0 200 1 1 --", "65536 200 1 1 --", "-5 200 1 1 --", "41007 200 1 1",
                          "41007 200 1 1 -- extra", "41007 abc 1 1 --", "41007 200 x 1 --", "41007 200 1 1 -",
                          "41007 200 1 1 --NIX", "shop 200 1 1 --"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_request_line(bad, &untouched));
  }
  CHECK(untouched.port == 7);  // a bad line leaves *out alone
}

TEST_CASE("traffic meter: errors are the app's failures, never a client that gave up", "[traffic_meter]") {
  // What HAProxy 2.6 logs (checked against the real binary): the app's 5xx, a reset before any
  // answer (502 after the GET retries), a refused connect (503 after 3 retries), a timeout.
  for (const char* failure : {"1 500 2 2 --", "1 502 -1 13 SH", "1 503 -1 3004 SC", "1 504 -1 60000 sH",
                              "1 200 5 9 SD", "1 -1 -1 10 SH"}) {
    INFO(failure);
    CHECK(line(failure).error());
    CHECK_FALSE(line(failure).client_gave_up());
  }
  for (const char* fine : {"1 200 2 2 --", "1 404 1 1 --", "1 101 3 60000 --", "1 304 1 1 --"}) {
    INFO(fine);
    CHECK_FALSE(line(fine).error());
  }
  // The client ended it: an answer already under way is not the app's error (unless a 5xx);
  // no answer at all is not counted anywhere.
  CHECK_FALSE(line("1 200 3001 3001 CD").error());
  CHECK_FALSE(line("1 200 3001 3001 CD").client_gave_up());
  CHECK(line("1 500 2 5 CD").error());
  CHECK_FALSE(line("1 -1 -1 300 CD").error());
  CHECK(line("1 -1 -1 300 CD").client_gave_up());
  CHECK(line("1 -1 -1 300 cR").client_gave_up());
  // Latency: time to the answer's headers, or the whole time when none came.
  CHECK(line("1 200 7 90 --").latency_ms() == 7);
  CHECK(line("1 503 -1 3004 SC").latency_ms() == 3004);
}

TEST_CASE("traffic meter: per-port windows count requests, errors and exact percentiles", "[traffic_meter]") {
  temp_dir tmp("meter");
  std::shared_ptr<traffic_meter> meter;
  REQUIRE(traffic_meter::open(tmp / "traffic.sock", &meter));

  CHECK(meter->read(4001).requests == 0);
  CHECK(meter->read(4001).p99_ms == -1);
  meter->count(line("4001 200 1 1 --"));  // unwatched: ignored
  meter->restart({4001, 4002});
  CHECK(meter->read(4001).requests == 0);

  // 300 requests of 1..300 ms: nearest rank p50 = the 150th, p99 = the 297th (a float rank
  // could make it the 298th).
  for (int ms = 300; ms >= 1; --ms) meter->count(line("4001 200 " + std::to_string(ms) + " " + std::to_string(ms) + " --"));
  auto a = meter->read(4001);
  CHECK(a.requests == 300);
  CHECK(a.errors == 0);
  CHECK(a.p50_ms == 150);
  CHECK(a.p99_ms == 297);
  // Three fast errors and a client that gave up (not counted): 303 requests, ranks 152 and 300.
  for (int i = 0; i < 3; ++i) meter->count(line("4001 500 1 1 --"));
  meter->count(line("4001 -1 -1 300 CD"));
  a = meter->read(4001);
  CHECK(a.requests == 303);
  CHECK(a.errors == 3);
  CHECK(a.p50_ms == 149);
  CHECK(a.p99_ms == 297);

  // One slow request in a hundred is below the p99 (the 99th of 100); a second one is not.
  for (int i = 0; i < 99; ++i) meter->count(line("4002 200 10 10 --"));
  meter->count(line("4002 200 900 900 --"));
  CHECK(meter->read(4002).p99_ms == 10);
  CHECK(meter->read(4002).p50_ms == 10);
  meter->count(line("4002 200 900 900 --"));
  CHECK(meter->read(4002).p99_ms == 900);
  CHECK(meter->read(4002).requests == 101);
  CHECK(meter->read(4002).errors == 0);

  // restart forgets what was counted; forget stops counting.
  meter->restart({4001});
  CHECK(meter->read(4001).requests == 0);
  CHECK(meter->read(4001).p50_ms == -1);
  CHECK(meter->read(4002).requests == 101);
  meter->forget({4002});
  meter->count(line("4002 200 10 10 --"));
  CHECK(meter->read(4002).requests == 0);
}

TEST_CASE("traffic meter: datagrams sent to its socket are counted and a bad one is only tallied", "[traffic_meter]") {
  temp_dir tmp("meter");
  auto path = tmp / "haproxy/traffic.sock";  // the folder is made, 0700
  CHECK(traffic_socket_path(tmp / "haproxy") == path);
  std::shared_ptr<traffic_meter> meter;
  REQUIRE(traffic_meter::open(path, &meter));
  CHECK(meter->path() == path);
  CHECK(test::mode_of(tmp / "haproxy") == 0700);
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);

  meter->restart({41007});
  REQUIRE(send_datagram(path, "41007 200 3 4 --\n"));  // HAProxy ends its raw lines with \n
  REQUIRE(send_datagram(path, "41007 502 -1 13 SH"));
  REQUIRE(send_datagram(path, "41008 200 1 1 --\n"));  // not watched
  REQUIRE(send_datagram(path, "- 400 -1 0 PR--\n"));   // malformed
  CHECK(within_10s([&] { return meter->received() == 4; }));
  auto f = meter->read(41007);
  CHECK(f.requests == 2);
  CHECK(f.errors == 1);
  CHECK(f.p99_ms == 13);
  CHECK(meter->malformed() == 1);
  CHECK(meter->read(41008).requests == 0);

  meter.reset();  // the destructor removes the socket
  CHECK_FALSE(exists(path));
  CHECK_FALSE(send_datagram(path, "41007 200 3 4 --"));
}

TEST_CASE("traffic meter: a stale socket file is replaced, and a meter never removes its successor's socket",
          "[traffic_meter]") {
  temp_dir tmp("meter");
  auto path = tmp / "traffic.sock";
  {
    // What a killed berth leaves: a bound socket file nobody reads.
    int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  REQUIRE(exists(path));
  std::shared_ptr<traffic_meter> first, second;
  REQUIRE(traffic_meter::open(path, &first));
  first->restart({4001});
  REQUIRE(send_datagram(path, "4001 200 1 1 --"));
  CHECK(within_10s([&] { return first->read(4001).requests == 1; }));

  // A second meter at the same path takes it over; the first one going leaves it in place.
  REQUIRE(traffic_meter::open(path, &second));
  second->restart({4001});
  first.reset();
  REQUIRE(exists(path));
  REQUIRE(send_datagram(path, "4001 200 1 1 --"));
  CHECK(within_10s([&] { return second->read(4001).requests == 1; }));

  // A path that cannot hold a socket address is refused before anything is made.
  std::shared_ptr<traffic_meter> none;
  auto st = traffic_meter::open(tmp / std::string(120, 'x'), &none);
  CHECK(st.which() == status::code::io_error);
  CHECK_FALSE(none);
}
